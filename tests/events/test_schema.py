from pathlib import Path

import pyarrow as pa

from events.schema import (
    ATTEMPT_COLUMNS,
    COLUMNS,
    DECLINE_CODES,
    DeclineCode,
    EventKind,
    ExtensionField,
    FieldType,
    arrow_schema,
    column_names,
)


def test_every_decline_code_has_a_rule() -> None:
    assert set(DECLINE_CODES) == set(DeclineCode)


def test_forbidden_retries_are_hard_declines() -> None:
    assert all(rule.hard for rule in DECLINE_CODES.values() if rule.retry_forbidden)


def test_arrow_schema_follows_the_declarations() -> None:
    for kind in EventKind:
        schema = arrow_schema(kind)
        assert schema.names == column_names(kind)
        for column in COLUMNS[kind]:
            assert schema.field(column.name).nullable is not column.required


DOCS = Path(__file__).parents[2] / "docs" / "contract.md"


def test_the_contract_doc_names_every_column_and_each_optional_attempt_field_says_what_absent_means() -> None:
    text = DOCS.read_text()
    for columns in COLUMNS.values():
        for column in columns:
            assert f"`{column.name}`" in text, column.name
    subscription_only = ["kind", "plan_tier", "plan_period", "currency", "method_type", "retry_number"]
    for column in ATTEMPT_COLUMNS:
        if column.name in subscription_only:
            assert not column.required
            assert "Absent:" in column.doc, column.name


def test_the_extension_follows_the_core_columns() -> None:
    extension = (ExtensionField("terminal_id", FieldType.KEY), ExtensionField("score", FieldType.NUMBER))
    schema = arrow_schema(EventKind.ATTEMPTS, extension)
    assert schema.names == [*column_names(EventKind.ATTEMPTS), "terminal_id", "score"]
    assert schema.field("score").type == pa.float64()
    assert schema.field("score").nullable
