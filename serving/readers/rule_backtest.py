"""Backtest a draft rule before enabling it: replay it over a period of decisions and say what it would do.

One core (:func:`backtest_rows`) serves ``riskgate rules backtest`` and ``POST /v1/rule-backtest``: the rule
is compiled once against the served schema and the lists (the stored ones, with draft lists in their place),
then evaluated in a tight loop over the period's decisions (:class:`serving.store.base.DecisionRows`), each
reading only the names the rule reads, at the attempt's time (list items expire by it, as when scoring).
The decisions come from

* the decision log (:func:`log_backtest`): the attempt's fields the log keeps (its columns and the ``fields``
  kept for this, :mod:`serving.store.kept_fields`), the attributes, the feature vector (float32, as logged),
  the model outputs and the action taken. The account and payment method are kept only as keyed pseudonyms:
  a rule reading them is refused with a pointer to the data-directory backtest;
* a data directory (:func:`data_backtest`): the period is first replayed through the scoring engine by
  :func:`serving.readers.backtest.run_backtest` (features, both models, the policy: into a state directory
  of its own, resumable), then the rule reads the raw attempt fields of the events and the fraud reports of
  the data directory as labels.

What the answer's figures mean:

* ``hits``: the attempts whose condition is true (unknown and false do not hit), their share of the period's
  attempts and their amount by currency (never converted);
* ``fraud``: labels as known at ``as_of`` (default: the newest outcome or report time the log knows; a report
  made later is not known), counted only for attempts whose label is mature (:func:`serving.readers.trends.
  maturity_cutoff_us`, the trends' definition): ``frauds`` mature attempts reported as fraud, ``caught`` of
  them hit, ``recall`` = caught / frauds, ``precision`` = caught / mature hits; ``immature_hits`` are not
  judged;
* ``good``: hits no fraud report names (as of ``as_of``): attempts, distinct accounts (erased ones are not
  counted) and amount by currency (the revenue the rule would hold up); ``mature_attempts`` of them are known
  good;
* ``overlap``: of the hits, how many the models and policy (or an enabled rule) already blocked, already sent
  to review, and how many the rule newly touches (they were approved or deferred); ``by_rules``: hits an
  enabled rule decided;
* ``unreadable``: decisions whose values the rule could not read (erased accounts, decisions logged before
  the fields were kept, values of the wrong type): they do not hit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

from core.settings import DEV_PSEUDONYM_SECRET
from events.schema import CORE_FIELD_NAMES, EventKind, ExtensionField
from features.definitions import FeatureSet
from rules.book import RuleSpec
from rules.compiler import CompiledRule, compile_rule
from rules.errors import RuleValueError
from rules.lists import Lists
from rules.schema import Schema
from serving.errors import ServingError
from serving.readers.trends import FALLBACK_FRAUD_MATURITY_DAYS, Range, mature_mask, maturity_cutoff_us
from serving.scoring.models import ModelPair
from serving.store.base import ACTION_CODES, DecisionRanges, DecisionRows, epoch_us
from serving.store.kept_fields import KEPT_FIELDS, PSEUDONYMISED_FIELDS

logger = logging.getLogger(__name__)

#: How many hit attempt ids an answer shows by default, and at most.
SAMPLE_SIZE: Final = 20
MAX_SAMPLE: Final = 200
_BLOCK, _REVIEW = ACTION_CODES.index("block"), ACTION_CODES.index("review")


class RuleBacktestError(ServingError, ValueError):
    """A backtest that cannot be answered as asked: an empty log or period, a field the source does not
    keep. The message says what to do instead."""

    http_status = 422
    code = "invalid_backtest"


@dataclass(frozen=True)
class Draft:
    """The rule to replay (a stored rule's spec, or a draft's) and the lists it may read."""

    spec: RuleSpec
    lists: Lists


@dataclass(frozen=True)
class Sources:
    """What the replayed decisions are scored with: the served feature set's feature names (the order of
    the logged vectors) and the extension fields attributes may hold."""

    feature_names: tuple[str, ...]
    fields: tuple[ExtensionField, ...] = ()


def compile_draft(draft: Draft, schema: Schema) -> CompiledRule:
    """The draft compiled once against ``schema`` with its lists; a bad expression raises
    :class:`rules.errors.RuleError` (422, naming the position)."""
    return compile_rule(draft.spec.expression, schema.with_lists(draft.lists), draft.lists)


# -- the sources ---------------------------------------------------------------------------------------------


def log_backtest(  # noqa: PLR0917 (the query's parameters)
    reader: DecisionRanges,
    draft: Draft,
    schema: Schema,
    sources: Sources,
    span: Range,
    fraud_maturity_days: float,
    as_of: datetime | None = None,
    sample: int = SAMPLE_SIZE,
) -> dict[str, Any]:
    """Replay ``draft`` over the decisions of ``span`` in the log ``reader`` reads (see the module's
    docstring); ``as_of``: judge labels as known then (default: the newest label time the log knows)."""
    started = time.perf_counter()
    rule = compile_draft(draft, schema)
    refused = sorted(rule.names & set(PSEUDONYMISED_FIELDS))
    if refused:
        raise RuleBacktestError(
            f"the rule reads {', '.join(refused)}, which the decision log keeps only as a keyed pseudonym: "
            "backtest it over a data directory (riskgate rules backtest --data-dir DIR)"
        )
    bounds = reader.occurred_bounds()
    if bounds is None:
        raise RuleBacktestError(
            "the decision log holds no decision yet: score attempts first, or backtest over a data "
            "directory (riskgate rules backtest --data-dir DIR)"
        )
    width = len(sources.feature_names) if rule.names & set(sources.feature_names) else None
    rows = reader.decision_rows(epoch_us(span.start), epoch_us(span.end), width, _reads(rule, sources))
    if not rows.attempt_id:
        raise RuleBacktestError(
            f"no decision in [{span.start.isoformat()}, {span.end.isoformat()}): the log holds decisions "
            f"from {_moment(bounds[0]).isoformat()} to {_moment(bounds[1]).isoformat()}; choose a period "
            "within it"
        )
    known_as_of = reader.labels_as_of()
    judged = known_as_of if as_of is None else as_of
    return backtest_rows(rows, draft, rule, sources, span, fraud_maturity_days, judged, sample, started)


def _reads(rule: CompiledRule, sources: Sources) -> set[str]:
    """What of the log a rule needs besides what every backtest reads: the names it reads (columns, model
    outputs) and the JSON of the kept fields or of the attributes when it reads one of them."""
    reads = set(rule.names)
    if rule.names & set(KEPT_FIELDS):
        reads.add("fields")
    if rule.names & {f.name for f in sources.fields}:
        reads.add("attributes")
    return reads


def data_backtest(  # noqa: PLR0917 (the query's parameters)
    data_dir: Path,
    replay_dir: Path,
    models: ModelPair,
    feature_set: FeatureSet,
    draft: Draft,
    schema: Schema,
    period: tuple[datetime | None, datetime | None] = (None, None),
    fraud_maturity_days: float = FALLBACK_FRAUD_MATURITY_DAYS,
    as_of: datetime | None = None,
    sample: int = SAMPLE_SIZE,
    pseudonym_secret: str = DEV_PSEUDONYM_SECRET,
) -> dict[str, Any]:
    """Replay ``draft`` over ``period`` (start, end; each defaults as for ``riskgate backtest``: the last
    month of ``data_dir``).

    The period is first scored by :func:`serving.readers.backtest.run_backtest` into ``replay_dir`` with
    ``models`` (resumed when ``replay_dir`` holds this very replay: every attempt already decided is answered
    from its log), so the hits' overlap is with what the models and policy decided. The rule then reads the
    events' own attempt fields (every one, ids included), the logged features and model outputs; labels are
    the data directory's fraud reports known at ``as_of`` (default: its newest one).
    """
    from events.io import read_events  # noqa: PLC0415 (pyarrow: only this path reads events)
    from serving.readers.backtest import run_backtest  # noqa: PLC0415
    from serving.store.decisions import DecisionReader  # noqa: PLC0415

    rule = compile_draft(draft, schema)
    start, end = period
    summary = run_backtest(
        data_dir, replay_dir, models, feature_set, start=start, end=end, pseudonym_secret=pseudonym_secret
    )
    replayed = Range(datetime.fromisoformat(summary.start), datetime.fromisoformat(summary.end))
    started = time.perf_counter()
    width = len(feature_set.names) if rule.names & set(feature_set.names) else None
    with DecisionReader(replay_dir / "decisions.sqlite") as reader:
        rows = reader.decision_rows(epoch_us(replayed.start), epoch_us(replayed.end), width)
    if not rows.attempt_id:
        raise RuleBacktestError(
            f"{data_dir} holds no attempt in [{replayed.start.isoformat()}, {replayed.end.isoformat()}): "
            "choose a period within its events"
        )
    attempts = read_events(data_dir, EventKind.ATTEMPTS).set_index("attempt_id")
    reports = read_events(data_dir, EventKind.FRAUD_REPORTS)
    reported_at = pd.to_datetime(reports["reported_at"], utc=True)
    judged = (None if reported_at.empty else reported_at.max().to_pydatetime()) if as_of is None else as_of
    rows = _with_events(rows, attempts, reports)
    sources = Sources(tuple(feature_set.names), tuple(feature_set.fields))
    return backtest_rows(rows, draft, rule, sources, replayed, fraud_maturity_days, judged, sample, started)


def _with_events(rows: DecisionRows, attempts: pd.DataFrame, reports: pd.DataFrame) -> DecisionRows:
    """``rows`` reading every attempt field from the events (``attempts`` by attempt id) and the labels from
    the events' fraud reports (the earliest per attempt)."""
    chosen = attempts.reindex(rows.attempt_id)
    columns: dict[str, list[object]] = {
        name: [None if pd.isna(v) else v for v in chosen[name].tolist()]
        for name in chosen.columns
        if name in CORE_FIELD_NAMES
    }
    columns["attempt_id"] = list(rows.attempt_id)
    first = (
        pd.to_datetime(reports["reported_at"], utc=True).groupby(reports["attempt_id"]).min()
        if len(reports)
        else pd.Series(dtype="datetime64[us, UTC]")
    )
    reported = first.reindex(rows.attempt_id)
    reported_us = np.array(
        [-1 if pd.isna(t) else epoch_us(t.to_pydatetime()) for t in reported.tolist()], dtype=np.int64
    )
    return replace(rows, columns=columns, reported_us=reported_us)


