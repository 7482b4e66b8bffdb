"""One typed settings object, created in the entry point and handed down.

Values come from the environment (prefix ``RISKGATE_``) or a ``.env`` file. Libraries never read settings
themselves: the CLI and the service build a :class:`Settings` once and pass what each function needs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    @property
    def tracking_uri(self) -> str:
        """The one MLflow tracking store every command and the service use (SQLite, as MLflow recommends)."""
        return f"sqlite:///{(self.mlruns_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.mlruns_dir / "artifacts").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
