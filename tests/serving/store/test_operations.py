"""The store of rules and lists behind its interface, through the checks every change passes: versions with
who, when and why, the current set in the documented order, lists with expiry and CIDR ranges, the change
counter every instance polls, and a store opened again (another process, another instance, a restart).

Every test of the store's behaviour runs on both backends (SQLite, PostgreSQL): several instances over one
home change it at once and still keep one rule per name, versions that never repeat and a counter that moves
once per change; PostgreSQL's instances are also told of every change kept (NOTIFY), never of one refused."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InputError
from features.iptv import FEATURE_SET
from rules.book import RuleAction, RuleSpec, in_order
from rules.errors import ListError, RuleError
from rules.lists import ListItem, to_us
from serving.errors import ConflictError, NotFoundError
from serving.store.operations import (
    Change,
    ItemChange,
    Operations,
    OperationsStore,
    RuleChange,
    RuleVersion,
)
from serving.store.operations_sqlite import STORE_VERSION, SQLiteOperations
from serving.store.postgres import notices
from serving.store.postgres.database import Database
from serving.store.postgres.operations import PostgresOperations
from tests.servers import PostgresServer

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)
#: Opens one more instance of a store over the same rules and lists.
Opener = Callable[[], OperationsStore]
_homes = itertools.count()


def made(reason: str = "tuning", by: str = "ana") -> Change:
    return Change(by, AT, reason)


@dataclass
class Homes:
    """Homes of rules and lists of one backend: :meth:`new` makes an empty one (a state directory, a
    database) and gives the opener of its instances; everything opened is closed at the end."""

    backend: str
    place: Callable[[], Callable[[list[Callable[[], None]]], OperationsStore]]
    opened: list[Callable[[], None]] = field(default_factory=list)  # what to close, in opening order

    def new(self) -> Opener:
        open_in = self.place()
        return lambda: open_in(self.opened)

    def close(self) -> None:
        for close in reversed(self.opened):
            close()


def _sqlite_store(directory: Path, opened: list[Callable[[], None]]) -> OperationsStore:
    store = SQLiteOperations.in_state_dir(directory)
    opened.append(store.close)
    return store


def _postgres_store(url: str, opened: list[Callable[[], None]]) -> OperationsStore:
    database = Database(url, 4)  # an instance of its own: its own pool
    opened.append(database.close)
    store = PostgresOperations(database)
    opened.append(store.close)
    return store


@pytest.fixture(params=["sqlite", "postgres"])
def homes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homes]:
    if request.param == "sqlite":
        found = Homes("sqlite", lambda: partial(_sqlite_store, tmp_path_factory.mktemp("ops")))
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        empty = request.getfixturevalue("postgres_url").rsplit("/", 1)[1]  # at the newest schema, untouched
        found = Homes(
            "postgres",
            lambda: partial(_postgres_store, server.create_database(f"ops{next(_homes)}", template=empty)),
        )
    yield found
    found.close()


@pytest.fixture
def operations(homes: Homes) -> Operations:
    return Operations(homes.new()(), FEATURE_SET)


def test_every_version_of_a_rule_is_kept_with_who_when_and_why(operations: Operations) -> None:
    spec = RuleSpec("big", RuleAction.REVIEW, "amount > 100")
    operations.create_rule(spec, made("new rule"))
    operations.change_rule(RuleSpec("big", RuleAction.REVIEW, "amount > 200"), made("too many", by="bo"))
    operations.set_enabled("big", False, made("holiday"))
    operations.set_enabled("big", True, made("back"))
    operations.delete_rule("big", made("replaced"))
    history = operations.store.rule_versions("big")
    assert [(v.version, v.change, v.made.by, v.made.reason) for v in history] == [
        (1, RuleChange.CREATED, "ana", "new rule"),
        (2, RuleChange.CHANGED, "bo", "too many"),
        (3, RuleChange.DISABLED, "ana", "holiday"),
        (4, RuleChange.ENABLED, "ana", "back"),
        (5, RuleChange.DELETED, "ana", "replaced"),
    ]
    assert history[1].spec.expression == "amount > 200"
    assert history[2].spec.enabled is False
    assert history[0].made.at == AT
    assert operations.store.current_rules() == []
    with pytest.raises(NotFoundError):
        operations.store.rule("big")
    again = operations.create_rule(spec, made("back again"))
    assert again.version == 6  # the history goes on


def test_the_current_set_is_in_the_documented_order(operations: Operations) -> None:
    for name, action in (
        ("r1", "review"),
        ("b1", "block"),
        ("a1", "allow"),
        ("b2", "block"),
        ("a2", "allow"),
    ):
        operations.create_rule(RuleSpec(name, RuleAction(action), "amount > 1"), made())
    operations.set_enabled("b1", False, made())
    current = operations.store.current_rules()
    assert [s.name for s in current] == ["a1", "a2", "b1", "b2", "r1"]
    assert [s.name for s in in_order(current)] == ["a1", "a2", "b2", "r1"]


def test_refusals_name_the_position_and_change_nothing(operations: Operations) -> None:
    with pytest.raises(RuleError, match=r"line 1, column 1 \('amout'\).*'amount'"):
        operations.create_rule(RuleSpec("typo", RuleAction.BLOCK, "amout > 1"), made())
    with pytest.raises(RuleError, match="@nowhere"):
        operations.create_rule(RuleSpec("nolist", RuleAction.BLOCK, "device_id in @nowhere"), made())
    with pytest.raises(InputError, match="reason"):
        operations.create_rule(RuleSpec("noreason", RuleAction.BLOCK, "amount > 1"), made(" "))
    operations.create_rule(RuleSpec("ok", RuleAction.BLOCK, "amount > 1"), made())
    with pytest.raises(ConflictError):
        operations.create_rule(RuleSpec("ok", RuleAction.BLOCK, "amount > 2"), made())
    with pytest.raises(NotFoundError):
        operations.change_rule(RuleSpec("nope", RuleAction.BLOCK, "amount > 2"), made())
    assert operations.store.version() == 1


def test_lists_hold_checked_items_with_expiry_and_ranges(operations: Operations) -> None:
    operations.create_list("bad_ips", "ip", "known bad networks", made())
    operations.add_items(
        "bad_ips",
        [
            ListItem("203.0.113.0/24", "botnet"),
            ListItem("198.51.100.7", "chargebacks", AT + timedelta(days=1)),
        ],
        made(),
    )
    with pytest.raises(ListError, match="host bits"):
        operations.add_items("bad_ips", [ListItem("203.0.113.5/24", "typo")], made())
    lists = operations.store.current_lists()
    bad = lists["bad_ips"]
    now = to_us(AT)
    assert bad.contains("203.0.113.77", now)
    assert bad.contains("198.51.100.7", now)
    assert not bad.contains("198.51.100.7", to_us(AT + timedelta(days=2)))  # expired
    assert not bad.contains("192.0.2.1", now)
    assert operations.remove_items("bad_ips", ["203.0.113.0/24", "192.0.2.9"], made("cleaned")) == 1
    page = operations.store.items("bad_ips", 0, 10)
    assert (page.total, [s.item.value for s in page.items]) == (1, ["198.51.100.7"])
    assert page.items[0].item.expires_at == AT + timedelta(days=1)
    log = operations.store.item_log("bad_ips", 0, 10)
    assert [(e.change, e.value) for e in log] == [
        (ItemChange.REMOVED, "203.0.113.0/24"),
        (ItemChange.ADDED, "198.51.100.7"),
        (ItemChange.ADDED, "203.0.113.0/24"),
        (ItemChange.CREATED, None),
    ]


def test_a_list_a_rule_reads_cannot_be_deleted(operations: Operations) -> None:
    operations.create_list("blocked_devices", "device_id", "", made())
    operations.create_rule(RuleSpec("dev", RuleAction.BLOCK, "device_id in @blocked_devices"), made())
    with pytest.raises(ConflictError, match="dev"):
        operations.delete_list("blocked_devices", made())
    operations.delete_rule("dev", made())
    operations.delete_list("blocked_devices", made())
    assert operations.store.current_lists() == {}
    with pytest.raises(ListError):
        operations.create_list("cards", "card_number", "", made())


def test_the_counter_moves_with_every_change_and_other_instances_see_it(homes: Homes) -> None:
    home = homes.new()
    first = Operations(home(), FEATURE_SET)
    other = home()  # another instance on the same file or database
    assert other.version() == 0
    first.create_rule(RuleSpec("big", RuleAction.BLOCK, "amount > 100"), made())
    first.create_list("devices", "device_id", "", made())
    first.add_items("devices", [ListItem("dev-1", "stolen")], made())
    assert other.version() == 3
    assert [s.name for s in other.current_rules()] == ["big"]
    assert other.current_lists()["devices"].contains("dev-1", to_us(AT))
    first.store.close()
    other.close()
    assert home().version() == 3  # reopened


def test_only_the_lists_that_changed_are_built_again(homes: Homes) -> None:
    home = homes.new()
    writer = Operations(home(), FEATURE_SET)
    reader = home()  # a scoring instance
    for name in ("devices", "accounts"):
        writer.create_list(name, name.removesuffix("s") + "_id", "", made())
        writer.add_items(name, [ListItem(f"{name}-1", "test")], made())
    first = reader.current_lists()
    assert reader.current_lists()["devices"] is first["devices"]
    writer.add_items("devices", [ListItem("devices-2", "test")], made())
    second = reader.current_lists()
    assert second["accounts"] is first["accounts"]
    assert second["devices"].contains("devices-2", to_us(AT))
    writer.delete_list("accounts", made())
    writer.create_list("accounts", "account_id", "", made())
    assert reader.current_lists()["accounts"].items == ()


def test_a_file_of_a_newer_riskgate_is_refused(tmp_path: Path) -> None:
    SQLiteOperations.in_state_dir(tmp_path).close()
    db = sqlite3.connect(tmp_path / "operations.sqlite")
    db.execute(f"PRAGMA user_version = {STORE_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="upgrade riskgate"):
        SQLiteOperations.in_state_dir(tmp_path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["create", "change", "disable", "enable", "delete"]), st.integers(0, 2)),
        max_size=12,
    )
)
def test_the_counter_counts_the_changes_kept_and_versions_follow_on(
    homes: Homes, steps: list[tuple[str, int]]
) -> None:
    operations = Operations(homes.new()(), FEATURE_SET)
    kept = 0
    enabled: dict[str, bool] = {}  # the model: each existing rule, enabled or not
    for step, n in steps:
        name = f"r{n}"
        expected = {
            "create": name not in enabled,
            "change": name in enabled,
            "delete": name in enabled,
            "disable": enabled.get(name) is True,
            "enable": enabled.get(name) is False,
        }[step]
        try:
            _step(operations, step, RuleSpec(name, RuleAction.BLOCK, f"amount > {kept}"))
        except (NotFoundError, ConflictError):
            assert not expected
            continue
        assert expected
        kept += 1
        if step == "delete":
            del enabled[name]
        else:
            enabled[name] = step != "disable"
    assert operations.store.version() == kept
    assert {s.name: s.enabled for s in operations.store.current_rules()} == enabled
    for n in range(3):
        try:
            versions = operations.store.rule_versions(f"r{n}")
        except NotFoundError:
            continue
        assert [v.version for v in versions] == list(range(1, len(versions) + 1))
        assert versions[0].change is RuleChange.CREATED


def _step(operations: Operations, step: str, spec: RuleSpec) -> None:
    if step == "create":
        operations.create_rule(spec, made())
    elif step == "change":
        operations.change_rule(spec, made())
    elif step == "delete":
        operations.delete_rule(spec.name, made())
    else:
        operations.set_enabled(spec.name, step == "enable", made())


# -- several instances at once ------------------------------------------------------------------------------


def at_once(calls: Sequence[Callable[[], object]]) -> list[object]:
    """Run ``calls`` on threads of their own, released together; each call's result or the error it raised."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        start.wait()
        try:
            return call()
        except Exception as error:  # the outcome under test
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_instances_creating_one_name_at_once_give_one_rule_and_one_taken_error(homes: Homes) -> None:
    home = homes.new()
    instances = [Operations(home(), FEATURE_SET) for _ in range(2)]
    for n in range(8):
        spec = RuleSpec(f"r{n}", RuleAction.BLOCK, "amount > 1")
        outcomes = at_once([partial(i.create_rule, spec, made(by=f"i{k}")) for k, i in enumerate(instances)])
        taken = [o for o in outcomes if isinstance(o, ConflictError)]
        assert len(taken) == 1, outcomes
        assert "exists already" in str(taken[0])
        assert [v.version for v in instances[0].store.rule_versions(spec.name)] == [1]
    assert instances[1].store.version() == 8  # the refused creations changed nothing


