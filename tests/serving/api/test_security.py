"""Keys stored hashed, scopes, production refusal of development secrets, pseudonyms, `riskgate api-key`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import ApiKey, get_settings
from riskgate.cli import app
from serving.api.security import KeyRing, Scope, check_production_secrets, hash_key
from serving.api.service import build_service
from serving.errors import ConfigurationError, ForbiddenError, UnauthenticatedError
from serving.store.pseudonyms import Pseudonymiser
from tests.serving.factories import settings_for


def test_the_api_key_command_prints_a_key_whose_hash_it_prints() -> None:
    result = CliRunner().invoke(app, ["api-key", "billing-eu", "--scope", "score", "--scope", "admin"])
    assert result.exit_code == 0, result.output
    key = result.output.split("): ")[1].split()[0]
    entry = json.loads(result.output.split("RISKGATE_API_KEYS entry: ")[1])
    assert entry == {"name": "billing-eu", "sha256": hash_key(key), "scopes": ["admin", "score"]}
    ring = KeyRing([ApiKey.model_validate(entry)])
    assert ring.authenticate(key).scopes == frozenset({"admin", "score"})
    assert CliRunner().invoke(app, ["api-key", "x", "--scope", "root"]).exit_code == 2


def test_keyring_refuses_missing_wrong_and_out_of_scope_keys() -> None:
    ring = KeyRing([ApiKey(name="billing", sha256=hash_key("k1"), scopes=frozenset({"score"}))])
    with pytest.raises(UnauthenticatedError, match="missing"):
        ring.authenticate(None)
    with pytest.raises(UnauthenticatedError, match="invalid"):
        ring.authenticate("k2")
    with pytest.raises(ForbiddenError, match="admin"):
        ring.authorize(ring.authenticate("k1"), Scope.ADMIN)


def test_production_refuses_development_keys_and_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="development key"):
        build_service(settings_for(tmp_path, environment="production"))
    own = (ApiKey(name="ops", sha256=hash_key("secret-admin"), scopes=frozenset({"score", "admin"})),)
    with pytest.raises(ConfigurationError, match="PSEUDONYM_SECRET"):
        check_production_secrets(settings_for(tmp_path, environment="production", api_keys=own))
    scoring_only = (ApiKey(name="billing", sha256=hash_key("s"), scopes=frozenset({"score"})),)
    with pytest.raises(ConfigurationError, match="admin"):
        check_production_secrets(
            settings_for(tmp_path, environment="production", api_keys=scoring_only, pseudonym_secret="x" * 40)
        )
    check_production_secrets(
        settings_for(tmp_path, environment="production", api_keys=own, pseudonym_secret="y" * 40)
    )


def test_pseudonyms_are_stable_keyed_and_not_the_id() -> None:
    first, other = Pseudonymiser("secret-1"), Pseudonymiser("secret-2")
    assert first("acc-1") == first("acc-1") != first("acc-2")
    assert first("acc-1") != other("acc-1")
    assert "acc-1" not in (first("acc-1") or "")
    assert first(None) is None


def test_the_serve_command_refuses_an_unsafe_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RISKGATE_ENVIRONMENT", "production")
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "development key" in result.output
