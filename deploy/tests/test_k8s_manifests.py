"""The cluster-level manifests (deploy/k8s): what each overlay renders, checked offline.

Both overlays are built once with the pinned kustomize of deploy/tools, and every rendered
document is validated against its schema (Kubernetes' own, the operators' CRDs, the RabbitmqCluster
subset in deploy/tools/schemas). The other tests read the rendered documents, not the source
files, so they check what `kubectl apply -k` would send: the data services configured the way the
fleet relies on, nothing secret committed, every resource in its namespace, and every generated
dashboard and rules file deployed.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import pytest
from deploy_support import (
    LOCAL_SCHEMAS,
    ROOT,
    kustomize_build,
    load_documents,
    validate_manifests,
)

from fleetctl import bootstrap
from fleetctl.stack import DB_SERVICES, Stack

Doc = dict[str, Any]

K8S = ROOT / "deploy" / "k8s"
DASHBOARDS = K8S / "monitoring" / "dashboards"
RULES = K8S / "monitoring" / "rules"
README = K8S / "README.md"
RABBITMQ_SCHEMA = LOCAL_SCHEMAS / "rabbitmqcluster_rabbitmq.com_v1beta1.json"
ENVIRONMENTS = ("staging", "production")

SERVICES_NAMESPACE = "fleet"
DATA_NAMESPACE = "fleet-data"
MONITORING_NAMESPACE = "monitoring"  # kube-prometheus-stack's, created by its install
CLUSTER_SCOPED = {"Namespace", "ClusterSecretStore", "ClusterRole", "ClusterRoleBinding"}
EXACT_VERSION_TAG = re.compile(r":v?\d+\.\d+\.\d+[^:/@]*$")


@pytest.fixture(scope="module")
def built() -> dict[str, list[Doc]]:
    return {env: kustomize_build(K8S / "overlays" / env) for env in ENVIRONMENTS}


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} of {kind}/{name}"
    return found[0]


def postgres(docs: list[Doc]) -> Doc:
    return one(docs, "Cluster", "fleet-db")


def init_sql(docs: list[Doc]) -> list[str]:
    """The statements the Postgres cluster runs once after initdb, whitespace normalised."""
    initdb = postgres(docs)["spec"]["bootstrap"]["initdb"]
    return [" ".join(statement.split()) for statement in initdb["postInitApplicationSQL"]]


def rabbitmq(docs: list[Doc]) -> Doc:
    return one(docs, "RabbitmqCluster", "fleet-rabbitmq")


def redis(docs: list[Doc]) -> Doc:
    return one(docs, "StatefulSet", "fleet-redis")


def container(pod_spec: Doc, name: str) -> Doc:
    return next(c for c in pod_spec["containers"] if c["name"] == name)


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key), value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


UNITS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,  # Kubernetes quantities
    "kB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40,  # Postgres memory parameters
    "mb": 2**20, "gb": 2**30,  # Redis (also powers of 1024)
    "m": 0.001, "": 1,
}  # fmt: skip


def amount(quantity: str | int) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(quantity))
    assert match, quantity
    return float(match[1]) * UNITS[match[2]]


def test_the_quantity_parser_reads_kubernetes_postgres_and_redis_units() -> None:
    assert amount("2Gi") == amount("2GB") == amount("2048mb") == 2 * 2**30
    assert amount("500m") == 0.5
    assert amount(3) == 3


# --- Every document is valid -------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_rendered_document_validates_against_its_schema(
    built: dict[str, list[Doc]], environment: str
) -> None:
    docs = built[environment]
    kinds = {doc["kind"] for doc in docs}
    assert {"Namespace", "Cluster", "RabbitmqCluster", "StatefulSet", "ExternalSecret"} <= kinds
    assert {"NetworkPolicy", "PodMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    assert validate_manifests(docs) == []


def test_rabbitmqcluster_schema_is_a_draft_2020_12_subset_written_for_fleet() -> None:
    schema = json.loads(RABBITMQ_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "subset" in schema["description"]
    assert "Fleet" in schema["description"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["spec"]["additionalProperties"] is False


def nested(doc: Doc, path: tuple[str | int, ...]) -> Any:
    node: Any = doc
    for key in path:
        node = node[key]
    return node


POD_OVERRIDE = ("spec", "override", "statefulSet", "spec", "template", "spec")


@pytest.mark.parametrize(
    ("path", "field", "typo"),
    [
        (("spec",), "replicas", "replica"),
        (("spec", "rabbitmq"), "additionalConfig", "additionalConfg"),
        (("spec", "persistence"), "storage", "size"),
        (("spec", "secretBackend", "externalSecret"), "name", "secretName"),
        (POD_OVERRIDE, "topologySpreadConstraints", "topologySpreadConstraint"),
        (("spec", "affinity", "podAntiAffinity"), "requiredDuringSchedulingIgnoredDuringExecution",
         "requiredDuringScheduling"),
    ],
)  # fmt: skip
def test_a_misspelt_rabbitmqcluster_field_fails_validation(
    built: dict[str, list[Doc]], path: tuple[str, ...], field: str, typo: str
) -> None:
    doc = copy.deepcopy(rabbitmq(built["production"]))
    parent = nested(doc, path)
    parent[typo] = parent.pop(field)
    problems = validate_manifests([doc])
    assert problems
    assert any(typo in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "replicas"), "3"),
        (("spec", "service"), {"type": "ExternalName"}),
        (("spec", "rabbitmq", "additionalPlugins"), ["rabbitmq-prometheus"]),
        (("spec", "rabbitmq", "additionalConfig"), "x = y\n" * 400),
        (("spec", "persistence", "storage"), "20 GB"),
    ],
)
def test_a_rabbitmqcluster_value_the_crd_refuses_fails_validation(
    built: dict[str, list[Doc]], path: tuple[str, ...], value: Any
) -> None:
    doc = copy.deepcopy(rabbitmq(built["production"]))
    nested(doc, path[:-1])[path[-1]] = value
    assert validate_manifests([doc])


# --- RabbitMQ ----------------------------------------------------------------------------------


def rabbitmq_conf(cluster: Doc) -> dict[str, str]:
    """`key = value` lines of the additionalConfig (rabbitmq.conf syntax)."""
    conf: dict[str, str] = {}
    for line in cluster["spec"]["rabbitmq"]["additionalConfig"].splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            conf[key.strip()] = value.strip()
    return conf


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rabbitmq_runs_three_nodes_on_separate_nodes_with_quorum_queues_by_default(
    built: dict[str, list[Doc]], environment: str
) -> None:
    """Production needs three nodes for quorum queues; staging keeps them (overlay comment)."""
    docs = built[environment]
    spec = rabbitmq(docs)["spec"]
    assert spec["replicas"] == 3
    assert rabbitmq_conf(rabbitmq(docs))["default_queue_type"] == "quorum"
    assert "rabbitmq_prometheus" in spec["rabbitmq"]["additionalPlugins"]
    terms = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {
        (term["topologyKey"], tuple(term["labelSelector"]["matchExpressions"][0]["values"]))
        for term in terms
    } == {("kubernetes.io/hostname", ("fleet-rabbitmq",))}
    spread = nested(spec, POD_OVERRIDE[1:])["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["topology.kubernetes.io/zone"]
    budget = one(docs, "PodDisruptionBudget", "fleet-rabbitmq")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"] == {"app.kubernetes.io/name": "fleet-rabbitmq"}
    memory = spec["resources"]["limits"]["memory"]
    assert spec["resources"]["requests"]["memory"] == memory, "the watermark follows the limit"
    assert amount(spec["persistence"]["storage"]) >= amount("10Gi")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rabbitmq_default_user_comes_from_the_secret_store_in_the_operators_layout(
    built: dict[str, list[Doc]], environment: str
) -> None:
    docs = built[environment]
    name = rabbitmq(docs)["spec"]["secretBackend"]["externalSecret"]["name"]
    secret = one(docs, "ExternalSecret", name)
    data = secret["spec"]["target"]["template"]["data"]
    assert set(data) == {
        "username", "password", "default_user.conf", "host", "port", "provider", "type"
    }  # fmt: skip
    assert data["default_user.conf"].splitlines() == [
        "default_user = {{ .username }}",
        "default_pass = {{ .password }}",
    ]
    assert data["host"] == f"fleet-rabbitmq.{DATA_NAMESPACE}.svc"


# --- Postgres ----------------------------------------------------------------------------------


class RecordingConnection:
    """Stands in for asyncpg: records the statements the local bootstrap runs on a new database."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def fetchval(self, query: str, *args: object) -> None:
        return None  # nothing exists yet

    async def execute(self, query: str, *args: object) -> str:
        self.statements.append(query)
        return ""

    async def close(self) -> None:
        return None


