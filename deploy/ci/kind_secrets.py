#!/usr/bin/env python3
"""The secret store of CI's kind cluster, with credentials made up for the run.

    python3 deploy/ci/kind_secrets.py > "$RUNNER_TEMP/fleet-secrets.json"
    kubectl apply -f "$RUNNER_TEMP/fleet-secrets.json"

Prints a ClusterSecretStore `fleet-secrets` of External Secrets' `fake` provider holding every
entry the cluster's ExternalSecrets read (the table of docs/deploy.md, section 2): each service's
environment (`fleet/staging/<svc>`), auth's JWT signing key (`fleet/staging/auth/jwt-keys`), and
the data services' passwords (`fleet/staging/postgres/<svc>`, `fleet/staging/rabbitmq`,
`fleet/staging/redis`). So the charts and deploy/k8s read their secrets in CI exactly as in
staging (ExternalSecret -> Secret), only the store behind `fleet-secrets` differs. The
service URLs carry the same passwords as the data services' entries, as the guide requires.

Every password is new on each run (`secrets.token_hex`) and the signing key is a fresh Ed25519
key (`openssl genpkey`), so nothing secret is committed. The kind cluster lives as long as the CI
job; the smoke test reads the admin password back from the Secret auth got (`auth-env`).

Standard library and `openssl` only: it runs on the runner's python3, outside the repository's
virtual environment. deploy/tests/test_kind_cluster.py checks that the store holds what every
ExternalSecret of the CI cluster reads.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# The environment the CI cluster plays: values-staging.yaml's global.environment and the label of
# the staging overlay that deploy/ci/kind builds on. Every remote key starts with fleet/<it>/.
ENVIRONMENT = "staging"
STORE = "fleet-secrets"
DATABASE_SERVICES = ("auth", "catalog", "orders", "worker")
RABBITMQ_USER = "fleet"
ADMIN_PASSWORD_PROPERTY = "FLEET_ADMIN_PASSWORD"  # noqa: S105 - the name of a property

# Where the services find the data services: the Services of deploy/k8s (CloudNativePG's
# read-write Service of the cluster `fleet-db`, the RabbitMQ operator's of `fleet-rabbitmq`,
# `fleet-redis`) and CI's mail sink (deploy/ci/kind/mailpit.yaml).
POSTGRES_ADDRESS = "fleet-db-rw.fleet-data.svc:5432"
DATABASE = "fleet"
RABBITMQ_ADDRESS = "fleet-rabbitmq.fleet-data.svc:5672"
REDIS_ADDRESS = "fleet-redis.fleet-data.svc:6379"
SMTP_URL = "smtp://mailpit.fleet-data.svc:1025"
# The services that call others with a service token (auth.service_clients.CALLEES).
SERVICE_CLIENTS = ("gateway", "orders", "worker")

Entries = dict[str, dict[str, str]]


def new_password() -> str:
    """48 hexadecimal characters: safe inside URLs and the data services' configuration files."""
    return secrets.token_hex(24)


def new_signing_key(now: datetime | None = None) -> tuple[str, str]:
    """(kid, PKCS#8 PEM) of a new Ed25519 key, the kid named as `auth keys rotate` names it."""
    kid = (now or datetime.now(UTC)).astimezone(UTC).strftime("k%Y%m%dT%H%M%SZ")
    pem = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519"],  # noqa: S607 - the runner's openssl
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return kid, pem


def entries(
    password: Callable[[], str] = new_password,
    signing_key: tuple[str, str] | None = None,
    environment: str = ENVIRONMENT,
) -> Entries:
    """Remote key -> properties of every entry the CI cluster reads."""
    kid, pem = signing_key or new_signing_key()
    database = {service: password() for service in DATABASE_SERVICES}
    rabbitmq = password()
    redis = password()
    amqp_url = f"amqp://{RABBITMQ_USER}:{rabbitmq}@{RABBITMQ_ADDRESS}/"
    redis_url = f"redis://:{redis}@{REDIS_ADDRESS}/0"

    def database_url(service: str) -> str:
        role = f"fleet_{service}"
        return f"postgresql+asyncpg://{role}:{database[service]}@{POSTGRES_ADDRESS}/{DATABASE}"

    # Each caller's client secret at auth: the caller's SERVICE_CLIENT_SECRET, auth's
    # <CALLER>_CLIENT_SECRET (chassis.service_tokens).
    client = {caller: password() for caller in SERVICE_CLIENTS}
    prefix = f"fleet/{environment}"
    found: Entries = {
        f"{prefix}/gateway": {"REDIS_URL": redis_url, "SERVICE_CLIENT_SECRET": client["gateway"]},
        f"{prefix}/auth": {
            "DATABASE_URL": database_url("auth"),
            "AMQP_URL": amqp_url,
            ADMIN_PASSWORD_PROPERTY: password(),
            **{f"{caller.upper()}_CLIENT_SECRET": client[caller] for caller in SERVICE_CLIENTS},
        },
        f"{prefix}/auth/jwt-keys": {f"{kid}.pem": pem},
        f"{prefix}/catalog": {
            "DATABASE_URL": database_url("catalog"),
            "AMQP_URL": amqp_url,
            "REDIS_URL": redis_url,
        },
        f"{prefix}/orders": {
            "DATABASE_URL": database_url("orders"),
            "AMQP_URL": amqp_url,
            "SERVICE_CLIENT_SECRET": client["orders"],
        },
        f"{prefix}/worker": {
            "DATABASE_URL": database_url("worker"),
            "AMQP_URL": amqp_url,
            "SMTP_URL": SMTP_URL,
            # The keys of its bucket (exports, reports).
            "S3_ACCESS_KEY_ID": f"fleet-worker-{password()[:16]}",
            "S3_SECRET_ACCESS_KEY": password(),
            "SERVICE_CLIENT_SECRET": client["worker"],
        },
        f"{prefix}/rabbitmq": {"username": RABBITMQ_USER, "password": rabbitmq},
        f"{prefix}/redis": {"password": redis},
    }
    for service in DATABASE_SERVICES:
        found[f"{prefix}/postgres/{service}"] = {"password": database[service]}
    return found


def secret_store(store_entries: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The ClusterSecretStore serving the entries. The fake provider answers `dataFrom.extract`
    with the properties of a JSON object value, and `remoteRef.property` with one of them."""
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {
            "name": STORE,
            "labels": {"app.kubernetes.io/part-of": "fleet", "environment": ENVIRONMENT},
        },
        "spec": {
            "provider": {
                "fake": {
                    "data": [
                        {"key": key, "value": json.dumps(dict(properties), sort_keys=True)}
                        for key, properties in sorted(store_entries.items())
                    ]
                }
            }
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(secret_store(entries()), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
