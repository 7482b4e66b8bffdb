"""The fraud team's rules and lists as data: what any store of them keeps (:class:`OperationsStore`), and the
checks every change passes before it is kept (:class:`Operations`).

A store keeps every version of every rule (who: the API key's or the operator's name, when, why: a required
reason), so that a rule's history reads like a change log; deleting a rule keeps its history. Lists keep
their items (value, reason, optional expiry) with who added them and when, and a log of items added and
removed. Every change moves one counter (:meth:`OperationsStore.version`), which each scoring instance polls
to know that it must reload :meth:`OperationsStore.current_rules` and :meth:`OperationsStore.current_lists`:
the store is shared by every instance (one SQLite file in the state directory,
:class:`serving.store.operations_sqlite.SQLiteOperations`, or the fleet's PostgreSQL,
:class:`serving.store.postgres.operations.PostgresOperations`), so a change reaches them all. Both backends
keep the same tables and give rows back through the same readers (:func:`rule_version`, :func:`list_info`,
...) and the same cache of built lists (:class:`BuiltLists`).

:class:`Operations` is the one way in for the admin API and the command line: an expression is parsed and
type-checked against the served feature set's schema with the current lists (:func:`rules.schema.schema_for`)
before it is saved, a list item is checked like the attempt field it holds (:func:`rules.lists.make_list`),
and a list a rule reads cannot be deleted. A rule or a list deletion is kept only if the store did not change
between its checks and its write (another instance may have deleted the list the rule reads, or made a rule
read the list): otherwise it is checked again on what is there now.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol, TypeVar

from core.errors import InputError
from events.cardnumbers import contains_card_number
from events.schema import ExtensionField
from features.definitions import FeatureSet
from rules.book import ORDER, RuleAction, RuleSpec
from rules.checker import Checked, check
from rules.errors import ListError, RuleError
from rules.lists import IpList, ListItem, ListKind, ValueList, kind_of, list_column, make_list
from rules.schema import Schema, schema_for
from rules.syntax import parse
from serving.errors import ConflictError, NotFoundError
from serving.store.moments import moment

logger = logging.getLogger(__name__)

#: A list as the decision path reads it (``@name``): a hash table of texts or intervals of IP addresses.
StoredList = ValueList | IpList
_T = TypeVar("_T")
#: Why a text is refused when it holds a card number.
NEVER_CARDS: Final = (
    "holds what looks like a card number: card numbers must never enter riskgate; use the gateway's token"
)
#: The longest reason a change may give.
MAX_REASON: Final = 500
#: How many times a change is checked and tried while other changes keep landing between its check and its
#: write (each try checks again what it reads).
CHECK_ATTEMPTS: Final = 10


class ChangedMeanwhileError(ConflictError):
    """The store changed between a change's checks and its write (another instance, another analyst): the
    checks read what may be no longer there, so the change was not kept."""

    def __init__(self, now: int, checked: int) -> None:
        super().__init__(
            f"the rules and lists changed while this change was checked (checked at change {checked}, now at "
            f"{now}; other changes kept landing): try again"
        )


class RuleChange(StrEnum):
    """What a version of a rule did."""

    CREATED = "created"
    CHANGED = "changed"
    DISABLED = "disabled"
    ENABLED = "enabled"
    DELETED = "deleted"


class ItemChange(StrEnum):
    """What a change of a list did."""

    CREATED = "created"  # the list itself
    DELETED = "deleted"
    ADDED = "added"  # an item (added again: replaced, with its new reason and expiry)
    REMOVED = "removed"


@dataclass(frozen=True)
class Change:
    """Who made a change, when, and why (every change says why)."""

    by: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class RuleVersion:
    """One version of a rule: what it was from then on (``spec``; a deleted rule's last spec) and the change
    that made it."""

    spec: RuleSpec
    version: int
    change: RuleChange
    made: Change


@dataclass(frozen=True)
class ListInfo:
    """A list without its items: its name, the attempt field it holds, how many items, who created it."""

    name: str
    field: str
    kind: ListKind
    description: str
    items: int
    created: Change


@dataclass(frozen=True)
class StoredItem:
    """An item of a list with who added it and when."""

    item: ListItem
    added: Change


@dataclass(frozen=True)
class ItemLogEntry:
    """One line of a list's change log (``value`` None: a change of the list itself)."""

    change: ItemChange
    value: str | None
    made: Change


@dataclass(frozen=True)
class Page:
    """A page of a list's items, in value order: ``total`` items in all, this page from ``offset``."""

    items: tuple[StoredItem, ...]
    total: int
    offset: int


class OperationsStore(Protocol):
    """What serving needs from a store of rules and lists (see the module's docstring); safe to share between
    threads. Every write is one transaction that moves :meth:`version`; a write that finds what it names
    missing raises :class:`serving.errors.NotFoundError`, one that finds it there already
    :class:`serving.errors.ConflictError`. Writes take values already checked (:class:`Operations`); a
    write given ``expected`` (the counter the checks were made at) is refused, changing nothing, with
    :class:`ChangedMeanwhileError` if the counter moved since."""

    def version(self) -> int:
        """The change counter: it grows with every change (0: nothing was ever changed)."""
        ...

    # -- rules ----------------------------------------------------------------------------------------------

    def current_rules(self) -> list[RuleSpec]:
        """Every current rule (disabled ones too), in the documented order: allow, block, review; the order
        they were created in within each (:func:`rules.book.in_order` keeps it)."""
        ...

    def rule(self, name: str) -> RuleVersion:
        """The current version of a rule (:class:`NotFoundError` if there is none, or it was deleted)."""
        ...

    def rule_versions(self, name: str) -> list[RuleVersion]:
        """Every version of a rule, the first first (deleted ones too; :class:`NotFoundError` if none)."""
        ...

    def save_rule(
        self, spec: RuleSpec, change: RuleChange, made: Change, expected: int | None = None
    ) -> RuleVersion:
        """Keep a new version of ``spec.name``: ``CREATED`` for a rule that does not exist (a deleted one
        comes back with its history), any other change for one that does (``DELETED`` removes it from the
        current set, keeping ``spec`` as its last version)."""
        ...

    # -- lists ----------------------------------------------------------------------------------------------

    def current_lists(self) -> dict[str, StoredList]:
        """Every list by name, built for membership tests (expired items stay: membership is checked at a
        time)."""
        ...

    def list_infos(self) -> list[ListInfo]:
        """Every list, by name."""
        ...

    def list_info(self, name: str) -> ListInfo:
        """One list (:class:`NotFoundError` if there is none)."""
        ...

    def create_list(self, name: str, field: str, description: str, made: Change) -> ListInfo:
        """A new, empty list of ``field`` (:class:`ConflictError` if the name is taken)."""
        ...

    def delete_list(self, name: str, made: Change, expected: int | None = None) -> None:
        """Remove a list and its items; its change log stays."""
        ...

    def add_items(self, name: str, items: Sequence[ListItem], made: Change) -> int:
        """Add ``items`` to a list, all or none (an item of a value already listed replaces it); how many."""
        ...

    def remove_items(self, name: str, values: Sequence[str], made: Change) -> int:
        """Remove the items of ``values`` from a list (values not listed are ignored); how many were."""
        ...

    def items(self, name: str, offset: int, limit: int) -> Page:
        """A page of a list's items in value order."""
        ...

    def item_log(self, name: str, offset: int, limit: int) -> list[ItemLogEntry]:
        """A page of a list's change log, the newest first."""
        ...

    # -- the store's life -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the store."""
        ...


def rule_order(spec: RuleSpec) -> int:
    """The group a rule is evaluated in (its action's place in :data:`rules.book.ORDER`)."""
    return ORDER.index(spec.action)


@dataclass
class Operations:
    """Changes to rules and lists, checked before they reach ``store``: expressions against the schema of
    ``feature_set`` with ``extension`` fields (the provider's, besides the set's own) and the current lists,
    list items against the attempt field they hold. The admin API and ``riskgate rules`` both go through
    here. ``on_change`` is called after every change kept (a service serves it before the call answers);
    inside :meth:`together`, once at the end."""

    store: OperationsStore
    feature_set: FeatureSet
    extension: tuple[ExtensionField, ...] = field(default=())
    on_change: Callable[[], None] | None = None
    _held: int = 0  # how deep inside together(); _missed: a change was kept meanwhile
    _missed: bool = False

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Changes made inside are announced to ``on_change`` once, at the end (a file of many changes)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if self._held == 0 and self._missed:
                self._missed = False
                self._changed()

    def _changed(self) -> None:
        if self._held:
            self._missed = True
        elif self.on_change is not None:
            self.on_change()

    def _kept(self, result: _T) -> _T:
        self._changed()
        return result

    @property
    def fields(self) -> tuple[ExtensionField, ...]:
        """The extension fields rules and lists may read: the feature set's and the provider's."""
        return (*self.feature_set.fields, *self.extension)

    def schema(self, lists: Mapping[str, ListKind] | None = None) -> Schema:
        """What a rule may read now: the served schema with the current lists (or ``lists``)."""
        kinds = {info.name: info.kind for info in self.store.list_infos()} if lists is None else lists
        return schema_for(self.feature_set, self.extension, lists=kinds)

    def check_expression(self, expression: str) -> Checked:
        """A draft expression checked against the schema with the current lists (what it reads), or the
        :class:`rules.errors.RuleError` naming the position."""
        return check(parse(expression), self.schema())

    def check_rule(self, spec: RuleSpec, schema: Schema | None = None) -> None:
        """Refuse (:class:`rules.errors.RuleError`, naming the position) an expression that does not parse or
        is not a well-typed condition over the schema."""
        if contains_card_number(spec.description):
            raise RuleError(f"rule {spec.name!r}: the description {NEVER_CARDS}")
        check(parse(spec.expression), schema or self.schema())

    # -- rules ----------------------------------------------------------------------------------------------

    def _as_checked(self, write: Callable[[int], _T]) -> _T:
        """``write(version)``: checks made on the store at ``version``, then a write kept only if the store is
        still at it; checked and tried again while other changes land in between."""
        for _ in range(CHECK_ATTEMPTS - 1):
            try:
                return write(self.store.version())
            except ChangedMeanwhileError:
                logger.info("the rules store changed during a change's checks: checking again")
        return write(self.store.version())

    def create_rule(self, spec: RuleSpec, made: Change) -> RuleVersion:
        def create(version: int) -> RuleVersion:
            self.check_rule(spec)
            return self.store.save_rule(spec, RuleChange.CREATED, _checked(made), version)

        return self._kept(self._as_checked(create))

    def change_rule(self, spec: RuleSpec, made: Change) -> RuleVersion:
        def change(version: int) -> RuleVersion:
            current = self.store.rule(spec.name)
            self.check_rule(spec)
            kind = RuleChange.CHANGED
            if _content(spec) == _content(current.spec) and spec.enabled != current.spec.enabled:
                kind = RuleChange.ENABLED if spec.enabled else RuleChange.DISABLED
            return self.store.save_rule(spec, kind, _checked(made), version)

        return self._kept(self._as_checked(change))

    def set_enabled(self, name: str, enabled: bool, made: Change) -> RuleVersion:
        current = self.store.rule(name)
        if current.spec.enabled == enabled:
            raise ConflictError(f"rule {name!r} is {'enabled' if enabled else 'disabled'} already")
        change = RuleChange.ENABLED if enabled else RuleChange.DISABLED
        return self._kept(
            self.store.save_rule(replace(current.spec, enabled=enabled), change, _checked(made))
        )

    def delete_rule(self, name: str, made: Change) -> RuleVersion:
        current = self.store.rule(name)
        return self._kept(self.store.save_rule(current.spec, RuleChange.DELETED, _checked(made)))

    # -- lists ----------------------------------------------------------------------------------------------

    def create_list(self, name: str, field_name: str, description: str, made: Change) -> ListInfo:
        make_list(name, field_name, (), self.fields)  # the name and the field, checked
        if contains_card_number(description):
            raise ListError(f"list {name!r}: the description {NEVER_CARDS}")
        return self._kept(self.store.create_list(name, field_name, description, _checked(made)))

    def delete_list(self, name: str, made: Change) -> None:
        def delete(version: int) -> None:
            self.store.list_info(name)  # 404 before 409
            schema = self.schema()
            readers = [spec.name for spec in self.store.current_rules() if name in _lists_read(spec, schema)]
            if readers:
                raise ConflictError(
                    f"list {name!r} is read by rule(s) {', '.join(readers)}: change or delete them first"
                )
            self.store.delete_list(name, _checked(made), version)

        self._as_checked(delete)
        self._changed()

    def add_items(self, name: str, items: Iterable[ListItem], made: Change) -> int:
        info = self.store.list_info(name)
        checked = make_list(name, info.field, tuple(items), self.fields)  # all or nothing
        return self._kept(self.store.add_items(name, checked.items, _checked(made)))

    def remove_items(self, name: str, values: Sequence[str], made: Change) -> int:
        self.store.list_info(name)
        return self._kept(self.store.remove_items(name, values, _checked(made)))

    def kind_of_field(self, field_name: str) -> ListKind:
        """The kind of a list of ``field_name`` (values, or IP addresses and ranges)."""
        return kind_of(list_column(field_name, self.fields))


def _content(spec: RuleSpec) -> tuple[str, str, str]:
    return spec.action.value, spec.expression, spec.description


def _lists_read(spec: RuleSpec, schema: Schema) -> frozenset[str]:
    """The lists a stored rule reads (a rule that no longer checks reads none we can name)."""
    try:
        return check(parse(spec.expression), schema).lists
    except RuleError:
        return frozenset()


def _checked(made: Change) -> Change:
    """A change that says who and why (refused otherwise: the history must say it)."""
    if not made.by.strip():
        raise InputError("a change needs who makes it (the API key's or the operator's name)")
    if not made.reason.strip():
        raise InputError("a change needs a reason: say why (it is kept with the version)")
    if contains_card_number(made.reason):
        raise InputError(f"the reason {NEVER_CARDS}")
    if len(made.reason) > MAX_REASON:
        raise InputError(f"the reason is {len(made.reason)} characters long; at most {MAX_REASON}")
    return made


def missing(what: str, name: str) -> NotFoundError:
    """The error of a rule or list that does not exist."""
    return NotFoundError(f"there is no {what} {name!r}: see GET /v1/{what}s")


def taken(what: str, name: str) -> ConflictError:
    """The error of a name that is taken already."""
    return ConflictError(f"a {what} named {name!r} exists already: change it, or pick another name")


# -- what both backends' tables give back -------------------------------------------------------------------

#: The columns of a rule in the current set, as :func:`rule_spec` reads them.
RULE_COLUMNS: Final = "name, action, expression, enabled, description"
#: The columns of a rule's version, as :func:`rule_version` reads them.
VERSION_COLUMNS: Final = (
    "name, version, change, action, expression, enabled, description, changed_by, changed_at, reason"
)
#: A list with its item count, as :func:`list_info` reads it (add ``WHERE`` before ``GROUP BY l.name``).
INFO_SELECT: Final = (
    "SELECT l.name, l.field, l.description, l.created_by, l.created_at, l.reason, count(i.value) "
    "FROM lists l LEFT JOIN list_items i ON i.list = l.name"
)
#: The columns of an item, as :func:`stored_item` reads them.
ITEM_COLUMNS: Final = "value, reason, expires_at, added_by, added_at"
#: The columns of a list's change log, as :func:`log_entry` reads them.
LOG_COLUMNS: Final = "change, value, changed_by, changed_at, reason"


def rule_spec(row: Sequence[Any]) -> RuleSpec:
    """A rule of :data:`RULE_COLUMNS`."""
    name, action, expression, enabled, description = row
    return RuleSpec(str(name), RuleAction(action), str(expression), bool(enabled), str(description))


def rule_version(row: Sequence[Any]) -> RuleVersion:
    """A version of :data:`VERSION_COLUMNS`."""
    name, version, change, action, expression, enabled, description, by, at, reason = row
    spec = rule_spec((name, action, expression, enabled, description))
    return RuleVersion(spec, int(version), RuleChange(change), Change(str(by), moment(at), str(reason)))


def list_info(row: Sequence[Any], extension: Sequence[ExtensionField]) -> ListInfo:
    """A list of :data:`INFO_SELECT` (``extension``: the fields a list may hold besides the attempt's)."""
    name, field_name, description, by, at, reason, count = row
    kind = kind_of(list_column(str(field_name), extension))
    created = Change(str(by), moment(at), str(reason))
    return ListInfo(str(name), str(field_name), kind, str(description), int(count), created)


def list_item(value: object, reason: object, expires_at: object) -> ListItem:
    """An item from its stored value, reason and expiry (None: it never expires)."""
    return ListItem(str(value), str(reason), None if expires_at is None else moment(expires_at))


def stored_item(row: Sequence[Any]) -> StoredItem:
    """An item of :data:`ITEM_COLUMNS` with who added it."""
    value, reason, expires_at, by, at = row
    return StoredItem(list_item(value, reason, expires_at), Change(str(by), moment(at), str(reason)))


def log_entry(row: Sequence[Any]) -> ItemLogEntry:
    """A line of a list's change log, of :data:`LOG_COLUMNS`."""
    change, value, by, at, reason = row
    made = Change(str(by), moment(at), str(reason))
    return ItemLogEntry(ItemChange(change), None if value is None else str(value), made)


class BuiltLists:
    """The lists a store built last, each with the change it is as of: a store builds again only the lists
    that changed since (building checks and indexes every item: about a second per 100,000). Not
    thread-safe: the store calls it under a lock of its own."""

    def __init__(self, extension: Sequence[ExtensionField]) -> None:
        self.extension = tuple(extension)
        self._built: dict[str, tuple[StoredList, int]] = {}

    def refresh(
        self,
        lists: Iterable[tuple[str, str, int]],
        rows_of: Callable[[str], Iterable[Sequence[Any]]],
    ) -> dict[str, StoredList]:
        """Every list of ``lists`` (name, field, the change it is as of), built for membership tests;
        ``rows_of(name)`` gives a list's items (value, reason, expiry), read only for the lists that changed
        (in the same read transaction as ``lists``)."""
        built: dict[str, tuple[StoredList, int]] = {}
        for name, field_name, changed in lists:
            cached = self._built.get(name)
            if cached is None or cached[1] != changed:
                items = [list_item(*row) for row in rows_of(name)]
                cached = (make_list(name, field_name, items, self.extension), changed)
            built[name] = cached
        self._built = built
        return {name: stored for name, (stored, _) in built.items()}