def as_cluster_bootstrap(statement: str) -> str | None:
    """The local bootstrap's statement as the cluster's one-shot initdb runs it (None: not needed).

    The local bootstrap runs on every `make up`, so it locks and is idempotent; the cluster's runs
    once, on an empty database, and leaves LOGIN and the password to the operator's managed roles.
    """
    sql = " ".join(statement.replace('"', "").split())
    if sql.startswith("SELECT pg_advisory_lock("):
        return None
    if re.fullmatch(r"ALTER SCHEMA \w+ OWNER TO \w+", sql):
        return None  # CREATE SCHEMA ... AUTHORIZATION made it the owner already
    sql = sql.replace("CREATE SCHEMA IF NOT EXISTS ", "CREATE SCHEMA ")
    return re.sub(
        r"^CREATE ROLE (\w+) LOGIN PASSWORD '(?:[^']|'')*'", r"CREATE ROLE \1 NOLOGIN", sql
    )


async def local_bootstrap_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    connection = RecordingConnection()

    async def connect(*args: object, **kwargs: object) -> RecordingConnection:
        return connection

    monkeypatch.setattr(asyncpg, "connect", connect)
    await bootstrap.ensure_roles_and_schemas(Stack())
    return connection.statements


async def test_postgres_bootstrap_sql_is_the_local_bootstraps(
    built: dict[str, list[Doc]], monkeypatch: pytest.MonkeyPatch
) -> None:
    local = [
        s for s in map(as_cluster_bootstrap, await local_bootstrap_statements(monkeypatch)) if s
    ]
    assert any(s.startswith("CREATE SCHEMA orders AUTHORIZATION fleet_orders") for s in local)
    for environment in ENVIRONMENTS:
        initdb = postgres(built[environment])["spec"]["bootstrap"]["initdb"]
        assert initdb["database"] == Stack().database
        assert init_sql(built[environment]) == local


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_postgres_creates_a_schema_per_database_service_owned_by_its_role_and_revokes_public(
    built: dict[str, list[Doc]], environment: str
) -> None:
    sql = init_sql(built[environment])
    assert "REVOKE ALL ON DATABASE fleet FROM PUBLIC" in sql
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC" in sql
    for service in DB_SERVICES:
        assert f"CREATE SCHEMA {service.schema} AUTHORIZATION {service.role}" in sql
        assert f"REVOKE ALL ON SCHEMA {service.schema} FROM PUBLIC" in sql
        assert (
            f"ALTER ROLE {service.role} IN DATABASE fleet SET search_path = {service.schema}" in sql
        )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_postgres_has_one_login_role_per_database_service_with_its_password_in_a_secret(
    built: dict[str, list[Doc]], environment: str
) -> None:
    docs = built[environment]
    cluster = postgres(docs)
    roles = {role["name"]: role for role in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == {service.role for service in DB_SERVICES}
    for service in DB_SERVICES:
        role = roles[service.role]
        assert role["ensure"] == "present"
        assert role["login"] is True
        assert not any(role[flag] for flag in ("superuser", "createdb", "createrole", "bypassrls"))
        assert role["passwordSecret"] == {"name": f"fleet-db-{service.name}"}
        secret = one(docs, "ExternalSecret", f"fleet-db-{service.name}")
        assert secret["metadata"]["namespace"] == cluster["metadata"]["namespace"]
        template = secret["spec"]["target"]["template"]
        assert template["type"] == "kubernetes.io/basic-auth"
        assert template["data"] == {"username": service.role, "password": "{{ .password }}"}
        assert template["metadata"]["labels"]["cnpg.io/reload"] == "true", "rotation is applied"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_postgres_cluster_holds_no_password(built: dict[str, list[Doc]], environment: str) -> None:
    cluster = postgres(built[environment])
    assert cluster["spec"]["enableSuperuserAccess"] is False
    assert "PASSWORD" not in " ".join(init_sql(built[environment])).upper()
    assert not [
        key for key, _ in walk(cluster) if "password" in key.lower() and key != "passwordSecret"
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_postgres_connection_limits_fit_within_max_connections(
    built: dict[str, list[Doc]], environment: str
) -> None:
    spec = postgres(built[environment])["spec"]
    limits = [role["connectionLimit"] for role in spec["managed"]["roles"]]
    assert all(limit > 0 for limit in limits)
    reserved = 10  # superuser_reserved_connections, replication, the metrics exporter
    assert sum(limits) + reserved <= int(spec["postgresql"]["parameters"]["max_connections"])


def test_postgres_and_its_metrics_are_monitored(built: dict[str, list[Doc]]) -> None:
    docs = built["production"]
    monitor = one(docs, "PodMonitor", "fleet-db")["spec"]
    assert monitor["selector"]["matchLabels"]["cnpg.io/cluster"] == "fleet-db"
    assert [endpoint["port"] for endpoint in monitor["podMetricsEndpoints"]] == ["metrics"]


# --- Redis -------------------------------------------------------------------------------------

ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip


def _pod_level_violations(pod_spec: Doc) -> list[str]:
    problems = [
        f"{flag} is set" for flag in ("hostNetwork", "hostPID", "hostIPC") if pod_spec.get(flag)
    ]
    for volume in pod_spec.get("volumes", []):
        problems += [
            f"volume {volume['name']}: {kind}" for kind in set(volume) - {"name"} - ALLOWED_VOLUMES
        ]
    return problems


def _container_violations(pod_spec: Doc, container_spec: Doc) -> list[str]:
    pod_context = pod_spec.get("securityContext", {})
    context = container_spec.get("securityContext", {})

    def effective(field: str) -> Any:
        return context.get(field, pod_context.get(field))

    problems: list[str] = []
    if context.get("privileged"):
        problems.append("privileged")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    capabilities = context.get("capabilities", {})
    if "ALL" not in capabilities.get("drop", []):
        problems.append("capabilities do not drop ALL")
    if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
        problems.append(f"capabilities add {capabilities['add']}")
    if effective("runAsNonRoot") is not True or effective("runAsUser") == 0:
        problems.append("may run as root")
    if (effective("seccompProfile") or {}).get("type") not in {"RuntimeDefault", "Localhost"}:
        problems.append("no RuntimeDefault/Localhost seccomp profile")
    if any("hostPort" in port for port in container_spec.get("ports", [])):
        problems.append("hostPort")
    if context.get("readOnlyRootFilesystem") is not True:  # Fleet's own bar, beyond the standard
        problems.append("writable root filesystem")
    return [f"container {container_spec['name']}: {problem}" for problem in problems]


def restricted_violations(pod_spec: Doc) -> list[str]:
    """What breaks the Kubernetes `restricted` Pod Security Standard (plus a read-only root)."""
    containers = [
        *pod_spec.get("initContainers", []),
        *pod_spec["containers"],
        *pod_spec.get("ephemeralContainers", []),
    ]
    problems = _pod_level_violations(pod_spec)
    for container_spec in containers:
        problems += _container_violations(pod_spec, container_spec)
    return problems


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_redis_runs_under_the_restricted_pod_security_standard(
    built: dict[str, list[Doc]], environment: str
) -> None:
    pod_spec = redis(built[environment])["spec"]["template"]["spec"]
    assert restricted_violations(pod_spec) == []
    assert pod_spec["automountServiceAccountToken"] is False
    for container_spec in pod_spec["containers"]:
        assert container_spec["readinessProbe"]
        assert container_spec["livenessProbe"]
        assert container_spec["resources"]["requests"]
        assert container_spec["resources"]["limits"]["memory"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("containers", 0, "securityContext", "allowPrivilegeEscalation"), True),
        (("containers", 1, "securityContext", "capabilities", "add"), ["NET_ADMIN"]),
        (("containers", 0, "securityContext", "capabilities", "drop"), []),
        (("containers", 0, "securityContext", "runAsUser"), 0),
        (("containers", 1, "securityContext", "privileged"), True),
        (("containers", 0, "securityContext", "readOnlyRootFilesystem"), False),
        (("securityContext", "seccompProfile", "type"), "Unconfined"),
        (("hostNetwork",), True),
        (("volumes", 0), {"name": "config", "hostPath": {"path": "/etc"}}),
    ],
)
def test_the_restricted_check_catches_a_breach(
    built: dict[str, list[Doc]], path: tuple[str | int, ...], value: Any
) -> None:
    pod_spec = copy.deepcopy(redis(built["production"])["spec"]["template"]["spec"])
    nested(pod_spec, path[:-1])[path[-1]] = value
    assert restricted_violations(pod_spec)


