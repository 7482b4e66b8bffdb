"""Turn a simulated block into the contract's tables (and the simulator's own truth/accounts tables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from events.io import to_arrow
from events.schema import EventKind, OutcomeStatus, ReportType
from simulator.billing_errors import ERROR_COLUMNS
from simulator.catalog import (
    COUNTRY_CODES,
    FUNDINGS,
    METHOD_TYPES,
    PLAN_PERIODS,
    PLAN_TIERS,
    currency_codes,
    ip_strings,
)
from simulator.engine import KINDS, P_RENEWAL, RENEWAL_KIND, RETRY_KIND, Batch, BlockSimulator
from simulator.state import CANCELLED, CHURNED, SCHEMES, SEGMENT_NAMES, STATUS_NAMES, SUBSCRIBER
from simulator.truth import CAUSES, DECLINE_CODE_NAMES, TECHNICAL

TRUTH_TABLE: Final = "truth"
ACCOUNTS_TABLE: Final = "accounts"
METHODS_TABLE: Final = "payment_methods"
CARD_STATUS_NAMES: Final = ("ok", "stolen", "tested")

#: The simulator's ground truth, one row per attempt.
TRUTH_SCHEMA: Final = pa.schema(
    [
        pa.field("attempt_id", pa.string(), nullable=False),
        pa.field("p_fraud", pa.float64(), nullable=False),
        pa.field("p_fail", pa.float64(), nullable=False),
        pa.field("is_fraud", pa.bool_(), nullable=False),
        pa.field("fraud_scheme", pa.string()),
        *[pa.field(f"p_fail_{cause.value}", pa.float64(), nullable=False) for cause in CAUSES],
        pa.field("fragility", pa.float64(), nullable=False),
        pa.field("issuer_logit", pa.float64(), nullable=False),
        pa.field("card_status", pa.string(), nullable=False),
        *[pa.field(column, pa.bool_(), nullable=False) for column in ERROR_COLUMNS],
    ]
)

#: One row per account: who created it and its latent traits (never visible to a real provider).
ACCOUNTS_SCHEMA: Final = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("segment", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("device_type", pa.string(), nullable=False),
        pa.field("vpn", pa.bool_(), nullable=False),
        pa.field("fragility", pa.float64(), nullable=False),
        pa.field("plan_tier", pa.string(), nullable=False),
        pa.field("plan_period", pa.string(), nullable=False),
        pa.field("auto_renew", pa.bool_(), nullable=False),
        pa.field("scenario_p_fraud", pa.float64()),
        pa.field("scenario_is_fraud", pa.bool_(), nullable=False),
        pa.field("scenario", pa.string()),
        pa.field("final_status", pa.string(), nullable=False),
    ]
)


#: One row per payment method used: its hidden state (issuer quality, stolen/tested, when it was blocked).
METHODS_SCHEMA: Final = pa.schema(
    [
        pa.field("payment_method_id", pa.string(), nullable=False),
        pa.field("method_type", pa.string(), nullable=False),
        pa.field("issuer_logit", pa.float64(), nullable=False),
        pa.field("card_status", pa.string()),
        pa.field("blocked_at", pa.timestamp("us", tz="UTC")),
    ]
)


def ids(prefix: str, block: int, numbers: npt.NDArray[np.int64], width: int = 7) -> npt.NDArray[np.object_]:
    """Prefixed ids such as ``att_0003_0001234``: digit runs stay far below card-number length."""
    out = np.empty(len(numbers), dtype=object)
    out[:] = [f"{prefix}_{block:04d}_{n:0{width}d}" for n in numbers.tolist()]
    return out


def _names(names: tuple[str, ...], codes: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Names of codes; negative codes are missing values."""
    lookup = np.array([*names, None], dtype=object)
    return lookup[np.where(codes < 0, len(names), codes)]


def _utc(times: npt.NDArray[Any]) -> pd.Series:
    """UTC instants as naive ``datetime64[us]``: Arrow stores them as the schema's UTC timestamps.

    (Handing pyarrow tz-aware pandas columns triggers a pandas 3.1 deprecation warning inside pyarrow.)
    """
    return pd.Series(times.astype("datetime64[us]"))


def _card_exp(months: npt.NDArray[np.int64], is_card: npt.NDArray[np.bool_]) -> npt.NDArray[np.object_]:
    out = np.empty(len(months), dtype=object)
    out[:] = [
        f"{1970 + m // 12:04d}-{m % 12 + 1:02d}" if c else None
        for m, c in zip(months.tolist(), is_card.tolist(), strict=True)
    ]
    return out


@dataclass(frozen=True)
class BlockTables:
    attempts: pa.Table
    outcomes: pa.Table
    fraud_reports: pa.Table
    truth: pa.Table
    accounts: pa.Table
    payment_methods: pa.Table
    counts: dict[str, int | float]


