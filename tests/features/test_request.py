"""Request-time features: the online engine's one-attempt path gives exactly the vectorised path's floats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import request
from features.definitions import CALENDAR_TRANSFORMS, RequestFeature, Transform
from features.iptv import FEATURE_SET
from features.plan import to_us
from tests.features.provider import PROVIDER_SET

DEFINITIONS = [
    *dict.fromkeys(
        d for s in (FEATURE_SET, PROVIDER_SET) for d in s.definitions if isinstance(d, RequestFeature)
    )
]
VOCABULARY = PROVIDER_SET.vocabulary
MICROSECONDS = st.integers(min_value=-2_000_000_000_000_000, max_value=6_000_000_000_000_000)
#: Instants of the contract's range (2000-2100), in µs since the epoch.
CONTRACT_US = st.integers(min_value=946_684_800_000_000, max_value=4_102_444_799_999_999)
TIMES = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1), timezones=st.sampled_from([UTC, None])
)


def _value_of(column: str) -> st.SearchStrategy[Any]:
    """Anything an attempt's field may hold: missing, a valid value, or any other text."""
    options: list[st.SearchStrategy[Any]] = [st.none(), st.text(max_size=12)]
    if column in VOCABULARY:
        options.append(st.sampled_from(sorted(VOCABULARY[column])))
    if column == "card_exp":
        options.append(st.builds("{:04d}-{:02d}".format, st.integers(1900, 2200), st.integers(0, 13)))
    if any(d.transform == Transform.AGE and d.column == column for d in DEFINITIONS):
        options += [TIMES, TIMES.map(datetime.isoformat), st.builds(pd.Timestamp, TIMES)]
    if any(d.transform == Transform.NUMBER and d.column == column for d in DEFINITIONS):
        options = [st.none(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.booleans()]
    return st.one_of(*options)


ATTEMPTS = st.fixed_dictionaries({c: _value_of(c) for c in request.required_columns(DEFINITIONS)})


def test_every_transform_is_exercised() -> None:
    assert {d.transform for d in DEFINITIONS} == set(Transform)


@settings(max_examples=300, deadline=None)
@given(attempt=ATTEMPTS, t_us=MICROSECONDS)
def test_one_attempt_gives_the_vectorised_features_exactly(attempt: dict[str, Any], t_us: int) -> None:
    columns = {c: np.array([v], dtype=object) for c, v in attempt.items()}
    vectorised = request.compute(DEFINITIONS, columns, np.array([t_us], dtype=np.int64), VOCABULARY)[0]
    one = request.compute_one(DEFINITIONS, attempt, t_us, VOCABULARY)
    assert one.dtype == np.float64
    assert np.array_equal(one, vectorised, equal_nan=True), dict(
        zip([d.name for d in DEFINITIONS], one, strict=True)
    )


def test_a_transform_without_a_scalar_form_goes_through_the_vectorised_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempt = {"card_exp": "2027-02", "amount": 9.99, "billing_country": "DE", "ip_country": "FR"}
    t_us = 1_780_000_000_000_000
    expected = request.compute_one(DEFINITIONS, attempt, t_us, VOCABULARY)
    monkeypatch.setattr(request, "_SCALAR", {})
    assert np.array_equal(
        request.compute_one(DEFINITIONS, attempt, t_us, VOCABULARY), expected, equal_nan=True
    )


@settings(max_examples=100, deadline=None)
@given(attempt=ATTEMPTS, t_us=MICROSECONDS)
def test_compute_at_one_time_is_the_vectorised_row(attempt: dict[str, Any], t_us: int) -> None:
    """The scoring path (one query time) takes the scalar route; it must give the batch engine's floats."""
    columns = {c: np.array([v], dtype=object) for c, v in attempt.items()}
    times = np.array([t_us], dtype=np.int64)
    vectorised = request.compute(DEFINITIONS, columns, times, VOCABULARY)
    at = request.compute_at(DEFINITIONS, attempt, times, VOCABULARY)
    assert at.shape == vectorised.shape
    assert np.array_equal(at, vectorised, equal_nan=True)


ZONES = st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"])
CLOCK = [
    RequestFeature(t, timezone=zone)
    for zone in ("Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu")
    for t in sorted(CALENDAR_TRANSFORMS)
]


def _transitions(zone: str, year: int) -> list[int]:
    """The instants (µs) at which the zone's offset changes in a year (hour by hour, then bisection)."""
    tz = ZoneInfo(zone)
    found = []
    start = datetime(year, 1, 1, tzinfo=UTC)
    for hour in range(366 * 24):
        a, b = start + timedelta(hours=hour), start + timedelta(hours=hour + 1)
        if a.astimezone(tz).utcoffset() != b.astimezone(tz).utcoffset():
            lo, hi = to_us(a), to_us(b)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                moment = datetime.fromtimestamp(mid / 1e6, UTC)
                same = moment.astimezone(tz).utcoffset() == a.astimezone(tz).utcoffset()
                lo, hi = (mid, hi) if same else (lo, mid)
            found.append(hi)
    return found


TRANSITIONS = {zone: _transitions(zone, 2026) for zone in ("Europe/Paris", "Australia/Lord_Howe")}


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(sorted(TRANSITIONS)),
    which=st.integers(0, 1),
    delta=st.integers(-3 * 3_600 * 10**6, 3 * 3_600 * 10**6),
)
def test_local_clocks_follow_daylight_saving_changes(zone: str, which: int, delta: int) -> None:
    """Around each change of offset, the local hour, day and flags are zoneinfo's, in both forms."""
    t_us = TRANSITIONS[zone][which] + delta
    local = datetime.fromtimestamp(t_us // 10**6, ZoneInfo(zone))
    features = [RequestFeature(t, timezone=zone) for t in (Transform.HOUR_OF_DAY, Transform.DAY_OF_MONTH)]
    features += [RequestFeature(t, timezone=zone) for t in (Transform.DAY_OF_WEEK, Transform.IS_WEEKEND)]
    features += [RequestFeature(Transform.IS_NIGHT, timezone=zone)]
    expected = [
        local.hour,
        local.day,
        local.weekday(),
        float(local.weekday() >= 5),
        float(local.hour >= 22 or local.hour < 6),
    ]
    assert request.compute_one(features, {}, t_us).tolist() == expected
    assert request.compute(features, {}, np.array([t_us], dtype=np.int64))[0].tolist() == expected


@settings(max_examples=50, deadline=None)
@given(times=st.lists(CONTRACT_US, min_size=1, max_size=40), seed=st.integers(0, 2**31))
def test_local_clocks_do_not_depend_on_the_other_rows(times: list[int], seed: int) -> None:
    """A row's calendar features are the same alone, in any batch, in any order (one offset per instant)."""
    t_us = np.array(times, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(t_us))
    together = request.compute(CLOCK, {}, t_us)
    assert np.array_equal(request.compute(CLOCK, {}, t_us[order]), together[order])
    for row, t in enumerate(times):
        assert request.compute_one(CLOCK, {}, t).tolist() == together[row].tolist()


def test_age_counts_from_the_time_field_and_is_nan_when_missing() -> None:
    age = [RequestFeature(Transform.AGE, "box_activated_at", unit=unit) for unit in ("days", "hours")]
    t_us = to_us(datetime(2026, 3, 11, 12, tzinfo=UTC))
    created = pd.Series(
        pd.to_datetime(["2026-03-01T00:00:00Z", "NaT", "2026-03-11T18:00:00Z"], utc=True).as_unit("us")
    )
    out = request.compute(age, {"box_activated_at": created}, np.full(3, t_us, dtype=np.int64))
    np.testing.assert_array_equal(out[0], [10.5, 252.0])
    assert np.isnan(out[1]).all()
    np.testing.assert_array_equal(out[2], [-0.25, -6.0])
    for text in ("2026-03-01T00:00:00Z", "2026-03-01T01:00:00+01:00", "2026-03-01 00:00:00"):
        assert request.compute_one(age, {"box_activated_at": text}, t_us).tolist() == [10.5, 252.0]
    assert np.isnan(request.compute_one(age, {"box_activated_at": "yesterday"}, t_us)).all()
