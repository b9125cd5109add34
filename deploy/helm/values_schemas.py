"""The `values.schema.json` of every Fleet chart, generated from one description.

The five service charts share most of their values (they all render the fleet-lib templates), so
their schemas are written here once, with each service's differences (HPA or KEDA, migrations,
ingress, the peers its NetworkPolicy may open) spelled out in `SERVICES`. Every object is closed
(`additionalProperties: false`): a misspelt key fails `helm lint`, `helm template` and
`helm install` instead of being ignored.

    python deploy/helm/values_schemas.py          # rewrite the schemas
    python deploy/helm/values_schemas.py --check  # exit 1 when a committed schema is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELM_DIR = Path(__file__).resolve().parent
Schema = dict[str, Any]

FLEET_SERVICES = ("gateway", "auth", "catalog", "orders", "worker")
# Set by the chart itself (ConfigMap or container env), or secrets: never in `config`.
RESERVED_CONFIG_KEYS = ("FLEET_ENV", "HOST", "PORT", "SERVICE_VERSION")
# Rendered from `objectStorage` (the worker's bucket), so never in `config` either.
OBJECT_STORAGE_CONFIG_KEYS = (
    "S3_ENDPOINT_URL",
    "S3_PRESIGN_ENDPOINT_URL",
    "S3_REGION",
    "S3_BUCKET",
)
# Rendered from `commands`, `exports` and `reconciliation` (the worker's jobs), so never in
# `config` either.
JOB_CONFIG_KEYS = (
    "COMMAND_PREFETCH",
    "EXPORT_DEADLINE_SECONDS",
    "EXPORT_DEADLINE_SCAN_SECONDS",
    "RECONCILIATION_EVERY_SECONDS",
    "RECONCILIATION_CHECK_SECONDS",
    "RECONCILIATION_SETTLE_SECONDS",
)
SECRET_CONFIG_KEYS = (
    "DATABASE_URL",
    "AMQP_URL",
    "REDIS_URL",
    "SMTP_URL",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
)
# Names ending like a secret's (FLEET_ADMIN_PASSWORD, ..._TOKEN); ACCESS_TOKEN_TTL_SECONDS is fine.
SECRET_SUFFIXES = ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY", "CREDENTIALS")


@dataclass(frozen=True, slots=True)
class Service:
    """What sets one service chart's values apart from the others'."""

    port: int
    scaler: str  # "hpa", "keda" or "" (a fixed replica count)
    migrations: bool
    ingress: bool
    ingress_peers: tuple[str, ...]
    egress_peers: tuple[str, ...]
    # An S3-compatible bucket (`objectStorage`: S3_ENDPOINT_URL, S3_BUCKET...).
    object_storage: bool = False
    # Consumes commands from its `<svc>.commands` queue (`commands`: COMMAND_PREFETCH; with KEDA,
    # a trigger on that queue's depth too).
    commands: bool = False
    # Exports and the reconciliation (`exports`, `reconciliation`: their EXPORT_* and
    # RECONCILIATION_* settings).
    jobs: bool = False


SERVICES: dict[str, Service] = {
    "gateway": Service(
        port=8000,
        scaler="hpa",
        migrations=False,
        ingress=True,
        ingress_peers=("ingressController", "prometheus"),
        egress_peers=("dns", "redis", "otlp"),
    ),
    "auth": Service(
        port=8001,
        scaler="",
        migrations=True,
        ingress=False,
        ingress_peers=("prometheus",),
        egress_peers=("dns", "postgres", "rabbitmq", "otlp"),
    ),
    "catalog": Service(
        port=8002,
        scaler="hpa",
        migrations=True,
        ingress=False,
        ingress_peers=("prometheus",),
        egress_peers=("dns", "postgres", "rabbitmq", "redis", "otlp"),
    ),
    "orders": Service(
        port=8003,
        scaler="hpa",
        migrations=True,
        ingress=False,
        ingress_peers=("prometheus",),
        egress_peers=("dns", "postgres", "rabbitmq", "otlp"),
    ),
    "worker": Service(
        port=8004,
        scaler="keda",
        migrations=True,
        ingress=False,
        ingress_peers=("prometheus",),
        egress_peers=("dns", "postgres", "rabbitmq", "otlp", "smtp", "webhooks", "objectStorage"),
        object_storage=True,
        commands=True,
        jobs=True,
    ),
}


def closed(properties: Schema, *, required: tuple[str, ...] | None = None, **extra: Any) -> Schema:
    """An object with exactly these properties (all required unless `required` says otherwise)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties if required is None else required),
        "properties": properties,
        **extra,
    }