# -- the core ------------------------------------------------------------------------------------------------


def backtest_rows(  # noqa: PLR0917 (one replay's inputs)
    rows: DecisionRows,
    draft: Draft,
    rule: CompiledRule,
    sources: Sources,
    span: Range,
    fraud_maturity_days: float,
    as_of: datetime | None,
    sample: int = SAMPLE_SIZE,
    started: float | None = None,
) -> dict[str, Any]:
    """The answer of a backtest of ``rule`` (``draft`` compiled) over ``rows`` (see the module's
    docstring)."""
    began = time.perf_counter() if started is None else started
    columns, unreadable_fields = _value_columns(rule, rows, sources)
    hit, errors = _evaluate(rule, columns, rows.occurred_us)
    answer = _figures(rows, hit, fraud_maturity_days, as_of, sample)
    answer["unreadable"] = {
        "erased": int(rows.erased.sum()),
        "without_fields": unreadable_fields,
        "value_errors": errors,
    }
    spec = draft.spec
    seconds = round(time.perf_counter() - began, 3)
    logger.info(
        "rule backtest of %r over %d decisions: %d hits in %.2f s", spec.name, len(hit), hit.sum(), seconds
    )
    return {
        "rule": {"name": spec.name, "action": spec.action.value, "expression": spec.expression},
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        **answer,
        "seconds": seconds,
    }