def block_tables(sim: BlockSimulator, batch: Batch, end: np.datetime64) -> BlockTables:
    """Sort a block's attempts by time, give them ids, and build every table plus the headline counts."""
    order = np.lexsort((np.arange(len(batch["at"])), batch["at"]))
    b = {key: value[order] for key, value in batch.items()}
    block = sim.block
    attempt_id = ids("att", block, np.arange(len(order)))
    attempts = _attempts_frame(sim, b, attempt_id)
    outcomes = _outcomes_frame(b, attempt_id)
    reports = _reports_frame(b, attempt_id, block, end)
    truth = _truth_frame(b, attempt_id)
    accounts = _accounts_frame(sim, b)
    return BlockTables(
        attempts=to_arrow(EventKind.ATTEMPTS, attempts),
        outcomes=to_arrow(EventKind.OUTCOMES, outcomes),
        fraud_reports=to_arrow(EventKind.FRAUD_REPORTS, reports),
        truth=pa.Table.from_pandas(truth, schema=TRUTH_SCHEMA, preserve_index=False),
        accounts=pa.Table.from_pandas(accounts, schema=ACCOUNTS_SCHEMA, preserve_index=False),
        payment_methods=pa.Table.from_pandas(
            _methods_frame(sim, b), schema=METHODS_SCHEMA, preserve_index=False
        ),
        counts=_counts(sim, b, len(reports), accounts),
    )


def _attempts_frame(sim: BlockSimulator, b: Batch, attempt_id: npt.NDArray[np.object_]) -> pd.DataFrame:
    m, a, bins = sim.methods, sim.accounts, sim.world.bins
    pm = b["pm"]
    method = m["method"][pm]
    bin_row = m["bin_row"][pm]
    is_card = bin_row >= 0
    country = a["country"][b["account"]]
    return pd.DataFrame(
        {
            "attempt_id": attempt_id,
            "occurred_at": _utc(b["at"]),
            "account_id": ids("acc", sim.block, b["account"], 6),
            "kind": _names(KINDS, b["kind"]),
            "plan_tier": _names(PLAN_TIERS, b["tier"]),
            "plan_period": _names(PLAN_PERIODS, b["period"]),
            "amount": np.round(b["amount"], 2),
            "currency": currency_codes()[country],
            "payment_method_id": ids("pm", sim.block, pm),
            "method_type": _names(METHOD_TYPES, method),
            "card_bin": np.where(is_card, bins.bins[np.maximum(bin_row, 0)].astype(object), None),
            "card_funding": _names(FUNDINGS, np.where(is_card, m["funding"][pm], -1)),
            "card_country": _names(COUNTRY_CODES, np.where(is_card, m["card_country"][pm], -1)),
            "card_exp": _card_exp(m["exp_month"][pm], is_card),
            "device_id": ids("dev", sim.block, b["device"]),
            "ip": ip_strings(b["ip_country"], b["ip_host"]),
            "ip_country": _names(COUNTRY_CODES, b["ip_country"]),
            "billing_country": _names(COUNTRY_CODES, country),
            "invoice_id": ids("inv", sim.block, b["invoice"]),
            "retry_number": b["retry_number"].astype(np.int32),
            "account_created_at": _utc(a["created_at"][b["account"]]),  # known start, before the export too
        }
    )


def _outcomes_frame(b: Batch, attempt_id: npt.NDArray[np.object_]) -> pd.DataFrame:
    status = np.where(
        ~b["failed"],
        OutcomeStatus.APPROVED.value,
        np.where(b["cause"] == TECHNICAL, OutcomeStatus.ERROR.value, OutcomeStatus.DECLINED.value),
    ).astype(object)
    return pd.DataFrame(
        {
            "attempt_id": attempt_id,
            "occurred_at": _utc(b["answered_at"]),
            "status": status,
            "decline_code": _names(DECLINE_CODE_NAMES, b["code"]),
        }
    )


def _reports_frame(
    b: Batch, attempt_id: npt.NDArray[np.object_], block: int, end: np.datetime64
) -> pd.DataFrame:
    rows = np.flatnonzero(b["reported"] & (b["reported_at"] < end))
    rows = rows[np.argsort(b["reported_at"][rows], kind="stable")]
    kind = np.where(b["chargeback"][rows], ReportType.CHARGEBACK.value, ReportType.CONFIRMED_FRAUD.value)
    return pd.DataFrame(
        {
            "report_id": ids("frd", block, np.arange(len(rows)), 6),
            "attempt_id": attempt_id[rows],
            "reported_at": _utc(b["reported_at"][rows]),
            "report_type": kind.astype(object),
        }
    )