def redis_config_files(docs: list[Doc]) -> dict[str, str]:
    """The files of the ConfigMap the Redis pods mount."""
    volumes = {v["name"]: v for v in redis(docs)["spec"]["template"]["spec"]["volumes"]}
    files: dict[str, str] = one(docs, "ConfigMap", volumes["config"]["configMap"]["name"])["data"]
    return files


def directives(conf: str) -> dict[str, str]:
    lines = [line.split(maxsplit=1) for line in conf.splitlines() if line and line[0] != "#"]
    return {words[0]: words[1] if len(words) > 1 else "" for words in lines}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_redis_reads_its_config_and_acl_from_what_the_pod_mounts(
    built: dict[str, list[Doc]], environment: str
) -> None:
    docs = built[environment]
    pod_spec = redis(docs)["spec"]["template"]["spec"]
    server = container(pod_spec, "redis")
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    files = redis_config_files(docs)
    conf = directives(files["redis.conf"])
    assert server["command"] == ["redis-server", f"{mounts['config']}/redis.conf"]
    assert conf["include"] == f"{mounts['config']}/memory.conf"
    assert "memory.conf" in files
    acl_item = volumes["acl"]["secret"]["items"][0]["path"]
    assert conf["aclfile"] == f"{mounts['acl']}/{acl_item}"
    assert conf["dir"] == mounts["data"]
    assert conf["save"] == '""'
    assert conf["appendonly"] == "no"
    # catalog's list-page generation counter has no TTL and must never be evicted.
    assert conf["maxmemory-policy"] == "volatile-lru"
    acl = one(docs, "ExternalSecret", volumes["acl"]["secret"]["secretName"])
    assert acl["spec"]["target"]["template"]["data"][acl_item].startswith("user default on >{{ .")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_redis_maxmemory_leaves_headroom_below_the_memory_limit(
    built: dict[str, list[Doc]], environment: str
) -> None:
    docs = built[environment]
    files = redis_config_files(docs)
    maxmemory = amount(directives(files["memory.conf"])["maxmemory"])
    server = container(redis(docs)["spec"]["template"]["spec"], "redis")
    limit = amount(server["resources"]["limits"]["memory"])
    assert maxmemory <= 0.8 * limit