def _value_columns(
    rule: CompiledRule, rows: DecisionRows, sources: Sources
) -> tuple[dict[str, list[object]], int]:
    """One list of values per name the rule reads, and how many decisions lack a kept field it reads.

    A name the log keeps as a field is read from the field (exact), else (a decision logged before fields
    were kept) from the feature vector of the same name (float32 as logged); the fraud level ``unknown`` (no
    fraud model) is missing, as when scoring."""
    n = len(rows.attempt_id)
    index = {name: j for j, name in enumerate(sources.feature_names)}
    kept = _parsed(rows.fields) if rule.names & (set(KEPT_FIELDS) - set(rows.columns)) else None
    attributes = _parsed(rows.attributes) if rule.names & {f.name for f in sources.fields} else None
    out: dict[str, list[object]] = {}
    without = np.zeros(n, np.bool_)
    for name in sorted(rule.names):
        if name in rows.columns:
            out[name] = rows.columns[name]
        elif name in KEPT_FIELDS and kept is not None:
            out[name] = [None if values is None else values.get(name) for values in kept]
            if name in index and rows.features is not None:  # a field that is a feature too (retry_number)
                feature = rows.features[:, index[name]].astype(np.float64).tolist()
                out[name] = [f if v is None else v for v, f in zip(out[name], feature, strict=True)]
            else:
                without |= np.array([values is None for values in kept], dtype=np.bool_)
        elif name == "fraud_probability":
            out[name] = rows.fraud.tolist()
        elif name == "failure_probability":
            out[name] = rows.failure.tolist()
        elif name == "fraud_level":
            out[name] = [None if level in (None, "unknown") else level for level in rows.fraud_level]
        elif name in index and rows.features is not None:
            out[name] = rows.features[:, index[name]].astype(np.float64).tolist()
        elif attributes is not None:
            out[name] = [None if values is None else values.get(name) for values in attributes]
        else:  # a name of the schema no source holds: missing (unknown), never a hit
            out[name] = [None] * n
    return out, int((without & ~rows.erased).sum())


