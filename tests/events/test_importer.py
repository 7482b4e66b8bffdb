from pathlib import Path

import pandas as pd
import pytest

from events.importer import ImportStatus, import_files, next_part_number
from events.io import read_events, read_table
from events.mapping import ColumnMapping, load_mapping
from events.schema import EventKind, arrow_schema, column_names
from events.sources import UnsupportedFileError
from tests.events.factories import (
    TEST_PAN,
    attempts,
    fraud_reports,
    outcomes,
    provider_attempts,
    provider_outcomes,
    with_value,
    write_csv,
)

EXAMPLE = Path(__file__).parents[2] / "events" / "examples" / "mapping.example.yaml"
IDENTITY = ColumnMapping()


def contract_files(folder: Path, n: int = 6, start: int = 0) -> dict[EventKind, Path]:
    frame = attempts(n, start)
    ids = frame["attempt_id"].tolist()
    return {
        EventKind.ATTEMPTS: write_csv(frame, folder / "attempts.csv"),
        EventKind.OUTCOMES: write_csv(outcomes(ids), folder / "outcomes.csv"),
        EventKind.FRAUD_REPORTS: write_csv(
            fraud_reports(ids[:1]).assign(report_id=f"rep-{start}"), folder / "fraud.csv"
        ),
    }


