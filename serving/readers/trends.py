"""Risk trends from the decision log: per time bucket and segment, volumes, actions, scores, realised rates.

One SQL query reads the range's decisions (with their outcome and whether a fraud report names them) into
numpy columns (:meth:`serving.store.base.DecisionRanges.trend_columns`); everything else is vectorised
here:
each decision gets a group number (segment value x bucket), and counts, means, sums and quantiles are
computed per group with ``bincount`` and one sort (SQLite has no quantile function).

What the figures mean (``GET /v1/trends`` returns them; the report draws them):

* Buckets are calendar-aligned in UTC by the attempt's ``occurred_at``: hours, days from midnight, weeks from
  Monday midnight. The first and last bucket may be partial when ``start``/``end`` fall inside one.
  Every bucket of the range is listed, those without attempts too (count 0, figures null).
* Score figures (mean, p50, p90, p99; linear interpolation) are over the decisions that have that score;
  a fallback decision (model unavailable) counts in ``attempts`` and ``actions`` only.
* Fraud labels take time: ``as_of`` is the newest outcome or report time the log knows, and an attempt's
  label is *mature* when it occurred at least ``fraud_maturity_days`` before ``as_of``. ``predicted_rate``
  is the mean fraud probability over the bucket's mature attempts and ``realised_rate`` the share of them a
  fraud report (chargeback or confirmed fraud) names; both are null without mature attempts.
* Decline rates: over the attempts with a gateway outcome, the mean failure probability against the share
  declined or errored.
* Segments: a logged column (plan tier, method type, ...) or one of the served feature set's attributes, a
  category (one series per value) or a key (its :data:`KEY_SEGMENT_TOP` most frequent values in the range,
  then ``"other"`` for the rest); attempts without a value make the ``null`` series.
* Money at risk is ``sum(amount x probability)``. Amounts come in several currencies and riskgate keeps no
  exchange rates, so nothing is converted: ``fraud``/``failure`` sum the attempts in the range's main
  currency (the one most attempts of the whole range use) and ``by_currency`` gives every currency's sums.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from events.schema import EARLIEST_TIME, LATEST_TIME, ExtensionField, FieldType
from serving.errors import ServingError
from serving.store.base import (
    SEGMENT_COLUMNS,
    STATUS_CODES,
    AttributeSegment,
    DecisionRanges,
    TrendColumns,
    epoch_us,
)

if TYPE_CHECKING:
    from registry.bundle import ModelBundle

logger = logging.getLogger(__name__)

Bucket = Literal["hour", "day", "week"]
BUCKETS: Final[dict[str, timedelta]] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
SEGMENTS: Final = ("none", *SEGMENT_COLUMNS)
#: The attribute types trends may segment by: a category (every value) or a key (the top values by volume).
SEGMENT_TYPES: Final = (FieldType.CATEGORY, FieldType.KEY)
#: A key segment's series: its most frequent values in the range, then "other" (a key has many values).
KEY_SEGMENT_TOP: Final = 10
ACTIONS: Final = ("approve", "review", "block", "defer")
QUANTILES: Final = (0.5, 0.9, 0.99)
DEFAULT_DAYS: Final = 30
MAX_BUCKETS: Final = 10_000
#: The fraud label delay when no fraud model bundle says (training measures it: 80 days on the default world).
FALLBACK_FRAUD_MATURITY_DAYS: Final = 90.0
_MONDAY: Final = datetime(1970, 1, 5, tzinfo=UTC)  # weeks start on Monday (ISO 8601)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_LATEST_US: Final = epoch_us(LATEST_TIME)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class TrendQueryError(ServingError, ValueError):
    """A trends or drift query the service cannot answer as asked (bad or inconsistent parameters)."""

    http_status = 422
    code = "invalid_query"


@dataclass(frozen=True)
class Range:
    """A resolved time range ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime


