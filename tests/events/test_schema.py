from events.schema import COLUMNS, DECLINE_CODES, DeclineCode, EventKind, arrow_schema, column_names


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