# --- Secrets -----------------------------------------------------------------------------------

NON_SECRET_TEMPLATE_KEYS = {"username", "host", "port", "provider", "type"}
TEMPLATE = re.compile(r"\{\{ *\.\w+ *\}\}")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_secret_value_is_committed(built: dict[str, list[Doc]], environment: str) -> None:
    docs = built[environment]
    assert of_kind(docs, "Secret") == []
    for doc in docs:
        if doc["kind"] == "ExternalSecret":
            for key, value in doc["spec"]["target"]["template"]["data"].items():
                assert key in NON_SECRET_TEMPLATE_KEYS or TEMPLATE.search(value), (key, value)
                assert key not in NON_SECRET_TEMPLATE_KEYS or "password" not in value
        else:
            literal = [
                (key, value)
                for key, value in walk(doc)
                if re.search("pass(word)?$", key, re.IGNORECASE) and isinstance(value, str)
            ]
            assert literal == [], f"{doc['kind']}/{doc['metadata']['name']}"


def test_no_manifest_under_deploy_k8s_is_a_secret() -> None:
    """Also the files no kustomization lists: a Secret committed anywhere here is a leak."""
    for path in K8S.rglob("*.yaml"):
        kinds = {doc.get("kind") for doc in load_documents(path.read_text(encoding="utf-8"))}
        assert "Secret" not in kinds, path