def parse_moment(name: str, text: str | None) -> datetime | None:
    """An ISO 8601 date or time parameter as UTC (a date is its midnight; a time without offset is UTC)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TrendQueryError(
            f"{name} is not an ISO 8601 date or time: use e.g. 2026-03-01 or 2026-03-01T12:00:00Z"
        ) from None
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first representable UTC time
        utc = None
    if utc is None or not EARLIEST_TIME <= utc <= LATEST_TIME:
        raise TrendQueryError(
            f"{name} must be from {EARLIEST_TIME.date()} to {LATEST_TIME.date()} (UTC), as event times are"
        )
    return utc


def resolve_range(reader: DecisionRanges, start: datetime | None, end: datetime | None) -> Range:
    """The range asked for; missing ends default to the last :data:`DEFAULT_DAYS` days of the log.

    Without ``end``: just after the newest decision's ``occurred_at`` (now for an empty log). Without
    ``start``: ``DEFAULT_DAYS`` before ``end``.
    """
    if end is None:
        bounds = reader.occurred_bounds()
        # (a log written before times were range-checked may hold later ones: the default stays representable)
        end = datetime.now(UTC) if bounds is None else _EPOCH + min(bounds[1] + 1, _LATEST_US) * _US
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise TrendQueryError(
            f"start ({start.isoformat()}) must be before end ({end.isoformat()}): the range is [start, end)"
        )
    return Range(start, end)


@dataclass(frozen=True)
class Grid:
    """The range's calendar buckets: ``origin`` (the first bucket's start) and ``width``, in microseconds."""

    origin_us: int
    width_us: int
    count: int

    @classmethod
    def of(cls, span: Range, bucket: str) -> Grid:
        if bucket not in BUCKETS:
            raise TrendQueryError(f"bucket must be one of {sorted(BUCKETS)}")
        width = BUCKETS[bucket] // _US
        anchor = epoch_us(_MONDAY) if bucket == "week" else 0
        start, end = epoch_us(span.start), epoch_us(span.end)
        origin = anchor + (start - anchor) // width * width
        count = -(-(end - origin) // width)
        if count > MAX_BUCKETS:
            raise TrendQueryError(
                f"{count} {bucket} buckets in the range: at most {MAX_BUCKETS}; narrow the range or use "
                "a larger bucket"
            )
        return cls(origin, width, count)

    def index(self, occurred_us: I64) -> I64:
        return (occurred_us - self.origin_us) // self.width_us

    def start_of(self, i: int) -> datetime:
        return _EPOCH + (self.origin_us + i * self.width_us) * _US


def maturity_days(fraud_bundle: ModelBundle | None) -> float:
    """The fraud label delay the model was trained with (its ``label_delay_days``), else the fallback."""
    if fraud_bundle is not None:
        saved = fraud_bundle.info.get("label_delay_days")
        if saved is not None:
            return float(saved)
    return FALLBACK_FRAUD_MATURITY_DAYS


def maturity_cutoff_us(as_of: datetime | None, fraud_maturity_days: float) -> int | None:
    """The latest ``occurred_us`` whose fraud label is mature as of ``as_of`` (the newest label time known):
    an attempt's label is mature when it occurred at least ``fraud_maturity_days`` before; None when no
    label is known yet (nothing is mature)."""
    return None if as_of is None else epoch_us(as_of - timedelta(days=fraud_maturity_days))


def mature_mask(occurred_us: I64, cutoff_us: int | None) -> npt.NDArray[np.bool_]:
    """Which attempts (by ``occurred_us``) have a mature fraud label (see :func:`maturity_cutoff_us`)."""
    if cutoff_us is None:
        return np.zeros(len(occurred_us), np.bool_)
    return occurred_us <= cutoff_us


def _grouped_quantiles(groups: I64, values: F64, n_groups: int) -> F64:
    """Per group, the :data:`QUANTILES` of the finite ``values`` (NaN for a group with none); shape (n, q).

    ``values`` are probabilities (0 to 1), so one sort on ``2 * group + value`` orders by group, then value.
    """
    keep = ~np.isnan(values)
    g, v = groups[keep], values[keep]
    order = np.argsort(2.0 * g + v)
    g, v = g[order], v[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full((n_groups, len(QUANTILES)), np.nan)
    has = counts > 0
    for j, q in enumerate(QUANTILES):
        position = starts[has] + q * (counts[has] - 1)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, starts[has] + counts[has] - 1)
        out[has, j] = v[low] + (v[high] - v[low]) * (position - low)
    return out


def _sum(groups: I64, weights: F64 | npt.NDArray[np.bool_], n_groups: int) -> F64:
    summed = np.bincount(groups, weights=np.asarray(weights, dtype=np.float64), minlength=n_groups)
    return summed.astype(np.float64, copy=False)


def _ratio(numerator: F64, denominator: F64) -> F64:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-300), np.nan)


@dataclass(frozen=True)
class _Figures:
    """Per-group arrays (group = segment code x bucket count + bucket index)."""

    attempts: F64
    actions: F64  # (n, 4)
    fraud_mean: F64
    fraud_q: F64
    fraud_predicted: F64
    fraud_realised: F64
    mature_count: F64
    failure_mean: F64
    failure_q: F64
    failure_predicted: F64
    failure_realised: F64
    with_outcome: F64
    money: F64  # (n, currencies, 2): fraud, failure
    money_seen: npt.NDArray[np.bool_]  # (n, currencies): any money at risk in that currency
    currencies: list[str]


def _figures(columns: TrendColumns, groups: I64, n: int, mature: npt.NDArray[np.bool_]) -> _Figures:
    fraud, failure = columns.fraud, columns.failure
    scored = ~np.isnan(fraud)
    actions = np.bincount(groups * 4 + columns.action, minlength=n * 4).reshape(n, 4).astype(np.float64)
    labelled = mature & scored
    mature_count = _sum(groups, mature, n)
    labelled_count = _sum(groups, labelled, n)
    failed = np.isin(columns.status, [STATUS_CODES.index("declined"), STATUS_CODES.index("error")])
    known = (columns.status > 0) & ~np.isnan(failure)
    with_outcome = _sum(groups, known, n)
    currencies = len(columns.currency_values)
    money = np.zeros((n * currencies, 2))
    has_currency = columns.currency >= 0
    slot = (groups * currencies + columns.currency)[has_currency]
    for k, probability in enumerate((fraud, failure)):
        exposure = np.nan_to_num(columns.amount * probability, nan=0.0)[has_currency]
        money[:, k] = np.bincount(slot, weights=exposure, minlength=n * currencies)
    return _Figures(
        attempts=np.bincount(groups, minlength=n).astype(np.float64),
        actions=actions,
        fraud_mean=_ratio(_sum(groups, np.where(scored, fraud, 0.0), n), _sum(groups, scored, n)),
        fraud_q=_grouped_quantiles(groups, fraud, n),
        fraud_predicted=_ratio(_sum(groups, np.where(labelled, fraud, 0.0), n), labelled_count),
        fraud_realised=_ratio(_sum(groups, labelled & columns.reported, n), labelled_count),
        mature_count=mature_count,
        failure_mean=_ratio(
            _sum(groups, np.nan_to_num(failure, nan=0.0), n), _sum(groups, ~np.isnan(failure), n)
        ),
        failure_q=_grouped_quantiles(groups, failure, n),
        failure_predicted=_ratio(_sum(groups, np.where(known, failure, 0.0), n), with_outcome),
        failure_realised=_ratio(_sum(groups, known & failed, n), with_outcome),
        with_outcome=with_outcome,
        money=money.reshape(n, currencies, 2),
        money_seen=(money.reshape(n, currencies, 2) != 0).any(axis=2),
        currencies=columns.currency_values,
    )


def _f(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _quantiles(mean: float, q: F64) -> dict[str, float | None]:
    return {"mean": _f(mean), "p50": _f(q[0]), "p90": _f(q[1]), "p99": _f(q[2])}


@dataclass(frozen=True)
class _Context:
    grid: Grid
    cutoff_us: int | None  # attempts at or before it have mature fraud labels (None: no label known yet)
    main_currency: str | None


def _point(fig: _Figures, g: int, i: int, ctx: _Context) -> dict[str, Any]:
    attempts = int(fig.attempts[g])
    bucket_end_us = ctx.grid.origin_us + (i + 1) * ctx.grid.width_us
    if attempts:
        mature = bool(fig.mature_count[g] == attempts)
        mature_share: float | None = float(fig.mature_count[g] / attempts)
    else:
        mature = ctx.cutoff_us is not None and bucket_end_us <= ctx.cutoff_us + 1
        mature_share = None
    by_currency = {
        currency: {"fraud": float(fig.money[g, c, 0]), "failure": float(fig.money[g, c, 1])}
        for c in np.flatnonzero(fig.money_seen[g])
        for currency in (fig.currencies[c],)
    }
    main = by_currency.get(ctx.main_currency or "", {"fraud": 0.0, "failure": 0.0})
    return {
        "bucket_start": ctx.grid.start_of(i).isoformat(),
        "attempts": attempts,
        "actions": {action: int(fig.actions[g, k]) for k, action in enumerate(ACTIONS)},
        "fraud": {
            **_quantiles(fig.fraud_mean[g], fig.fraud_q[g]),
            "predicted_rate": _f(fig.fraud_predicted[g]),
            "realised_rate": _f(fig.fraud_realised[g]),
            "mature": mature,
            "mature_share": mature_share,
        },
        "failure": {
            **_quantiles(fig.failure_mean[g], fig.failure_q[g]),
            "predicted_rate": _f(fig.failure_predicted[g]),
            "realised_rate": _f(fig.failure_realised[g]),
            "with_outcome": int(fig.with_outcome[g]),
        },
        "money_at_risk": {
            "fraud": main["fraud"],
            "failure": main["failure"],
            "currency": ctx.main_currency,
            "currency_note": _currency_note(ctx.main_currency),
            "by_currency": by_currency,
        },
    }


def _currency_note(main: str | None) -> str:
    if main is None:
        return "no amounts in the range"
    return (
        f"sum of amount x probability over attempts in {main} (the range's main currency); other "
        "currencies are in by_currency, never converted"
    )


def _main_currency(columns: TrendColumns) -> str | None:
    """The currency most of the range's attempts use (None: no amounts)."""
    known = columns.currency[columns.currency >= 0]
    if len(known) == 0:
        return None
    return columns.currency_values[int(np.argmax(np.bincount(known)))]


