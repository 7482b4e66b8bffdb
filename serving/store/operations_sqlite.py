"""Rules and lists in one SQLite file (WAL) in the state directory, ``operations.sqlite``: the
:class:`serving.store.operations.OperationsStore` of a single machine (every worker process of
``riskgate serve --workers N`` opens the same file, so a change reaches them all through :meth:`version`).

Tables: ``rules`` (the current set: one row per rule, its listing position), ``rule_versions`` (every version,
with who, when and why; never deleted), ``lists`` and ``list_items`` (the current lists), ``list_log`` (every
list created or deleted, every item added or removed, with who, when and why) and ``counter`` (one row: the
change counter every write moves in its own transaction). The schema's version is SQLite's ``user_version``;
:func:`migrate` brings an older file up to :data:`STORE_VERSION` step by step (:data:`MIGRATIONS`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, Final, TypeVar

from core.sqlite import open_wal, retry_locked
from events.schema import ExtensionField
from features.definitions import FeatureSet
from rules.book import RuleSpec
from rules.lists import ListItem
from serving.store.operations import (
    INFO_SELECT,
    ITEM_COLUMNS,
    LOG_COLUMNS,
    RULE_COLUMNS,
    VERSION_COLUMNS,
    BuiltLists,
    Change,
    ChangedMeanwhileError,
    ItemChange,
    ItemLogEntry,
    ListInfo,
    Operations,
    OperationsStore,
    Page,
    RuleChange,
    RuleVersion,
    StoredList,
    list_info,
    log_entry,
    missing,
    rule_order,
    rule_spec,
    rule_version,
    stored_item,
    taken,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The file's name in the state directory.
FILE_NAME: Final = "operations.sqlite"
#: The statements that bring the file from version ``i`` to ``i + 1`` (``MIGRATIONS[i]``).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "CREATE TABLE counter (version INTEGER NOT NULL)",
        "INSERT INTO counter (version) VALUES (0)",
        """CREATE TABLE rules (
            name TEXT PRIMARY KEY,
            action TEXT NOT NULL,
            expression TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            description TEXT NOT NULL,
            version INTEGER NOT NULL,
            position INTEGER NOT NULL
        )""",
        """CREATE TABLE rule_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            change TEXT NOT NULL,
            action TEXT NOT NULL,
            expression TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            description TEXT NOT NULL,
            changed_by TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (name, version)
        )""",
        """CREATE TABLE lists (
            name TEXT PRIMARY KEY,
            field TEXT NOT NULL,
            changed INTEGER NOT NULL,
            description TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            reason TEXT NOT NULL
        )""",
        """CREATE TABLE list_items (
            list TEXT NOT NULL,
            value TEXT NOT NULL,
            reason TEXT NOT NULL,
            expires_at TEXT,
            added_by TEXT NOT NULL,
            added_at TEXT NOT NULL,
            PRIMARY KEY (list, value)
        ) WITHOUT ROWID""",
        """CREATE TABLE list_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            list TEXT NOT NULL,
            change TEXT NOT NULL,
            value TEXT,
            changed_by TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            reason TEXT NOT NULL
        )""",
        "CREATE INDEX list_log_list ON list_log (list, id)",
    ),
)
STORE_VERSION: Final = len(MIGRATIONS)
#: How long a write waits for another process holding the file's write lock.
BUSY_TIMEOUT_S: Final = 10.0


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new file, or bring an older one up to :data:`STORE_VERSION` (in one write
    transaction: processes opening the file together wait, then find it done); a newer file is refused."""

    def upgrade() -> None:
        (found,) = db.execute("PRAGMA user_version").fetchone()
        if found > STORE_VERSION:
            raise RuntimeError(
                f"{path} is of version {found}; this riskgate knows up to {STORE_VERSION}: upgrade riskgate"
            )
        for version in range(found, STORE_VERSION):
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            logger.info("operations store %s: schema version %d", path, version + 1)

    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version != STORE_VERSION:
        _in_transaction(db, upgrade)


def _in_transaction(db: sqlite3.Connection, work: Callable[[], T], timeout_s: float = BUSY_TIMEOUT_S) -> T:
    """``work()`` in one write transaction, waiting while another connection holds the write lock."""
    retry_locked(lambda: db.execute("BEGIN IMMEDIATE"), timeout_s)
    try:
        result = work()
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return result


