"""Small random billing histories that follow the event contract (events/schema.py), for engine tests.

Keys are drawn from small pools so entities share history (cards used by several accounts, devices with
several cards); times are rounded to whole minutes so that equal timestamps (the tie rule's hard case) occur.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from hypothesis import strategies as st

from events.io import to_arrow
from events.schema import (
    AttemptKind,
    CardFunding,
    DeclineCode,
    EventKind,
    ExtensionField,
    FieldType,
    MethodType,
    OutcomeStatus,
    PlanPeriod,
    PlanTier,
    ReportType,
    column_names,
)

START = pd.Timestamp("2026-01-01", tz="UTC")


@dataclass(frozen=True)
class History:
    attempts: pd.DataFrame
    outcomes: pd.DataFrame
    reports: pd.DataFrame


def _only(keep: npt.NDArray[np.bool_], values: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    """``values`` where ``keep``, None elsewhere."""
    out = values.astype(object)
    out[~keep] = None
    return out


def _later(times: pd.Series, seconds: npt.NDArray[np.int64]) -> pd.Series:
    return times.reset_index(drop=True) + pd.Series(pd.to_timedelta(seconds, unit="s"))


def _pick(
    rng: np.random.Generator, values: list[str], n: int, missing: float = 0.0
) -> npt.NDArray[np.object_]:
    out = rng.choice(np.array(values, dtype=object), size=n).astype(object)
    out[rng.random(n) < missing] = None
    return out


def random_history(
    n: int,
    seed: int,
    *,
    accounts: int = 30,
    days: float = 60.0,
    tick_seconds: int = 60,
    fields: tuple[ExtensionField, ...] = (),
) -> History:
    """``n`` attempts over ``days`` days, most with an outcome, a few reported as fraud; with ``fields``, each
    attempt also carries those extension fields (:func:`extension_values`) and some amounts are zero."""
    rng = np.random.default_rng(seed)
    ticks = rng.integers(0, int(days * 86_400 / tick_seconds), size=n)
    occurred = START + pd.to_timedelta(np.sort(ticks) * tick_seconds, unit="s")
    cards = [f"pm_{i}" for i in range(max(2, accounts // 2 + 3))]
    card_of = rng.choice(cards, size=n).astype(object)
    card_bin = np.array([f"4{int(c[3:]) % 4:05d}" for c in card_of], dtype=object)
    method = _pick(rng, [m.value for m in MethodType], n)
    is_card = method == MethodType.CARD.value
    attempts = pd.DataFrame(
        {
            "attempt_id": [f"a{seed}_{i:06d}" for i in range(n)],
            "occurred_at": occurred,
            "account_id": _pick(rng, [f"acc_{i}" for i in range(accounts)], n),
            "kind": _pick(rng, [k.value for k in AttemptKind], n),
            "plan_tier": _pick(rng, [p.value for p in PlanTier], n),
            "plan_period": _pick(rng, [p.value for p in PlanPeriod], n),
            "amount": rng.choice([4.99, 9.99, 12.5, 29.99, 99.0, 0.01], size=n),
            "currency": "EUR",
            "payment_method_id": card_of,
            "method_type": method,
            "card_bin": _only(is_card, card_bin),
            "card_funding": _only(is_card, _pick(rng, [f.value for f in CardFunding], n)),
            "card_country": _only(is_card, _pick(rng, ["DE", "FR", "US"], n)),
            "card_exp": _only(is_card, _pick(rng, ["2026-01", "2026-03", "2027-12", "2026-02"], n)),
            "device_id": _pick(rng, [f"dev_{i}" for i in range(accounts // 2 + 2)], n, missing=0.2),
            "ip": _pick(rng, [f"10.0.0.{i}" for i in range(accounts // 3 + 2)], n, missing=0.1),
            "ip_country": _pick(rng, ["DE", "FR", "US"], n, missing=0.1),
            "billing_country": _pick(rng, ["DE", "FR"], n),
            "invoice_id": [f"inv_{i // 2}" for i in range(n)],
            "retry_number": rng.integers(0, 3, size=n).astype(np.int32),
        }
    )
    for extension in fields:
        attempts[extension.name] = extension_values(rng, extension, attempts["occurred_at"])
    if fields:
        attempts.loc[rng.random(n) < 0.15, "amount"] = 0.0  # authorisation checks
    attempts = attempts.sample(frac=1.0, random_state=seed).reset_index(
        drop=True
    )  # row order is not time order
    with_outcome = attempts[rng.random(n) < 0.9]
    m = len(with_outcome)
    status = _pick(rng, [s.value for s in OutcomeStatus], m)
    status[rng.random(m) < 0.4] = OutcomeStatus.APPROVED.value
    outcomes = pd.DataFrame(
        {
            "attempt_id": with_outcome["attempt_id"].to_numpy(),
            "occurred_at": _later(with_outcome["occurred_at"], rng.integers(0, 3, size=m) * tick_seconds),
            "status": status,
            "decline_code": _only(
                status == OutcomeStatus.DECLINED.value, _pick(rng, [c.value for c in DeclineCode], m)
            ),
        }
    )
    reported = attempts[rng.random(n) < 0.08]
    k = len(reported)
    reports = pd.DataFrame(
        {
            "report_id": [f"r{seed}_{i:06d}" for i in range(k)],
            "attempt_id": reported["attempt_id"].to_numpy(),
            "reported_at": _later(
                reported["occurred_at"], rng.integers(0, 20 * 86_400 // tick_seconds, size=k) * tick_seconds
            ),
            "report_type": _pick(rng, [r.value for r in ReportType], k),
        }
    )
    return History(
        _typed(attempts, EventKind.ATTEMPTS, fields),
        _typed(outcomes, EventKind.OUTCOMES),
        _typed(reports, EventKind.FRAUD_REPORTS),
    )


def extension_values(
    rng: np.random.Generator, extension: ExtensionField, occurred: pd.Series
) -> npt.NDArray[np.object_] | npt.NDArray[np.float64] | pd.Series:
    """Random values of an extension field, some missing: keys from a small pool, categories from the
    declared values (and one undeclared), numbers on a grid that hits range bounds, times around the attempt
    (mostly before it, to the microsecond)."""
    n = len(occurred)
    if extension.type == FieldType.KEY:
        return _pick(rng, [f"{extension.name}_{i}" for i in range(4)], n, missing=0.25)
    if extension.type == FieldType.CATEGORY:
        return _pick(rng, [*(extension.values or ()), "undeclared"], n, missing=0.1)
    if extension.type == FieldType.NUMBER:
        numbers = rng.integers(-2, 12, size=n) / 4.0
        numbers[rng.random(n) < 0.2] = np.nan
        return numbers
    before = pd.to_timedelta(rng.integers(-3_600 * 10**6, 400 * 86_400 * 10**6, size=n), unit="us")
    times = occurred.reset_index(drop=True) - pd.Series(before)
    return times.where(rng.random(n) >= 0.15)


def to_table(kind: EventKind, frame: pd.DataFrame, fields: tuple[ExtensionField, ...] = ()) -> pa.Table:
    """Events as an Arrow table of the contract's schema, then the extension ``fields`` (attempts) typed as
    their declaration says: what an import writes."""
    table = to_arrow(kind, frame)
    for extension in fields:
        values: object = frame[extension.name]
        if extension.type == FieldType.TIME:  # via naive UTC values, as events.io writes timestamps
            values = pd.to_datetime(frame[extension.name], utc=True).dt.tz_localize(None).to_numpy()
        column = pa.array(values, type=extension.column.arrow_type, from_pandas=True)
        table = table.append_column(pa.field(extension.name, column.type), column)
    return table


def _typed(frame: pd.DataFrame, kind: EventKind, fields: tuple[ExtensionField, ...] = ()) -> pd.DataFrame:
    """The frame as ``events.io.read_events`` would return it (contract columns and dtypes, then the
    extension fields)."""
    typed: pd.DataFrame = to_table(kind, frame, fields).to_pandas()
    return typed


ATTEMPT_DEFAULTS: dict[str, object] = {
    "account_id": "acc_1",
    "kind": "renewal",
    "plan_tier": "basic",
    "plan_period": "monthly",
    "amount": 9.99,
    "currency": "EUR",
    "payment_method_id": "pm_1",
    "method_type": "card",
    "card_bin": "424242",
    "card_funding": "credit",
    "card_country": "DE",
    "card_exp": "2026-03",
    "device_id": "dev_1",
    "ip": "10.0.0.1",
    "ip_country": "DE",
    "billing_country": "DE",
    "invoice_id": None,
    "retry_number": 0,
}


def at(clock: str) -> pd.Timestamp:
    """A timestamp on 2026-01-01 (UTC) from ``HH:MM[:SS]``."""
    return pd.Timestamp(f"2026-01-01T{clock}", tz="UTC")


def attempt(attempt_id: str, clock: str, **fields: object) -> dict[str, object]:
    """One attempt with sensible defaults; ``fields`` override them."""
    return {**ATTEMPT_DEFAULTS, "attempt_id": attempt_id, "occurred_at": at(clock), **fields}


def outcome(
    attempt_id: str, clock: str, status: str = "approved", code: str | None = None
) -> dict[str, object]:
    return {"attempt_id": attempt_id, "occurred_at": at(clock), "status": status, "decline_code": code}


def report(report_id: str, attempt_id: str, clock: str) -> dict[str, object]:
    return {
        "report_id": report_id,
        "attempt_id": attempt_id,
        "reported_at": at(clock),
        "report_type": "chargeback",
    }


def history_of(
    attempts: list[dict[str, object]],
    outcomes: list[dict[str, object]] | None = None,
    reports: list[dict[str, object]] | None = None,
    fields: tuple[ExtensionField, ...] = (),
) -> History:
    """A history from hand-written events (typed like ``events.io.read_events`` returns them); attempts may
    carry the extension ``fields`` (missing where not given)."""
    extra = [f.name for f in fields]
    frames = [
        pd.DataFrame(
            rows or [], columns=[*column_names(kind), *(extra if kind == EventKind.ATTEMPTS else [])]
        )
        for rows, kind in (
            (attempts, EventKind.ATTEMPTS),
            (outcomes, EventKind.OUTCOMES),
            (reports, EventKind.FRAUD_REPORTS),
        )
    ]
    return History(
        *(
            _typed(frame, kind, fields if kind == EventKind.ATTEMPTS else ())
            for frame, kind in zip(frames, EventKind, strict=True)
        )
    )


@st.composite
def histories(draw: st.DrawFn, max_events: int = 60, fields: tuple[ExtensionField, ...] = ()) -> History:
    """Small random histories for property tests: few entities (shared history), ties in time, long spans
    (pruning) or short; with ``fields``, attempts carry those extension fields."""
    return random_history(
        draw(st.integers(1, max_events)),
        draw(st.integers(0, 2**31)),
        accounts=draw(st.integers(2, 10)),
        days=draw(st.sampled_from([0.05, 3.0, 60.0, 400.0])),
        tick_seconds=draw(st.sampled_from([1, 60, 3_600])),
        fields=fields,
    )
