"""``riskgate serve`` options as a user types them (the running service is tested in tests/serving)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from riskgate.cli import app


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_serve_refuses_a_worker_count_below_one(workers: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", workers])
    assert result.exit_code == 2
    assert "--workers" in result.output


def test_serve_documents_the_workers_option() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--workers" in result.output
