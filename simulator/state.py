"""Mutable state of one block of the world: its accounts and payment methods, as growable numpy columns."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from simulator.catalog import CARD, FRAUD_SCHEMES, FUNDINGS, BinTable

NAT: Final = np.datetime64("NaT", "s")
NO_CARD_EXPIRY: Final = np.iinfo(np.int64).max // 2

#: Account lifecycle states.
PENDING, ACTIVE, CANCELLED, CHURNED, ABANDONED = range(5)
STATUS_NAMES: Final = ("pending", "active", "cancelled", "churned", "abandoned")
#: Who created the account.
SUBSCRIBER, RISKY_SIGNUP, CLUSTER, CARD_TESTING = range(4)
SEGMENT_NAMES: Final = ("subscriber", "risky_signup", "shared_cluster", "card_testing")
#: Fraud schemes (index) and their names in the truth table.
SCHEMES: Final = FRAUD_SCHEMES
CARD_TESTING_SCHEME, STOLEN, TAKEOVER, RESELLER, FRIENDLY = range(5)
NO_SCHEME: Final = -1


class Columns:
    """A set of equally long numpy columns that grows by appending rows (amortised doubling)."""

    def __init__(self, dtypes: dict[str, Any]) -> None:
        self._dtypes = dtypes
        self._size = 0
        self._data = {name: np.empty(16, dtype=dtype) for name, dtype in dtypes.items()}

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self._data[name][: self._size]

    def append(self, **values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Append rows (every column given, as equally long arrays or scalars); returns their indices."""
        missing = set(self._dtypes) - set(values)
        if missing:
            raise KeyError(f"append needs every column; missing {sorted(missing)}")
        arrays = {name: np.asarray(value) for name, value in values.items()}
        count = max((a.size for a in arrays.values() if a.ndim > 0), default=1)
        needed = self._size + count
        if needed > len(next(iter(self._data.values()))):
            capacity = max(needed, 2 * len(next(iter(self._data.values()))))
            for name, column in self._data.items():
                grown = np.empty(capacity, dtype=column.dtype)
                grown[: self._size] = column[: self._size]
                self._data[name] = grown
        for name, array in arrays.items():
            self._data[name][self._size : needed] = array
        index = np.arange(self._size, needed)
        self._size = needed
        return index


ACCOUNT_COLUMNS: Final[dict[str, Any]] = {
    "segment": np.int8,
    "created_at": "datetime64[s]",
    "signup_at": "datetime64[s]",  # NaT for accounts that existed at the start
    "country": np.int64,
    "channel": np.int64,
    "device_type": np.int64,
    "device": np.int64,
    "ip_country": np.int64,
    "ip_host": np.int64,
    "vpn": np.bool_,
    "mobile": np.bool_,
    "tier": np.int64,
    "period": np.int64,
    "initial_tier": np.int64,
    "initial_period": np.int64,
    "auto_renew": np.bool_,
    "fragility": np.float64,
    "pm": np.int64,
    "status": np.int8,
    "next_due": "datetime64[s]",
    "cancel_pending": np.bool_,
    "downgrade_pending": np.bool_,
    # the open invoice and its dunning
    "dunning": np.bool_,
    "invoice": np.int64,
    "invoice_purpose": np.int8,
    "invoice_due": "datetime64[s]",
    "invoice_amount": np.float64,
    "retry_number": np.int64,
    "slot": np.int64,
    "next_retry": "datetime64[s]",
    "first_decline_at": "datetime64[s]",
    "last_decline_at": "datetime64[s]",
    "last_cause": np.int64,
    "last_code": np.int64,
    "last_pm": np.int64,
    "replace_before_retry": np.bool_,
    # account-level fraud scenario (risky signups, shared clusters); NaN p when none
    "scenario_p": np.float64,
    "scenario_label": np.bool_,
    "scenario_scheme": np.int64,
}

METHOD_COLUMNS: Final[dict[str, Any]] = {
    "method": np.int64,
    "funding": np.int64,  # -1 for non-cards
    "bin_row": np.int64,  # -1 for non-cards
    "card_country": np.int64,  # -1 for non-cards
    "exp_month": np.int64,  # months since 1970-01; NO_CARD_EXPIRY for non-cards
    "card_status": np.int64,
    "blocked_at": "datetime64[s]",
}


def new_accounts() -> Columns:
    return Columns(ACCOUNT_COLUMNS)


def new_methods() -> Columns:
    return Columns(METHOD_COLUMNS)


def add_cards(
    methods: Columns,
    rng: np.random.Generator,
    bins: BinTable,
    *,
    card_country: npt.NDArray[np.int64],
    funding: npt.NDArray[np.int64],
    exp_month: npt.NDArray[np.int64],
    card_status: npt.NDArray[np.int64] | int = 0,
) -> npt.NDArray[np.int64]:
    """Add cards issued in ``card_country`` with ``funding``; returns their method indices."""
    rows = bins.choose(rng, card_country, funding)
    n = len(rows)
    return methods.append(
        method=np.full(n, CARD),
        funding=funding,
        bin_row=rows,
        card_country=card_country,
        exp_month=exp_month,
        card_status=np.broadcast_to(np.asarray(card_status, dtype=np.int64), (n,)),
        blocked_at=np.full(n, NAT),
    )


def add_methods(
    methods: Columns,
    rng: np.random.Generator,
    bins: BinTable,
    *,
    method: npt.NDArray[np.int64],
    country: npt.NDArray[np.int64],
    funding_weights: npt.NDArray[np.float64],
    exp_month: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Add one payment method of type ``method`` per row (cards get a BIN of ``country``)."""
    n = len(method)
    index = np.empty(n, dtype=np.int64)
    is_card = method == CARD
    cards = np.flatnonzero(is_card)
    if len(cards):
        funding = rng.choice(len(FUNDINGS), size=len(cards), p=funding_weights)
        index[cards] = add_cards(
            methods, rng, bins, card_country=country[cards], funding=funding, exp_month=exp_month[cards]
        )
    others = np.flatnonzero(~is_card)
    if len(others):
        index[others] = methods.append(
            method=method[others],
            funding=-1,
            bin_row=-1,
            card_country=-1,
            exp_month=NO_CARD_EXPIRY,
            card_status=0,
            blocked_at=NAT,
        )
    return index
