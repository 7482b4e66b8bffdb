from pathlib import Path

import pytest

from events.mapping import ColumnMapping, MappingError, TableMapping, load_mapping
from events.schema import EventKind

EXAMPLE = Path(__file__).parents[2] / "events" / "examples" / "mapping.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


def test_the_example_mapping_is_valid_and_documents_every_section() -> None:
    mapping = load_mapping(EXAMPLE)
    assert mapping.attempts.source_of("attempt_id") == "TransactionID"
    assert mapping.attempts.amount_unit == "minor"
    assert mapping.attempts.timestamps.timezone == "Europe/Berlin"
    assert mapping.outcomes.values["decline_code"]["05"] == "do_not_honor"
    assert mapping.fraud_reports.source_of("report_type") == "CaseType"


def test_unmapped_columns_are_read_from_the_same_name_unless_ignored() -> None:
    table = TableMapping(columns={"attempt_id": "TxID"}, ignore=("ip",))
    assert table.source_of("attempt_id") == "TxID"
    assert table.source_of("account_id") == "account_id"
    assert table.source_of("ip") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attempts:\n  colums: {}\n", "attempts.colums: unknown key"),
        (
            "attempts:\n  columns: {attempt_idd: TxID}\n",
            "attempts.columns.attempt_idd: not a column of the attempts",
        ),
        (
            "outcomes:\n  values: {status: {OK: fine}}\n",
            "outcomes.values.status.'OK': maps to 'fine', which is not one of",
        ),
        (
            "attempts:\n  values: {amount: {x: y}}\n",
            "attempts.values.amount: value maps apply to text columns only",
        ),
        ("attempts:\n  timestamps: {timezone: Mars/Olympus}\n", "unknown time zone 'Mars/Olympus'"),
        ("attempts:\n  timestamps: {format: dd/mm/yyyy}\n", "neither 'ISO8601' nor a strftime format"),
        ("attempts:\n  amount_unit: cents\n", "attempts.amount_unit: Input should be 'major' or 'minor'"),
        ("outcomes:\n  amount_unit: minor\n", "outcomes.amount_unit: the outcomes table has no amount"),
        ("outcomes:\n  values: {decline_code: {51: insufficient_funds}}\n", "quote it in YAML"),
        ("attempts:\n  columns: {account_id: Customer}\n  keep: [Customer]\n", "'Customer' is also mapped"),
        ("attempts:\n  keep: [ip]\n", "'ip' is a contract column"),
        ("attempts:\n  keep: [X]\n  ignore: [X]\n", "attempts.keep: 'X' is also under ignore"),
        ("version: 2\n", "version: Input should be 1"),
        ("- attempts\n", "expected a mapping with sections"),
        ("attempts: {columns: [\n", "not valid YAML at line"),
    ],
)
def test_mapping_errors_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MappingError) as error:
        load_mapping(path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_a_missing_mapping_file_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read the mapping file"):
        load_mapping(tmp_path / "absent.yaml")


def test_an_empty_mapping_is_the_identity() -> None:
    mapping = ColumnMapping()
    for kind in EventKind:
        assert mapping.table(kind).source_of("attempt_id") == "attempt_id"
