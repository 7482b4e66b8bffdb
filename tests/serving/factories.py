"""Test data for the service: attempts, small real LightGBM bundles on the real feature set, a service."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._models import register_pyfunc
from core.settings import Settings
from events.schema import ExtensionField, FieldType
from features.iptv import FEATURE_SET
from recovery.learned import RetryModel
from registry.bundle import ModelBundle
from registry.loader import RETRY_KIND, RegistryLoader, bundle_kind
from registry.names import RETRY_MODEL_NAME
from serving.api.service import Service, build_service

SCORE_KEY = "rg-dev-score-key"
ADMIN_KEY = "rg-dev-admin-key"
SCORE = {"X-API-Key": SCORE_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

#: The IPTV set carrying a provider's own fields (its features do not read them: they are carried and logged).
ATTRIBUTE_SET = replace(
    FEATURE_SET,
    fields=(
        ExtensionField("terminal_id", FieldType.KEY, "The merchant terminal."),
        ExtensionField("channel", FieldType.CATEGORY, "The sales channel.", values=("web", "app")),
        ExtensionField("basket_items", FieldType.NUMBER, "Items in the basket."),
        ExtensionField("opened_at", FieldType.TIME, "When the customer's account was opened."),
    ),
)
ATTRIBUTE_SET_SPEC = "tests.serving.factories:ATTRIBUTE_SET"


def attempt(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid attempt body (JSON-ready), the n-th of a small world of accounts and cards."""
    body: dict[str, Any] = {
        "attempt_id": f"att-{n:06d}",
        "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
        "account_id": f"acc-{n % 7}",
        "kind": "renewal",
        "plan_tier": "standard",
        "plan_period": "monthly",
        "amount": 14.99,
        "currency": "EUR",
        "payment_method_id": f"pm_tok_{n % 5}",
        "method_type": "card",
        "card_bin": "411111",
        "card_funding": "credit",
        "card_country": "DE",
        "card_exp": "2027-08",
        "device_id": f"dev-{n % 3}",
        "ip": f"192.0.2.{n % 250}",
        "ip_country": "DE",
        "billing_country": "DE",
        "invoice_id": f"inv-{n}",
        "retry_number": 0,
    }
    body.update(overrides)
    return body


def seed_cache(cache_dir: Path, bundles: dict[str, ModelBundle], version: str = "1") -> None:
    """Put bundles in the service's local model copy, as if they had been loaded from the registry once."""
    loader = RegistryLoader("sqlite:////nonexistent/mlflow.db", cache_dir)
    for task, bundle in bundles.items():
        loader.keep_local(bundle_kind(task, FEATURE_SET.names, FEATURE_SET.hash), version, bundle)


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp / "state",
        "mlruns_dir": tmp / "mlruns",
        "data_dir": tmp / "data",
        "model_reload_seconds": 0,
        **overrides,
    }
    return Settings(**values)


def service_for(tmp: Path, **overrides: Any) -> Service:
    return build_service(settings_for(tmp, **overrides))


def with_limits(service: Service, **limits: Any) -> Service:
    service.limits = replace(service.limits, **limits)
    return service


def seed_retry_cache(cache_dir: Path, model: RetryModel, version: str = "1") -> None:
    """Put a retry model in the service's local model copy, as if loaded from the registry once."""
    RegistryLoader("sqlite:////nonexistent/mlflow.db", cache_dir).keep_local(RETRY_KIND, version, model)


def register_retry(tracking_uri: str, artifact_root: Path, model: RetryModel, champion: bool = True) -> str:
    """Log ``model`` as ``riskgate train`` does (pyfunc + its JSON artifact), register it, set
    ``@champion``."""
    from registry.pyfunc import RetryPyfunc  # noqa: PLC0415 - slow import
    from registry.retry import MODEL_ARTIFACT, MODEL_FILE  # noqa: PLC0415

    return register_pyfunc(
        tracking_uri,
        artifact_root,
        RETRY_MODEL_NAME,
        RetryPyfunc(),
        lambda scratch: {MODEL_ARTIFACT: model.save(scratch / MODEL_FILE)},
        champion=champion,
    )
