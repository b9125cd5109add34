"""The charts' NetworkPolicies and the cluster's (deploy/k8s) agree on every path between them.

The service charts restrict each pod's egress; deploy/k8s restricts ingress into the data
namespace. Each side is tested on its own elsewhere; here both production renders are evaluated
together, so a renamed label, namespace or port on one side (which would leave a service unable to
reach its database in a real cluster) fails a test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import helm_python
import pytest
import yaml
from deploy_support import ROOT, build_charts, kustomize_build, render_chart
from network_policy_eval import Endpoint, connection_allowed

Doc = dict[str, Any]
FLEET, DATA = "fleet", "fleet-data"
POSTGRES, AMQP, REDIS = 5432, 5672, 6379
USES_POSTGRES = ("auth", "catalog", "orders", "worker")
USES_BROKER = ("auth", "catalog", "orders", "worker")
USES_REDIS = ("gateway", "catalog")
SERVICES = ("gateway", "auth", "catalog", "orders", "worker")


@pytest.fixture(scope="module")
def fleet_docs(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    charts = build_charts(tmp_path_factory.mktemp("helm"))
    values = yaml.safe_load((ROOT / "deploy/helm/fleet/values-production.yaml").read_text())
    with helm_python.Chart.load(charts / "fleet") as chart:
        return render_chart(chart, values, release="fleet", namespace=FLEET)


@pytest.fixture(scope="module")
def data_docs() -> list[Doc]:
    return kustomize_build(ROOT / "deploy/k8s/overlays/production")


@pytest.fixture(scope="module")
def policies(fleet_docs: list[Doc], data_docs: list[Doc]) -> list[Doc]:
    found = [doc for doc in fleet_docs + data_docs if doc["kind"] == "NetworkPolicy"]
    for doc in found:
        doc["metadata"].setdefault("namespace", FLEET)  # rendered into the release namespace
    return found


def _pod(name: str, namespace: str, labels: Mapping[str, str], ip: str) -> Endpoint:
    return Endpoint(
        name=name,
        ip=ip,
        namespace=namespace,
        namespace_labels={"kubernetes.io/metadata.name": namespace},
        labels=dict(labels),
    )


def _pod_templates(docs: list[Doc], *kinds: str) -> Iterator[tuple[Doc, Doc]]:
    for doc in docs:
        if doc["kind"] in kinds:
            yield doc, doc["spec"]["template"]


@pytest.fixture(scope="module")
def servers(fleet_docs: list[Doc]) -> dict[str, Endpoint]:
    """The pods serving each service (Rollout in production), by service name."""
    pods = {
        doc["metadata"]["name"]: _pod(doc["metadata"]["name"], FLEET, tpl["metadata"]["labels"], ip)
        for (doc, tpl), ip in zip(
            _pod_templates(fleet_docs, "Rollout", "Deployment"),
            (f"10.1.0.{i}" for i in range(1, 50)),
            strict=False,
        )
    }
    assert set(pods) == set(SERVICES)
    return pods


@pytest.fixture(scope="module")
def migrations(fleet_docs: list[Doc]) -> dict[str, Endpoint]:
    """The migration hook Job's pod of each database service."""
    jobs: dict[str, Endpoint] = {}
    for index, (doc, tpl) in enumerate(_pod_templates(fleet_docs, "Job")):
        labels = tpl["metadata"]["labels"]
        jobs[labels["app.kubernetes.io/name"]] = _pod(
            doc["metadata"]["name"], FLEET, labels, f"10.1.1.{index + 1}"
        )
    assert set(jobs) == set(USES_POSTGRES)
    return jobs


def _postgres_pod(cluster: str) -> Endpoint:
    labels = {"cnpg.io/cluster": cluster, "cnpg.io/podRole": "instance"}
    return _pod("postgres", DATA, labels, "10.2.0.1")


def _named(docs: list[Doc], kind: str) -> Doc:
    (doc,) = [doc for doc in docs if doc["kind"] == kind]
    return doc


