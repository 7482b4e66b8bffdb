"""The review queue's cases behind their interface (serving.store.cases.CaseStore) over a decision log, and
expiry by configuration: pages cover every case once in order whatever their size, a resolution and its
fraud report come and go together, the queue's numbers, and expired cases resolved by their segment's rule
(claimed ones waiting) with review.resolved emitted.

Every test of the store's behaviour runs on both backends (SQLite: the tables in the decision log's file;
PostgreSQL: in the fleet's database, the decisions written as plain rows), and on PostgreSQL claims hold
across instances: two analysts claiming one case at once on two instances, one holds it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.errors import ConfigurationError, ConflictError
from serving.metrics import ServiceMetrics
from serving.scoring.review import ReviewDesk
from serving.scoring.review_expiry import DEFAULT_EXPIRY, ExpiryJob, read_expiry
from serving.scoring.schemas import AttemptIn
from serving.store.base import DecisionRecord, LoggedDecision
from serving.store.cases import (
    EXPIRY,
    CaseQuery,
    CaseStatus,
    CaseStore,
    Claim,
    Outcome,
    Resolution,
    report_id,
)
from serving.store.cases_sqlite import SQLiteCases
from serving.store.decisions import DecisionLog
from serving.store.labels import ReportSource
from serving.store.labels_sqlite import SQLiteReports
from serving.store.outbox import EventType
from serving.store.postgres.cases import PostgresCases
from serving.store.postgres.database import Database
from tests.servers import PostgresServer
from tests.serving.factories import attempt
from tests.serving.store.decision_rows import DecisionRows, FraudReportRows

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)
_databases = itertools.count()


def decision(
    attempt_id: str,
    action: str = "review",
    *,
    kind: str = "renewal",
    level: str = "elevated",
    amount: float = 10.0,
    tenure_days: float | None = None,
) -> DecisionRecord:
    features = None if tenure_days is None else {"account_attempts_since_first_days": tenure_days}
    answer = {"attempt_id": attempt_id, "decision": {"action": action}, "features": features}
    return DecisionRecord(
        attempt_id=attempt_id, occurred_at=AT, account_key="acc", method_key="pm", kind=kind,
        fingerprint="fp", action=action, rule="fraud_elevated", fallback=False, fraud_probability=0.5,
        failure_probability=0.1, answer=answer, amount=amount, currency="EUR", fraud_level=level,
    )  # fmt: skip


class Log(Protocol):
    """What the tests need of a decision log: recording a decision (the first one of an attempt stays)."""

    def record(self, decision: DecisionRecord) -> LoggedDecision: ...


@dataclass(frozen=True)
class Queue:
    """A decision log of one backend, its review queue's store and its fraud reports as the label pull reads
    them; ``other`` opens the store as another instance (its own connection or pool) would."""

    log: Log
    store: CaseStore
    reports: ReportSource
    other: Callable[[], CaseStore]


@pytest.fixture(params=["sqlite", "postgres"])
def queues(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Queue]]:
    """Makes new, empty queues of one backend (all closed at the end)."""
    opened: list[Callable[[], None]] = []

    def kept(close: Callable[[], None]) -> None:
        opened.append(close)

    def sqlite() -> Queue:
        path = tmp_path_factory.mktemp("log") / "decisions.sqlite"
        log, store = DecisionLog(path), SQLiteCases(path)
        reports = SQLiteReports(path)
        for part in (log, store, reports):
            kept(part.close)

        def other() -> CaseStore:
            cases = SQLiteCases(path)
            kept(cases.close)
            return cases

        return Queue(log, store, reports, other)

    def postgres() -> Queue:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database(f"cases{next(_databases)}", template=empty)

        def pool() -> Database:
            database = Database(url, 4)
            kept(database.close)
            return database

        database = pool()
        return Queue(
            DecisionRows(database), PostgresCases(database), FraudReportRows(database),
            lambda: PostgresCases(pool()),
        )  # fmt: skip

    if request.param == "postgres":
        empty = request.getfixturevalue("postgres_url").rsplit("/", 1)[1]  # the newest schema, untouched
    yield sqlite if request.param == "sqlite" else postgres
    for close in reversed(opened):
        close()


@pytest.fixture
def queue(queues: Callable[[], Queue]) -> Queue:
    return queues()


@pytest.fixture
def log(queue: Queue) -> Log:
    return queue.log


@pytest.fixture
def store(queue: Queue) -> CaseStore:
    return queue.store


def all_pages(store: CaseStore, status: CaseStatus, size: int) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = store.cases(CaseQuery(status, limit=size, after=after))
        assert len(page.cases) <= size
        seen += [case.case_id for case in page.cases]
        if page.next_after is None:
            return seen
        after = page.next_after


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    actions=st.lists(st.sampled_from(["review", "review", "approve", "block"]), min_size=0, max_size=30),
    resolved=st.sets(st.integers(0, 29)),
    size=st.integers(1, 7),
)
def test_pages_cover_every_case_once_oldest_first(
    queues: Callable[[], Queue], actions: list[str], resolved: set[int], size: int
) -> None:
    queue = queues()
    log, store = queue.log, queue.store
    logged = [log.record(decision(f"a{n:02d}", action)) for n, action in enumerate(actions)]
    reviews = [(d.decided_at, d.attempt_id) for d, a in zip(logged, actions, strict=True) if a == "review"]
    order = [attempt_id for _, attempt_id in sorted(reviews)]
    closed = [attempt_id for attempt_id in order if int(attempt_id[1:]) in resolved]
    for attempt_id in closed:
        store.resolve(attempt_id, Resolution(Outcome.APPROVED, "", "ana", AT), AT)
    assert all_pages(store, CaseStatus.OPEN, size) == [a for a in order if a not in closed]
    assert all_pages(store, CaseStatus.CLOSED, size) == closed
    assert store.stats().open == len(order) - len(closed)


def test_a_replayed_decision_is_still_one_case(log: Log, store: CaseStore) -> None:
    log.record(decision("a1"))
    log.record(decision("a1", "block"))  # the first decision wins: still the one review case
    log.record(decision("a2", "approve"))
    assert [case.case_id for case in store.cases(CaseQuery()).cases] == ["a1"]
    store.keep_values({"a1": {"device_id": "dev-1"}})
    store.keep_values({"a1": {"device_id": "dev-2"}})  # kept once
    assert store.case("a1").values == {"device_id": "dev-1"}


def test_review_decisions_logged_before_the_queue_existed_are_not_cases(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.sqlite")
    log.record(decision("before"))
    store = SQLiteCases(log.path)
    log.record(decision("after"))
    assert [case.case_id for case in store.cases(CaseQuery()).cases] == ["after"]
    assert store.stats().open == 1
    store.close()
    again = SQLiteCases(log.path)  # the start of the queue is kept
    assert [case.case_id for case in again.cases(CaseQuery()).cases] == ["after"]
    again.close()
    log.close()


def test_a_fraud_resolution_and_its_report_come_and_go_together(queue: Queue) -> None:
    log, store = queue.log, queue.store
    log.record(decision("a1"))
    made = Resolution(Outcome.FRAUD, "bank confirmed", "ana", AT + timedelta(hours=2), report_id("a1"))
    closed = store.resolve("a1", made, made.at)
    assert closed.status is CaseStatus.CLOSED
    assert closed.resolution == made
    reports = queue.reports.reports()  # the report is in the log's fraud_reports, where the label pull reads
    assert [(r.report_id, r.attempt_id, r.reported_at, r.report_type) for r in reports] == [
        ("review-a1", "a1", made.at, "confirmed_fraud")
    ]
    with pytest.raises(ConflictError):
        store.resolve("a1", made, made.at)
    store.reopen("a1", made)
    assert store.case("a1").status is CaseStatus.OPEN
    assert queue.reports.reports() == []


def test_a_claim_holds_until_it_lapses(log: Log, store: CaseStore) -> None:
    log.record(decision("a1"))
    store.claim("a1", Claim("ana", AT, AT + timedelta(minutes=30)))
    with pytest.raises(ConflictError, match="ana"):
        store.claim("a1", Claim("bob", AT + timedelta(minutes=29), AT + timedelta(hours=1)))
    with pytest.raises(ConflictError, match="ana"):
        store.resolve("a1", Resolution(Outcome.APPROVED, "", "bob", AT), AT + timedelta(minutes=29))
    later = AT + timedelta(minutes=30)
    assert store.claim("a1", Claim("bob", later, later + timedelta(minutes=30))).holder(later) == "bob"


def test_the_queues_numbers(log: Log, store: CaseStore) -> None:
    for n, level in enumerate(("elevated", "elevated", "normal", "elevated")):
        log.record(decision(f"a{n}", level=level))
    oldest = store.case("a0").opened_at
    for attempt_id, outcome in (("a0", Outcome.FRAUD), ("a1", Outcome.NOT_FRAUD), ("a2", Outcome.NOT_FRAUD)):
        store.resolve(attempt_id, Resolution(outcome, "", "ana", AT), AT)
    stats = store.stats()
    assert stats.open == 1
    assert stats.oldest_opened_at == store.case("a3").opened_at > oldest
    assert stats.resolutions == {
        ("fraud", "elevated"): 1,
        ("not_fraud", "elevated"): 1,
        ("not_fraud", "normal"): 1,
    }


def claim_at_once(instances: list[CaseStore], case_id: str) -> list[str]:
    """Analyst ``k`` claims ``case_id`` on instance ``k``, all released together: who holds it, or why not."""
    start = threading.Barrier(len(instances))

    def claim(k: int) -> str:
        start.wait()
        try:
            held = instances[k].claim(case_id, Claim(f"analyst{k}", AT, AT + timedelta(hours=1)))
        except ConflictError as refused:
            return f"refused: {refused}"
        return held.holder(AT) or "nobody"

    with ThreadPoolExecutor(len(instances)) as pool:
        return list(pool.map(claim, range(len(instances))))


def test_erasure_drops_the_values_kept_for_the_accounts_cases(log: Log, store: CaseStore) -> None:
    log.record(decision("a1"))
    log.record(replace(decision("a2"), account_key="other"))
    store.keep_values({"a1": {"device_id": "dev-1"}, "a2": {"device_id": "dev-2"}})
    assert store.erase_values("acc") == 1
    assert store.case("a1").values == {}
    assert store.case("a2").values == {"device_id": "dev-2"}
    assert store.erase_values("acc") == 0


def test_one_of_two_instances_claiming_a_case_at_once_holds_it(queue: Queue) -> None:
    instances = [queue.store, queue.other()]
    for n in range(10):
        queue.log.record(decision(f"a{n}"))
        outcomes = claim_at_once(instances, f"a{n}")
        refused = [o for o in outcomes if o.startswith("refused")]
        assert len(refused) == 1, outcomes
        holder = next(o for o in outcomes if not o.startswith("refused"))
        assert f"claimed by {holder}" in refused[0]
        assert all(instance.case(f"a{n}").holder(AT) == holder for instance in instances)


def test_a_case_resolved_on_one_instance_is_refused_on_the_other(queue: Queue) -> None:
    queue.log.record(decision("a1"))
    other = queue.other()
    queue.store.claim("a1", Claim("ana", AT, AT + timedelta(hours=1)))
    with pytest.raises(ConflictError, match="claimed by ana"):
        other.resolve("a1", Resolution(Outcome.NOT_FRAUD, "", "bob", AT), AT)
    queue.store.resolve("a1", Resolution(Outcome.APPROVED, "", "ana", AT), AT)
    with pytest.raises(ConflictError, match="resolved already"):
        other.claim("a1", Claim("bob", AT, AT + timedelta(hours=1)))
    assert other.stats().open == 0


# -- expiry ------------------------------------------------------------------------------------------------


class Events:
    """An outbox that keeps what is emitted."""

    def __init__(self) -> None:
        self.emitted: list[tuple[EventType, Mapping[str, Any]]] = []

    def emit(self, event_type: EventType, payload: Mapping[str, Any], key: str | None = None) -> str:
        self.emitted.append((event_type, payload))
        return str(len(self.emitted))


def test_the_default_expiry_approves_long_standing_renewals_and_declines_the_rest(
    log: Log, store: CaseStore
) -> None:
    log.record(decision("loyal", tenure_days=400))
    log.record(decision("newish", tenure_days=20))
    log.record(decision("signup", kind="signup", tenure_days=400))
    log.record(decision("unknown"))  # no features: no tenure
    opened = store.case("loyal").opened_at
    due = {case_id: DEFAULT_EXPIRY.due(store.case(case_id), opened + timedelta(hours=30)) for case_id in
           ("loyal", "newish", "signup", "unknown")}  # fmt: skip
    assert due["loyal"] is not None
    assert due["loyal"][0] is Outcome.APPROVED
    assert due["newish"] is due["signup"] is due["unknown"] is None  # 48 h for them
    later = opened + timedelta(hours=49)
    outcomes = {case_id: DEFAULT_EXPIRY.due(store.case(case_id), later) for case_id in ("newish", "signup")}
    assert {case_id: verdict[0] for case_id, verdict in outcomes.items() if verdict} == {
        "newish": Outcome.DECLINED,
        "signup": Outcome.DECLINED,
    }


def test_values_held_when_a_case_opens_are_kept_by_the_queues_job(log: Log, store: CaseStore) -> None:
    log.record(decision("a1"))
    desk = ReviewDesk(store, ServiceMetrics(), flush=lambda: None)
    answer: Any = {"fraud": {"probability": 0.5, "level": "elevated"}, "decision": {"rule": "r"}}
    desk.opened(AttemptIn.model_validate(attempt(1, attempt_id="a1")), AT, answer, "acc")
    assert store.case("a1").values == {}  # the scoring path wrote nothing
    ExpiryJob(desk, DEFAULT_EXPIRY, interval=3600).start().stop()
    assert store.case("a1").values == {"payment_method_id": "pm_tok_1", "device_id": "dev-1"}
    assert desk.keep_pending() == 0


def test_the_expiry_job_resolves_expired_cases_waiting_for_claims(log: Log, store: CaseStore) -> None:
    for case_id in ("a1", "a2", "a3"):
        log.record(decision(case_id, kind="signup"))
    events = Events()
    desk = ReviewDesk(store, ServiceMetrics(), flush=lambda: None, outbox=events)  # type: ignore[arg-type]
    policy = read_expiry('{"rules": [{"kinds": ["signup"], "after_hours": 2, "outcome": "decline"}]}')
    now = datetime.now(UTC)
    store.claim("a2", Claim("ana", now, now + timedelta(hours=3)))
    job = ExpiryJob(desk, policy, interval=3600)
    assert job.run_once() == 0  # not 2 hours yet
    desk.clock = lambda: now + timedelta(hours=2, minutes=1)
    assert job.run_once() == 2
    assert store.case("a1").resolution is not None
    assert store.case("a1").resolution.by == EXPIRY  # type: ignore[union-attr]
    assert store.case("a2").status is CaseStatus.OPEN  # held by ana
    assert [(event, data["case_id"], data["outcome"]) for event, data in events.emitted] == [
        (EventType.REVIEW_RESOLVED, "a1", "declined"),
        (EventType.REVIEW_RESOLVED, "a3", "declined"),
    ]
    desk.clock = lambda: now + timedelta(hours=3, minutes=1)
    assert job.run_once() == 1
    assert job.run_once() == 0


def test_the_expiry_setting_is_read_from_text_or_a_file_and_refused_naming_the_problem(
    tmp_path: Path,
) -> None:
    file = tmp_path / "expiry.yaml"
    file.write_text(
        "rules:\n  - kinds: [renewal]\n    min_tenure_days: 90\n    after_hours: 12\n    outcome: approve\n"
    )
    policy = read_expiry(str(file))
    assert policy.rules[0].min_tenure_days == 90
    assert read_expiry(None) == DEFAULT_EXPIRY
    for setting, problem in (
        ('{"rules": [{"after_hours": 0, "outcome": "approve"}]}', "rules.0.after_hours"),
        ('{"rules": [{"after_hours": 1, "outcome": "maybe"}]}', "rules.0.outcome"),
        ('{"rules": [{"after_hours": 1, "outcome": "approve", "kinds": ["gift"]}]}', "rules.0.kinds.0"),
        ('{"rulez": []}', "rulez"),
        (str(tmp_path / "missing.yaml"), "cannot be read"),
    ):
        with pytest.raises(ConfigurationError, match=problem):
            read_expiry(setting)