def test_a_contract_shaped_export_round_trips(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = import_files(contract_files(tmp_path / "in"), IDENTITY, data)
    assert result.status is ImportStatus.ACCEPTED
    assert [(t.rows_in, t.rows_written) for t in result.tables] == [(6, 6), (6, 6), (1, 1)]
    for kind in EventKind:
        assert read_table(data, kind.value).schema.equals(arrow_schema(kind))
    read = read_events(data, EventKind.ATTEMPTS)
    expected = attempts(6)
    assert read.columns.tolist() == column_names(EventKind.ATTEMPTS)
    for column in ["attempt_id", "account_id", "kind", "currency", "card_bin", "ip", "invoice_id"]:
        assert read[column].tolist() == expected[column].tolist()
    assert read["amount"].tolist() == [12.99] * 6
    assert read["retry_number"].tolist() == [0] * 6
    assert read["occurred_at"].tolist() == pd.to_datetime(expected["occurred_at"], utc=True).tolist()
    outcome = read_events(data, EventKind.OUTCOMES)
    assert outcome["decline_code"].isna().tolist() == [True, True, False, True, True, False]
    assert read_events(data, EventKind.FRAUD_REPORTS)["report_id"].tolist() == ["rep-0"]


def test_a_provider_export_round_trips_through_the_example_mapping(tmp_path: Path) -> None:
    source = provider_attempts(4)
    files = {
        EventKind.ATTEMPTS: write_csv(source, tmp_path / "transactions.csv"),
        EventKind.OUTCOMES: write_csv(
            provider_outcomes(source["TransactionID"].tolist()), tmp_path / "results.csv"
        ),
    }
    data = tmp_path / "data"
    result = import_files(files, load_mapping(EXAMPLE), data)
    assert result.status is ImportStatus.ACCEPTED, result.summary()
    read = read_events(data, EventKind.ATTEMPTS)
    assert read["attempt_id"].tolist() == ["T0000", "T0001", "T0002", "T0003"]
    assert read["occurred_at"][0] == pd.Timestamp("2025-02-01T09:15:00Z")  # 10:15 in Berlin
    assert read["kind"].tolist() == ["signup", "renewal", "renewal", "renewal"]
    assert set(read["plan_tier"]) == {"standard"}
    assert set(read["method_type"]) == {"card"}
    assert set(read["card_funding"]) == {"credit"}
    assert set(read["billing_country"]) == {"NA"}
    assert read["amount"].tolist() == [12.99] * 4
    assert set(read["currency"]) == {"EUR"}
    assert read["retry_number"].tolist() == [0] * 4
    assert read["invoice_id"].tolist() == ["C0/I0", "C1/I1", "C0/I2", "C1/I3"]
    assert read["channel"].isna().tolist() == [True, False, True, False]
    assert set(read["channel"].dropna()) == {"web"}
    assert read["reseller_id"].tolist() == ["R0", "R1", "R0", "R1"]
    outcome = read_events(data, EventKind.OUTCOMES)
    assert outcome["status"].tolist() == ["approved", "declined", "approved", "declined"]
    assert outcome["decline_code"].tolist()[1] == "insufficient_funds"
    extras = read_table(data, "attempts_extra").to_pandas()
    assert extras.to_dict("records") == [
        {"attempt_id": "T0001", "column": "CampaignCode", "value": "spring"},
        {"attempt_id": "T0003", "column": "CampaignCode", "value": "spring"},
    ]


def test_importing_the_same_files_twice_doubles_nothing(tmp_path: Path) -> None:
    files = contract_files(tmp_path / "in")
    data = tmp_path / "data"
    import_files(files, IDENTITY, data)
    again = import_files(files, IDENTITY, data, quarantine=tmp_path / "q")
    assert again.refused is False  # with quarantine, every row goes there
    assert [t.rows_written for t in again.tables] == [0, 0, 0]
    assert set(again.problems["code"]) == {"already_imported"}
    assert len(read_events(data, EventKind.ATTEMPTS)) == 6
    assert len(read_events(data, EventKind.OUTCOMES)) == 6


def test_new_rows_are_appended_as_a_new_part(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_files(contract_files(tmp_path / "a"), IDENTITY, data)
    assert next_part_number(data, "attempts") == 1
    result = import_files(contract_files(tmp_path / "b", n=3, start=100), IDENTITY, data)
    assert result.tables[0].part == data / "attempts" / "part-00001.parquet"
    assert len(read_events(data, EventKind.ATTEMPTS)) == 9
    assert not list(data.glob(".import-*"))  # the staging folders are gone


def test_outcomes_may_follow_attempts_imported_earlier(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = contract_files(tmp_path / "in")
    import_files({EventKind.ATTEMPTS: files[EventKind.ATTEMPTS]}, IDENTITY, data)
    later = import_files({EventKind.OUTCOMES: files[EventKind.OUTCOMES]}, IDENTITY, data)
    assert later.status is ImportStatus.ACCEPTED
    orphan = write_csv(outcomes(["att-404"]), tmp_path / "orphan.csv")
    refused = import_files({EventKind.OUTCOMES: orphan}, IDENTITY, data)
    assert refused.refused
    assert refused.problems["code"].tolist() == ["unknown_attempt"]


def test_a_bad_row_refuses_the_whole_import_and_writes_nothing(tmp_path: Path) -> None:
    files = contract_files(tmp_path / "in")
    write_csv(with_value(attempts(6), 3, "amount", "-1"), files[EventKind.ATTEMPTS])
    data = tmp_path / "data"
    result = import_files(files, IDENTITY, data)
    assert result.refused
    assert [t.rows_refused for t in result.tables] == [6, 6, 1]
    assert not list(data.rglob("*.parquet"))
    [problem] = result.problems.to_dict("records")
    assert (problem["row"], problem["column"], problem["code"]) == (4, "amount", "negative")
    assert any("4 column amount [negative]" in line for line in result.summary())


def test_quarantine_writes_good_rows_and_sends_bad_ones_with_reasons(tmp_path: Path) -> None:
    files = contract_files(tmp_path / "in")
    bad = with_value(with_value(attempts(6), 1, "payment_method_id", f"pm_{TEST_PAN}"), 4, "currency", "EURO")
    write_csv(bad, files[EventKind.ATTEMPTS])
    data, quarantine = tmp_path / "data", tmp_path / "quarantine"
    result = import_files(files, IDENTITY, data, quarantine=quarantine)
    assert result.status is ImportStatus.QUARANTINED
    counts = {t.kind: (t.rows_in, t.rows_written, t.rows_quarantined) for t in result.tables}
    assert counts == {
        EventKind.ATTEMPTS: (6, 4, 2),
        EventKind.OUTCOMES: (6, 4, 2),  # the outcomes of the two quarantined attempts follow them
        EventKind.FRAUD_REPORTS: (1, 1, 0),
    }
    assert read_events(data, EventKind.ATTEMPTS)["attempt_id"].tolist() == [
        "att-0",
        "att-2",
        "att-3",
        "att-5",
    ]
    held = result.tables[0].quarantine_file
    assert held is not None
    text = held.read_text()
    assert TEST_PAN not in text
    rows = pd.read_csv(held, dtype=str, keep_default_na=False)
    assert rows["source_row"].tolist() == ["2", "5"]
    assert rows["payment_method_id"][0] == "pm_[card number removed]"
    assert rows["currency"][1] == "EURO"
    assert "currency: unknown_currency: 'EURO' is not an ISO 4217 currency code" in rows["reasons"][1]
    assert rows.columns.tolist() == ["source_row", *attempts(1).columns, "reasons"]
    outcome_reasons = pd.read_csv(result.tables[1].quarantine_file or "", dtype=str)["reasons"]
    assert outcome_reasons.str.contains("its attempt is quarantined in this import").all()


def test_a_file_level_problem_refuses_everything_even_with_quarantine(tmp_path: Path) -> None:
    files = contract_files(tmp_path / "in")
    write_csv(attempts(6).drop(columns=["account_id"]), files[EventKind.ATTEMPTS])
    quarantine = tmp_path / "q"
    result = import_files(files, IDENTITY, tmp_path / "data", quarantine=quarantine)
    assert result.refused
    assert "note: nothing quarantined: a problem concerns a whole file or column" in result.summary()[1]
    assert not quarantine.exists()
    assert not list((tmp_path / "data").rglob("*.parquet"))


def test_parquet_exports_are_imported(tmp_path: Path) -> None:
    path = tmp_path / "attempts.parquet"
    attempts(3).to_parquet(path)
    result = import_files({EventKind.ATTEMPTS: path}, IDENTITY, tmp_path / "data")
    assert result.status is ImportStatus.ACCEPTED
    assert len(read_events(tmp_path / "data", EventKind.ATTEMPTS)) == 3


@pytest.mark.parametrize("suffix", [".xlsx", ""])
def test_unsupported_files_are_a_clear_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"attempts{suffix}"
    path.write_text("x")
    with pytest.raises(UnsupportedFileError, match=r"give a \.csv or \.parquet file"):
        import_files({EventKind.ATTEMPTS: path}, IDENTITY, tmp_path / "data")
