"""The rule backtest's figures over any decisions (hypothesis): hits, shares, fraud caught among mature
labels known at as_of, good customers and revenue, overlap; and what the log cannot tell a rule (decisions
logged before the fields were kept, erased accounts) is counted, never a hit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.iptv import FEATURE_SET
from rules.book import RuleAction, RuleSpec
from rules.schema import schema_for
from serving.readers.rule_backtest import Draft, Sources, backtest_rows, compile_draft, log_backtest
from serving.readers.trends import Range
from serving.store.base import ACTION_CODES, DecisionRecord, DecisionRows, epoch_us, features_blob
from serving.store.decisions import DecisionLog
from serving.store.kept_fields import COLUMN_FIELDS
from tests.serving.readers.test_trends import decision

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
SCHEMA = schema_for(FEATURE_SET)
SOURCES = Sources(tuple(FEATURE_SET.names))

decisions = st.lists(
    st.tuples(
        st.integers(0, 60),  # day of the attempt
        st.sampled_from([5.0, 9.99, 20.0, 45.5]),  # amount
        st.sampled_from(["EUR", "GBP"]),
        st.sampled_from(ACTION_CODES),
        st.one_of(st.none(), st.integers(0, 90)),  # day of the fraud report
        st.integers(0, 5),  # account
    ),
    min_size=1,
    max_size=60,
)


def rows_of(drawn: list[tuple[int, float, str, str, int | None, int]]) -> DecisionRows:
    n = len(drawn)
    start = epoch_us(T0)
    columns: dict[str, list[object]] = {name: [None] * n for name in COLUMN_FIELDS}
    columns["attempt_id"] = [f"a{i}" for i in range(n)]
    columns["amount"] = [d[1] for d in drawn]
    columns["currency"] = [d[2] for d in drawn]
    return DecisionRows(
        attempt_id=[f"a{i}" for i in range(n)],
        occurred_us=np.array([start + d[0] * DAY_US for d in drawn], dtype=np.int64),
        account_key=[f"k{d[5]}" for d in drawn],
        action=np.array([ACTION_CODES.index(d[3]) for d in drawn], dtype=np.int64),
        by_rule=np.zeros(n, np.bool_),
        fraud=np.full(n, np.nan),
        failure=np.full(n, np.nan),
        fraud_level=[None] * n,
        columns=columns,
        fields=[None] * n,
        attributes=[None] * n,
        features=None,
        reported_us=np.array([-1 if d[4] is None else start + d[4] * DAY_US for d in drawn], dtype=np.int64),
        erased=np.zeros(n, np.bool_),
    )


@settings(max_examples=60, deadline=None)
@given(drawn=decisions, threshold=st.sampled_from([0.0, 9.99, 10.0, 45.5]), as_of_day=st.integers(0, 90),
       maturity=st.sampled_from([0.0, 10.0, 30.0]))  # fmt: skip
def test_the_figures_are_those_of_a_plain_computation(
    drawn: list[tuple[int, float, str, str, int | None, int]],
    threshold: float,
    as_of_day: int,
    maturity: float,
) -> None:
    draft = Draft(RuleSpec("draft", RuleAction.BLOCK, f"amount > {threshold}"), {})
    as_of = T0 + timedelta(days=as_of_day)
    span = Range(T0, T0 + timedelta(days=61))
    answer = backtest_rows(
        rows_of(drawn), draft, compile_draft(draft, SCHEMA), SOURCES, span, maturity, as_of
    )
    frame = pd.DataFrame(drawn, columns=["day", "amount", "currency", "action", "reported", "account"])
    hit = frame["amount"] > threshold
    known = frame["reported"].notna() & (frame["reported"] <= as_of_day)
    mature = frame["day"] <= as_of_day - maturity
    good = hit & ~known
    assert answer["hits"]["attempts"] == int(hit.sum())
    assert answer["hits"]["share"] == hit.mean()
    assert answer["hits"]["amount"] == frame[hit].groupby("currency")["amount"].sum().round(6).to_dict()
    fraud = answer["fraud"]
    assert fraud["frauds"] == int((known & mature).sum())
    assert fraud["caught"] == int((hit & known & mature).sum())
    assert fraud["mature_hits"] == int((hit & mature).sum())
    assert fraud["recall"] == (fraud["caught"] / fraud["frauds"] if fraud["frauds"] else None)
    assert fraud["precision"] == (fraud["caught"] / fraud["mature_hits"] if fraud["mature_hits"] else None)
    assert answer["good"]["attempts"] == int(good.sum())
    assert answer["good"]["accounts"] == frame.loc[good, "account"].nunique()
    overlap = answer["overlap"]
    assert overlap["already_blocked"] == int((hit & (frame["action"] == "block")).sum())
    assert overlap["already_reviewed"] == int((hit & (frame["action"] == "review")).sum())
    assert overlap["newly_touched"] == int((hit & frame["action"].isin(["approve", "defer"])).sum())
    assert set(answer["sample"]) <= {f"a{i}" for i in np.flatnonzero(hit)}
    assert len(answer["sample"]) == min(20, int(hit.sum()))


def test_decisions_the_rule_cannot_read_are_counted_and_never_hit(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.sqlite")

    def approved(attempt_id: str, hours: int) -> DecisionRecord:
        at = T0 + timedelta(hours=hours)
        return decision(attempt_id, at, action="approve", fraud=0.1, failure=0.1, amount=9.0)

    old = approved("old", 0)  # logged before fields were kept
    kept = replace(approved("new", 1), account_key="other", fields={"device_id": "dev-1"})
    gone = replace(approved("gone", 2), account_key="erased", fields={"device_id": "dev-1"})
    for record in (old, kept, gone):
        log.record(record)
    log.erase_account("erased", 0)
    draft = Draft(RuleSpec("draft", RuleAction.BLOCK, "device_id == 'dev-1'"), {})
    with log.ranges() as reader:
        answer = log_backtest(reader, draft, SCHEMA, SOURCES, Range(T0, T0 + timedelta(days=1)), 90.0)
    log.close()
    assert answer["hits"]["attempts"] == 1
    assert answer["sample"] == ["new"]
    assert answer["unreadable"] == {"erased": 1, "without_fields": 1, "value_errors": 0}


def test_a_field_that_is_a_feature_too_is_read_from_the_vector_of_a_decision_logged_without_fields(
    tmp_path: Path,
) -> None:
    vector = np.zeros(len(FEATURE_SET.names))
    vector[FEATURE_SET.names.index("retry_number")] = 2.0
    log = DecisionLog(tmp_path / "decisions.sqlite")
    old = decision("old", T0, action="approve", fraud=0.1, failure=0.1, amount=9.0)
    log.record(replace(old, features=features_blob(vector)))
    log.record(replace(decision("new", T0, action="approve", fraud=0.1, failure=0.1, amount=9.0),
                       fields={"retry_number": 1}, features=features_blob(vector)))  # fmt: skip
    draft = Draft(RuleSpec("draft", RuleAction.BLOCK, "retry_number >= 2"), {})
    with log.ranges() as reader:
        answer = log_backtest(reader, draft, SCHEMA, SOURCES, Range(T0, T0 + timedelta(days=1)), 90.0)
    log.close()
    assert answer["sample"] == ["old"]  # the kept field (1) wins over the vector (2) when it is there
    assert answer["unreadable"]["without_fields"] == 0