def test_versions_never_repeat_when_instances_change_a_rule_at_once(homes: Homes) -> None:
    home = homes.new()
    instances = [Operations(home(), FEATURE_SET) for _ in range(2)]
    instances[0].create_rule(RuleSpec("big", RuleAction.REVIEW, "amount > 0"), made())
    changes = [
        partial(instances[n % 2].change_rule, RuleSpec("big", RuleAction.REVIEW, f"amount > {n}"), made())
        for n in range(1, 9)
    ]
    outcomes = at_once(changes)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    versions = instances[1].store.rule_versions("big")
    assert [v.version for v in versions] == list(range(1, 10))
    assert instances[0].store.rule("big").spec.expression == versions[-1].spec.expression
    assert instances[0].store.version() == 9


def test_items_added_by_instances_at_once_are_all_kept_and_logged(homes: Homes) -> None:
    home = homes.new()
    instances = [Operations(home(), FEATURE_SET) for _ in range(2)]
    instances[0].create_list("devices", "device_id", "", made())
    batches = [[ListItem(f"dev-{n}-{k}", "stolen") for k in range(50)] for n in range(6)]
    adds = [partial(instances[n % 2].add_items, "devices", batch, made()) for n, batch in enumerate(batches)]
    assert at_once(adds) == [50] * 6
    assert instances[1].store.items("devices", 0, 1).total == 300
    assert len(instances[0].store.item_log("devices", 0, 1000)) == 301  # and the list's creation
    assert len(instances[1].store.current_lists()["devices"].items) == 300


