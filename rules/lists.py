"""Allow and block lists: values of one attempt field, each with a reason and an optional expiry.

A list holds values of one text field of the attempt (its *field*): ``payment_method_id``, ``device_id``,
``ip``, ``card_bin``, ``account_id``, ``card_country``, ``ip_country``, ... or one of the provider's key or
category extension fields. Items are checked like the contract checks that field (a country is an ISO code, a
BIN 6 to 8 digits, a category one of its values) and never hold a card number. Whether a list allows or
blocks is the rule's business: a rule reads a list as ``device_id in @blocked_devices``.

Membership is answered in memory at a given time (µs since the epoch, UTC): an item counts while that time is
before its ``expires_at``. A list of the ``ip`` field holds addresses and CIDR ranges, IPv4 and IPv6
(:class:`IpList`): the ranges become disjoint integer intervals, each with the latest expiry of the items
covering it, so a lookup is one binary search (O(log n)); any other list is a hash table (O(1),
:class:`ValueList`). Lists are immutable: a change builds a new one (:meth:`ValueList.changed`), which the
caller swaps in.

:func:`read_items` imports items from a CSV file with the columns ``value``, ``expires_at`` (ISO 8601, UTC
when no offset is given; empty: never) and ``reason``; every problem names the file, the data row (row 1 is
the first record after the header, as in :mod:`events.problems`) and the column.
"""

from __future__ import annotations

import csv
import functools
import heapq
import io
import ipaddress
import itertools
import logging
import re
import socket
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

import pandas as pd

from events.cardnumbers import contains_card_number, may_hold_card_number
from events.checks import VALUE_CHECKS, ValueCheck
from events.schema import (
    ATTEMPT_COLUMNS,
    FIELD_NAME_PATTERN,
    Check,
    Column,
    ColumnType,
    ExtensionField,
    FieldType,
)
from rules.errors import ListError, ListImportError

logger = logging.getLogger(__name__)

