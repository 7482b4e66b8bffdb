"""The provider's extension through an import: typed columns of the attempts, recorded under the data
directory, added to by later imports, never retyped; event tables read with one schema across parts."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from events.importer import ImportResult, ImportStatus, import_files
from events.io import (
    ExtensionRecordError,
    extension_path,
    merge_extension,
    read_events,
    read_extension,
    read_table,
    to_arrow,
    write_extension,
    write_part,
)
from events.mapping import ColumnMapping, load_mapping
from events.schema import (
    EventKind,
    ExtensionField,
    ExtensionFieldError,
    FieldType,
    arrow_schema,
    column_names,
)
from tests.events.factories import CARD_MAPPING, attempts, card_outcomes, card_transactions, write_csv

CARD_FIELDS = (
    ExtensionField("terminal_id", FieldType.KEY, "The merchant's terminal."),
    ExtensionField("channel", FieldType.CATEGORY, values=("ecom", "pos", "moto")),
    ExtensionField("acquirer_score", FieldType.NUMBER),
    ExtensionField("card_first_seen_at", FieldType.TIME),
)


def mapping(tmp_path: Path, text: str = CARD_MAPPING) -> ColumnMapping:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return load_mapping(path)


def import_card_export(
    tmp_path: Path, data: Path, n: int = 6, start: int = 0, text: str = CARD_MAPPING
) -> ImportResult:
    frame = card_transactions(n, start)
    files = {
        EventKind.ATTEMPTS: write_csv(frame, tmp_path / f"tx-{start}.csv"),
        EventKind.OUTCOMES: write_csv(card_outcomes(frame), tmp_path / f"answers-{start}.csv"),
    }
    return import_files(files, mapping(tmp_path, text), data)


def test_attributes_are_typed_columns_after_the_core_ones_and_are_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = import_card_export(tmp_path, data)
    assert result.status is ImportStatus.ACCEPTED, result.summary()
    assert read_extension(data) == CARD_FIELDS
    [part] = (data / "attempts").glob("part-*.parquet")
    schema = pq.read_schema(part).remove_metadata()
    assert schema == arrow_schema(EventKind.ATTEMPTS, CARD_FIELDS)
    assert schema.names[: len(column_names(EventKind.ATTEMPTS))] == column_names(EventKind.ATTEMPTS)
    extension_types = [(f.name, f.type, f.nullable) for f in schema][-4:]
    assert extension_types == [
        ("terminal_id", pa.string(), True),
        ("channel", pa.string(), True),
        ("acquirer_score", pa.float64(), True),
        ("card_first_seen_at", pa.timestamp("us", tz="UTC"), True),
    ]
    for name in ["kind", "plan_tier", "plan_period", "currency", "method_type", "retry_number"]:
        assert schema.field(name).nullable
    read = read_events(data, EventKind.ATTEMPTS)
    assert read["terminal_id"].tolist() == ["T0", "T1"] * 3
    assert read["amount"].tolist()[:2] == [0.0, 2.51]  # the €0 check is an attempt like any other
    outcomes = read_events(data, EventKind.OUTCOMES)
    assert outcomes["attempt_id"].tolist()[0] == "T0-1000"  # the €0 check has its outcome
    assert outcomes.columns.tolist() == column_names(EventKind.OUTCOMES)


def test_a_later_import_may_add_a_field_and_earlier_rows_read_as_null(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_card_export(tmp_path, data, n=4)
    text = CARD_MAPPING.replace(
        "    card_first_seen_at: {column: CardSeen, type: time}\n",
        "    card_first_seen_at: {column: CardSeen, type: time}\n    mcc: {column: MCC, type: key}\n",
    )
    frame = card_transactions(2, start=10).assign(MCC="5411")
    files = {EventKind.ATTEMPTS: write_csv(frame, tmp_path / "more.csv")}
    result = import_files(files, mapping(tmp_path, text), data)
    assert result.status is ImportStatus.ACCEPTED, result.summary()
    assert [field.name for field in read_extension(data)][-1] == "mcc"
    read = read_events(data, EventKind.ATTEMPTS)
    assert read["mcc"].isna().tolist() == [True] * 4 + [False] * 2
    assert read.columns.tolist()[-1] == "mcc"
    assert read_table(data, "attempts", columns=["attempt_id", "mcc"]).num_rows == 6


def test_an_import_that_does_not_declare_a_recorded_field_writes_it_as_null(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_card_export(tmp_path, data, n=2)
    text = CARD_MAPPING.replace("    acquirer_score: {column: Score, type: number}\n", "")
    frame = card_transactions(2, start=10).drop(columns=["Score"])
    result = import_files(
        {EventKind.ATTEMPTS: write_csv(frame, tmp_path / "b.csv")}, mapping(tmp_path, text), data
    )
    assert result.status is ImportStatus.ACCEPTED, result.summary()
    assert read_extension(data) == CARD_FIELDS
    assert read_events(data, EventKind.ATTEMPTS)["acquirer_score"].isna().tolist() == [
        False,
        False,
        True,
        True,
    ]


def test_an_import_retyping_a_recorded_field_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_card_export(tmp_path, data, n=2)
    text = CARD_MAPPING.replace(
        "acquirer_score: {column: Score, type: number}", "acquirer_score: {column: Score, type: key}"
    )
    result = import_card_export(tmp_path, data, n=2, start=10, text=text)
    assert result.refused
    [problem] = result.problems.to_dict("records")
    assert (problem["column"], problem["code"]) == ("acquirer_score", "extension_changed")
    assert (
        "recorded in the data directory's extension.json as a number but declared here as a key"
        in problem["message"]
    )
    assert read_extension(data) == CARD_FIELDS
    assert len(read_events(data, EventKind.ATTEMPTS)) == 2


def test_an_import_refused_for_bad_rows_records_no_new_field(tmp_path: Path) -> None:
    data = tmp_path / "data"
    frame = card_transactions(2).assign(Channel="FAX")
    result = import_files({EventKind.ATTEMPTS: write_csv(frame, tmp_path / "a.csv")}, mapping(tmp_path), data)
    assert result.refused
    assert read_extension(data) == ()
    assert not extension_path(data).exists()


def test_category_values_may_grow_at_the_end_only() -> None:
    old = (ExtensionField("channel", FieldType.CATEGORY, values=("web", "app")),)
    grown = (ExtensionField("channel", FieldType.CATEGORY, "now documented", values=("web", "app", "tv")),)
    assert merge_extension(old, grown) == (grown, [])
    reordered = (ExtensionField("channel", FieldType.CATEGORY, values=("app", "web")),)
    merged, [(name, why)] = merge_extension(old, reordered)
    assert (merged, name) == (old, "channel")
    assert "values may only be added at the end of the list" in why


def test_the_record_round_trips_and_a_damaged_one_is_a_clear_error(tmp_path: Path) -> None:
    assert read_extension(tmp_path) == ()
    write_extension(tmp_path, CARD_FIELDS)
    assert read_extension(tmp_path) == CARD_FIELDS
    extension_path(tmp_path).write_text('{"version": 1, "fields": [{"name": "Bad Name", "type": "key"}]}')
    with pytest.raises(ExtensionRecordError, match="not a riskgate extension record"):
        read_extension(tmp_path)
    extension_path(tmp_path).write_text("{")
    with pytest.raises(ExtensionRecordError, match="cannot read the recorded extension"):
        read_extension(tmp_path)


def test_parts_written_before_a_core_column_existed_read_as_null(tmp_path: Path) -> None:
    current = to_arrow(EventKind.ATTEMPTS, pd.DataFrame(attempts(2)).assign(amount=1.0, retry_number=0))
    old = current.drop_columns(["account_created_at", "payment_method_first_used_at"])
    write_part(tmp_path, "attempts", 0, old)
    write_part(tmp_path, "attempts", 1, current)
    table = read_table(tmp_path, "attempts")
    assert table.schema == arrow_schema(EventKind.ATTEMPTS)
    assert table.num_rows == 4
    assert table.column("account_created_at").null_count == 4
    only = read_table(tmp_path, "attempts", columns=["payment_method_first_used_at"])
    assert only.num_rows == 4


def test_optional_columns_absent_from_a_frame_are_written_as_nulls() -> None:
    frame = attempts(2)[["attempt_id", "account_id", "payment_method_id"]].assign(
        occurred_at=pd.Timestamp("2025-01-01", tz="UTC"), amount=0.0
    )
    table = to_arrow(EventKind.ATTEMPTS, frame)
    assert table.schema == arrow_schema(EventKind.ATTEMPTS)
    assert table.column("currency").null_count == 2


def test_only_attempts_have_extension_fields() -> None:
    with pytest.raises(ExtensionFieldError, match="only attempts have extension fields"):
        arrow_schema(EventKind.OUTCOMES, CARD_FIELDS)
