from pathlib import Path

import pytest

from events.mapping import ColumnMapping, MappingError, TableMapping, load_mapping
from events.schema import EventKind, ExtensionField, FieldType
from tests.events.factories import CARD_MAPPING, TEST_PAN

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
    table = mapping.attempts
    for key in ("constants", "defaults", "derive", "attributes", "keep"):
        assert getattr(table, key), f"the example shows no {key}"
    assert "DESIGN.md" not in EXAMPLE.read_text()


def test_constants_derived_columns_and_attributes_have_no_source_column_of_their_own(tmp_path: Path) -> None:
    table = load_mapping(write(tmp_path, CARD_MAPPING)).attempts
    assert table.source_of("currency") is None
    assert table.source_of("attempt_id") is None
    assert table.source_of("terminal_id") == "TerminalID"
    assert table.derive["attempt_id"].sources == ("TerminalID", "TxID")
    assert table.derive["amount"].divide == ("AmountCents", 100.0)
    assert table.extension[:2] == (
        ExtensionField("terminal_id", FieldType.KEY, "The merchant's terminal."),
        ExtensionField("channel", FieldType.CATEGORY, values=("ecom", "pos", "moto")),
    )
    assert [column.name for column in table.fields(EventKind.ATTEMPTS)][-4:] == [
        "terminal_id",
        "channel",
        "acquirer_score",
        "card_first_seen_at",
    ]


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
        (
            "attempts:\n  columns: {currency: Cur}\n  constants: {currency: EUR}\n",
            "attempts.constants.currency: also mapped to a source column",
        ),
        (
            "attempts:\n  constants: {retry_number: 0}\n  defaults: {retry_number: 1}\n",
            "attempts.constants.retry_number: also under derive or defaults",
        ),
        (
            "attempts:\n  constants: {kind: oneoff}\n",
            "constants.kind: 'oneoff' is not one of signup",
        ),
        ("attempts:\n  defaults: {plan_tier: gold}\n", "attempts.defaults.plan_tier: 'gold' is not one of"),
        (f"attempts:\n  constants: {{device_id: '{TEST_PAN}'}}\n", "device_id: looks like a card number"),
        ("attempts:\n  constants: {currencyy: EUR}\n", "attempts.constants.currencyy: not a column of the"),
        (
            "attempts:\n  constants: {method_type: card}\n  values: {method_type: {CC: card}}\n",
            "attempts.values.method_type: method_type is a constant",
        ),
        (
            "attempts:\n  derive: {amount: {multiply: [Cents, 100]}}\n",
            "attempts.derive.amount: unknown operation 'multiply' (operations: concat with sep, divide",
        ),
        (
            "attempts:\n  derive: {attempt_id: {concat: [A, B], first: [A, B]}}\n",
            "attempts.derive.attempt_id: give exactly one operation of concat, divide, first",
        ),
        ("attempts:\n  derive: {amount: {divide: [Cents, 0]}}\n", "divide by a finite number other than 0"),
        ("attempts:\n  derive: {amount: {divide: [Cents]}}\n", "attempts.derive.amount.divide"),
        ("attempts:\n  derive: {device_id: {first: [A], sep: '-'}}\n", "sep goes with concat only"),
        (
            "attempts:\n  derive: {device_id: {divide: [A, 2]}}\n",
            "attempts.derive.device_id: divide makes a number, and device_id is a string column",
        ),
        (
            "attempts:\n  amount_unit: minor\n  derive: {amount: {divide: [Cents, 100]}}\n",
            "attempts.derive.amount: amount_unit is minor: convert the amount one way only",
        ),
        ("attempts:\n  derive: {device_id: {concat: []}}\n", "concat needs at least one source column"),
        (
            "attempts:\n  columns: {amount: Amt}\n  derive: {amount: {divide: [Cents, 100]}}\n",
            "attempts.derive.amount: also mapped to a source column",
        ),
        ("attempts:\n  derive: {attempt_id: {first: [X]}}\n  ignore: [X]\n", "'X' is also mapped"),
        (
            "attempts:\n  attributes: {amount: {type: number}}\n",
            "attempts.attributes.amount: extension field 'amount': the core contract already has a field",
        ),
        ("attempts:\n  attributes: {TerminalID: {type: key}}\n", "a field name is lower snake case"),
        ("attempts:\n  attributes: {channel: {type: category}}\n", "values= is required for a category"),
        (
            "attempts:\n  attributes: {score: {type: integer}}\n",
            "attributes.score.type: Input should",
        ),
        (
            "attempts:\n  attributes: {tid: {type: key, colum: T}}\n",
            "attributes.tid.colum: unknown key",
        ),
        ("outcomes:\n  attributes: {tid: {type: key}}\n", "outcomes.attributes: only attempts have"),
        (
            "attempts:\n  attributes: {channel: {type: category, values: [web]}}\n"
            "  values: {channel: {W: mobile}}\n",
            "attempts.values.channel.'W': maps to 'mobile', which is not one of web",
        ),
        (
            "attempts:\n  attributes: {tid: {column: T, type: key}}\n  constants: {tid: x}\n",
            "attempts.constants.tid: also mapped to a source column",
        ),
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