#: The expiry of an item that never expires (µs since the epoch).
NEVER: Final = 2**63 - 1
#: The columns of a list file; ``value`` is required, the others may be left out.
CSV_COLUMNS: Final = ("value", "expires_at", "reason")
#: At most this many problems are spelt out in an import error (the count says how many more).
SHOWN_PROBLEMS: Final = 20
#: Lists of at least this many items are checked a column at a time first (:func:`_all_pass`).
_COLUMN_CHECKS: Final = 1_000
#: Distinct addresses whose parsed form is kept (addresses repeat across attempts).
_ADDRESS_CACHE: Final = 65_536
#: The upper 96 bits of an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``).
_IPV4_MAPPED: Final = 0xFFFF
_NEVER_CARDS: Final = (
    "holds what looks like a card number (13-19 digits passing the Luhn check): card numbers must never "
    "enter riskgate; use the gateway's token or fingerprint"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


class ListKind(StrEnum):
    """What a list holds, as rules see it: texts compared exactly, or IP addresses and CIDR ranges."""

    VALUES = "values"
    IP = "ip"

    @property
    def described(self) -> str:
        return "IP addresses and ranges" if self is ListKind.IP else "texts"


@dataclass(frozen=True)
class ListItem:
    """One value of a list, why it is there, and until when (None: until removed)."""

    value: str
    reason: str
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ListError(f"list item {self.value!r}: expires_at must carry its time zone (UTC)")

    @property
    def expires_us(self) -> int:
        """The expiry as µs since the epoch (:data:`NEVER` when it never expires)."""
        return NEVER if self.expires_at is None else to_us(self.expires_at)


def to_us(moment: datetime) -> int:
    """An aware time as µs since the epoch (the unit of membership times)."""
    return (moment - _EPOCH) // _ONE_US


class MemberList(Protocol):
    """A list as rules use it: its name, its field, its kind, its items and membership at a time."""

    @property
    def name(self) -> str: ...
    @property
    def field(self) -> str: ...
    @property
    def kind(self) -> ListKind: ...
    @property
    def items(self) -> tuple[ListItem, ...]: ...
    def contains(self, value: str, at_us: int) -> bool: ...


#: Lists by name: what a compiled rule reads ``@name`` from at each evaluation (swap an entry to change it).
Lists = Mapping[str, MemberList]


def list_column(field: str, extension: Sequence[ExtensionField] = ()) -> Column:
    """The attempt column whose values a list of ``field`` holds: a core text field, or a key or category
    extension field."""
    columns = {c.name: c for c in ATTEMPT_COLUMNS if c.type == ColumnType.STRING}
    columns |= {f.name: f.column for f in extension if f.type in (FieldType.KEY, FieldType.CATEGORY)}
    if field not in columns:
        raise ListError(
            f"a list holds values of one text field of the attempt; {field!r} is not one: use one of "
            f"{sorted(columns)}"
        )
    return columns[field]


def kind_of(column: Column) -> ListKind:
    """A list of IP addresses (the contract's ``ip`` check) takes CIDR ranges too."""
    return ListKind.IP if Check.IP in column.checks else ListKind.VALUES


@functools.cache
def _checks_of(column: Column) -> tuple[ValueCheck, ...]:
    """The contract's checks of one value of ``column`` (those a single value can fail), IP aside."""
    names = (included for name in column.checks for included in (*VALUE_CHECKS[name].includes, name))
    return tuple(
        VALUE_CHECKS[name]
        for name in dict.fromkeys(names)
        if not VALUE_CHECKS[name].import_only and name is not Check.IP and VALUE_CHECKS[name].against is None
    )


def value_problem(column: Column, value: str) -> str | None:
    """Why ``value`` cannot be an item of a list of ``column`` (None if it can); never quotes a card
    number."""
    return _problem(column, value, _checks_of(column), kind_of(column) is ListKind.IP)


def _problem(  # noqa: PLR0911
    column: Column, value: str, checks: tuple[ValueCheck, ...], ip: bool
) -> str | None:
    """:func:`value_problem` with the column's ``checks`` (none: they passed already) and kind given."""
    if contains_card_number(value):
        return _NEVER_CARDS
    if not value.strip():
        return "is empty"
    if value != value.strip():
        return f"{value!r} has spaces around it: attempts carry {value.strip()!r}"
    if column.values is not None and value not in column.values:
        return f"{value!r} is not one of {column.name}'s values {', '.join(column.values)}"
    for check in checks:
        if not check.accepts_value(value):
            return f"{value!r}: {column.name} {check.requirement}"
    if ip:
        return _network_problem(value)
    return None


def _network_problem(value: str) -> str | None:
    if _interval(value) is not None:
        return None
    try:  # the standard library's reading, for the words of the refusal
        ipaddress.ip_network(value)
    except ValueError as error:
        if "host bits set" in str(error):
            meant = ipaddress.ip_network(value, strict=False)
            return f"{value!r} has host bits set: did you mean {str(meant)!r}?"
    return f"{value!r} is not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.0/24, 2001:db8::/32)"


def _number(address: str) -> tuple[int, int] | None:
    """An address as (IP version, integer) by the C library's parser (strict: no leading zeros, no zone);
    a tenth of :mod:`ipaddress`'s cost. None if it is not one."""
    family, version = (socket.AF_INET6, 6) if ":" in address else (socket.AF_INET, 4)
    try:
        packed = socket.inet_pton(family, address)
    except OSError:
        return None
    return version, int.from_bytes(packed, "big")


def _interval(text: str) -> tuple[int, int, int] | None:
    """An address or a CIDR range (no host bits set) as (IP version, first, last), None if it is not one."""
    address, slash, prefix = text.partition("/")
    parsed = _number(address)
    if parsed is None:
        return None
    version, number = parsed
    bits = 32 if version == 4 else 128
    if not slash:
        return version, number, number
    if not (prefix.isascii() and prefix.isdigit()) or int(prefix) > bits or len(prefix) > 3:
        return None
    host = (1 << (bits - int(prefix))) - 1
    return None if number & host else (version, number, number | host)


def make_list(
    name: str, field: str, items: Iterable[ListItem], extension: Sequence[ExtensionField] = ()
) -> ValueList | IpList:
    """A list named ``name`` (lower snake case, as rules write ``@name``) of values of ``field``, checked
    item by item (:func:`value_problem`); a value given twice is refused."""
    if not re.fullmatch(FIELD_NAME_PATTERN, name):
        raise ListError(
            f"list name {name!r}: lower snake case starting with a letter (e.g. 'blocked_devices')"
        )
    column = list_column(field, extension)
    items = tuple(items)
    _check_items(name, column, items)
    return _assemble(name, column, items)


def _check_items(name: str, column: Column, items: tuple[ListItem, ...]) -> None:
    """Every item's value (:func:`value_problem`) and reason; the first problem raises. A long list is first
    checked a column at a time (:func:`_all_pass`); only when something fails are its items gone through one
    by one, for the first problem's words."""
    if len(items) >= _COLUMN_CHECKS and _all_pass(column, items):
        return
    checks, ip = _checks_of(column), kind_of(column) is ListKind.IP
    seen: set[str] = set()
    reasons: set[str] = set()
    for item in items:
        problem = _problem(column, item.value, checks, ip)
        if problem is not None:
            raise ListError(f"list {name!r} of {column.name}: {problem}")
        if item.value in seen:
            raise ListError(f"list {name!r}: {item.value!r} is given twice; give each value once")
        seen.add(item.value)
        if item.reason in reasons:
            continue
        if not item.reason.strip():
            raise ListError(f"list {name!r}: {item.value!r} has no reason; say why the value is listed")
        if contains_card_number(item.reason):
            raise ListError(f"list {name!r}: the reason of {item.value!r} {_NEVER_CARDS}")
        reasons.add(item.reason)


def _all_pass(column: Column, items: tuple[ListItem, ...]) -> bool:
    """Whether every item passes :func:`_check_items`' checks, run over all the values at once (one search
    for card numbers, pandas for the contract's checks, each distinct reason once); False when any may not."""
    values = [item.value for item in items]
    if len(set(values)) != len(values) or may_hold_card_number(values):
        return False
    series = pd.Series(values, dtype=object)
    if not ((series.str.len() > 0) & (series.str.strip() == series)).all():
        return False
    if column.values is not None and not series.isin(column.values).all():
        return False
    if not all(check.accepts(series).all() for check in _checks_of(column)):
        return False
    if kind_of(column) is ListKind.IP and any(_interval(value) is None for value in values):
        return False
    reasons = {item.reason for item in items}
    return all(reason.strip() and not contains_card_number(reason) for reason in reasons)


def _assemble(name: str, column: Column, items: tuple[ListItem, ...]) -> ValueList | IpList:
    """The list of items already checked."""
    if kind_of(column) is ListKind.IP:
        return IpList(name, column.name, items)
    return ValueList(name, column.name, items)


class _Built:
    """What both kinds of list share: name, field, items, and building a changed copy."""

    kind: ListKind

    def __init__(self, name: str, field: str, items: tuple[ListItem, ...]) -> None:
        self._name, self._field, self._items = name, field, items

    @property
    def name(self) -> str:
        return self._name

    @property
    def field(self) -> str:
        return self._field

    @property
    def items(self) -> tuple[ListItem, ...]:
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r}, {self._field!r}, {len(self._items)} items)"

    def changed(
        self,
        added: Iterable[ListItem] = (),
        removed: Iterable[str] = (),
        extension: Sequence[ExtensionField] = (),
    ) -> ValueList | IpList:
        """A new list with ``added`` items (replacing those of the same value) and without ``removed``
        (``extension``: the provider's fields, for a list of one of them). Only the added items are checked:
        a change to a long list costs its index, not its checks."""
        column = list_column(self._field, extension)
        new = tuple(added)
        _check_items(self._name, column, new)
        items = {item.value: item for item in self._items}
        for value in removed:
            items.pop(value, None)
        items |= {item.value: item for item in new}
        return _assemble(self._name, column, tuple(items.values()))