@pytest.fixture(scope="module")
def data(data_docs: list[Doc]) -> dict[str, Endpoint]:
    """The data pods with the labels their operators (or the StatefulSet) give them."""
    cluster = _named(data_docs, "Cluster")["metadata"]["name"]
    broker = _named(data_docs, "RabbitmqCluster")["metadata"]["name"]
    (redis,) = [
        tpl
        for doc, tpl in _pod_templates(data_docs, "StatefulSet")
        if "redis" in doc["metadata"]["name"]
    ]
    return {
        # CloudNativePG labels every instance pod with its cluster's name and role.
        "postgres": _pod(
            "postgres",
            DATA,
            {"cnpg.io/cluster": cluster, "cnpg.io/podRole": "instance"},
            "10.2.0.1",
        ),
        # The RabbitMQ cluster operator labels node pods with the cluster's name.
        "rabbitmq": _pod(
            "rabbitmq",
            DATA,
            {
                "app.kubernetes.io/name": broker,
                "app.kubernetes.io/component": "rabbitmq",
                "app.kubernetes.io/part-of": "rabbitmq",
            },
            "10.2.0.2",
        ),
        "redis": _pod("redis", DATA, redis["metadata"]["labels"], "10.2.0.3"),
    }


def test_database_services_and_their_migrations_reach_postgres(
    policies: list[Doc],
    servers: dict[str, Endpoint],
    migrations: dict[str, Endpoint],
    data: dict[str, Endpoint],
) -> None:
    for service in USES_POSTGRES:
        assert connection_allowed(policies, servers[service], data["postgres"], POSTGRES), service
        assert connection_allowed(policies, migrations[service], data["postgres"], POSTGRES), (
            service
        )
    assert not connection_allowed(policies, servers["gateway"], data["postgres"], POSTGRES)


def test_event_producers_and_consumers_reach_the_broker_and_the_gateway_does_not(
    policies: list[Doc], servers: dict[str, Endpoint], data: dict[str, Endpoint]
) -> None:
    for service in USES_BROKER:
        assert connection_allowed(policies, servers[service], data["rabbitmq"], AMQP), service
    assert not connection_allowed(policies, servers["gateway"], data["rabbitmq"], AMQP)


def test_only_the_gateway_and_catalog_reach_redis(
    policies: list[Doc], servers: dict[str, Endpoint], data: dict[str, Endpoint]
) -> None:
    for service in SERVICES:
        allowed = connection_allowed(policies, servers[service], data["redis"], REDIS)
        assert allowed == (service in USES_REDIS), service


def test_keda_reads_the_worker_queue_depth_from_the_broker(
    policies: list[Doc], data: dict[str, Endpoint]
) -> None:
    keda = _pod(
        "keda-operator",
        "keda",
        {"app": "keda-operator", "app.kubernetes.io/name": "keda-operator"},
        "10.3.0.1",
    )
    assert connection_allowed(policies, keda, data["rabbitmq"], AMQP)


def test_pods_of_other_namespaces_reach_no_data_service(
    policies: list[Doc], servers: dict[str, Endpoint], data: dict[str, Endpoint]
) -> None:
    labels = servers["orders"].labels  # even with a service's labels
    stranger = _pod("stranger", "default", labels, "10.4.0.1")
    for name, port in (("postgres", POSTGRES), ("rabbitmq", AMQP), ("redis", REDIS)):
        assert not connection_allowed(policies, stranger, data[name], port), name


def test_a_renamed_database_cluster_is_caught(
    policies: list[Doc], servers: dict[str, Endpoint]
) -> None:
    renamed = _pod(
        "postgres",
        DATA,
        {"cnpg.io/cluster": "fleet-db-2", "cnpg.io/podRole": "instance"},
        "10.2.0.9",
    )
    assert not connection_allowed(policies, servers["orders"], renamed, POSTGRES)
