"""Rebuild, from a simulated world's tables, the payment state of every attempt: the oracle for smart retries.

:func:`attempt_states` reads ``attempts/``, ``outcomes/``, ``truth/`` and ``payment_methods/`` of a world and
returns each attempt's :class:`~simulator.truth.PaymentState` exactly as the simulation evaluated it (so
``failure_probability`` at the attempt's time reproduces ``truth.p_fail``). :func:`retry_approval` then gives
the true probability that retrying a declined attempt would be approved after any delay::

    world = load_world(Path("data"))
    states = attempt_states(Path("data"))
    declined = states.declined()
    approval = retry_approval(declined, np.array([1, 24, 72], dtype="timedelta64[h]"), world)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from events.io import read_events, read_table
from events.schema import DECLINE_CODES, EventKind
from simulator.catalog import CARD, COUNTRIES, COUNTRY_CODES, FUNDINGS, METHOD_TYPES
from simulator.config import WorldConfig
from simulator.engine import World
from simulator.run import CONFIG_FILE, build_world
from simulator.tables import CARD_STATUS_NAMES, METHODS_TABLE, TRUTH_TABLE
from simulator.truth import CAUSES, NO_PRIOR, PaymentState, failure_probability


def load_world(data_dir: Path) -> World:
    """The shared parts of the world (BIN table, gateway incidents) that generated ``data_dir``."""
    return build_world(WorldConfig.from_yaml(data_dir / CONFIG_FILE))


@dataclass(frozen=True)
class AttemptStates:
    """Attempts (in table order) with their payment state, time and whether they failed."""

    attempt_id: npt.NDArray[np.object_]
    invoice_id: npt.NDArray[np.object_]
    at: npt.NDArray[np.datetime64]
    failed: npt.NDArray[np.bool_]
    cause: npt.NDArray[np.int64]
    state: PaymentState

    def __len__(self) -> int:
        return len(self.at)

    def take(self, index: npt.NDArray[np.int64]) -> AttemptStates:
        return AttemptStates(
            self.attempt_id[index],
            self.invoice_id[index],
            self.at[index],
            self.failed[index],
            self.cause[index],
            self.state.take(index),
        )

    def select(self, mask: npt.NDArray[np.bool_]) -> AttemptStates:
        return self.take(np.flatnonzero(mask))

    def declined(self) -> AttemptStates:
        """The failed attempts, with their own decline as the prior a retry of the same method would carry."""
        failed = self.select(self.failed)
        state = replace(failed.state, prior_cause=failed.cause, prior_at=failed.at)
        return AttemptStates(
            failed.attempt_id, failed.invoice_id, failed.at, failed.failed, failed.cause, state
        )


def _cause_of(codes: pd.Series) -> npt.NDArray[np.int64]:
    """Index into CAUSES of each decline code's family; NO_PRIOR for approvals."""
    lookup = {code.value: CAUSES.index(rule.family) for code, rule in DECLINE_CODES.items()}
    return np.array([lookup.get(code, NO_PRIOR) if isinstance(code, str) else NO_PRIOR for code in codes])


def _months(card_exp: pd.Series) -> npt.NDArray[np.int64]:
    """``YYYY-MM`` as months since 1970-01 (huge for non-cards, which never expire)."""
    filled = card_exp.fillna("9999-12")  # a non-card never expires; not a missing value being hidden
    year = filled.str.slice(0, 4).astype(int).to_numpy()
    month = filled.str.slice(5, 7).astype(int).to_numpy()
    result: npt.NDArray[np.int64] = (year - 1970) * 12 + month - 1
    return result


def _frame(data_dir: Path) -> pd.DataFrame:
    attempts = read_events(data_dir, EventKind.ATTEMPTS)
    outcomes = read_events(data_dir, EventKind.OUTCOMES, columns=["attempt_id", "decline_code"])
    truth = read_table(data_dir, TRUTH_TABLE, columns=["attempt_id", "fragility"]).to_pandas()
    methods = read_table(data_dir, METHODS_TABLE).to_pandas().drop(columns="method_type")
    frame = attempts.merge(outcomes, on="attempt_id", validate="one_to_one")
    frame = frame.merge(truth, on="attempt_id", validate="one_to_one")
    return frame.merge(methods, on="payment_method_id", validate="many_to_one")


