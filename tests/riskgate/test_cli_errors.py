"""The command line's one error mapping: an error riskgate raises on purpose ends any command as its message
and its own exit status, never as a traceback; other errors are not hidden."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.errors import EXIT_FAILURE, EXIT_USAGE, InputError, RiskgateError
from riskgate.cli import app, data


class _RunFailedError(RiskgateError):
    """A command that ran and did not succeed."""

    exit_code = EXIT_FAILURE


def _info_raising(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """Make ``riskgate info`` raise ``error`` where it reads the settings."""

    def raising() -> None:
        raise error

    monkeypatch.setattr(data, "get_settings", raising)


@pytest.mark.parametrize(
    ("error", "status"),
    [(InputError("--kind must be attempts"), EXIT_USAGE), (_RunFailedError("the run failed"), EXIT_FAILURE)],
)
def test_an_error_of_ours_is_its_message_and_its_exit_status(
    monkeypatch: pytest.MonkeyPatch, error: RiskgateError, status: int
) -> None:
    _info_raising(monkeypatch, error)
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == status == error.exit_code
    assert result.stderr == f"error: {error}\n"
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_a_missing_file_from_a_library_is_a_failure_message(monkeypatch: pytest.MonkeyPatch) -> None:
    _info_raising(monkeypatch, FileNotFoundError("no such file: x.parquet"))
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == EXIT_FAILURE
    assert result.stderr == "error: no such file: x.parquet\n"


def test_an_unexpected_error_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    _info_raising(monkeypatch, RuntimeError("a bug"))
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)
    assert "error: a bug" not in result.output


def test_a_usage_error_of_a_command_goes_through_the_mapping() -> None:
    """``riskgate import`` without a file: the command raises, the mapping prints and exits 2."""
    result = CliRunner().invoke(app, ["import"])
    assert result.exit_code == EXIT_USAGE
    assert result.stderr == "error: give at least one of --attempts, --outcomes, --fraud-reports\n"