def ref(name: str) -> Schema:
    return {"$ref": f"#/definitions/{name}"}


STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
POSITIVE: Schema = {"type": "integer", "minimum": 1}
NON_NEGATIVE: Schema = {"type": "integer", "minimum": 0}
DURATION: Schema = {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}
ENV_NAME = "^[A-Z_][A-Z0-9_]*$"
DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MESH_PROVIDERS = ("istio", "linkerd")
SERVICE_NAME: Schema = {"type": "string", "enum": list(FLEET_SERVICES)}
# Where the runbooks are published (the address the SLO alerts' runbook_url uses too).
RUNBOOK_BASE_URL = "https://github.com/fleet/fleet/blob/main/docs/runbooks"


def global_schema() -> Schema:
    return closed(
        {
            "imageRegistry": {
                "type": "string",
                "description": "Prefix of every image, e.g. ghcr.io/example/fleet; empty: none.",
                "pattern": "^([a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*)?$",
            },
            "imageTag": {
                "type": "string",
                "description": "Tag of every service's image when set (CI: the commit SHA).",
                "pattern": "^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$",
            },
            "environment": {
                "type": "string",
                "enum": ["staging", "production", "dev"],
                "description": "FLEET_ENV of every service (dev runs as local).",
            },
        }
    )


def common_definitions() -> dict[str, Schema]:
    label_map: Schema = {"type": "object", "additionalProperties": STRING}
    return {
        "global": global_schema(),
        "labelSelector": closed(
            {
                "matchLabels": label_map,
                "matchExpressions": {
                    "type": "array",
                    "items": closed(
                        {
                            "key": STRING,
                            "operator": {
                                "type": "string",
                                "enum": ["In", "NotIn", "Exists", "DoesNotExist"],
                            },
                            "values": {"type": "array", "items": STRING},
                        },
                        required=("key", "operator"),
                    ),
                },
            },
            required=(),
        ),
        "networkPolicyPeer": closed(
            {
                "namespaceSelector": ref("labelSelector"),
                "podSelector": ref("labelSelector"),
                "ipBlock": closed(
                    {"cidr": STRING, "except": {"type": "array", "items": STRING}},
                    required=("cidr",),
                ),
            },
            required=(),
            minProperties=1,
        ),
        "networkPolicyPort": closed(
            {
                "port": {"type": ["integer", "string"]},
                "endPort": POSITIVE,
                "protocol": {"type": "string", "enum": ["TCP", "UDP", "SCTP"]},
            },
            required=("port",),
        ),
        "ingressRule": closed(
            {
                "enabled": BOOLEAN,
                "peers": {"type": "array", "minItems": 1, "items": ref("networkPolicyPeer")},
            }
        ),
        "egressRule": closed(
            {
                "enabled": BOOLEAN,
                "peers": {"type": "array", "minItems": 1, "items": ref("networkPolicyPeer")},
                "ports": {"type": "array", "minItems": 1, "items": ref("networkPolicyPort")},
            }
        ),
        "quantities": closed(
            {"cpu": {"type": ["string", "number"]}, "memory": STRING}, required=()
        ),
    }


def config_schema() -> Schema:
    chart_owned = (*RESERVED_CONFIG_KEYS, *OBJECT_STORAGE_CONFIG_KEYS, *JOB_CONFIG_KEYS)
    forbidden = [f"^{key}$" for key in (*chart_owned, *SECRET_CONFIG_KEYS)]
    forbidden += [f"{suffix}$" for suffix in SECRET_SUFFIXES]
    return {
        "type": "object",
        "description": (
            "Non-secret environment (ConfigMap). Secret values (DATABASE_URL, AMQP_URL, "
            "REDIS_URL, SMTP_URL, passwords, tokens) come from the service's Secret; "
            "FLEET_ENV, HOST, PORT and SERVICE_VERSION are set by the chart, S3_ENDPOINT_URL, "
            "S3_PRESIGN_ENDPOINT_URL, S3_REGION and S3_BUCKET from objectStorage, "
            "COMMAND_PREFETCH from commands, EXPORT_* from exports and RECONCILIATION_* from "
            "reconciliation."
        ),
        "propertyNames": {"pattern": ENV_NAME, "not": {"pattern": "|".join(forbidden)}},
        "additionalProperties": STRING,
    }


def seconds(setting: str, meaning: str, *, minimum: int = 1) -> Schema:
    return {"type": "integer", "minimum": minimum, "description": f"{setting}: {meaning}"}