def _priors(frame: pd.DataFrame, cause: npt.NDArray[np.int64]) -> tuple[Any, Any]:
    """The previous decline on the same invoice, if the attempt retries the same method."""
    order = frame.sort_values(["invoice_id", "retry_number"]).index.to_numpy()
    invoice = frame["invoice_id"].to_numpy()[order]
    method = frame["payment_method_id"].to_numpy()[order]
    at = frame["occurred_at"].dt.tz_convert(None).to_numpy().astype("datetime64[s]")[order]
    follows = np.r_[False, (invoice[1:] == invoice[:-1]) & (method[1:] == method[:-1])]
    prior_cause = np.full(len(frame), NO_PRIOR)
    prior_at = np.full(len(frame), np.datetime64("NaT", "s"))
    prior_cause[order[follows]] = cause[order][np.flatnonzero(follows) - 1]
    prior_at[order[follows]] = at[np.flatnonzero(follows) - 1]
    return prior_cause, prior_at


def attempt_states(data_dir: Path) -> AttemptStates:
    """Every attempt of a simulated world with the payment state the simulation evaluated it with."""
    frame = _frame(data_dir)
    cause = _cause_of(frame["decline_code"])
    prior_cause, prior_at = _priors(frame, cause)
    is_card = frame["method_type"].to_numpy() == METHOD_TYPES[CARD]
    billing = frame["billing_country"].map({code: i for i, code in enumerate(COUNTRY_CODES)}).to_numpy()
    eur_rate = np.array([c.eur_rate for c in COUNTRIES])[billing]
    funding = frame["card_funding"].map({name: i for i, name in enumerate(FUNDINGS)})
    status = frame["card_status"].map({name: i for i, name in enumerate(CARD_STATUS_NAMES)})
    at = frame["occurred_at"].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
    blocked = frame["blocked_at"].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
    state = PaymentState(
        method=np.asarray(
            frame["method_type"].map({n: i for i, n in enumerate(METHOD_TYPES)}), dtype=np.int64
        ),
        funding=np.asarray(funding.fillna(-1), dtype=np.int64),  # -1: not a card (no funding type)
        issuer_logit=frame["issuer_logit"].to_numpy(np.float64),
        card_exp_month=np.where(is_card, _months(frame["card_exp"]), np.iinfo(np.int64).max // 2),
        card_status=np.asarray(
            status.fillna(0), dtype=np.int64
        ),  # non-cards have no card status; 0 is ignored
        blocked_at=blocked,
        fragility=frame["fragility"].to_numpy(np.float64),
        cross_border=(is_card & (frame["card_country"] != frame["ip_country"]).to_numpy(bool)),
        amount_eur=frame["amount"].to_numpy(np.float64) / eur_rate,
        prior_cause=prior_cause,
        prior_at=prior_at,
    )
    failed = frame["decline_code"].notna().to_numpy()
    return AttemptStates(
        frame["attempt_id"].to_numpy(object), frame["invoice_id"].to_numpy(object), at, failed, cause, state
    )


def retry_approval(
    declined: AttemptStates, delays: npt.NDArray[np.timedelta64], world: World
) -> npt.NDArray[np.float64]:
    """True approval probability of retrying each declined attempt (rows) after each delay (columns)."""
    n, k = len(declined.at), len(delays)
    at = (declined.at[:, None] + delays[None, :]).astype("datetime64[s]").ravel()
    risk = failure_probability(declined.state.repeat(k), at, world.incidents, world.config.failure)
    approval: npt.NDArray[np.float64] = (1.0 - risk.p_fail).reshape(n, k)
    return approval