def kustomization_inputs(directory: Path) -> set[Path]:
    """The files a kustomization reads: its resources (files, not directories) and patches."""
    kustomization = load_documents((directory / "kustomization.yaml").read_text("utf-8"))[0]
    listed = [*kustomization.get("resources", []), *kustomization.get("patchesStrategicMerge", [])]
    listed += [patch["path"] for patch in kustomization.get("patches", []) if "path" in patch]
    for generator in kustomization.get("configMapGenerator", []):
        listed += generator.get("files", [])
    return {(directory / entry).resolve() for entry in listed if (directory / entry).is_file()}


def test_every_manifest_file_is_listed_in_its_kustomization() -> None:
    """A file added next to the others but not listed would silently never be applied."""
    directories = [K8S / "base", K8S / "monitoring", *sorted((K8S / "overlays").iterdir())]
    for directory in directories:
        on_disk = {
            path.resolve()
            for pattern in ("*.yaml", "*.conf", "dashboards/*.json", "rules/*.yaml")
            for path in directory.glob(pattern)
            if path.name != "kustomization.yaml"
        }
        assert on_disk == kustomization_inputs(directory), directory


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_external_secrets_read_their_own_environments_keys_from_the_fleet_store(
    built: dict[str, list[Doc]], environment: str
) -> None:
    secrets = of_kind(built[environment], "ExternalSecret")
    assert secrets
    for secret in secrets:
        spec = secret["spec"]
        assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "fleet-secrets"}
        assert spec["target"]["name"] == secret["metadata"]["name"]
        for item in spec["data"]:
            assert item["remoteRef"]["key"].startswith(f"fleet/{environment}/"), item


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_secret_the_data_services_use_is_filled_by_an_external_secret(
    built: dict[str, list[Doc]], environment: str
) -> None:
    docs = built[environment]
    filled = {
        (s["metadata"]["namespace"], s["spec"]["target"]["name"])
        for s in of_kind(docs, "ExternalSecret")
    }
    used = {role["passwordSecret"]["name"] for role in postgres(docs)["spec"]["managed"]["roles"]}
    used.add(rabbitmq(docs)["spec"]["secretBackend"]["externalSecret"]["name"])
    pod_spec = redis(docs)["spec"]["template"]["spec"]
    used |= {v["secret"]["secretName"] for v in pod_spec["volumes"] if "secret" in v}
    used |= {
        value["secretKeyRef"]["name"]
        for key, value in walk(pod_spec)
        if key == "valueFrom" and "secretKeyRef" in value
    }
    assert {(DATA_NAMESPACE, name) for name in used} == filled