def test_a_rule_checked_against_a_list_another_instance_deletes_meanwhile_is_checked_again(
    homes: Homes, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = homes.new()
    analyst, other = Operations(home(), FEATURE_SET), Operations(home(), FEATURE_SET)
    analyst.create_list("devices", "device_id", "", made())
    save = analyst.store.save_rule

    def interleaved(*args: Any) -> RuleVersion:  # the list goes between the rule's checks and its write
        if other.store.list_infos():
            other.delete_list("devices", made("not needed"))
        return save(*args)

    monkeypatch.setattr(analyst.store, "save_rule", interleaved)
    with pytest.raises(RuleError, match="@devices"):
        analyst.create_rule(RuleSpec("dev", RuleAction.BLOCK, "device_id in @devices"), made())
    assert other.store.current_rules() == []  # never a rule that reads no list


def test_a_list_deleted_while_another_instance_makes_a_rule_read_it_is_refused(
    homes: Homes, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = homes.new()
    analyst, other = Operations(home(), FEATURE_SET), Operations(home(), FEATURE_SET)
    analyst.create_list("devices", "device_id", "", made())
    delete = analyst.store.delete_list

    def interleaved(*args: Any) -> None:  # a rule starts reading the list between the checks and the write
        if not other.store.current_rules():
            other.create_rule(RuleSpec("dev", RuleAction.BLOCK, "device_id in @devices"), made())
        delete(*args)

    monkeypatch.setattr(analyst.store, "delete_list", interleaved)
    with pytest.raises(ConflictError, match="read by rule"):
        analyst.delete_list("devices", made())
    assert list(other.store.current_lists()) == ["devices"]


# -- PostgreSQL: every change kept is announced ------------------------------------------------------------


def test_every_change_kept_is_announced_to_the_other_instances_and_none_refused(
    postgres_url: str,
) -> None:
    heard: list[str] = []
    listener = notices.Listener(postgres_url, {notices.RULES: heard.append}).start()
    database = Database(postgres_url, 2)
    try:
        assert listener.connected.wait(10)
        operations = Operations(PostgresOperations(database), FEATURE_SET)
        operations.create_rule(RuleSpec("big", RuleAction.BLOCK, "amount > 100"), made())
        operations.create_list("devices", "device_id", "", made())
        operations.add_items("devices", [ListItem("dev-1", "stolen")], made())
        assert _eventually(lambda: len(heard) == 3)
        with pytest.raises(ConflictError):
            operations.create_rule(RuleSpec("big", RuleAction.BLOCK, "amount > 1"), made())
        with pytest.raises(NotFoundError):
            operations.store.remove_items("nope", ["dev-1"], made())
        time.sleep(0.5)  # a notice would have arrived by now
        assert len(heard) == 3
        assert operations.store.version() == 3
    finally:
        listener.stop()
        database.close()


def _eventually(condition: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