class ValueList(_Built):
    """A list of texts: membership is one hash lookup."""

    kind = ListKind.VALUES

    def __init__(self, name: str, field: str, items: tuple[ListItem, ...]) -> None:
        super().__init__(name, field, items)
        self._expiry = {item.value: item.expires_us for item in items}

    def contains(self, value: str, at_us: int) -> bool:
        """Whether ``value`` is an item not yet expired at ``at_us``."""
        expiry = self._expiry.get(value)
        return expiry is not None and at_us < expiry


@dataclass(frozen=True)
class _Intervals:
    """Disjoint, sorted integer intervals ``[start, end]``, each with the expiry (µs) of its membership."""

    starts: list[int]
    ends: list[int]
    expiry: list[int]

    def holds(self, number: int, at_us: int) -> bool:
        i = bisect_right(self.starts, number) - 1
        return i >= 0 and number <= self.ends[i] and at_us < self.expiry[i]


def disjoint(intervals: Iterable[tuple[int, int, int]]) -> _Intervals:
    """Overlapping intervals ``(start, end, expiry)`` as disjoint ones, each with the latest expiry of those
    covering it (a number is a member at a time iff some interval holding it has not expired, iff the
    latest of their expiries is later), adjacent ones of equal expiry merged. A sweep over the bounds with
    a heap of the open intervals' expiries: O(n log n); intervals already apart (most lists) skip it."""
    ordered = sorted(intervals)
    if all(previous[1] < following[0] for previous, following in itertools.pairwise(ordered)):
        out = _Intervals([], [], [])
        for start, end, expiry in ordered:
            _append(out, start, end, expiry)
        return out
    return _sweep(ordered)


