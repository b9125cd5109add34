from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from auth.settings import AuthSettings


def test_the_default_admin_password_is_refused_outside_local_and_test() -> None:
    with pytest.raises(ValidationError, match="FLEET_ADMIN_PASSWORD"):
        AuthSettings(_env_file=None, fleet_env="production")


@pytest.mark.parametrize("client", ["gateway", "orders", "worker"])
def test_a_default_service_client_secret_is_refused_outside_local_and_test(client: str) -> None:
    secrets: dict[str, Any] = {
        "gateway_client_secret": "the-gateways-secret-from-the-vault",
        "orders_client_secret": "orders-secret-from-the-vault",
        "worker_client_secret": "the-workers-secret-from-the-vault",
    }
    del secrets[f"{client}_client_secret"]
    with pytest.raises(ValidationError, match=f"{client.upper()}_CLIENT_SECRET"):
        AuthSettings(_env_file=None, fleet_env="production", fleet_admin_password="real", **secrets)


def test_a_real_admin_password_is_accepted_in_production() -> None:
    settings = AuthSettings(
        _env_file=None,
        fleet_env="production",
        fleet_admin_password="a-real-secret-from-the-vault",
        gateway_client_secret="the-gateways-secret-from-the-vault",
        orders_client_secret="orders-secret-from-the-vault",
        worker_client_secret="the-workers-secret-from-the-vault",
    )

    assert settings.port == 8001
    assert settings.access_token_ttl_seconds == 900
    assert settings.refresh_token_ttl_seconds == 30 * 24 * 3600
