"""CI's kind cluster (deploy/ci, the `kind` job of .github/workflows/ci.yml), checked offline.

The job cannot run here (no Kubernetes), so what it applies is checked the way the other
manifests are: the kind config; the cluster resources (`kubectl apply -k deploy/ci/kind`, the
staging overlay shrunk) built with the pinned kustomize and validated against their schemas; the
secret store deploy/ci/kind_secrets.py generates, which must hold every entry that the chart
(values-staging.yaml + values-kind.yaml) and the cluster resources read, with the data services'
passwords inside the services' URLs and addresses of Services the cluster has; and the
NetworkPolicies of both, which kind's CNI enforces: every service reaches what it needs there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python
import pytest
import yaml
from deploy_support import build_charts, kustomize_build, render_chart, validate_manifests
from kind_support import KIND_DIR, KIND_SECRETS, KIND_VALUES, ROOT, kind_secrets, layered_values
from network_policy_eval import Endpoint, connection_allowed

from auth.keyfiles import KID_PATTERN
from auth.keyring import KeyRing
from auth.settings import AuthSettings
from catalog.settings import CatalogSettings
from chassis.settings import ServiceSettings
from gateway.settings import GatewaySettings
from orders.settings import OrdersSettings
from worker.settings import WorkerSettings

Doc = dict[str, Any]
Entries = dict[str, dict[str, str]]

SETTINGS: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "auth": AuthSettings,
    "catalog": CatalogSettings,
    "orders": OrdersSettings,
    "worker": WorkerSettings,
}
SERVICES = tuple(SETTINGS)
SECRET_KEYS = (
    "DATABASE_URL",
    "AMQP_URL",
    "REDIS_URL",
    "SMTP_URL",
    "FLEET_ADMIN_PASSWORD",
    "SERVICE_CLIENT_SECRET",
    "GATEWAY_CLIENT_SECRET",
    "ORDERS_CLIENT_SECRET",
    "WORKER_CLIENT_SECRET",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
)
FLEET, DATA = "fleet", "fleet-data"
STAGING_OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "staging"


# --- what the job applies ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_docs() -> list[Doc]:
    """`kubectl apply -k deploy/ci/kind`, as the pinned kustomize builds it."""
    return kustomize_build(KIND_DIR)


@pytest.fixture(scope="module")
def fleet_docs(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    """The umbrella chart as the job installs it (the image tag is the job's commit)."""
    charts = build_charts(tmp_path_factory.mktemp("helm"))
    values = layered_values(*KIND_VALUES)
    values["global"]["imageTag"] = "0" * 40
    with helm_python.Chart.load(charts / "fleet") as chart:
        docs = render_chart(chart, values, release="fleet", namespace=FLEET)
    for doc in docs:
        doc["metadata"].setdefault("namespace", FLEET)
    return docs


def fixed_password() -> Iterator[str]:
    for number in range(1, 1000):
        yield f"{number:048x}"


@pytest.fixture(scope="module")
def entries() -> Entries:
    """The store's entries, with recognisable passwords and a fresh signing key."""
    module = kind_secrets()
    passwords = fixed_password()
    result: Entries = module.entries(password=lambda: next(passwords))
    return result


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    (found,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return found


# --- the kind cluster --------------------------------------------------------------------------


def test_the_kind_cluster_has_a_control_plane_and_workers_in_two_zones() -> None:
    config = yaml.safe_load((KIND_DIR / "cluster.yaml").read_text(encoding="utf-8"))
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1
    workers = [node for node in config["nodes"] if node["role"] == "worker"]
    zones = {node["labels"]["topology.kubernetes.io/zone"] for node in workers}
    assert len(workers) >= 2
    assert len(zones) == 2
    # One Kubernetes version for every node: the job's pinned node image, not one per node.
    assert all("image" not in node for node in config["nodes"])


# --- the cluster resources ---------------------------------------------------------------------


def test_every_cluster_resource_of_the_kind_cluster_is_valid(cluster_docs: list[Doc]) -> None:
    assert validate_manifests(cluster_docs) == []


def test_the_kind_cluster_runs_stagings_resources_with_one_broker_and_a_mail_sink(
    cluster_docs: list[Doc],
) -> None:
    staging = kustomize_build(STAGING_OVERLAY)

    def names(docs: list[Doc]) -> set[tuple[str, str, str]]:
        return {
            (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in docs
        }

    added = names(cluster_docs) - names(staging)
    assert names(staging) <= names(cluster_docs)
    assert added == {
        ("Namespace", "", "monitoring"),
        ("Deployment", DATA, "mailpit"),
        ("Service", DATA, "mailpit"),
        ("NetworkPolicy", DATA, "mailpit"),
    }
    assert one(cluster_docs, "Cluster", "fleet-db")["spec"]["instances"] == 1
    assert one(cluster_docs, "RabbitmqCluster", "fleet-rabbitmq")["spec"]["replicas"] == 1
    # The roles, schemas and the ExternalSecrets are staging's, unchanged.
    for kind in ("ExternalSecret", "StatefulSet"):
        assert of_kind(cluster_docs, kind) == of_kind(staging, kind), kind
    assert (
        one(cluster_docs, "Cluster", "fleet-db")["spec"]["managed"]
        == (one(staging, "Cluster", "fleet-db")["spec"]["managed"])
    )


def test_the_mail_sink_runs_under_the_restricted_pod_security_standard(
    cluster_docs: list[Doc],
) -> None:
    pod = one(cluster_docs, "Deployment", "mailpit")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert re.search(r":v\d+\.\d+\.\d+$", container["image"]), container["image"]


# --- the secret store --------------------------------------------------------------------------


def test_the_generated_store_is_a_valid_cluster_secret_store_named_as_the_charts_expect(
    entries: Entries, fleet_docs: list[Doc], cluster_docs: list[Doc]
) -> None:
    store = kind_secrets().secret_store(entries)
    assert validate_manifests([store]) == []
    references = [
        d["spec"]["secretStoreRef"] for d in of_kind(fleet_docs + cluster_docs, "ExternalSecret")
    ]
    assert references
    assert {(r["kind"], r["name"]) for r in references} == {
        ("ClusterSecretStore", store["metadata"]["name"])
    }
    served = {
        item["key"]: json.loads(item["value"]) for item in store["spec"]["provider"]["fake"]["data"]
    }
    assert served == entries


def test_the_store_holds_every_entry_and_property_the_kind_cluster_reads(
    entries: Entries, fleet_docs: list[Doc], cluster_docs: list[Doc]
) -> None:
    read: set[str] = set()
    for external in of_kind(fleet_docs + cluster_docs, "ExternalSecret"):
        for source in external["spec"].get("dataFrom", []):
            key = source["extract"]["key"]
            assert entries.get(key), f"{external['metadata']['name']}: no entry {key}"
            read.add(key)
        for item in external["spec"].get("data", []):
            ref = item["remoteRef"]
            assert ref["property"] in entries.get(ref["key"], {}), (
                f"{external['metadata']['name']}: no {ref['key']} {ref['property']}"
            )
            read.add(ref["key"])
    assert read == set(entries)  # and nothing nobody reads


def test_each_service_entry_holds_exactly_the_secrets_its_settings_read(entries: Entries) -> None:
    environment = kind_secrets().ENVIRONMENT
    assert environment == layered_values(*KIND_VALUES)["global"]["environment"]
    for service, settings in SETTINGS.items():
        expected = {key for key in SECRET_KEYS if key.lower() in settings.model_fields}
        assert set(entries[f"fleet/{environment}/{service}"]) == expected, service
        # The service accepts them outside local development (no default secret, readable URLs).
        fields = {
            key.lower(): value for key, value in entries[f"fleet/{environment}/{service}"].items()
        }
        settings.model_validate({**fields, "fleet_env": environment})


def test_the_service_urls_carry_the_data_services_passwords(entries: Entries) -> None:
    prefix = f"fleet/{kind_secrets().ENVIRONMENT}"
    rabbitmq, redis = entries[f"{prefix}/rabbitmq"], entries[f"{prefix}/redis"]
    for service in ("auth", "catalog", "orders", "worker"):
        env = entries[f"{prefix}/{service}"]
        database = urlsplit(env["DATABASE_URL"])
        assert database.username == f"fleet_{service}"
        assert database.password == entries[f"{prefix}/postgres/{service}"]["password"]
        assert database.path == "/fleet"
        broker = urlsplit(env["AMQP_URL"])
        assert (broker.username, broker.password) == (rabbitmq["username"], rabbitmq["password"])
    for service in ("gateway", "catalog"):
        assert urlsplit(entries[f"{prefix}/{service}"]["REDIS_URL"]).password == redis["password"]
    passwords = [entries[f"{prefix}/postgres/{s}"]["password"] for s in ("auth", "catalog")]
    assert len(set(passwords)) == 2  # one per role


def test_the_service_urls_name_services_of_the_kind_cluster(
    entries: Entries, cluster_docs: list[Doc]
) -> None:
    services = {
        f"{d['metadata']['name']}.{d['metadata']['namespace']}.svc": {
            port["port"] for port in d["spec"]["ports"]
        }
        for d in of_kind(cluster_docs, "Service")
    }
    # The operators' Services: CloudNativePG's read-write one, the RabbitMQ operator's.
    postgres = one(cluster_docs, "Cluster", "fleet-db")["metadata"]
    services[f"{postgres['name']}-rw.{postgres['namespace']}.svc"] = {5432}
    broker = one(cluster_docs, "RabbitmqCluster", "fleet-rabbitmq")["metadata"]
    services[f"{broker['name']}.{broker['namespace']}.svc"] = {5672}
    urls = [
        value
        for properties in entries.values()
        for key, value in properties.items()
        if key.endswith("_URL")
    ]
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert parts.hostname in services, url
        assert parts.port in services[str(parts.hostname)], url


def test_the_signing_key_is_one_auth_loads(entries: Entries, tmp_path: Path) -> None:
    (properties,) = [p for key, p in entries.items() if key.endswith("/auth/jwt-keys")]
    ((name, pem),) = properties.items()
    kid = name.removesuffix(".pem")
    assert KID_PATTERN.match(kid)
    (tmp_path / name).write_text(pem, encoding="utf-8")
    ring = KeyRing.load(tmp_path)
    assert ring.kids == [kid]
    assert ring.jwks()["keys"][0]["kid"] == kid


def test_the_script_prints_a_store_with_new_credentials_on_every_run() -> None:
    def run() -> Doc:
        completed = subprocess.run(
            [sys.executable, str(KIND_SECRETS)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        printed: Doc = json.loads(completed.stdout)
        return printed

    first, second = run(), run()
    assert first["kind"] == "ClusterSecretStore"

    def values(store: Doc) -> dict[str, str]:
        return {item["key"]: item["value"] for item in store["spec"]["provider"]["fake"]["data"]}

    assert values(first).keys() == values(second).keys()
    changed = {key for key in values(first) if values(first)[key] != values(second)[key]}
    assert changed == set(values(first))  # every entry holds something new
    refused = subprocess.run(
        [sys.executable, str(KIND_SECRETS), "--help"], capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2
    assert refused.stdout == ""


# --- the network policies, enforced by kind's CNI ----------------------------------------------


def endpoint(name: str, namespace: str, labels: dict[str, str], ip: str) -> Endpoint:
    return Endpoint(
        name=name,
        ip=ip,
        namespace=namespace,
        namespace_labels={"kubernetes.io/metadata.name": namespace},
        labels=labels,
    )


@pytest.fixture(scope="module")
def policies(fleet_docs: list[Doc], cluster_docs: list[Doc]) -> list[Doc]:
    return of_kind(fleet_docs + cluster_docs, "NetworkPolicy")


@pytest.fixture(scope="module")
def pods(fleet_docs: list[Doc], cluster_docs: list[Doc]) -> dict[str, Endpoint]:
    found = {
        doc["metadata"]["name"]: endpoint(
            doc["metadata"]["name"], FLEET, doc["spec"]["template"]["metadata"]["labels"], ip
        )
        for doc, ip in zip(
            of_kind(fleet_docs, "Rollout"), (f"10.244.1.{i}" for i in range(1, 9)), strict=False
        )
    }
    assert set(found) == set(SERVICES)
    sink = one(cluster_docs, "Deployment", "mailpit")["spec"]["template"]["metadata"]["labels"]
    found["mailpit"] = endpoint("mailpit", DATA, sink, "10.244.2.1")
    found["postgres"] = endpoint(
        "postgres",
        DATA,
        {"cnpg.io/cluster": "fleet-db", "cnpg.io/podRole": "instance"},
        "10.244.2.2",
    )
    found["rabbitmq"] = endpoint(
        "rabbitmq", DATA, {"app.kubernetes.io/name": "fleet-rabbitmq"}, "10.244.2.3"
    )
    redis = one(cluster_docs, "StatefulSet", "fleet-redis")["spec"]["template"]["metadata"]
    found["redis"] = endpoint("redis", DATA, redis["labels"], "10.244.2.4")
    return found


@pytest.mark.parametrize(
    ("target", "port", "clients"),
    [
        ("postgres", 5432, {"auth", "catalog", "orders", "worker"}),
        ("rabbitmq", 5672, {"auth", "catalog", "orders", "worker"}),
        ("redis", 6379, {"gateway", "catalog"}),
        ("mailpit", 1025, {"worker"}),
    ],
)
def test_exactly_the_services_that_use_a_data_service_reach_it_in_the_kind_cluster(
    policies: list[Doc], pods: dict[str, Endpoint], target: str, port: int, clients: set[str]
) -> None:
    reaching = {s for s in SERVICES if connection_allowed(policies, pods[s], pods[target], port)}
    assert reaching == clients


def test_each_callers_client_secret_is_the_one_auth_holds_for_it(entries: Entries) -> None:
    prefix = f"fleet/{kind_secrets().ENVIRONMENT}"
    auth = entries[f"{prefix}/auth"]
    for caller in kind_secrets().SERVICE_CLIENTS:
        assert (
            entries[f"{prefix}/{caller}"]["SERVICE_CLIENT_SECRET"]
            == auth[f"{caller.upper()}_CLIENT_SECRET"]
        ), caller