# --- Namespaces and network --------------------------------------------------------------------


def expected_namespace(doc: Doc) -> str | None:
    if doc["kind"] in CLUSTER_SCOPED:
        return None
    if doc["kind"] == "PrometheusRule" or doc["metadata"]["name"].startswith("grafana-dashboard-"):
        return MONITORING_NAMESPACE
    return DATA_NAMESPACE


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_resource_lands_in_its_namespace(
    built: dict[str, list[Doc]], environment: str
) -> None:
    docs = built[environment]
    misplaced = [
        (doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"))
        for doc in docs
        if doc["metadata"].get("namespace") != expected_namespace(doc)
    ]
    assert misplaced == []
    assert {n["metadata"]["name"] for n in of_kind(docs, "Namespace")} == {
        SERVICES_NAMESPACE,
        DATA_NAMESPACE,
    }
    monitoring = [doc for doc in docs if expected_namespace(doc) == MONITORING_NAMESPACE]
    assert len(monitoring) == len(list(DASHBOARDS.glob("*.json"))) + len(list(RULES.glob("*.yaml")))


def test_the_services_namespace_enforces_the_restricted_pod_security_standard(
    built: dict[str, list[Doc]],
) -> None:
    for environment in ENVIRONMENTS:
        labels = {
            ns["metadata"]["name"]: ns["metadata"]["labels"]
            for ns in of_kind(built[environment], "Namespace")
        }
        assert labels[SERVICES_NAMESPACE]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels[DATA_NAMESPACE]["pod-security.kubernetes.io/enforce"] == "baseline"
        for namespace in (SERVICES_NAMESPACE, DATA_NAMESPACE):
            assert labels[namespace]["pod-security.kubernetes.io/warn"] == "restricted"
            assert labels[namespace]["pod-security.kubernetes.io/audit"] == "restricted"


# What each data service's pods carry (the operators label theirs), who its operator is, the
# ports the services and Prometheus use, and other namespaces allowed in (with their ports).
DATA_SERVICES: dict[str, dict[str, Any]] = {
    "fleet-db": {
        "pods": {"cnpg.io/cluster": "fleet-db"}, "client": 5432, "metrics": 9187,
        "operator": "cnpg-system",
    },
    "fleet-rabbitmq": {
        "pods": {"app.kubernetes.io/name": "fleet-rabbitmq"}, "client": 5672, "metrics": 15692,
        "operator": "rabbitmq-system",
        # KEDA reads the worker queue's depth over AMQP (the worker's ScaledObject).
        "readers": {"keda": {5672}},
    },
    "fleet-redis": {
        "pods": {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "fleet-redis"},
        "client": 6379, "metrics": 9121, "operator": None,
    },
}  # fmt: skip


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_the_pod_labels_the_policies_rely_on_are_the_workloads(built: dict[str, list[Doc]]) -> None:
    docs = built["production"]
    assert selects(
        DATA_SERVICES["fleet-redis"]["pods"], redis(docs)["spec"]["template"]["metadata"]["labels"]
    )
    # The operators label pods with the cluster's name.
    assert DATA_SERVICES["fleet-db"]["pods"] == {
        "cnpg.io/cluster": postgres(docs)["metadata"]["name"]
    }
    assert DATA_SERVICES["fleet-rabbitmq"]["pods"] == {
        "app.kubernetes.io/name": rabbitmq(docs)["metadata"]["name"]
    }


def rule_ports(rule: Doc) -> set[int]:
    assert rule.get("ports"), "a rule without ports opens every port"
    return {port["port"] for port in rule["ports"]}


@pytest.mark.parametrize("service", sorted(DATA_SERVICES))
def test_a_data_service_accepts_only_the_fleet_monitoring_its_peers_and_its_operator(
    built: dict[str, list[Doc]], service: str
) -> None:
    expected = DATA_SERVICES[service]
    policy = one(built["production"], "NetworkPolicy", service)["spec"]
    assert policy["podSelector"]["matchLabels"] == expected["pods"]
    assert policy["policyTypes"] == ["Ingress"]
    admitted: dict[str, set[int]] = {}
    for rule in policy["ingress"]:
        for peer in rule["from"]:
            if "namespaceSelector" in peer:
                assert "podSelector" not in peer
                source = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            else:
                assert peer == {"podSelector": {"matchLabels": expected["pods"]}}, "peers only"
                source = "peers"
            admitted.setdefault(source, set()).update(rule_ports(rule))
    assert admitted.pop(SERVICES_NAMESPACE) == {expected["client"]}
    assert admitted.pop(MONITORING_NAMESPACE) == {expected["metrics"]}
    if expected["operator"]:
        assert expected["client"] not in admitted.pop(expected["operator"])
    for namespace, ports in expected.get("readers", {}).items():
        assert admitted.pop(namespace) == ports
    admitted.pop("peers", None)
    assert admitted == {}, f"unexpected sources: {sorted(admitted)}"


def test_nothing_else_reaches_the_data_namespace(built: dict[str, list[Doc]]) -> None:
    for environment in ENVIRONMENTS:
        deny = one(built[environment], "NetworkPolicy", "default-deny-ingress")
        assert deny["metadata"]["namespace"] == DATA_NAMESPACE
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


@pytest.mark.parametrize("service", sorted(DATA_SERVICES))
def test_every_data_service_is_scraped_on_the_port_the_policy_opens_to_monitoring(
    built: dict[str, list[Doc]], service: str
) -> None:
    docs = built["production"]
    monitor = one(docs, "PodMonitor", service)["spec"]
    assert selects(DATA_SERVICES[service]["pods"], monitor["selector"]["matchLabels"])
    ports = {endpoint["port"] for endpoint in monitor["podMetricsEndpoints"]}
    named = {"fleet-db": {"metrics"}, "fleet-rabbitmq": {"prometheus"}, "fleet-redis": {"metrics"}}
    assert ports == named[service]
    if service == "fleet-redis":
        exporter = container(redis(docs)["spec"]["template"]["spec"], "exporter")
        assert exporter["ports"] == [
            {"name": "metrics", "containerPort": DATA_SERVICES[service]["metrics"]}
        ]


# --- Monitoring: nothing generated is left out -------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_generated_dashboard_is_deployed_verbatim_for_grafana(
    built: dict[str, list[Doc]], environment: str
) -> None:
    files = {path.name: path.read_text(encoding="utf-8") for path in DASHBOARDS.glob("*.json")}
    assert files, "no dashboards: run `make dashboards`"
    deployed: dict[str, str] = {}
    for config_map in of_kind(built[environment], "ConfigMap"):
        if config_map["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
            continue
        (file_name,) = config_map["data"]
        assert config_map["metadata"]["name"] == f"grafana-dashboard-{Path(file_name).stem}"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "Fleet"
        deployed[file_name] = config_map["data"][file_name]
    assert deployed == files
    for file_name, text in deployed.items():
        assert json.loads(text)["uid"] == Path(file_name).stem


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_slo_rules_file_is_a_prometheus_rule_and_is_deployed(
    built: dict[str, list[Doc]], environment: str
) -> None:
    generated: dict[str, Doc] = {}
    for path in sorted(RULES.glob("*.yaml")):
        (doc,) = load_documents(path.read_text(encoding="utf-8"))
        assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
        generated[doc["metadata"]["name"]] = doc
    assert generated, "no rules: run `make slo`"
    deployed = {
        rule["metadata"]["name"]: rule for rule in of_kind(built[environment], "PrometheusRule")
    }
    assert set(deployed) == set(generated)
    for name, rule in deployed.items():
        assert rule["spec"] == generated[name]["spec"]
        assert rule["metadata"]["labels"].items() >= generated[name]["metadata"]["labels"].items()


# --- Environments ------------------------------------------------------------------------------


def identity(doc: Doc) -> tuple[str, str | None, str]:
    name = doc["metadata"]["name"]
    if doc["kind"] == "ConfigMap" and name.startswith("fleet-redis-config-"):
        name = "fleet-redis-config"  # content hash suffix
    return doc["kind"], doc["metadata"].get("namespace"), name


def test_staging_and_production_deploy_the_same_resources_labelled_with_their_environment(
    built: dict[str, list[Doc]],
) -> None:
    assert sorted(map(identity, built["staging"])) == sorted(map(identity, built["production"]))
    for environment in ENVIRONMENTS:
        unlabelled = [
            identity(d)
            for d in built[environment]
            if d["metadata"]["labels"].get("environment") != environment
        ]
        assert unlabelled == []


def test_production_is_sized_above_staging(built: dict[str, list[Doc]]) -> None:
    staging, production = built["staging"], built["production"]

    def memory_limit(spec: Doc) -> float:
        return amount(spec["resources"]["limits"]["memory"])

    pg_staging, pg_production = postgres(staging)["spec"], postgres(production)["spec"]
    assert (pg_staging["instances"], pg_production["instances"]) == (1, 3)
    assert pg_staging["enablePDB"] is False, "one instance with a PDB blocks every node drain"
    assert "enablePDB" not in pg_production
    assert pg_production["affinity"]["podAntiAffinityType"] == "required"
    assert memory_limit(pg_production) > memory_limit(pg_staging)
    for volume in ("storage", "walStorage"):
        assert amount(pg_production[volume]["size"]) > amount(pg_staging[volume]["size"])
    for parameter in ("max_connections", "shared_buffers", "effective_cache_size"):
        assert amount(pg_production["postgresql"]["parameters"][parameter]) > amount(
            pg_staging["postgresql"]["parameters"][parameter]
        )
    assert min(r["connectionLimit"] for r in pg_production["managed"]["roles"]) > max(
        r["connectionLimit"] for r in pg_staging["managed"]["roles"]
    )

    mq_staging, mq_production = rabbitmq(staging)["spec"], rabbitmq(production)["spec"]
    assert mq_staging["replicas"] == mq_production["replicas"] == 3
    assert memory_limit(mq_production) > memory_limit(mq_staging)
    assert amount(mq_production["persistence"]["storage"]) > amount(
        mq_staging["persistence"]["storage"]
    )

    redis_staging = container(redis(staging)["spec"]["template"]["spec"], "redis")
    redis_production = container(redis(production)["spec"]["template"]["spec"], "redis")
    assert memory_limit(redis_production) > memory_limit(redis_staging)


# --- Images and documentation ------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_image_is_pinned_to_an_exact_version(
    built: dict[str, list[Doc]], environment: str
) -> None:
    docs = built[environment]
    images = [rabbitmq(docs)["spec"]["image"]]
    images += [c["image"] for c in redis(docs)["spec"]["template"]["spec"]["containers"]]
    for image in images:
        assert EXACT_VERSION_TAG.search(image), image
    # Postgres releases are MAJOR.MINOR; CloudNativePG suffixes the image flavour and its OS.
    postgres_version = re.search(
        r":(\d+)\.\d+(-[a-z]+-[a-z]+)?$", postgres(docs)["spec"]["imageName"]
    )
    assert postgres_version, postgres(docs)["spec"]["imageName"]
    assert int(postgres_version[1]) >= 15


HELM_CHARTS = (
    "prometheus-community/kube-prometheus-stack",
    "jetstack/cert-manager",
    "external-secrets/external-secrets",
    "kedacore/keda",
    "argo/argo-rollouts",
    "ingress-nginx/ingress-nginx",
)


def test_readme_installs_every_operator_at_a_pinned_version() -> None:
    text = README.read_text(encoding="utf-8")
    commands = re.sub(r"\\\n\s*", "", text)  # join continued shell lines
    installs = [line for line in commands.splitlines() if "helm upgrade --install" in line]
    for chart in HELM_CHARTS:
        (line,) = [line for line in installs if f" {chart} " in f"{line} "]
        assert re.search(r"--version v?\d+\.\d+\.\d+(\s|$)", line), line
    assert re.search(r"releases/cnpg-\d+\.\d+\.\d+\.yaml", commands)
    assert re.search(
        r"cluster-operator/releases/download/v\d+\.\d+\.\d+/cluster-operator\.yml", commands
    )
    assert "latest" not in " ".join(line for line in commands.splitlines() if "http" in line)
    for environment in ENVIRONMENTS:
        assert f"kubectl apply -k deploy/k8s/overlays/{environment}" in text
