"""The SQLite billing store: the checks over it answer as over memory, it survives a restart, and a file from
a newer riskgate is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.catalogue import Catalogue
from billing.checks import US_PER_DAY, BillingChecks, Charge, Invoice, MemoryBillingState, PaidPeriod
from serving.store.billing_sqlite import BillingStoreVersionError, SQLiteBillingStore

CATALOGUE = Catalogue({("basic", "monthly", "EUR"): 7.99})
T0 = 1_750_000_000 * 1_000_000

#: One step: an attempt (account, invoice, kind, retry number, amount, days later, submitted) or an outcome of
#: the n-th attempt so far.
attempt_steps = st.tuples(
    st.just("attempt"),
    st.integers(0, 2),
    st.integers(0, 3),
    st.sampled_from(["signup", "renewal", "retry", "upgrade"]),
    st.integers(0, 2),
    st.sampled_from([7.99, 9.99]),
    st.integers(0, 40),
    st.booleans(),
)
outcome_steps = st.tuples(st.just("outcome"), st.integers(0, 30), st.sampled_from(["approved", "declined"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.one_of(attempt_steps, outcome_steps), max_size=30))
def test_the_checks_answer_over_sqlite_as_over_memory(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]]
) -> None:
    store = SQLiteBillingStore(tmp_path_factory.mktemp("billing") / "billing.sqlite")
    on_disk, in_memory = BillingChecks(store, CATALOGUE), BillingChecks(MemoryBillingState(), CATALOGUE)
    seen: list[str] = []
    at = T0
    try:
        for step in steps:
            if step[0] == "outcome":
                if seen:
                    attempt_id = seen[step[1] % len(seen)]
                    on_disk.record_outcome(attempt_id, step[2])
                    in_memory.record_outcome(attempt_id, step[2])
                continue
            _, account, invoice, kind, retry, amount, days, submitted = step
            at += days * US_PER_DAY // 4
            charge = Charge(
                f"att-{len(seen)}", at, f"acc-{account}", kind, f"inv-{invoice}", retry, amount, "EUR",
                "basic", "monthly",
            )  # fmt: skip
            assert on_disk.check(charge) == in_memory.check(charge)
            on_disk.record_attempt(charge, submitted=submitted)
            in_memory.record_attempt(charge, submitted=submitted)
            seen.append(charge.attempt_id)
    finally:
        store.close()


def test_the_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "billing.sqlite"
    store = SQLiteBillingStore(path)
    invoice = Invoice("acc", "renewal", T0, "monthly", "basic", "EUR", "att-1", None, None, None)
    store.put_invoice("inv", invoice)
    store.put_paid_period("acc", PaidPeriod(T0, "monthly", "inv"))
    store.close()
    again = SQLiteBillingStore(path)
    assert again.invoice("inv") == invoice
    assert again.paid_period("acc") == PaidPeriod(T0, "monthly", "inv")
    assert again.invoice("other") is None
    assert again.path == path
    again.close()


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "billing.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(BillingStoreVersionError, match="schema version 99"):
        SQLiteBillingStore(path)
