"""Training, promotion and the service against a real MLflow tracking server (`mlflow server`, its artifact
proxy).

The server's registry is shared by the session: each test reads the versions it registers, never assumes 1.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from typer.testing import CliRunner

from bench._models import register
from bench._models import synthetic_bundle as make_bundle
from core.settings import Settings, get_settings
from features.iptv import FEATURE_SET
from registry.errors import RegistryUnreachableError
from registry.names import CHAMPION, MODEL_NAMES
from riskgate.cli import app
from serving.api.app import create_app
from serving.api.service import Service
from serving.scoring.models import ModelLoader, ModelPair
from tests.servers import MlflowServer, free_port
from tests.serving.factories import ADMIN, service_for
from training.config import Task, TrainingConfig
from training.data import Inputs
from training.pipeline import promote_models, train_models

#: A tracking server with a password in its URI, where nothing listens.
PASSWORD = "s3cret-pw"


def dead_server() -> str:
    return f"http://analyst:{PASSWORD}@127.0.0.1:{free_port()}"


def champion(url: str, task: str) -> str:
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    return str(client.get_model_version_by_alias(MODEL_NAMES[task], CHAMPION).version)


def served(service: Service) -> dict[str, tuple[str, str]]:
    """Each model the service answers with: (version, source)."""
    pair = service.engine.holder.current
    return {task: (model.version, model.source) for task in ("fraud", "failure") if (model := pair.get(task))}


@pytest.fixture
def fresh_fraud(tracking_server: MlflowServer) -> str:
    """The server's registry without riskgate-fraud (other tests register it too); the server's URL."""
    client = MlflowClient(tracking_uri=tracking_server.url, registry_uri=tracking_server.url)
    if client.search_registered_models(f"name = '{MODEL_NAMES['fraud']}'"):
        client.delete_registered_model(MODEL_NAMES["fraud"])
    return tracking_server.url


@pytest.mark.parametrize(
    ("uri", "local_artifacts"),
    [
        (None, True),
        ("http://mlflow.internal:5000", False),
        ("https://user:pw@mlflow.example.com", False),
        ("postgresql+psycopg2://mlflow@db/mlflow", True),
        ("sqlite:////srv/mlflow/mlflow.db", True),
    ],
)
def test_the_settings_name_one_store_and_where_its_artifacts_go(
    tmp_path: Path, uri: str | None, local_artifacts: bool
) -> None:
    settings = Settings(mlruns_dir=tmp_path / "mlruns", mlflow_tracking_uri=uri)
    expected = uri or f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').resolve()}"
    assert (settings.tracking_uri, settings.registry_uri) == (expected, expected)
    local = (tmp_path / "mlruns" / "artifacts").resolve()
    assert settings.artifact_root == (local if local_artifacts else None)
    elsewhere = Settings(mlflow_tracking_uri=uri, mlflow_registry_uri="sqlite:////srv/registry.db")
    assert elsewhere.registry_uri == "sqlite:////srv/registry.db"


def test_training_logs_and_registers_on_the_server_and_promotion_moves_champion_there(
    inputs: Inputs, fast_config: TrainingConfig, fresh_fraud: str, tracking_server: MlflowServer
) -> None:
    (trained,) = train_models(
        inputs, fast_config, tracking_uri=fresh_fraud, artifact_root=None, tasks=(Task.FRAUD,)
    )
    client = MlflowClient(tracking_uri=fresh_fraud, registry_uri=fresh_fraud)
    run = client.get_run(trained.logged.run_id)
    assert run.data.params["feature_set_hash"] == inputs.contract.hash
    # artifacts go where the server says (its proxy), not to a local folder
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/roc.png" in logged
    assert list(tracking_server.artifacts.rglob("roc.png"))

    (decision,) = promote_models(None, fast_config, tracking_uri=fresh_fraud, tasks=(Task.FRAUD,))
    assert decision.promoted, decision.reason
    assert champion(fresh_fraud, "fraud") == trained.logged.version


def test_the_service_follows_champion_on_the_server_and_swaps_on_reload(
    tmp_path: Path, tracking_server: MlflowServer
) -> None:
    url = tracking_server.url
    fraud = register(url, None, make_bundle("fraud", seed=0))
    failure = register(url, None, make_bundle("failure", seed=1))
    with TestClient(create_app(service=service_for(tmp_path, mlflow_tracking_uri=url))) as client:
        service: Service = client.app.state.service  # type: ignore[attr-defined]
        assert served(service) == {"fraud": (fraud, "registry"), "failure": (failure, "registry")}
        newer = register(url, None, make_bundle("fraud", seed=2))
        answer = client.post("/v1/admin/reload", headers=ADMIN).json()
        models = {m["task"]: m for m in answer["models"]}
        assert models["fraud"]["changed"]
        assert models["fraud"]["model"] == {"name": "riskgate-fraud", "version": newer, "source": "registry"}
        assert not models["failure"]["changed"]
    assert not (tmp_path / "mlruns").exists()  # nothing written beside the service


def test_with_the_server_down_the_service_keeps_its_models_starts_from_its_local_copy_and_recovers(
    tmp_path: Path, tracking_server: MlflowServer
) -> None:
    url = tracking_server.url
    register(url, None, make_bundle("failure", seed=3))
    version = register(url, None, make_bundle("fraud", seed=4))
    with TestClient(create_app(service=service_for(tmp_path, mlflow_tracking_uri=url))) as client:
        running: Service = client.app.state.service  # type: ignore[attr-defined]
        assert served(running)["fraud"] == (version, "registry")  # and its local copy written
        tracking_server.stop()
        started = time.perf_counter()
        results = running.reload()
        waited = time.perf_counter() - started
        assert served(running)["fraud"] == (version, "registry")  # what was served stays
        assert all("does not answer" in (r.error or "") for r in results)
        assert PASSWORD not in str(results)
        assert waited < 10, f"a reload waited {waited:.1f} s for a server that is down"
    try:
        with TestClient(create_app(service=service_for(tmp_path, mlflow_tracking_uri=url))) as client:
            fresh: Service = client.app.state.service  # type: ignore[attr-defined]
            assert served(fresh)["fraud"] == (version, "cache")
            tracking_server.start()
            answer = client.post("/v1/admin/reload", headers=ADMIN).json()
            models = {m["task"]: m for m in answer["models"]}
            assert models["fraud"]["model"] == {
                "name": "riskgate-fraud",
                "version": version,
                "source": "registry",
            }
            assert served(fresh)["fraud"] == (version, "registry")
    finally:
        if tracking_server.process is None:
            tracking_server.start()


def test_a_reload_asks_a_server_that_is_down_once_and_never_logs_its_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loader = ModelLoader(dead_server(), tmp_path / "models", FEATURE_SET.names, FEATURE_SET.hash)
    with caplog.at_level(logging.INFO, logger="registry"):
        pair, results = loader.load_pair(ModelPair(None, None))
    assert (pair.fraud, pair.failure, pair.retry) == (None, None, None)
    assert [r.task for r in results if r.unreachable] == ["fraud", "failure", "retry"]
    assert caplog.text.count("model registry unreachable") == 1
    assert PASSWORD not in caplog.text


def test_an_unreachable_server_fails_training_soon_naming_it_without_its_password(
    inputs: Inputs, fast_config: TrainingConfig
) -> None:
    url = dead_server()
    started = time.perf_counter()
    with pytest.raises(RegistryUnreachableError) as raised:
        train_models(inputs, fast_config, tracking_uri=url, artifact_root=None, tasks=(Task.FRAUD,))
    assert time.perf_counter() - started < 20  # three retries, 0 + 2 + 4 s apart (MLflow alone: minutes)
    message = str(raised.value)
    assert url.replace(PASSWORD, "***") in message
    assert PASSWORD not in message
    assert "RISKGATE_MLFLOW_TRACKING_URI" in message


def test_promote_names_an_unreachable_server_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    url = dead_server()
    monkeypatch.setenv("RISKGATE_MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the operator's setting wins over riskgate's
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["promote", "--task", "fraud", "--no-rescore"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert (
        f"error: the MLflow tracking server at {url.replace(PASSWORD, '***')} does not answer"
        in result.output
    )
    assert PASSWORD not in result.output
