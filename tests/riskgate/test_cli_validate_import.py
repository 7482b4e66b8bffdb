"""`riskgate validate` and `riskgate import` as a user types them."""

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from events.io import read_events, read_extension
from events.schema import EventKind
from riskgate.cli import app
from tests.events.factories import (
    CARD_MAPPING,
    TEST_PAN,
    attempts,
    card_outcomes,
    card_transactions,
    outcomes,
    provider_attempts,
    with_value,
    write_csv,
)

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


def card_files(tmp_path: Path, n: int = 6, start: int = 0, mapping: str = CARD_MAPPING) -> list[str | Path]:
    """The import arguments of an acquirer's card export and its mapping."""
    frame = card_transactions(n, start)
    folder = tmp_path / f"export-{start}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mapping.yaml").write_text(mapping)
    return [
        "--attempts",
        write_csv(frame, folder / "transactions.csv"),
        "--outcomes",
        write_csv(card_outcomes(frame), folder / "answers.csv"),
        "--mapping",
        folder / "mapping.yaml",
    ]


def test_a_card_export_shaped_unlike_iptv_is_imported_with_its_own_fields(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = card_files(tmp_path)
    code, output = run("validate", args[1], "--kind", "attempts", "--mapping", args[5], "--data-dir", data)
    assert code == 0, output
    code, output = run("import", *args, "--data-dir", data)
    assert code == 0, output
    assert "6 rows in, 6 written, 0 quarantined, 0 refused" in output
    read = read_events(data, EventKind.ATTEMPTS)
    checks = read[read["amount"] == 0]
    assert checks["attempt_id"].tolist() == ["T0-1000", "T1-1003"]  # the €0 card checks
    assert read[["kind", "plan_tier", "plan_period"]].isna().all().all()
    assert read["channel"].tolist() == ["pos", "ecom"] * 3
    answers = read_events(data, EventKind.OUTCOMES).set_index("attempt_id")
    assert answers.loc[checks["attempt_id"], "status"].tolist() == ["approved", "declined"]
    assert [field.name for field in read_extension(data)] == [
        "terminal_id",
        "channel",
        "acquirer_score",
        "card_first_seen_at",
    ]


def test_a_second_import_retyping_a_field_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("import", *card_files(tmp_path), "--data-dir", data)[0] == 0
    retyped = CARD_MAPPING.replace("type: key, doc", "type: number, doc")
    code, output = run("import", *card_files(tmp_path, start=100, mapping=retyped), "--data-dir", data)
    assert code == 1
    assert "import refused" in output
    assert "terminal_id: extension_changed ×1" in output
    assert "as a key but declared here as a number" in output
    code, output = run(
        "validate",
        card_files(tmp_path, start=200, mapping=retyped)[1],
        "--kind",
        "attempts",
        "--mapping",
        tmp_path / "export-200" / "mapping.yaml",
        "--data-dir",
        data,
    )
    assert code == 1
    assert "extension_changed" in output
    assert len(read_events(data, EventKind.ATTEMPTS)) == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (
                "  constants: {currency: EUR, method_type: card}\n",
                "  constants: {currency: EUR, occurred_at: x}\n",
            ),
            "attempts.constants.occurred_at: also mapped to a source column",
        ),
        (("{divide: [AmountCents, 100]}", "{multiply: [AmountCents, 100]}"), "unknown operation 'multiply'"),
        (
            ("channel: {column: Channel,", "amount: {column: Channel,"),
            "the core contract already has a field",
        ),
        (("type: number", "type: integer"), "attempts.attributes.acquirer_score.type: Input should be"),
    ],
)
def test_a_mapping_that_sets_a_column_badly_is_a_usage_error(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    assert change[0] in CARD_MAPPING
    args = card_files(tmp_path, mapping=CARD_MAPPING.replace(*change))
    code, output = run("import", *args, "--data-dir", tmp_path / "data")
    assert code == 2
    assert message in output
    assert not (tmp_path / "data" / "attempts").exists()


def test_a_damaged_extension_record_is_a_usage_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "extension.json").write_text("{")
    code, output = run("import", *card_files(tmp_path), "--data-dir", data)
    assert code == 2
    assert "cannot read the recorded extension" in output