def _parsed(texts: Sequence[str | None]) -> list[dict[str, Any] | None]:
    return [None if text is None else orjson.loads(text) for text in texts]


def _evaluate(
    rule: CompiledRule, columns: Mapping[str, list[object]], occurred_us: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], int]:
    """Which decisions the rule hits (its condition true at the attempt's time), and how many met a value
    of the wrong type (:class:`rules.errors.RuleValueError`: not a hit)."""
    names = tuple(columns)
    evaluate = rule.evaluate
    n = len(occurred_us)
    rows: Iterator[tuple[object, ...]] = zip(*columns.values(), strict=True) if names else repeat((), n)
    hit = np.zeros(n, np.bool_)
    errors = 0
    for i, (at, values) in enumerate(zip(occurred_us.tolist(), rows, strict=True)):
        try:
            if evaluate(dict(zip(names, values, strict=True)), at) is True:
                hit[i] = True
        except RuleValueError:
            errors += 1
    return hit, errors


def _figures(
    rows: DecisionRows,
    hit: npt.NDArray[np.bool_],
    fraud_maturity_days: float,
    as_of: datetime | None,
    sample: int,
) -> dict[str, Any]:
    n = len(hit)
    hits = int(hit.sum())
    as_of_us = None if as_of is None else epoch_us(as_of.astimezone(UTC))
    known = (
        np.zeros(n, np.bool_)
        if as_of_us is None
        else (rows.reported_us >= 0) & (rows.reported_us <= as_of_us)
    )
    mature = mature_mask(rows.occurred_us, maturity_cutoff_us(as_of, fraud_maturity_days))
    fraud = mature & known
    mature_hits = int((hit & mature).sum())
    caught, frauds = int((hit & fraud).sum()), int(fraud.sum())
    good = hit & ~known
    amounts = np.array(rows.columns.get("amount") or [None] * n, dtype=np.float64)
    currencies = rows.columns.get("currency") or [None] * n
    touched = hit & (rows.action != _BLOCK) & (rows.action != _REVIEW)
    return {
        "attempts": n,
        "hits": {
            "attempts": hits,
            "share": hits / n if n else None,
            "amount": _by_currency(hit, amounts, currencies),
        },
        "fraud": {
            "as_of": None if as_of is None else as_of.astimezone(UTC).isoformat(),
            "maturity_days": float(fraud_maturity_days),
            "mature_attempts": int(mature.sum()),
            "frauds": frauds,
            "mature_hits": mature_hits,
            "caught": caught,
            "recall": caught / frauds if frauds else None,
            "precision": caught / mature_hits if mature_hits else None,
            "immature_hits": hits - mature_hits,
        },
        "good": {
            "attempts": int(good.sum()),
            "mature_attempts": int((good & mature).sum()),
            "accounts": len({rows.account_key[i] for i in np.flatnonzero(good)} - {None}),
            "amount": _by_currency(good, amounts, currencies),
        },
        "overlap": {
            "already_blocked": int((hit & (rows.action == _BLOCK)).sum()),
            "already_reviewed": int((hit & (rows.action == _REVIEW)).sum()),
            "newly_touched": int(touched.sum()),
            "by_rules": int((hit & rows.by_rule).sum()),
        },
        "sample": _sample(rows.attempt_id, hit, sample),
    }