def commands_schema() -> Schema:
    return closed(
        {
            "prefetch": {
                **POSITIVE,
                "description": (
                    "COMMAND_PREFETCH: commands a replica handles at once (an export holds its "
                    "slot for as long as it takes)."
                ),
            }
        }
    )


def jobs_schemas() -> dict[str, Schema]:
    """`exports` and `reconciliation`: the worker's settings of its two jobs."""
    return {
        "exports": closed(
            {
                "deadlineSeconds": seconds(
                    "EXPORT_DEADLINE_SECONDS", "an export still pending this long is failed"
                ),
                "deadlineScanSeconds": seconds(
                    "EXPORT_DEADLINE_SCAN_SECONDS", "how often the replicas look for those"
                ),
            }
        ),
        "reconciliation": closed(
            {
                "everySeconds": seconds(
                    "RECONCILIATION_EVERY_SECONDS",
                    "one run per period; the ReconciliationStale alert allows 3 periods of the "
                    "default (slo/definitions/worker.yaml): change both together",
                ),
                "checkSeconds": seconds(
                    "RECONCILIATION_CHECK_SECONDS", "how often each replica looks if a run is due"
                ),
                "settleSeconds": seconds(
                    "RECONCILIATION_SETTLE_SECONDS",
                    "orders changed this recently are in flight and left out of a run",
                    minimum=0,
                ),
            }
        ),
    }


def keda_schema(service: Service) -> Schema:
    properties: Schema = {
        "enabled": BOOLEAN,
        "minReplicaCount": POSITIVE,
        "maxReplicaCount": POSITIVE,
        "queueName": {"type": "string", "minLength": 1},
        "targetQueueLength": POSITIVE,
        "pollingInterval": POSITIVE,
        "cooldownPeriod": POSITIVE,
        "amqpUrlKey": {"type": "string", "pattern": ENV_NAME},
    }
    if service.commands:
        properties["commands"] = closed(
            {
                "enabled": BOOLEAN,
                "queueName": {
                    "type": "string",
                    "minLength": 1,
                    "description": "<AMQP_QUEUE_PREFIX><svc>.commands",
                },
                "targetQueueLength": {
                    **POSITIVE,
                    "description": "Commands waiting per replica (its COMMAND_PREFETCH).",
                },
            }
        )
    return closed(properties)


def object_storage_schema() -> Schema:
    url: Schema = {"type": "string", "pattern": "^(https?://[^/?#]+/?)?$"}
    return closed(
        {
            "endpointUrl": {
                **url,
                "description": "S3_ENDPOINT_URL: the S3 API the service calls; empty: AWS's own.",
            },
            "presignEndpointUrl": {
                **url,
                "description": (
                    "S3_PRESIGN_ENDPOINT_URL: where clients download presigned URLs from, when "
                    "it differs from endpointUrl (an in-cluster endpoint); empty: endpointUrl."
                ),
            },
            "region": {"type": "string", "pattern": "^[a-z0-9-]+$", "description": "S3_REGION"},
            "bucket": {
                "type": "string",
                "pattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                "description": (
                    "S3_BUCKET, provisioned beforehand; its keys (S3_ACCESS_KEY_ID, "
                    "S3_SECRET_ACCESS_KEY) come from the service's Secret."
                ),
            },
        }
    )


