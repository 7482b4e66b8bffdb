"""`riskgate backtest` and `riskgate report` as a user types them, over registered models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench._models import register, synthetic_bundle
from core.settings import get_settings
from riskgate.cli import app
from simulator import simulate
from tests.serving.readers.test_backtest import TINY


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-world") / "data"
    simulate(TINY, out)
    return out


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tracking store whose @champion versions are small real bundles (with drift references)."""
    root = tmp_path_factory.mktemp("cli-mlruns")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    register(uri, root / "artifacts", synthetic_bundle("fraud"))
    register(uri, root / "artifacts", synthetic_bundle("failure", seed=1))
    return root


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch, mlruns: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("RISKGATE_MLRUNS_DIR", str(mlruns))
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_backtest_then_report_of_its_log(world: Path, tmp_path: Path) -> None:
    state = tmp_path / "backtest"
    code, output = _run("backtest", "--data-dir", str(world), "--state-dir", str(state))
    assert code == 0, output
    assert "models: fraud riskgate-fraud/1, failure riskgate-failure/1" in output
    attempts = int(re.search(r"replayed: (\d+) attempts", output).group(1))  # type: ignore[union-attr]
    assert attempts > 50
    assert "decisions: approve" in output

    out = tmp_path / "shared" / "report.html"
    code, output = _run(
        "report", "--state-dir", str(state), "--out", str(out), "--bucket", "week", "--segment", "plan_tier",
        "--start", "2020-01-01",
    )  # fmt: skip
    assert code == 0, output
    page = out.read_text()
    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,([A-Za-z0-9+/=]{2000,})'>", page)
    assert [title for title, _ in images] == [
        "Volumes and actions", "Score quantiles", "Predicted vs realised rates", "Money at risk",
        "By plan_tier",
    ]  # fmt: skip
    assert f"<dd>{attempts}: approve" in page  # the summary counts every replayed attempt
    assert "fraud — riskgate-fraud/1 (reference: validation)" in page
    assert page.count("<tr style='background:") == 22  # score + 10 features, both models, band-coloured
    assert "Drift not shown" not in page
    assert "--no-drift" not in page
    assert re.findall(r"(?:src|href)=['\"](?!data:)", page) == []  # nothing to fetch: self-contained


def test_report_without_a_log_says_where_it_looked(tmp_path: Path) -> None:
    code, output = _run("report", "--state-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html"))
    assert code == 2
    assert "no decision log at" in output
    assert not (tmp_path / "r.html").exists()


def test_backtest_refuses_unusable_options(world: Path, tmp_path: Path) -> None:
    code, output = _run("backtest", "--data-dir", str(world), "--start", "last tuesday")
    assert code == 2
    assert "start is not an ISO 8601" in output
    code, output = _run(
        "backtest",
        "--data-dir",
        str(world),
        "--state-dir",
        str(tmp_path / "b"),
        "--fraud-model",
        "models:/riskgate-fraud/9",
    )
    assert code == 2
    assert "riskgate-fraud/9" in output