def segment_of(segment: str, fields: Sequence[ExtensionField] = ()) -> str | AttributeSegment | None:
    """What ``segment`` names: a segment column, an attribute of the served feature set (a category or a
    key, see :data:`KEY_SEGMENT_TOP`), or nothing (``"none"``)."""
    if segment in SEGMENTS:
        return None if segment == "none" else segment
    for field in fields:
        if field.name == segment and field.type in SEGMENT_TYPES:
            return AttributeSegment(field.name, KEY_SEGMENT_TOP if field.type is FieldType.KEY else None)
    attributes = [field.name for field in fields if field.type in SEGMENT_TYPES]
    raise TrendQueryError(
        f"segment must be one of {list(SEGMENTS)}"
        + (f" or an attribute of the served feature set: {attributes}" if attributes else "")
    )


def trends(  # noqa: PLR0917 (the query's parameters)
    reader: DecisionRanges,
    span: Range,
    bucket: str = "day",
    segment: str = "none",
    fraud_maturity_days: float = FALLBACK_FRAUD_MATURITY_DAYS,
    fields: Sequence[ExtensionField] = (),
) -> dict[str, Any]:
    """``GET /v1/trends`` over ``span``: one series per segment value, one point per bucket.

    ``fields``: the served feature set's extension fields, whose categories and keys may be segments."""
    resolved = segment_of(segment, fields)
    grid = Grid.of(span, bucket)
    chosen = None if resolved is None else segment
    columns = reader.trend_columns(epoch_us(span.start), epoch_us(span.end), resolved)
    as_of = reader.labels_as_of()
    cutoff = maturity_cutoff_us(as_of, fraud_maturity_days)
    values: list[str | None] = [*columns.segment_values, None]  # code -1 (no value) is the last series
    codes = np.where(columns.segment < 0, len(values) - 1, columns.segment)
    groups = codes * grid.count + grid.index(columns.occurred_us)
    mature = mature_mask(columns.occurred_us, cutoff)
    figures = _figures(columns, groups, len(values) * grid.count, mature)
    ctx = _Context(grid, cutoff, _main_currency(columns))
    sizes = np.bincount(codes, minlength=len(values))
    order = [s for s in np.argsort(-sizes, kind="stable") if sizes[s] or (chosen is None)]  # biggest first
    series = [
        {
            "segment_value": values[s],
            "points": [_point(figures, int(s) * grid.count + i, i, ctx) for i in range(grid.count)],
        }
        for s in order
    ]
    return {
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        "bucket": bucket,
        "segment": chosen,
        "as_of": None if as_of is None else as_of.isoformat(),
        "fraud_maturity_days": float(fraud_maturity_days),
        "series": series,
    }


