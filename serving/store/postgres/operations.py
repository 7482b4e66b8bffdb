"""Rules and lists in the fleet's PostgreSQL: the :class:`serving.store.operations.OperationsStore` that every
instance sharing ``RISKGATE_DATABASE_URL`` reads and writes.

The tables are the SQLite store's (schema version ``0002``): ``rules``, ``rule_versions``, ``lists``,
``list_items``, ``list_log`` and ``operations_counter`` (one row: the change counter every instance polls).

Writers from any instance queue one at a time: every write first moves the counter (``UPDATE ... RETURNING``,
which holds the counter row's lock until the transaction ends), then checks and writes. That is what SQLite's
single writer gave, chosen over SERIALIZABLE (whose losers would have to be retried) because changes are
rare (analysts, a rules file) and because the counter must move by exactly one per change kept: the check
"is the name taken?" and the next version of a rule are read after the lock is held (READ COMMITTED reads
what the writer before committed), so two instances creating one name at once give one rule and one
:class:`serving.errors.ConflictError`, and a rule's versions never repeat. The primary keys
(``rules.name``, ``rule_versions (name, version)``, ``list_items (list, value)``) hold even so.

Every change notifies the channel :data:`serving.store.postgres.notices.RULES` inside its transaction
(delivered at commit, never for a change rolled back): the other instances serve it at once instead of at
their next poll of :meth:`PostgresOperations.version`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import psycopg

from events.schema import ExtensionField
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
from serving.store.postgres import notices
from serving.store.postgres.database import Database, redact

logger = logging.getLogger(__name__)
T = TypeVar("T")
Connection = psycopg.Connection[Any]

#: Moves the change counter, holding its row's lock until the transaction ends: writers queue here.
_NEXT_CHANGE: Final = "UPDATE operations_counter SET version = version + 1 RETURNING version"


class PostgresOperations(OperationsStore):
    """The rules and lists of the PostgreSQL ``database`` (see the module's docstring); ``extension``: the
    provider's fields a list may hold. Borrows the service's pool (:meth:`close` leaves it open) unless it
    ``owns`` it (a command's: :meth:`connect`)."""

    def __init__(
        self, database: Database, extension: Sequence[ExtensionField] = (), *, owns: bool = False
    ) -> None:
        self.database = database
        self.extension = tuple(extension)
        self.owns = owns
        self._lists = BuiltLists(self.extension)
        self._lists_lock = threading.Lock()
        logger.info("rules and lists: PostgreSQL at %s", redact(database.url))

    @classmethod
    def connect(cls, url: str, extension: Sequence[ExtensionField] = ()) -> PostgresOperations:
        """The store of the database at ``url`` over a small pool of its own, once the schema is checked
        (:class:`serving.store.postgres.schema.SchemaVersionError` otherwise); :meth:`close` closes it."""
        from serving.store.postgres.schema import open_checked  # noqa: PLC0415 (Alembic: only when needed)

        return cls(open_checked(url, 2), extension, owns=True)

    def _read(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self.database.transaction() as connection:
            return connection.execute(sql, parameters).fetchall()

    def _write(self, work: Callable[[Connection, int], T], expected: int | None = None) -> T:
        """``work(connection, change)`` in one transaction, ``change`` being the counter's new value (refused
        if the counter was not at ``expected``, when given); the other instances are notified when it
        commits."""
        with self.database.transaction() as connection:
            change = _one(connection.execute(_NEXT_CHANGE))
            if expected is not None and change != expected + 1:
                raise ChangedMeanwhileError(change - 1, expected)
            result = work(connection, change)
            notices.notify(connection, notices.RULES)
            return result

    def version(self) -> int:
        ((version,),) = self._read("SELECT version FROM operations_counter")
        return int(version)

    # -- rules ----------------------------------------------------------------------------------------------

    def current_rules(self) -> list[RuleSpec]:
        specs = [rule_spec(row) for row in self._read(f"SELECT {RULE_COLUMNS} FROM rules ORDER BY position")]
        return sorted(specs, key=rule_order)  # stable: creation order within each action

    def rule(self, name: str) -> RuleVersion:
        rows = self._read(
            f"SELECT {VERSION_COLUMNS} FROM rule_versions WHERE (name, version) = "
            "(SELECT name, version FROM rules WHERE name = %s)",
            (name,),
        )
        if not rows:
            raise missing("rule", name)
        return rule_version(rows[0])

    def rule_versions(self, name: str) -> list[RuleVersion]:
        rows = self._read(
            f"SELECT {VERSION_COLUMNS} FROM rule_versions WHERE name = %s ORDER BY version", (name,)
        )
        if not rows:
            raise missing("rule", name)
        return [rule_version(row) for row in rows]

    def save_rule(
        self, spec: RuleSpec, change: RuleChange, made: Change, expected: int | None = None
    ) -> RuleVersion:
        def save(connection: Connection, number: int) -> RuleVersion:
            exists = connection.execute("SELECT 1 FROM rules WHERE name = %s", (spec.name,)).fetchone()
            if (exists is not None) == (change is RuleChange.CREATED):
                raise taken("rule", spec.name) if exists is not None else missing("rule", spec.name)
            version = 1 + _one(
                connection.execute(
                    "SELECT coalesce(max(version), 0) FROM rule_versions WHERE name = %s", (spec.name,)
                )
            )
            rule = (spec.action.value, spec.expression, spec.enabled, spec.description)
            connection.execute(
                f"INSERT INTO rule_versions ({VERSION_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (spec.name, version, change.value, *rule, made.by, made.at, made.reason),
            )
            if change is RuleChange.DELETED:
                connection.execute("DELETE FROM rules WHERE name = %s", (spec.name,))
            elif change is RuleChange.CREATED:  # listed after every rule created before: the change's number
                connection.execute(
                    f"INSERT INTO rules ({RULE_COLUMNS}, version, position) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (spec.name, *rule, version, number),
                )
            else:
                connection.execute(
                    "UPDATE rules SET action = %s, expression = %s, enabled = %s, description = %s, "
                    "version = %s WHERE name = %s",
                    (*rule, version, spec.name),
                )
            return RuleVersion(spec, version, change, made)

        saved = self._write(save, expected)
        logger.info("rule %r %s (version %d) by %s", spec.name, change.value, saved.version, made.by)
        return saved

    # -- lists ----------------------------------------------------------------------------------------------

    def current_lists(self) -> dict[str, StoredList]:
        """Every list, built for membership tests, as of one snapshot; a list unchanged since this store last
        built it is not built again."""
        with self._lists_lock, self.database.transaction() as connection:
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            lists: list[tuple[Any, ...]] = connection.execute(
                "SELECT name, field, changed FROM lists ORDER BY name"
            ).fetchall()
            return self._lists.refresh(
                [(str(name), str(field), int(changed)) for name, field, changed in lists],
                lambda name: connection.execute(
                    "SELECT value, reason, expires_at FROM list_items WHERE list = %s", (name,)
                ).fetchall(),
            )

    def list_infos(self) -> list[ListInfo]:
        rows = self._read(INFO_SELECT + " GROUP BY l.name ORDER BY l.name")
        return [list_info(row, self.extension) for row in rows]

    def list_info(self, name: str) -> ListInfo:
        rows = self._read(INFO_SELECT + " WHERE l.name = %s GROUP BY l.name", (name,))
        if not rows:
            raise missing("list", name)
        return list_info(rows[0], self.extension)

    def create_list(self, name: str, field: str, description: str, made: Change) -> ListInfo:
        def create(connection: Connection, number: int) -> None:
            if connection.execute("SELECT 1 FROM lists WHERE name = %s", (name,)).fetchone() is not None:
                raise taken("list", name)
            connection.execute(
                "INSERT INTO lists (name, field, changed, description, created_by, created_at, reason) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (name, field, number, description, made.by, made.at, made.reason),
            )
            _log(connection, name, ItemChange.CREATED, [None], made)

        self._write(create)
        logger.info("list %r of %s created by %s", name, field, made.by)
        return self.list_info(name)

    def delete_list(self, name: str, made: Change, expected: int | None = None) -> None:
        def delete(connection: Connection, _: int) -> None:
            if connection.execute("DELETE FROM lists WHERE name = %s", (name,)).rowcount == 0:
                raise missing("list", name)
            connection.execute("DELETE FROM list_items WHERE list = %s", (name,))
            _log(connection, name, ItemChange.DELETED, [None], made)

        self._write(delete, expected)
        logger.info("list %r deleted by %s", name, made.by)

    def add_items(self, name: str, items: Sequence[ListItem], made: Change) -> int:
        latest = {item.value: item for item in items}  # a value given twice: the last one, as SQLite keeps

        def add(connection: Connection, number: int) -> int:
            _touch(connection, name, number)
            connection.execute(  # one statement for the whole batch (a CSV import of 100,000 rows)
                "INSERT INTO list_items (list, value, reason, expires_at, added_by, added_at) "
                "SELECT %s, value, reason, expires_at, %s, %s "
                "FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS i (value, reason, expires_at) "
                "ON CONFLICT (list, value) DO UPDATE SET reason = excluded.reason, expires_at = "
                "excluded.expires_at, added_by = excluded.added_by, added_at = excluded.added_at",
                (
                    name, made.by, made.at, list(latest),
                    [item.reason for item in latest.values()],
                    [item.expires_at for item in latest.values()],
                ),
            )  # fmt: skip
            _log(connection, name, ItemChange.ADDED, [item.value for item in items], made)
            return len(items)

        added = self._write(add)
        logger.info("list %r: %d item(s) added by %s", name, added, made.by)
        return added

    def remove_items(self, name: str, values: Sequence[str], made: Change) -> int:
        def remove(connection: Connection, number: int) -> int:
            _touch(connection, name, number)
            rows = connection.execute(
                "DELETE FROM list_items WHERE list = %s AND value = ANY(%s) RETURNING value",
                (name, list(values)),
            ).fetchall()
            gone = {str(value) for (value,) in rows}
            present = [value for value in dict.fromkeys(values) if value in gone]
            _log(connection, name, ItemChange.REMOVED, present, made)
            return len(present)

        removed = self._write(remove)
        logger.info("list %r: %d item(s) removed by %s", name, removed, made.by)
        return removed

    def items(self, name: str, offset: int, limit: int) -> Page:
        self.list_info(name)
        with self.database.transaction() as connection:  # the page and its total as of one moment
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            rows = connection.execute(
                f"SELECT {ITEM_COLUMNS} FROM list_items WHERE list = %s ORDER BY value LIMIT %s OFFSET %s",
                (name, limit, offset),
            ).fetchall()
            total = _one(connection.execute("SELECT count(*) FROM list_items WHERE list = %s", (name,)))
        return Page(tuple(stored_item(row) for row in rows), total, offset)

    def item_log(self, name: str, offset: int, limit: int) -> list[ItemLogEntry]:
        rows = self._read(
            f"SELECT {LOG_COLUMNS} FROM list_log WHERE list = %s ORDER BY id DESC LIMIT %s OFFSET %s",
            (name, limit, offset),
        )
        if not rows and offset == 0:
            raise missing("list", name)
        return [log_entry(row) for row in rows]

    def close(self) -> None:
        """Close the pool if the store owns it (a service's is closed last, by the service)."""
        if self.owns:
            self.database.close()


def _one(cursor: psycopg.Cursor[Any]) -> int:
    """The integer a one-row, one-column statement gave."""
    row = cursor.fetchone()
    if row is None:  # pragma: no cover - the statements given here always return a row
        raise RuntimeError("the rules store's counter row is missing: run `riskgate db upgrade`")
    return int(row[0])


def _touch(connection: Connection, name: str, number: int) -> None:
    """Mark a list changed by the change being made (``number``, the counter's new value); it must exist."""
    if not connection.execute("UPDATE lists SET changed = %s WHERE name = %s", (number, name)).rowcount:
        raise missing("list", name)


def _log(
    connection: Connection, name: str, change: ItemChange, values: Sequence[str | None], made: Change
) -> None:
    connection.execute(
        "INSERT INTO list_log (list, change, value, changed_by, changed_at, reason) "
        "SELECT %s, %s, value, %s, %s, %s FROM unnest(%s::text[]) WITH ORDINALITY AS l (value, n) ORDER BY n",
        (name, change.value, made.by, made.at, made.reason, list(values)),
    )
