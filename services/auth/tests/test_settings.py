from __future__ import annotations

import pytest
from pydantic import ValidationError

from auth.settings import AuthSettings


def test_the_default_admin_password_is_refused_outside_local_and_test() -> None:
    with pytest.raises(ValidationError, match="FLEET_ADMIN_PASSWORD"):
        AuthSettings(_env_file=None, fleet_env="production")


def test_a_real_admin_password_is_accepted_in_production() -> None:
    settings = AuthSettings(
        _env_file=None,
        fleet_env="production",
        fleet_admin_password="a-real-secret-from-the-vault",
    )

    assert settings.port == 8001
    assert settings.access_token_ttl_seconds == 900
    assert settings.refresh_token_ttl_seconds == 30 * 24 * 3600