# -- CSV export ---------------------------------------------------------------------------------------------

TREND_CSV_COLUMNS: Final = (
    "segment", "segment_value", "bucket_start", "attempts", *ACTIONS,
    "fraud_mean", "fraud_p50", "fraud_p90", "fraud_p99", "fraud_predicted_rate", "fraud_realised_rate",
    "fraud_mature", "fraud_mature_share",
    "failure_mean", "failure_p50", "failure_p90", "failure_p99", "failure_predicted_rate",
    "failure_realised_rate", "failure_with_outcome",
    "money_at_risk_fraud", "money_at_risk_failure", "money_currency",
)  # fmt: skip
DRIFT_CSV_COLUMNS: Final = ("task", "model", "reference_window", "status", "name", "kind", "psi", "band", "n")


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if value is None else value for value in row] for row in rows])
    return buffer.getvalue()


def trends_csv(result: dict[str, Any]) -> str:
    """The trends answer as CSV: one row per segment value and bucket (empty cell: null)."""
    rows = []
    for series in result["series"]:
        for p in series["points"]:
            fraud, failure, money = p["fraud"], p["failure"], p["money_at_risk"]
            rows.append([
                result["segment"] or "none", series["segment_value"], p["bucket_start"], p["attempts"],
                *(p["actions"][a] for a in ACTIONS),
                *(fraud[k] for k in ("mean", "p50", "p90", "p99", "predicted_rate", "realised_rate")),
                str(fraud["mature"]).lower(), fraud["mature_share"],
                *(failure[k] for k in ("mean", "p50", "p90", "p99", "predicted_rate", "realised_rate")),
                failure["with_outcome"], money["fraud"], money["failure"], money["currency"],
            ])  # fmt: skip
    return _csv(TREND_CSV_COLUMNS, rows)


def drift_csv(result: dict[str, Any]) -> str:
    """The drift answer as CSV: one row per model and score or feature (a model without rows: one row)."""
    rows: list[list[object]] = []
    for table in result["models"]:
        head = [table["task"], table["model"], table["reference_window"], table["status"]]
        rows.extend([*head, r["name"], r["kind"], r["psi"], r["band"], r["n"]] for r in table["rows"])
        if not table["rows"]:
            rows.append([*head, None, None, None, None, 0])
    return _csv(DRIFT_CSV_COLUMNS, rows)
