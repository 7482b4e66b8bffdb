"""`riskgate validate` and `riskgate import` as a user types them."""

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from events.io import read_events
from events.schema import EventKind
from riskgate.cli import app
from tests.events.factories import TEST_PAN, attempts, outcomes, provider_attempts, with_value, write_csv

EXAMPLE = Path(__file__).parents[2] / "events" / "examples" / "mapping.example.yaml"
runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.output


def test_validate_accepts_a_valid_file(tmp_path: Path) -> None:
    path = write_csv(attempts(3), tmp_path / "attempts.csv")
    code, output = run("validate", path, "--data-dir", tmp_path / "data")
    assert code == 0, output
    assert f"{path}: attempts, 3 rows: valid" in output


def test_validate_with_the_example_mapping(tmp_path: Path) -> None:
    path = write_csv(provider_attempts(3), tmp_path / "transactions.csv")
    code, output = run(
        "validate", path, "--kind", "attempts", "--mapping", EXAMPLE, "--data-dir", tmp_path / "data"
    )
    assert code == 0, output


def test_validate_refuses_with_rows_columns_reasons_and_never_the_card_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    frame = with_value(attempts(4), 2, "device_id", f"dev {TEST_PAN}")
    frame = with_value(frame, 3, "currency", "EURO")
    path = write_csv(frame, tmp_path / "attempts.csv")
    report = tmp_path / "problems.json"
    code, output = run("validate", path, "--report", report, "--data-dir", tmp_path / "data")
    assert code == 1
    assert "attempts, 4 rows: refused" in output
    assert "device_id: card_number ×1" in output
    assert "row 3 column device_id [card_number]" in output
    assert "row 4 column currency [unknown_currency]: 'EURO' is not an ISO 4217 currency code" in output
    assert f"all 2 problem(s) written to {report}" in output
    records = json.loads(report.read_text())
    assert [(r["row"], r["column"], r["code"]) for r in records] == [
        (3, "device_id", "card_number"),
        (4, "currency", "unknown_currency"),
    ]
    for text in (output, report.read_text(), caplog.text):
        assert TEST_PAN not in text


def test_validate_summarises_large_problem_lists_and_reports_them_in_full(tmp_path: Path) -> None:
    path = write_csv(attempts(500).assign(currency="EURO"), tmp_path / "attempts.csv")
    report = tmp_path / "problems.csv"
    code, output = run("validate", path, "--examples", "3", "--report", report, "--data-dir", tmp_path)
    assert code == 1
    assert "currency: unknown_currency ×500" in output
    assert output.count("[unknown_currency]") == 3
    assert len(report.read_text().splitlines()) == 501


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "payments"], "unknown event kind 'payments'"),
        (["--mapping", "BAD"], "attempts.colums: unknown key"),
    ],
)
def test_validate_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    path = write_csv(attempts(2), tmp_path / "attempts.csv")
    bad_mapping = tmp_path / "map.yaml"
    bad_mapping.write_text("attempts:\n  colums: {}\n")
    code, output = run("validate", path, *[bad_mapping if a == "BAD" else a for a in args])
    assert code == 2
    assert message in output


def test_validate_needs_a_kind_it_can_tell(tmp_path: Path) -> None:
    path = write_csv(attempts(2), tmp_path / "export.csv")
    code, output = run("validate", path)
    assert code == 2
    assert "cannot tell the event kind from the file name; give --kind" in output
    code, _ = run("validate", tmp_path / "absent.csv")
    assert code == 2


def test_validate_help_lists_every_kind() -> None:
    code, output = run("validate", "--help")
    assert code == 0
    for kind in EventKind:
        assert kind.value in output


def test_import_then_import_again(tmp_path: Path) -> None:
    a = write_csv(attempts(3), tmp_path / "a.csv")
    o = write_csv(outcomes(["att-0", "att-1", "att-2"]), tmp_path / "o.csv")
    data = tmp_path / "data"
    code, output = run("import", "--attempts", a, "--outcomes", o, "--data-dir", data)
    assert code == 0, output
    assert "import accepted" in output
    assert f"attempts: {a}: 3 rows in, 3 written, 0 quarantined, 0 refused" in output
    code, output = run("import", "--attempts", a, "--outcomes", o, "--data-dir", data)
    assert code == 1
    assert "import refused" in output
    assert "attempt_id: already_imported ×3" in output
    assert len(read_events(data, EventKind.ATTEMPTS)) == 3


def test_import_with_quarantine(tmp_path: Path) -> None:
    a = write_csv(with_value(attempts(3), 0, "account_id", TEST_PAN), tmp_path / "a.csv")
    data, quarantine = tmp_path / "data", tmp_path / "q"
    code, output = run("import", "--attempts", a, "--data-dir", data, "--quarantine", quarantine)
    assert code == 0, output
    assert "import accepted with rows quarantined" in output
    assert "3 rows in, 2 written, 1 quarantined, 0 refused" in output
    [held] = quarantine.iterdir()
    assert f"quarantined to {held}" in output
    assert TEST_PAN not in held.read_text() + output


def test_import_needs_a_file_and_a_valid_mapping(tmp_path: Path) -> None:
    code, output = run("import", "--data-dir", tmp_path)
    assert code == 2
    assert "give at least one of --attempts, --outcomes, --fraud-reports" in output
    mapping = tmp_path / "m.yaml"
    mapping.write_text("attempts: [")
    a = write_csv(attempts(1), tmp_path / "a.csv")
    code, output = run("import", "--attempts", a, "--mapping", mapping, "--data-dir", tmp_path)
    assert code == 2
    assert "not valid YAML" in output
    odd = tmp_path / "a.json"
    odd.write_text("{}")
    code, output = run("import", "--attempts", odd, "--data-dir", tmp_path)
    assert code == 2
    assert "unsupported file type '.json'" in output