def _append(out: _Intervals, start: int, end: int, expiry: int) -> None:
    """Add an interval after the last, merged with it when they touch and expire together."""
    if out.starts and out.ends[-1] + 1 == start and out.expiry[-1] == expiry:
        out.ends[-1] = end
    else:
        out.starts.append(start)
        out.ends.append(end)
        out.expiry.append(expiry)


def _sweep(intervals: list[tuple[int, int, int]]) -> _Intervals:
    opening: defaultdict[int, list[int]] = defaultdict(list)
    closing: defaultdict[int, list[int]] = defaultdict(list)
    for start, end, expiry in intervals:
        opening[start].append(expiry)
        closing[end + 1].append(expiry)
    bounds = sorted(opening.keys() | closing.keys())
    heap: list[int] = []  # negated expiries of the open intervals (lazily removed)
    closed: Counter[int] = Counter()
    out = _Intervals([], [], [])
    for k, point in enumerate(bounds[:-1]):
        for expiry in closing.get(point, ()):
            closed[expiry] += 1
        for expiry in opening.get(point, ()):
            heapq.heappush(heap, -expiry)
        while heap and closed[-heap[0]]:
            closed[-heap[0]] -= 1
            heapq.heappop(heap)
        if not heap:
            continue
        _append(out, point, bounds[k + 1] - 1, -heap[0])
    return out


@functools.lru_cache(maxsize=_ADDRESS_CACHE)
def _address(text: str) -> tuple[int, int] | None:
    """An address as (IP version, integer), an IPv4-mapped IPv6 address as its IPv4; None if not one."""
    parsed = _number(text)
    if parsed is not None and parsed[0] == 6 and parsed[1] >> 32 == _IPV4_MAPPED:
        return 4, parsed[1] & 0xFFFF_FFFF
    return parsed


