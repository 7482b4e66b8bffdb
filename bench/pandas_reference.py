"""The plain pandas reference: the same aggregates, written the way a notebook would, with
``groupby().rolling()`` over time windows, ``groupby().cumsum()/ffill()`` for whole-history features and
``rolling().apply()`` for distinct counts.

It reads the same declarations (so it computes the same features) but shares no code with the engines except
request-time features (:mod:`features.request`). ``make bench`` times it side by side with the batch engine
and checks that both agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import request
from features.definitions import (
    DECLINE_FAMILY_OF,
    TIME_UNITS,
    Aggregate,
    AmountToUsual,
    FeatureSet,
    Filter,
    Op,
    RequestFeature,
    Source,
)

QUERY, EVENT = 0, 1  # at equal times queries sort first: an event at T never counts for an attempt at T


def build_features_pandas(
    attempts: pd.DataFrame, outcomes: pd.DataFrame, reports: pd.DataFrame, feature_set: FeatureSet
) -> pd.DataFrame:
    out = pd.DataFrame({"attempt_id": attempts["attempt_id"].to_numpy()})
    requests = [d for d in feature_set.definitions if isinstance(d, RequestFeature)]
    columns = {c: attempts[c].to_numpy(dtype=object) for c in request.required_columns(requests)}
    t_us = (
        attempts["occurred_at"]
        .dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .astype("datetime64[us]")
        .astype("int64")
    )
    values = request.compute(requests, columns, t_us.to_numpy(), feature_set.vocabulary)
    for k, name in enumerate(d.name for d in requests):
        out[name] = values[:, k]
    sources = _sources(attempts, outcomes, reports)
    for aggregate in feature_set.aggregates:
        out[aggregate.name] = _aggregate(aggregate, attempts, sources[aggregate.source]).to_numpy()
    for definition in feature_set.definitions:
        if isinstance(definition, AmountToUsual):
            out[definition.name] = attempts["amount"].to_numpy() / out[definition.usual.name].to_numpy()
    return out[["attempt_id", *feature_set.names]]


def _sources(
    attempts: pd.DataFrame, outcomes: pd.DataFrame, reports: pd.DataFrame
) -> dict[Source, pd.DataFrame]:
    base = attempts.rename(columns={"occurred_at": "attempt_time"})
    joined_outcomes = outcomes.merge(base, on="attempt_id", how="inner")
    joined_outcomes["decline_family"] = joined_outcomes["decline_code"].map(DECLINE_FAMILY_OF)
    joined_reports = reports.merge(base, on="attempt_id", how="inner").rename(
        columns={"reported_at": "occurred_at"}
    )
    return {
        Source.ATTEMPTS: attempts.assign(event_id=attempts["attempt_id"]),
        Source.OUTCOMES: joined_outcomes.assign(event_id=joined_outcomes["attempt_id"]),
        Source.REPORTS: joined_reports.assign(event_id=joined_reports["report_id"]),
    }


def _aggregate(aggregate: Aggregate, attempts: pd.DataFrame, source: pd.DataFrame) -> pd.Series:
    key = aggregate.entity.key
    events = source[source[key].notna()]
    flt = aggregate.filter
    matched = pd.Series(True, index=events.index)
    if isinstance(flt, Filter):
        matched = events[flt.field].isin(flt.values)
    elif flt is not None:  # a range [low, high) of a number; missing (NaN) matches no range
        numbers = pd.to_numeric(events[flt.field], errors="coerce")
        matched = numbers.notna()
        matched &= numbers >= flt.low if flt.low is not None else True
        matched &= numbers < flt.high if flt.high is not None else True
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "key": events[key].astype(str),
                    "time": events["occurred_at"],
                    "kind": EVENT,
                    "tie": events["event_id"].astype(str),
                    "matched": matched.astype(float),
                    "one": 1.0,
                    "amount": events["amount"].where(matched),
                    "item": events[aggregate.value] if aggregate.op == Op.DISTINCT else None,
                    "row": -1,
                }
            ),
            pd.DataFrame(
                {
                    "key": attempts[key].astype(str).where(attempts[key].notna()),
                    "time": attempts["occurred_at"],
                    "kind": QUERY,
                    "tie": "",
                    "matched": 0.0,
                    "one": 0.0,
                    "amount": np.nan,
                    "item": None,
                    "row": np.arange(len(attempts)),
                }
            ),
        ],
        ignore_index=True,
    )
    frame = frame[frame["key"].notna()].sort_values(["key", "time", "kind", "tie"], kind="stable")
    values = _windowed(aggregate, frame) if aggregate.window is not None else _whole_history(aggregate, frame)
    queries = frame["kind"] == QUERY
    result = np.full(len(attempts), np.nan)
    result[frame.loc[queries, "row"].to_numpy(dtype=np.int64)] = values[queries.to_numpy()]
    return pd.Series(result)


def _windowed(aggregate: Aggregate, frame: pd.DataFrame) -> np.ndarray:
    width = pd.Timedelta(seconds=aggregate.window.seconds if aggregate.window else 0)
    rolling = frame.set_index("time").groupby("key", sort=False).rolling(width, closed="left")
    op = aggregate.op
    if op == Op.COUNT:
        result = rolling["matched"].sum()
    elif op == Op.SUM:
        result = rolling["amount"].sum()
    elif op == Op.MEAN:
        result = rolling["amount"].mean()
    elif op == Op.MAX:
        result = rolling["amount"].max()
    elif op == Op.RATIO:
        result = rolling["matched"].sum() / rolling["one"].sum().replace(0.0, np.nan)
    else:  # distinct: a rolling apply over category codes
        codes = (
            pd.Series(pd.factorize(frame["item"])[0], index=frame.index).astype(float).replace(-1.0, np.nan)
        )
        frame = frame.assign(code=codes.where(frame["matched"] == 1.0))
        rolling = frame.set_index("time").groupby("key", sort=False).rolling(width, closed="left")
        result = rolling["code"].apply(lambda x: len(np.unique(x[~np.isnan(x)])), raw=True)
    values = result.to_numpy(dtype=float)
    if op in (Op.COUNT, Op.SUM, Op.DISTINCT):
        values = np.nan_to_num(values, nan=0.0)  # an empty window counts zero
    return values


def _whole_history(aggregate: Aggregate, frame: pd.DataFrame) -> np.ndarray:
    is_event = frame["kind"] == EVENT
    hit = is_event & (frame["matched"] == 1.0)
    op = aggregate.op
    unit = pd.Timedelta(seconds=TIME_UNITS[aggregate.unit])
    if op == Op.COUNT:
        return hit.astype(float).groupby(frame["key"], sort=False).cumsum().to_numpy()
    if op in (Op.TIME_SINCE_LAST, Op.TIME_SINCE_FIRST):
        stamp = frame["time"].where(hit)
        if op == Op.TIME_SINCE_FIRST:
            stamp = stamp.groupby(frame["key"], sort=False).cummin()
        seen = stamp.groupby(frame["key"], sort=False).ffill()
        elapsed = (frame["time"] - seen).dt.total_seconds() / unit.total_seconds()
        return np.asarray(elapsed, dtype=float)
    # consecutive: length of the trailing run of matching events, NaN before any event
    resets = (is_event & ~hit).groupby(frame["key"], sort=False).cumsum()
    run = hit.astype(float).groupby([frame["key"], resets], sort=False).cumsum()
    any_event = is_event.groupby(frame["key"], sort=False).cumsum() > 0
    return run.where(any_event).to_numpy(dtype=float)