class SQLiteOperations(OperationsStore):
    """The SQLite store of rules and lists (see the module's docstring); one connection behind a lock."""

    def __init__(
        self, path: Path, extension: Sequence[ExtensionField] = (), busy_timeout_s: float = BUSY_TIMEOUT_S
    ) -> None:
        self.path = path
        self.extension = tuple(extension)  # the provider's fields a list may hold
        self._timeout_s = busy_timeout_s
        self._db = open_wal(path, busy_timeout_s)
        migrate(self._db, path)
        self._lock = threading.Lock()
        self._lists = BuiltLists(self.extension)
        logger.info("rules and lists: SQLite at %s", path)

    @classmethod
    def in_state_dir(cls, state_dir: Path, extension: Sequence[ExtensionField] = ()) -> SQLiteOperations:
        """The store of a state directory (``STATE_DIR/operations.sqlite``)."""
        return cls(state_dir / FILE_NAME, extension)

    def _read(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return retry_locked(lambda: self._db.execute(sql, parameters).fetchall(), self._timeout_s)

    def _write(self, work: Callable[[sqlite3.Connection], T], expected: int | None = None) -> T:
        """``work(db)`` in one write transaction that also moves the change counter (refused if the counter
        is not at ``expected``, when given)."""

        def transaction() -> T:
            if expected is not None:
                ((version,),) = self._db.execute("SELECT version FROM counter").fetchall()
                if version != expected:
                    raise ChangedMeanwhileError(int(version), expected)
            result = work(self._db)
            self._db.execute("UPDATE counter SET version = version + 1")
            return result

        with self._lock:
            return _in_transaction(self._db, transaction, self._timeout_s)

    def version(self) -> int:
        ((version,),) = self._read("SELECT version FROM counter")
        return int(str(version))

    # -- rules ----------------------------------------------------------------------------------------------

    def current_rules(self) -> list[RuleSpec]:
        specs = [rule_spec(row) for row in self._read(f"SELECT {RULE_COLUMNS} FROM rules ORDER BY position")]
        return sorted(specs, key=rule_order)  # stable: creation order within each action

    def rule(self, name: str) -> RuleVersion:
        rows = self._read(
            f"SELECT {VERSION_COLUMNS} FROM rule_versions WHERE (name, version) = "
            "(SELECT name, version FROM rules WHERE name = ?)",
            (name,),
        )
        if not rows:
            raise missing("rule", name)
        return rule_version(rows[0])

    def rule_versions(self, name: str) -> list[RuleVersion]:
        rows = self._read(
            f"SELECT {VERSION_COLUMNS} FROM rule_versions WHERE name = ? ORDER BY version", (name,)
        )
        if not rows:
            raise missing("rule", name)
        return [rule_version(row) for row in rows]

    def save_rule(
        self, spec: RuleSpec, change: RuleChange, made: Change, expected: int | None = None
    ) -> RuleVersion:
        def save(db: sqlite3.Connection) -> RuleVersion:
            exists = db.execute("SELECT 1 FROM rules WHERE name = ?", (spec.name,)).fetchone() is not None
            if exists == (change is RuleChange.CREATED):
                raise taken("rule", spec.name) if exists else missing("rule", spec.name)
            (last,) = db.execute(
                "SELECT coalesce(max(version), 0) FROM rule_versions WHERE name = ?", (spec.name,)
            ).fetchone()
            version = int(last) + 1
            db.execute(
                f"INSERT INTO rule_versions ({VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    spec.name, version, change.value, spec.action.value, spec.expression, int(spec.enabled),
                    spec.description, made.by, made.at.isoformat(), made.reason,
                ),
            )  # fmt: skip
            if change is RuleChange.DELETED:
                db.execute("DELETE FROM rules WHERE name = ?", (spec.name,))
            elif change is RuleChange.CREATED:
                db.execute(
                    "INSERT INTO rules (name, action, expression, enabled, description, version, position) "
                    "VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(position), 0) + 1 FROM rules))",
                    (
                        spec.name,
                        spec.action.value,
                        spec.expression,
                        int(spec.enabled),
                        spec.description,
                        version,
                    ),
                )
            else:
                db.execute(
                    "UPDATE rules SET action = ?, expression = ?, enabled = ?, description = ?, version = ? "
                    "WHERE name = ?",
                    (
                        spec.action.value,
                        spec.expression,
                        int(spec.enabled),
                        spec.description,
                        version,
                        spec.name,
                    ),
                )
            return RuleVersion(spec, version, change, made)

        saved = self._write(save, expected)
        logger.info("rule %r %s (version %d) by %s", spec.name, change.value, saved.version, made.by)
        return saved

    # -- lists ----------------------------------------------------------------------------------------------

    def current_lists(self) -> dict[str, StoredList]:
        """Every list, built for membership tests; a list unchanged since this store last built it is not
        built again (building checks and indexes every item: about a second per 100,000)."""
        with self._lock:  # one read transaction: the lists and their items as of one moment
            retry_locked(lambda: self._db.execute("BEGIN"), self._timeout_s)
            try:
                lists = self._db.execute("SELECT name, field, changed FROM lists ORDER BY name").fetchall()
                return self._lists.refresh(
                    lists,
                    lambda name: self._db.execute(
                        "SELECT value, reason, expires_at FROM list_items WHERE list = ?", (name,)
                    ).fetchall(),
                )
            finally:
                self._db.execute("COMMIT")

    def list_infos(self) -> list[ListInfo]:
        rows = self._read(INFO_SELECT + " GROUP BY l.name ORDER BY l.name")
        return [list_info(row, self.extension) for row in rows]

    def list_info(self, name: str) -> ListInfo:
        rows = self._read(INFO_SELECT + " WHERE l.name = ? GROUP BY l.name", (name,))
        if not rows:
            raise missing("list", name)
        return list_info(rows[0], self.extension)

    def create_list(self, name: str, field: str, description: str, made: Change) -> ListInfo:
        def create(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM lists WHERE name = ?", (name,)).fetchone() is not None:
                raise taken("list", name)
            db.execute(
                "INSERT INTO lists (name, field, changed, description, created_by, created_at, reason) "
                "VALUES (?, ?, (SELECT version + 1 FROM counter), ?, ?, ?, ?)",
                (name, field, description, made.by, made.at.isoformat(), made.reason),
            )
            _log(db, name, ItemChange.CREATED, [None], made)

        self._write(create)
        logger.info("list %r of %s created by %s", name, field, made.by)
        return self.list_info(name)

    def delete_list(self, name: str, made: Change, expected: int | None = None) -> None:
        def delete(db: sqlite3.Connection) -> None:
            if db.execute("DELETE FROM lists WHERE name = ?", (name,)).rowcount == 0:
                raise missing("list", name)
            db.execute("DELETE FROM list_items WHERE list = ?", (name,))
            _log(db, name, ItemChange.DELETED, [None], made)

        self._write(delete, expected)
        logger.info("list %r deleted by %s", name, made.by)

    def add_items(self, name: str, items: Sequence[ListItem], made: Change) -> int:
        def add(db: sqlite3.Connection) -> int:
            _touch(db, name)
            db.executemany(
                "INSERT OR REPLACE INTO list_items (list, value, reason, expires_at, added_by, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        name, item.value, item.reason,
                        None if item.expires_at is None else item.expires_at.astimezone(UTC).isoformat(),
                        made.by, made.at.isoformat(),
                    )
                    for item in items
                ],
            )  # fmt: skip
            _log(db, name, ItemChange.ADDED, [item.value for item in items], made)
            return len(items)

        added = self._write(add)
        logger.info("list %r: %d item(s) added by %s", name, added, made.by)
        return added

    def remove_items(self, name: str, values: Sequence[str], made: Change) -> int:
        def remove(db: sqlite3.Connection) -> int:
            _touch(db, name)
            present = [
                value
                for value in dict.fromkeys(values)
                if db.execute("DELETE FROM list_items WHERE list = ? AND value = ?", (name, value)).rowcount
            ]
            _log(db, name, ItemChange.REMOVED, present, made)
            return len(present)

        removed = self._write(remove)
        logger.info("list %r: %d item(s) removed by %s", name, removed, made.by)
        return removed

    def items(self, name: str, offset: int, limit: int) -> Page:
        self.list_info(name)
        rows = self._read(
            f"SELECT {ITEM_COLUMNS} FROM list_items WHERE list = ? ORDER BY value LIMIT ? OFFSET ?",
            (name, limit, offset),
        )
        ((total,),) = self._read("SELECT count(*) FROM list_items WHERE list = ?", (name,))
        return Page(tuple(stored_item(row) for row in rows), int(str(total)), offset)

    def item_log(self, name: str, offset: int, limit: int) -> list[ItemLogEntry]:
        rows = self._read(
            f"SELECT {LOG_COLUMNS} FROM list_log WHERE list = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (name, limit, offset),
        )
        if not rows and offset == 0:
            raise missing("list", name)
        return [log_entry(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _touch(db: sqlite3.Connection, name: str) -> None:
    """Mark a list changed by the change being made (the counter's next value); it must exist."""
    touched = db.execute(
        "UPDATE lists SET changed = (SELECT version + 1 FROM counter) WHERE name = ?", (name,)
    ).rowcount
    if not touched:
        raise missing("list", name)


def _log(
    db: sqlite3.Connection, name: str, change: ItemChange, values: Sequence[str | None], made: Change
) -> None:
    db.executemany(
        "INSERT INTO list_log (list, change, value, changed_by, changed_at, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(name, change.value, value, made.by, made.at.isoformat(), made.reason) for value in values],
    )


def open_operations(state_dir: Path, feature_set: FeatureSet) -> Operations:
    """The rules and lists of a state directory, checked against ``feature_set`` (the served one)."""
    return Operations(SQLiteOperations.in_state_dir(state_dir, feature_set.fields), feature_set)