class IpList(_Built):
    """A list of IP addresses and CIDR ranges, IPv4 and IPv6: membership is one binary search."""

    kind = ListKind.IP

    def __init__(self, name: str, field: str, items: tuple[ListItem, ...]) -> None:
        super().__init__(name, field, items)
        by_version: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
        for item in items:
            interval = _interval(item.value)
            if interval is None:
                raise ListError(f"list {name!r}: {_network_problem(item.value)}")
            version, first, last = interval
            by_version[version].append((first, last, item.expires_us))
        self._ranges = {version: disjoint(intervals) for version, intervals in by_version.items()}

    def contains(self, value: str, at_us: int) -> bool:
        """Whether ``value`` is an address inside an item not yet expired at ``at_us`` (a text that is not
        an address is in no list)."""
        address = _address(value)
        return address is not None and self._ranges[address[0]].holds(address[1], at_us)


def read_items(
    path: Path, field: str, extension: Sequence[ExtensionField] = (), reason: str | None = None
) -> tuple[ListItem, ...]:
    """The items of a list file for a list of ``field`` (see the module's docstring): all of them, or a
    :class:`ListImportError` naming every problem's row and column. ``reason`` stands in for an empty
    ``reason`` cell (without it, every row needs one)."""
    column = list_column(field, extension)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ListImportError(
            f"{path}: cannot read the list file ({type(error).__name__}); give a UTF-8 CSV"
        ) from error
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]  # blank lines are no records
    if not rows:
        raise ListImportError(f"{path}: the file is empty; give a header row {', '.join(CSV_COLUMNS)}")
    header = [cell.strip() for cell in rows[0]]
    _check_header(path, header)
    problems: list[str] = []
    items: list[ListItem] = []
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            problems.append(f"row {number}: {len(row)} cells where the header has {len(header)}")
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
        item = _item(cells, column, reason, number, problems)
        if item is None:
            continue
        if item.value in first_row:
            problems.append(f"row {number}, column value: {item.value!r} repeats row {first_row[item.value]}")
            continue
        first_row[item.value] = number
        items.append(item)
    if problems:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
        raise ListImportError(f"{path}: {len(problems)} problem(s), nothing imported: {shown}{more}")
    logger.info("read %d list items of %s from %s", len(items), field, path)
    return tuple(items)


def _check_header(path: Path, header: list[str]) -> None:
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if contains_card_number(",".join(header)):
        raise ListImportError(f"{path}: the header row {_NEVER_CARDS}")
    if unknown or "value" not in header or len(set(header)) != len(header):
        raise ListImportError(
            f"{path}: the header row must name the columns value (required), expires_at and reason "
            f"(optional), each once; found {header}"
        )


def _item(
    cells: Mapping[str, str], column: Column, reason: str | None, number: int, problems: list[str]
) -> ListItem | None:
    """One row's item, or None after adding its problems."""
    found = len(problems)
    for name, cell in cells.items():
        if contains_card_number(cell):
            problems.append(f"row {number}, column {name}: {_NEVER_CARDS}")
    if len(problems) > found:
        return None
    value = cells["value"]
    problem = value_problem(column, value)
    if problem is not None:
        problems.append(f"row {number}, column value: {problem}")
    expires_at = _expiry(cells.get("expires_at", ""), number, problems)
    why = cells.get("reason", "") or reason
    if not why:
        problems.append(
            f"row {number}, column reason: empty; say why the value is listed (or give a reason for all)"
        )
    if len(problems) > found or not why:
        return None
    return ListItem(value, why, expires_at)


def _expiry(text: str, number: int, problems: list[str]) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(
            f"row {number}, column expires_at: {text!r} is not an ISO 8601 time (e.g. 2026-12-31T23:59:59Z); "
            "leave it empty for an item that never expires"
        )
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
