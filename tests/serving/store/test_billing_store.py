"""The billing stores (SQLite and PostgreSQL, the same tests): the checks over them answer as over memory, the
state survives a restart, and two instances checking two attempts of one invoice at once pass one of them;
a SQLite file from a newer riskgate is refused."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.catalogue import Catalogue
from billing.checks import US_PER_DAY, BillingChecks, Charge, Invoice, MemoryBillingState, PaidPeriod
from serving.store.billing import BillingStore
from serving.store.billing_sqlite import BillingStoreVersionError, SQLiteBillingStore
from serving.store.postgres.billing import PostgresBillingStore
from serving.store.postgres.database import Database

CATALOGUE = Catalogue({("basic", "monthly", "EUR"): 7.99})
T0 = 1_750_000_000 * 1_000_000
_BILLING_TABLES = ("invoices", "submissions", "paid_periods")


@dataclass
class Backend:
    """One test's billing state in one backend: :meth:`open` gives another store over it (another process or
    instance: its own connection or pool), :meth:`clear` empties it."""

    kind: str
    open_store: Callable[[], BillingStore]
    empty: Callable[[], None]
    opened: list[BillingStore] = field(default_factory=list)

    def open(self) -> BillingStore:
        store = self.open_store()
        self.opened.append(store)
        return store

    def clear(self) -> None:
        self.empty()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "billing.sqlite"

        def empty_file() -> None:
            with sqlite3.connect(path) as db:
                for table in _BILLING_TABLES:
                    db.execute(f"DELETE FROM {table}")

        made = Backend("sqlite", lambda: SQLiteBillingStore(path), empty_file)
        yield made
        for store in made.opened:
            store.close()
        return
    url: str = request.getfixturevalue("postgres_url")
    pools: list[Database] = []

    def pooled() -> BillingStore:
        pools.append(Database(url, 4))
        return PostgresBillingStore(pools[-1])

    def empty_tables() -> None:
        with pools[0].transaction() as connection:
            connection.execute(f"TRUNCATE {', '.join(f'billing_{table}' for table in _BILLING_TABLES)}")

    made = Backend("postgres", pooled, empty_tables)
    yield made
    for pool in pools:
        pool.close()


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
def test_the_checks_answer_over_the_store_as_over_memory(
    backend: Backend, steps: list[tuple[Any, ...]]
) -> None:
    store = backend.open() if not backend.opened else backend.opened[0]
    backend.clear()
    stored, in_memory = BillingChecks(store, CATALOGUE), BillingChecks(MemoryBillingState(), CATALOGUE)
    seen: list[str] = []
    at = T0
    for step in steps:
        if step[0] == "outcome":
            if seen:
                attempt_id = seen[step[1] % len(seen)]
                stored.record_outcome(attempt_id, step[2])
                in_memory.record_outcome(attempt_id, step[2])
            continue
        _, account, invoice, kind, retry, amount, days, submitted = step
        at += days * US_PER_DAY // 4
        charge = Charge(
            f"att-{len(seen)}", at, f"acc-{account}", kind, f"inv-{invoice}", retry, amount, "EUR",
            "basic", "monthly",
        )  # fmt: skip
        assert stored.check(charge) == in_memory.check(charge)
        assert stored.claim(charge) == in_memory.claim(charge)
        stored.record_attempt(charge, submitted=submitted)
        in_memory.record_attempt(charge, submitted=submitted)
        seen.append(charge.attempt_id)


def test_the_state_survives_a_restart(backend: Backend) -> None:
    store = backend.open()
    invoice = Invoice("acc", "renewal", T0, "monthly", "basic", "EUR", "att-1", None, None, None)
    assert store.update_invoice("inv", lambda current: (invoice, current)) is None
    store.put_paid_period("acc", PaidPeriod(T0, "monthly", "inv"))
    store.close()
    again = backend.open()
    assert again.invoice("inv") == invoice
    assert again.paid_period("acc") == PaidPeriod(T0, "monthly", "inv")
    assert again.invoice("other") is None
    unchanged = again.update_invoice("inv", lambda current: (None, current))
    assert unchanged == invoice


def test_two_instances_checking_two_attempts_of_one_invoice_at_once_pass_one(backend: Backend) -> None:
    instances = [BillingChecks(backend.open(), CATALOGUE) for _ in range(2)]
    rounds = 25
    start = threading.Barrier(len(instances))
    doubles: list[list[bool | None]] = [[] for _ in instances]

    def submit(number: int) -> None:
        for round_ in range(rounds):
            charge = Charge(
                f"att-{round_}-{number}", T0 + number, "acc", "renewal", f"inv-{round_}", 0, 7.99, "EUR",
                "basic", "monthly",
            )  # fmt: skip
            start.wait(timeout=30)
            doubles[number].append(instances[number].claim(charge).billing_double_charge)

    threads = [threading.Thread(target=submit, args=(number,)) for number in range(len(instances))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [sorted(pair) for pair in zip(*doubles, strict=True)] == [[False, True]] * rounds


def test_a_claim_is_kept_when_submitted_and_dropped_otherwise(backend: Backend) -> None:
    checks = BillingChecks(backend.open(), CATALOGUE)
    first = Charge("att-1", T0, "acc", "signup", "inv", 0, 7.99, "EUR", "basic", "monthly")
    second, third = replace(first, attempt_id="att-2"), replace(first, attempt_id="att-3")
    assert checks.claim(first).billing_double_charge is False
    assert checks.claim(first).billing_double_charge is False  # the same attempt again (a replay)
    assert checks.claim(second).billing_double_charge is True  # claimed by the first, not yet decided
    checks.record_attempt(first, submitted=False)  # blocked: its claim is dropped
    assert checks.claim(third).billing_double_charge is False
    checks.record_attempt(third, submitted=True)
    checks.record_outcome("att-3", "approved")
    assert checks.claim(replace(first, attempt_id="att-4", retry_number=1)).billing_double_charge is True


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "billing.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(BillingStoreVersionError, match="schema version 99"):
        SQLiteBillingStore(path)
