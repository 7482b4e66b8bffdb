"""One typed settings object, created in the entry point and handed down.

Values come from the environment (prefix ``RISKGATE_``) or a ``.env`` file. Libraries never read settings
themselves: the CLI and the service build a :class:`Settings` once and pass what each function needs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiKey(BaseModel):
    """One API key of the scoring service, stored as the SHA-256 of the key (never the key itself)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Who holds the key (shown in logs, never the key).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the key.")
    scopes: frozenset[Literal["score", "admin"]] = Field(min_length=1)


class WebhookEndpoint(BaseModel):
    """A receiver of riskgate's signed webhooks: its URL, its signing secret and the event types it wants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", description="Where events are POSTed (no credentials in it).")
    secret: SecretStr = Field(description="HMAC-SHA256 key of the Riskgate-Signature header; never logged.")
    events: frozenset[str] = Field(min_length=1, description="Event types, e.g. decision.blocked.")


#: MLflow tracking URIs whose store is a database or a folder on this machine (``postgresql+psycopg2`` counts
#: as ``postgresql``; "" is a plain path): their artifacts go under ``mlruns_dir``. Any other (http, https,
#: databricks...) is a tracking server, which places artifacts itself.
_LOCAL_ARTIFACT_SCHEMES: Final = frozenset({"", "file", "sqlite", "postgresql", "mysql", "mssql"})

#: Development-only keys (``rg-dev-score-key``, ``rg-dev-admin-key``): the service refuses them in production.
DEV_API_KEYS: tuple[ApiKey, ...] = (
    ApiKey(
        name="dev-billing",
        sha256="05938f8aa2ad96340b1d2b53bd4c020aaf254521d5bfd147963981c6ebd91a50",
        scopes=frozenset({"score"}),
    ),
    ApiKey(
        name="dev-admin",
        sha256="b5d841b7751292757c38ca92ec0fbb75ba6196c4618ff954b5360148f3fbfa66",
        scopes=frozenset({"score", "admin"}),
    ),
)
DEV_PSEUDONYM_SECRET = "riskgate-development-pseudonym-secret"  # noqa: S105 (refused in production)


class Settings(BaseSettings):
    """Where riskgate keeps its data, state and models."""

    model_config = SettingsConfigDict(env_prefix="RISKGATE_", env_file=".env", extra="forbid")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(Path("data"), description="Event tables (Parquet) and derived tables.")
    state_dir: Path = Field(Path("state"), description="Online store, decision log and model cache.")
    mlruns_dir: Path = Field(Path("mlruns"), description="MLflow's local store: mlflow.db and artifacts/.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    feature_set: str | None = Field(
        None, description="Feature set as 'module:ATTRIBUTE' (None: the default IPTV set, features.iptv)."
    )
    # -- the scoring service (serving/) ---------------------------------------------------------------------
    api_keys: tuple[ApiKey, ...] = Field(
        DEV_API_KEYS, description="JSON list of {name, sha256, scopes}; see `riskgate api-key`."
    )
    pseudonym_secret: SecretStr = Field(
        SecretStr(DEV_PSEUDONYM_SECRET),
        description="HMAC key that pseudonymises ids in logs and the decision log.",
    )
    online_store: str = Field("sqlite", description="'sqlite' (state_dir/online.sqlite) or a redis:// URL.")
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(8000, ge=1, le=65535)
    model_alias: str = Field("champion", description="Registry alias the service follows.")
    model_reload_seconds: float = Field(60.0, ge=0, description="Periodic @alias check; 0 turns it off.")
    fraud_elevated_threshold: float | None = Field(None, ge=0, le=1, description="Override the model's.")
    fraud_highest_threshold: float | None = Field(None, ge=0, le=1, description="Override the model's.")
    failure_defer_threshold: float | None = Field(None, ge=0, le=1, description="Override the model's.")
    max_batch: int = Field(500, ge=1, le=10_000, description="Most attempts in one POST /v1/score/batch.")
    max_body_bytes: int = Field(1_048_576, ge=1_024, description="Larger request bodies are refused (413).")
    decision_log_sync: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", description="SQLite synchronous: NORMAL survives a process kill, FULL also a power loss."
    )
    write_behind: bool = Field(
        True,
        description="Journal each decision (one write, durable through a kill) and flush the SQLite online "
        "store and decision log in the background; one process per state directory (`serve --workers N` "
        "turns it off).",
    )
    write_behind_ms: float = Field(
        1000.0,
        gt=0,
        le=60_000,
        description="How often write-behind flushes to SQLite (milliseconds): each flush briefly slows the "
        "requests it meets, so fewer, larger ones keep the tail lower (200 ms gave a p99 about twice as high "
        "for requests sent back to back).",
    )
    shutdown_grace_seconds: float = Field(10.0, ge=0, description="How long shutdown waits for requests.")
    max_header_bytes: int = Field(
        65_536, ge=4_096, description="Longest request line + headers; longer heads are answered 431."
    )
    request_head_seconds: float = Field(
        10.0, gt=0, description="Time for a request head to arrive (from connecting, or its first byte): 408."
    )
    keep_alive_seconds: int = Field(5, ge=1, description="Idle keep-alive connections are closed after (s).")
    webhooks: tuple[WebhookEndpoint, ...] = Field(
        (), description="JSON list of {url, secret, events}: signed webhooks (docs/webhooks.md)."
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60, description="One delivery try's timeout.")
    webhook_backoff_seconds: float = Field(
        10.0, gt=0, description="Wait before the second try; doubled per try (with jitter), at most an hour."
    )
    webhook_max_age_seconds: float = Field(
        259_200.0, gt=0, description="An event not delivered this long after its creation is marked failed."
    )
    webhook_poll_seconds: float = Field(1.0, gt=0, description="How often the deliverer looks for work.")
    recovery_config: Path | None = Field(
        None, description="Dunning policy YAML for POST /v1/recovery-plan (None: recovery.config defaults)."
    )
    review_claim_minutes: float = Field(
        30.0,
        gt=0,
        description="How long an analyst's claim on a review case holds before anyone may take it.",
    )
    review_expiry: str | None = Field(
        None,
        description="When open review cases expire and how: a YAML/JSON file's path, or its text (starting "
        "with '{'); None: the documented default (serving.scoring.review_expiry.DEFAULT_EXPIRY).",
    )
    review_expiry_check_seconds: float = Field(60.0, gt=0, description="How often expiry looks for cases.")
    rules_file: Path | None = Field(
        None,
        description="YAML file of the whole set of rules and lists (None: the store's, changed through the "
        "admin API or `riskgate rules load`): the store is brought in line with it at start-up and on POST "
        "/v1/admin/reload; a bad file stops the service from starting.",
    )
    rules_poll_seconds: float = Field(
        1.0, ge=0, description="How often each instance looks for changes of the rules store; 0 turns it off."
    )
    catalogue_file: Path | None = Field(
        None,
        description="The provider's price catalogue (CSV or YAML: plan_tier, plan_period, currency, price) "
        "the billing checks compare amounts with (None: prices are not checked).",
    )
    billing_checks: bool = Field(
        True, description="Compute the billing checks and install their built-in block rules (false: off)."
    )

    # -- a fleet: shared servers (docs/fleet.md) ------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://user:password@host:5432/database: the decision log, outcomes, reports, "
        "erasures, rules, lists, review cases, billing state and webhook outbox in PostgreSQL, shared by "
        "every instance (None: SQLite files in state_dir). `riskgate db upgrade` applies the schema; the "
        "service refuses to start on any other.",
    )
    database_pool_size: int = Field(
        8, ge=1, le=200, description="Most PostgreSQL connections one instance (or worker) holds at once."
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="Any MLflow tracking URI (http(s)://, a database URI, sqlite:///...) for training, "
        "promotion, evaluation, batch scoring and the service (None: sqlite:///<mlruns_dir>/mlflow.db).",
    )
    mlflow_registry_uri: str | None = Field(
        None, description="The model registry's URI when it differs from the tracking URI (None: the same)."
    )

    @property
    def tracking_uri(self) -> str:
        """The one MLflow tracking store every command and the service use: ``mlflow_tracking_uri``, else
        SQLite in ``mlruns_dir`` (as MLflow recommends for one machine)."""
        return self.mlflow_tracking_uri or f"sqlite:///{(self.mlruns_dir / 'mlflow.db').resolve()}"

    @property
    def registry_uri(self) -> str:
        """The model registry's URI: ``mlflow_registry_uri``, else the tracking store's."""
        return self.mlflow_registry_uri or self.tracking_uri

    @property
    def artifact_root(self) -> Path | None:
        """Where new experiments keep their artifacts: ``mlruns_dir/artifacts`` when MLflow is a database or
        a folder here; None with a tracking server, which decides (its ``--default-artifact-root`` or its
        artifact proxy)."""
        if urlsplit(self.tracking_uri).scheme.partition("+")[0] not in _LOCAL_ARTIFACT_SCHEMES:
            return None
        return (self.mlruns_dir / "artifacts").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