def canary_schema() -> Schema:
    step = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "setWeight": {"type": "integer", "minimum": 1, "maximum": 100},
            "pause": closed({"duration": DURATION}, required=()),
        },
    }
    analysis = closed(
        {
            "enabled": BOOLEAN,
            "prometheusAddress": {"type": "string", "pattern": "^https?://"},
            "startingStep": NON_NEGATIVE,
            "initialDelay": DURATION,
            "interval": DURATION,
            "window": DURATION,
            "minRequests": NON_NEGATIVE,
            "failureLimit": NON_NEGATIVE,
            "consecutiveErrorLimit": NON_NEGATIVE,
            "minSuccessRate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "maxP95LatencySeconds": {"type": "number", "exclusiveMinimum": 0},
            "events": closed(
                {
                    "enabled": BOOLEAN,
                    "minEvents": NON_NEGATIVE,
                    "minHandledRate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                },
                description=(
                    "Judge the canary's event handling too (services that consume events): "
                    "share of consumed events handled at the first attempt."
                ),
            ),
        }
    )
    return closed(
        {
            "enabled": BOOLEAN,
            "steps": {"type": "array", "minItems": 1, "items": step},
            "analysis": analysis,
        }
    )


def network_policy_schema(service: Service) -> Schema:
    return closed(
        {
            "enabled": BOOLEAN,
            "ingress": closed(
                {
                    "fromServices": {"type": "array", "uniqueItems": True, "items": SERVICE_NAME},
                    "peers": closed({name: ref("ingressRule") for name in service.ingress_peers}),
                }
            ),
            "egress": closed(
                {
                    "toServices": {
                        "type": "object",
                        "propertyNames": SERVICE_NAME,
                        "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 65535},
                    },
                    "peers": closed({name: ref("egressRule") for name in service.egress_peers}),
                }
            ),
        }
    )


def mesh_schema(service: Service) -> Schema:
    """The mesh alternative: its callers are `networkPolicy.ingress.fromServices`, its peers from
    other namespaces the same names as the NetworkPolicy's ingress peers."""
    peer = closed(
        {
            "enabled": BOOLEAN,
            "namespace": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
            "serviceAccount": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253},
        }
    )
    control_plane = closed(
        {
            "peers": {"type": "array", "minItems": 1, "items": ref("networkPolicyPeer")},
            "ports": {"type": "array", "minItems": 1, "items": ref("networkPolicyPort")},
        }
    )
    return closed(
        {
            "enabled": {
                "type": "boolean",
                "description": "Sidecar injection, mTLS and authorization policies; off: none.",
            },
            "provider": {"type": "string", "enum": list(MESH_PROVIDERS)},
            "trustDomain": {
                "type": "string",
                "pattern": DNS_SUBDOMAIN,
                "description": "Istio's trust domain (principals <trustDomain>/ns/<ns>/sa/<sa>).",
            },
            "peers": closed(dict.fromkeys(service.ingress_peers, peer)),
            "prometheusCertsDir": {
                "type": "string",
                "pattern": "^/.*[^/]$",
                "description": "Istio: the certificates Prometheus's sidecar writes, in its pod.",
            },
            "controlPlane": closed(dict.fromkeys(MESH_PROVIDERS, control_plane)),
        }
    )