def _truth_frame(b: Batch, attempt_id: npt.NDArray[np.object_]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "attempt_id": attempt_id,
            "p_fraud": b["p_fraud"],
            "p_fail": b["p_fail"],
            "is_fraud": b["is_fraud"],
            "fraud_scheme": _names(SCHEMES, b["scheme"]),
            **{f"p_fail_{cause.value}": b[f"p_fail_{cause.value}"] for cause in CAUSES},
            "fragility": b["fragility"],
            "issuer_logit": b["issuer_logit"],
            "card_status": _names(CARD_STATUS_NAMES, b["card_status"]),
            **{column: b[column] for column in ERROR_COLUMNS},
        }
    )


def _accounts_frame(sim: BlockSimulator, b: Batch) -> pd.DataFrame:
    a = sim.accounts
    seen = np.zeros(len(a), dtype=bool)
    seen[b["account"]] = True
    keep = np.flatnonzero(seen | (a["segment"] == SUBSCRIBER))
    scenario = a["scenario_scheme"][keep]
    return pd.DataFrame(
        {
            "account_id": ids("acc", sim.block, keep, 6),
            "segment": _names(SEGMENT_NAMES, a["segment"][keep].astype(np.int64)),
            "created_at": _utc(a["created_at"][keep]),
            "channel": _names(sim.channels, a["channel"][keep]),
            "country": _names(COUNTRY_CODES, a["country"][keep]),
            "device_type": _names(sim.device_types, a["device_type"][keep]),
            "vpn": a["vpn"][keep],
            "fragility": a["fragility"][keep],
            "plan_tier": _names(PLAN_TIERS, a["initial_tier"][keep]),
            "plan_period": _names(PLAN_PERIODS, a["initial_period"][keep]),
            "auto_renew": a["auto_renew"][keep],
            "scenario_p_fraud": a["scenario_p"][keep],
            "scenario_is_fraud": a["scenario_label"][keep],
            "scenario": _names(SCHEMES, scenario),
            "final_status": _names(STATUS_NAMES, a["status"][keep].astype(np.int64)),
        }
    )


def _methods_frame(sim: BlockSimulator, b: Batch) -> pd.DataFrame:
    m = sim.methods
    used = np.unique(b["pm"])
    bin_row = m["bin_row"][used]
    is_card = bin_row >= 0
    return pd.DataFrame(
        {
            "payment_method_id": ids("pm", sim.block, used),
            "method_type": _names(METHOD_TYPES, m["method"][used]),
            "issuer_logit": np.where(is_card, sim.world.bins.issuer_logit[np.maximum(bin_row, 0)], 0.0),
            "card_status": _names(CARD_STATUS_NAMES, np.where(is_card, m["card_status"][used], -1)),
            "blocked_at": _utc(m["blocked_at"][used]),
        }
    )


def _counts(sim: BlockSimulator, b: Batch, reports: int, accounts: pd.DataFrame) -> dict[str, int | float]:
    kind, retry = b["kind"], b["retry_number"]
    added = b["billing_double_charge"] | b["billing_early_renewal"]  # the billing system's extra charges
    first_renewal = (kind == RENEWAL_KIND) & (retry == 0) & ~added
    declined_first = b["invoice"][first_renewal & b["failed"]]
    retried_ok = b["invoice"][(kind == RETRY_KIND) & (b["purpose"] == P_RENEWAL) & ~b["failed"]]
    recovered = np.isin(declined_first, retried_ok)
    status = sim.accounts["status"]
    counts: dict[str, int | float] = {
        "accounts": len(accounts),
        "attempts": len(kind),
        "fraud_reports": reports,
        "fraud_attempts": int(b["is_fraud"].sum()),
        "fraud_reported_eventually": int(b["reported"].sum()),
        "sum_p_fraud": float(b["p_fraud"].sum()),
        "sum_p_fail": float(b["p_fail"].sum()),
        "failed": int(b["failed"].sum()),
        "errors": int((b["failed"] & (b["cause"] == TECHNICAL)).sum()),
        "first_try_renewals": int(first_renewal.sum()),
        "first_try_renewal_declines": len(declined_first),
        "recovered_by_retry": int(recovered.sum()),
        "retries": int((kind == RETRY_KIND).sum()),
        "involuntary_churn": int((status == CHURNED).sum()),
        "voluntary_cancellations": int((status == CANCELLED).sum()),
    }
    for column in ERROR_COLUMNS:
        counts[column] = int(b[column].sum())
    for k, scheme in enumerate(SCHEMES):
        counts[f"fraud_attempts_{scheme}"] = int((b["is_fraud"] & (b["scheme"] == k)).sum())
    for segment in SEGMENT_NAMES:
        counts[f"accounts_{segment}"] = int((accounts["segment"] == segment).sum())
    return counts