def _by_currency(
    chosen: npt.NDArray[np.bool_], amounts: npt.NDArray[np.float64], currencies: Sequence[object]
) -> dict[str, float]:
    """The sum of the chosen decisions' amounts per currency (never converted; no amount: left out)."""
    sums: dict[str, float] = {}
    for i in np.flatnonzero(chosen & ~np.isnan(amounts)).tolist():
        currency = currencies[i]
        if currency is not None:
            sums[str(currency)] = sums.get(str(currency), 0.0) + float(amounts[i])
    return {currency: round(total, 6) for currency, total in sorted(sums.items())}


def _sample(attempt_ids: Sequence[str], hit: npt.NDArray[np.bool_], size: int) -> list[str]:
    """At most ``size`` hit attempt ids, evenly spread over the period (the first and the last included)."""
    where = np.flatnonzero(hit)
    if size <= 0 or len(where) == 0:
        return []
    picks = np.unique(np.linspace(0, len(where) - 1, min(size, len(where))).round().astype(np.int64))
    return [attempt_ids[i] for i in where[picks]]


def _moment(us: int) -> datetime:
    return pd.Timestamp(us, unit="us", tz=UTC).to_pydatetime()


def lines(result: Mapping[str, Any]) -> list[str]:
    """A backtest's answer as the command line prints it."""
    rule, hits, fraud, good = result["rule"], result["hits"], result["fraud"], result["good"]
    overlap, unreadable = result["overlap"], result["unreadable"]
    share = "n/a" if hits["share"] is None else f"{hits['share']:.2%}"
    recall = "n/a" if fraud["recall"] is None else f"{fraud['recall']:.1%}"
    precision = "n/a" if fraud["precision"] is None else f"{fraud['precision']:.1%}"
    return [
        f"rule {rule['name']} ({rule['action']}): {rule['expression']}",
        f"period {result['start']} .. {result['end']}: {result['attempts']} attempts",
        f"hits: {hits['attempts']} ({share}), amount {_money(hits['amount'])}",
        f"fraud (labels as of {fraud['as_of']}, mature after {fraud['maturity_days']:g} days): caught "
        f"{fraud['caught']} of {fraud['frauds']} mature frauds (recall {recall}, precision {precision}); "
        f"{fraud['immature_hits']} hits too recent to judge",
        f"good customers hit: {good['attempts']} attempts ({good['mature_attempts']} known good) of "
        f"{good['accounts']} accounts, amount {_money(good['amount'])}",
        f"overlap: {overlap['already_blocked']} already blocked, {overlap['already_reviewed']} already "
        f"reviewed, {overlap['newly_touched']} newly touched ({overlap['by_rules']} decided by rules)",
        f"unreadable: {unreadable['erased']} erased, {unreadable['without_fields']} without the fields, "
        f"{unreadable['value_errors']} wrong values",
        f"sample: {', '.join(result['sample']) or '-'}",
        f"replayed in {result['seconds']:.2f} s",
    ]


def _money(amounts: Mapping[str, float]) -> str:
    return ", ".join(f"{total:,.2f} {currency}" for currency, total in amounts.items()) or "0"