def service_schema(name: str, service: Service) -> Schema:
    properties: Schema = {
        "global": ref("global"),
        # Helm gives every dependency a values key, the library chart included; nothing to set.
        "fleet-lib": closed({"global": ref("global")}, required=()),
        "ownership": closed(
            {
                "team": {
                    "type": "string",
                    "pattern": DNS_LABEL,
                    "maxLength": 63,
                    "description": "Owner team: its @fleet/<team> owns the service in CODEOWNERS.",
                },
                "runbook": {
                    "type": "string",
                    "pattern": f"^{RUNBOOK_BASE_URL}/[A-Za-z0-9._-]+[.]md$",
                    "description": "The runbook on-call opens first (docs/runbooks).",
                },
            }
        ),
        "replicaCount": POSITIVE,
        "image": closed(
            {
                "repository": {"type": "string", "minLength": 1},
                "tag": {"type": "string", "description": "global.imageTag wins when set."},
                "pullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
            }
        ),
        "imagePullSecrets": {
            "type": "array",
            "items": closed({"name": {"type": "string", "minLength": 1}}),
        },
        "service": closed(
            {"port": {"type": "integer", "const": service.port, "description": "= PORT"}}
        ),
        "config": config_schema(),
        "secrets": closed(
            {
                "externalSecret": closed(
                    {
                        "enabled": BOOLEAN,
                        "storeRef": closed(
                            {
                                "name": {"type": "string", "minLength": 1},
                                "kind": {
                                    "type": "string",
                                    "enum": ["SecretStore", "ClusterSecretStore"],
                                },
                            }
                        ),
                        "remoteKey": {
                            "type": "string",
                            "description": f"Empty: fleet/<global.environment>/{name}.",
                        },
                        "refreshInterval": DURATION,
                    }
                ),
                "existingSecret": {
                    "type": "string",
                    "description": f"Used when externalSecret is off; empty: {name}-env.",
                },
            }
        ),
        "secretMounts": {
            "type": "array",
            "items": closed(
                {
                    "name": {"type": "string", "pattern": DNS_LABEL},
                    "secretName": {"type": "string", "pattern": DNS_LABEL},
                    "mountPath": {"type": "string", "pattern": "^/"},
                    "envVar": {"type": "string", "pattern": ENV_NAME},
                    "remoteKey": {
                        "type": "string",
                        "description": f"Empty: fleet/<global.environment>/{name}/<name>.",
                    },
                },
                required=("name", "secretName", "mountPath", "envVar"),
            ),
        },
        "resources": closed({"requests": ref("quantities"), "limits": ref("quantities")}),
        "tmpSizeLimit": STRING,
        "gracefulShutdown": closed({"preStopSleepSeconds": NON_NEGATIVE, "drainStages": POSITIVE}),
        "terminationGracePeriodSeconds": POSITIVE,
        "podAnnotations": {"type": "object", "additionalProperties": STRING},
        "nodeSelector": {"type": "object", "additionalProperties": STRING},
        "tolerations": {
            "type": "array",
            "items": closed(
                {
                    "key": STRING,
                    "operator": {"type": "string", "enum": ["Exists", "Equal"]},
                    "value": STRING,
                    "effect": {
                        "type": "string",
                        "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
                    },
                    "tolerationSeconds": NON_NEGATIVE,
                },
                required=(),
            ),
        },
        "topologySpread": closed(
            {
                "whenUnsatisfiable": {
                    "type": "string",
                    "enum": ["ScheduleAnyway", "DoNotSchedule"],
                }
            }
        ),
        "canary": canary_schema(),
        "podDisruptionBudget": closed(
            {
                "enabled": BOOLEAN,
                "minAvailable": {"type": ["integer", "string"]},
                "maxUnavailable": {"type": ["integer", "string"]},
            },
            required=("enabled",),
        ),
        "serviceMonitor": closed(
            {
                "enabled": BOOLEAN,
                "interval": DURATION,
                "scrapeTimeout": DURATION,
                "labels": {"type": "object", "additionalProperties": STRING},
            }
        ),
        "networkPolicy": network_policy_schema(service),
        "mesh": mesh_schema(service),
    }
    if service.scaler == "hpa":
        properties["autoscaling"] = closed(
            {
                "enabled": BOOLEAN,
                "minReplicas": POSITIVE,
                "maxReplicas": POSITIVE,
                "targetCPUUtilizationPercentage": {"type": "integer", "minimum": 1},
                "targetMemoryUtilizationPercentage": {"type": "integer", "minimum": 1},
                "scaleDownStabilizationSeconds": NON_NEGATIVE,
            },
            required=(
                "enabled",
                "minReplicas",
                "maxReplicas",
                "targetCPUUtilizationPercentage",
                "scaleDownStabilizationSeconds",
            ),
        )
    if service.scaler == "keda":
        properties["keda"] = keda_schema(service)
    if service.object_storage:
        properties["objectStorage"] = object_storage_schema()
    if service.commands:
        properties["commands"] = commands_schema()
    if service.jobs:
        properties.update(jobs_schemas())
    if service.migrations:
        properties["migrations"] = closed(
            {"enabled": BOOLEAN, "backoffLimit": NON_NEGATIVE, "activeDeadlineSeconds": POSITIVE}
        )
    if service.ingress:
        properties["ingress"] = closed(
            {
                "enabled": BOOLEAN,
                "className": {"type": "string", "minLength": 1},
                "host": {"type": "string", "minLength": 1},
                "paths": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": "^/"},
                    "description": "Path prefixes routed to the service (the public API only).",
                },
                "tls": closed({"enabled": BOOLEAN, "secretName": {"type": "string"}}),
                "certManager": closed(
                    {
                        "clusterIssuer": {
                            "type": "string",
                            "description": "cert-manager ClusterIssuer; empty: no annotation.",
                        }
                    }
                ),
                "annotations": {"type": "object", "additionalProperties": STRING},
            }
        )
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"Values of the {name} chart",
        "definitions": common_definitions(),
        **closed(properties, required=tuple(key for key in properties if key != "fleet-lib")),
    }


def umbrella_schema() -> Schema:
    # Each service's values are checked by its own chart's schema.
    services = {
        name: {"type": "object", "description": f"Values of the {name} chart."}
        for name in FLEET_SERVICES
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Values of the fleet umbrella chart",
        "definitions": {"global": global_schema()},
        **closed({"global": ref("global"), **services}, required=("global",)),
    }


def schemas() -> dict[Path, Schema]:
    generated = {
        HELM_DIR / name / "values.schema.json": service_schema(name, service)
        for name, service in SERVICES.items()
    }
    generated[HELM_DIR / "fleet" / "values.schema.json"] = umbrella_schema()
    return generated


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report stale schemas")
    args = parser.parse_args(argv)
    stale = []
    for path, schema in schemas().items():
        text = render(schema)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    for path in stale:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(HELM_DIR)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
