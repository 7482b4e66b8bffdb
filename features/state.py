"""The online state of one entity (a card, an account, ...): its recent events per source group, packed.

Per group the state holds the events still inside the longest window as one int64 matrix, one row per event
(time, id hash, one 0/1 column per filter, the value columns), sorted by (time, id hash) as the batch engine
sorts them; and the *carry*: what whole-history aggregates (lifetime counts, first/last times, consecutive
runs) retain of events pruned from the window. A state serialises to one blob of little-endian int64, so the
store reads one value per entity and decoding is a single ``frombuffer`` plus views:

    MAGIC, G (groups), row count of group 0, ..., row count of group G-1,
    group 0's rows (count x width, row-major), group 0's carry (one word per spec), group 1's rows, ...

The request path does not decode into Python objects: :meth:`Layout.scan` walks the blobs of an attempt's
entities in one compiled call (the :class:`Layout` tells it where each group's rows, carry and outputs are),
runs every group's aggregates for the query times and, when asked, writes each entity's next blob (events
inserted, then pruned into the carry). :class:`GroupState`, :func:`decode` and :func:`encode` are the same
format as Python objects, for erasure and inspection.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Final, NamedTuple

import numpy as np
from numba import njit

from core.errors import RiskgateError
from features.definitions import Aggregate, AnyFilter, Source
from features.kernels import F64, I64, SPEC_WIDTH, aggregate, fold, initial_carry
from features.plan import GroupPlan

MAGIC: Final = 0x5247_4632  # "RGF2": the first word of every encoded entity state
TIME, ID, FIRST_MASK = 0, 1, 2
#: Columns of :attr:`Layout.entities`: its groups' range, pruning horizon, the width of all its groups' rows.
E_FIRST_GROUP, E_END_GROUP, E_HORIZON, E_ROWS_WIDTH = range(4)
#: Columns of :attr:`Layout.groups`: row width, filter count, spec count and first spec, source, first map.
G_WIDTH, G_MASKS, G_SPECS, G_FIRST_SPEC, G_SOURCE, G_FIRST_MAP = range(6)
#: The spec column after the kernels' own (:mod:`features.kernels`): the output column, ``-1`` for none.
SLOT: Final = SPEC_WIDTH
#: Columns of an event matrix (:class:`EventColumns`): source code, time, id hash, then fields.
EV_SOURCE, EV_TIME, EV_ID, EV_FIRST_FIELD = range(4)
SOURCE_CODE: Final[dict[Source, int]] = {source: code for code, source in enumerate(Source)}
_ATTEMPTS: Final = SOURCE_CODE[Source.ATTEMPTS]
_NO_TIME: Final = np.iinfo(np.int64).min


class CorruptStateError(RiskgateError, ValueError):
    """A stored entity state cannot be decoded with the current feature set."""


@dataclass(slots=True)
class GroupState:
    rows: I64  # (events, 2 + filters + values)
    carry: I64
    n_masks: int

    @classmethod
    def empty(cls, group: GroupPlan) -> GroupState:
        width = FIRST_MASK + len(group.filters) + len(group.values)
        return cls(np.empty((0, width), np.int64), initial_carry(group.specs), len(group.filters))

    @property
    def t(self) -> I64:
        return self.rows[:, TIME]

    @property
    def masks(self) -> I64:
        return self.rows[:, FIRST_MASK : FIRST_MASK + self.n_masks]

    @property
    def values(self) -> I64:
        return self.rows[:, FIRST_MASK + self.n_masks :]

    def remove(self, event_ids: I64) -> int:
        """Forget the events with these ids (erasure); returns how many were removed."""
        keep = ~np.isin(self.rows[:, ID], event_ids)
        removed = int((~keep).sum())
        self.rows = self.rows[keep]
        return removed


def encode(states: Sequence[GroupState]) -> bytes:
    header = np.array([MAGIC, len(states), *(len(s.rows) for s in states)], dtype="<i8")
    parts = [header.tobytes()]
    for state in states:
        parts += [
            np.ascontiguousarray(state.rows, dtype="<i8").tobytes(),
            state.carry.astype("<i8").tobytes(),
        ]
    return b"".join(parts)


def decode(groups: Sequence[GroupPlan], blob: bytes | None) -> list[GroupState]:
    """The states of an entity's groups (empty ones when ``blob`` is None). Arrays are read-only views."""
    if blob is None:  # decoded from bytes too, so the kernels always see the same (read-only) array types
        blob = encode([GroupState.empty(group) for group in groups])
    words = np.frombuffer(blob, dtype="<i8")
    if len(words) < 2 or words[0] != MAGIC or words[1] != len(groups):
        raise CorruptStateError(
            f"entity state does not match the feature set's {len(groups)} groups; the store key is "
            "namespaced by feature-set hash, so this indicates a corrupt value (erase the key to rebuild it)"
        )
    offset = 2 + len(groups)
    states = []
    for group, size in zip(groups, words[2:offset].tolist(), strict=True):
        width = FIRST_MASK + len(group.filters) + len(group.values)
        rows = words[offset : offset + size * width].reshape(size, width)
        offset += size * width
        carry = words[offset : offset + len(group.specs)]
        offset += len(group.specs)
        states.append(GroupState(rows, carry, len(group.filters)))
    return states


# -- the request path: every entity of an attempt in one compiled call ------------------------------------


@dataclass(frozen=True)
class EventColumns:
    """The columns of an event matrix: every filter bit and value column any group reads, once each.

    An event's row is ``(source code, time, id hash, filter bits..., values...)``; a group picks its own
    filter and value columns from it (:attr:`Layout.maps`), so one row serves all of an entity's groups.
    """

    filters: tuple[AnyFilter, ...]
    values: tuple[str, ...]

    @classmethod
    def of(cls, groups: Sequence[GroupPlan]) -> EventColumns:
        filters = tuple(dict.fromkeys(f for g in groups for f in g.filters))
        values = tuple(dict.fromkeys(v for g in groups for v in g.values))
        return cls(filters, values)

    @property
    def width(self) -> int:
        return EV_FIRST_FIELD + len(self.filters) + len(self.values)

    def filter_column(self, item: AnyFilter) -> int:
        return EV_FIRST_FIELD + self.filters.index(item)

    def value_column(self, name: str) -> int:
        return EV_FIRST_FIELD + len(self.filters) + self.values.index(name)


@dataclass(frozen=True)
class Layout:
    """Where everything of the feature set's entity states is, as integer tables :func:`scan` walks.

    ``entities[e]``: its groups ``groups[first:end]`` (in blob order), pruning horizon (µs), total row width.
    ``groups[g]``: row width, filters, specs ``specs[first:first + count]``, source code, and from
    ``maps[first]`` the event columns of its filter bits then of its values. ``specs`` are the kernels' spec
    rows plus :data:`SLOT`, the output column of each aggregate.
    """

    entities: I64
    groups: I64
    specs: I64
    maps: I64

    @classmethod
    def of(
        cls,
        by_entity: Sequence[Sequence[GroupPlan]],
        horizons: Sequence[int],
        columns: EventColumns,
        slot: Callable[[Aggregate], int],
    ) -> Layout:
        if sys.byteorder != "little":  # the compiled scan reads and writes the blobs' words natively
            raise RuntimeError(
                "the online feature state is stored as little-endian int64 and the compiled scan reads it "
                f"natively: this {sys.byteorder}-endian machine is not supported (use a little-endian one)"
            )
        entities: list[list[int]] = []
        groups: list[list[int]] = []
        specs: list[list[int]] = []
        maps: list[int] = []
        for plans, horizon in zip(by_entity, horizons, strict=True):
            entities.append([len(groups), len(groups) + len(plans), horizon, sum(_width(g) for g in plans)])
            for group in plans:
                counts = [_width(group), len(group.filters), len(group.aggregates)]
                groups.append([*counts, len(specs), SOURCE_CODE[group.source], len(maps)])
                specs += [
                    [*row, slot(a)] for row, a in zip(group.specs.tolist(), group.aggregates, strict=True)
                ]
                maps += [columns.filter_column(f) for f in group.filters]
                maps += [columns.value_column(v) for v in group.values]
        return cls(
            np.array(entities, dtype=np.int64).reshape(-1, 4),
            np.array(groups, dtype=np.int64).reshape(-1, 6),
            np.array(specs, dtype=np.int64).reshape(-1, SPEC_WIDTH + 1),
            np.array(maps, dtype=np.int64),
        )

    def scan(self, states: Scan, out: F64, events: I64 | None, now: int) -> list[tuple[bytes, int]]:
        """Score the entity states of ``states`` into ``out`` (one row per query time, NaN-filled by the
        caller); with ``events``, also their next states: ``(blob, latest event time)`` per entity, where
        ``latest`` is what pruning counted from (``now`` for an entity without events)."""
        update = events is not None
        bad, words, ends, latest = _scan(
            states.words,
            states.ends,
            states.present,
            self.entities,
            self.groups,
            self.specs,
            self.maps,
            states.query,
            out,
            _NO_EVENTS if events is None else events,
            update,
            now,
        )
        if bad >= 0:
            raise CorruptStateError(
                f"entity state {states.keys[bad]!r} does not match the feature set's groups (header or "
                "sizes); the store key is namespaced by feature-set hash, so this indicates a corrupt value "
                "(erase the key to rebuild it)"
            )
        if not update:
            return []
        data = words.tobytes()
        bounds = [0, *(8 * end for end in ends.tolist())]
        return [
            (data[start:end], moment)
            for (start, end), moment in zip(pairwise(bounds), latest.tolist(), strict=True)
        ]


class Scan(NamedTuple):
    """The entity states of one attempt as :func:`_scan` reads them: blobs joined in one buffer."""

    words: I64  # read-only little-endian int64 over the joined blobs
    ends: I64  # where each blob ends in words (it starts where the previous one ends)
    present: I64  # each blob's entity index in the layout
    query: I64  # query times, ascending
    keys: Sequence[str]  # each blob's store key (for error messages)

    @classmethod
    def of(cls, blobs: Sequence[bytes], present: Sequence[int], query: I64, keys: Sequence[str]) -> Scan:
        sizes = [len(blob) for blob in blobs]
        for size, key in zip(sizes, keys, strict=True):
            if size % 8:
                raise CorruptStateError(
                    f"entity state {key!r} is not a whole number of 64-bit words ({size} bytes): a truncated "
                    "or foreign value (erase the key to rebuild it)"
                )
        return cls(
            np.frombuffer(b"".join(blobs), dtype="<i8"),
            np.array([end // 8 for end in accumulate(sizes)], dtype=np.int64),
            np.array(present, dtype=np.int64),
            query,
            keys,
        )


_NO_EVENTS: Final = np.empty((0, EV_FIRST_FIELD), dtype=np.int64)


def _width(group: GroupPlan) -> int:
    return FIRST_MASK + len(group.filters) + len(group.values)


@njit(cache=True)
def _scan(  # noqa: PLR0917 (a compiled kernel takes its arrays positionally)
    words: I64,
    ends: I64,
    present: I64,
    entities: I64,
    groups: I64,
    specs: I64,
    maps: I64,
    query: I64,
    out: F64,
    events: I64,
    update: bool,
    now: int,
) -> tuple[int, I64, I64, I64]:  # pragma: no cover - compiled
    """Validate, score and (if ``update``) rewrite the states: (first bad state or -1, next words, where each
    next state ends in them, latest time per entity)."""
    n = present.shape[0]
    for k in range(n):
        if not _valid(words, 0 if k == 0 else ends[k - 1], ends[k], entities[present[k]], groups):
            return k, np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    if query.shape[0] > 0:
        for k in range(n):
            _score(words, 0 if k == 0 else ends[k - 1], entities[present[k]], groups, specs, query, out)
    if not update:
        return -1, np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    size = words.shape[0]
    for k in range(n):
        size += events.shape[0] * entities[present[k], E_ROWS_WIDTH]
    next_words = np.empty(size, np.int64)
    next_ends = np.empty(n, np.int64)
    latest = np.empty(n, np.int64)
    cursor = int(np.int64(0))  # not the literal 0: one compiled _update, not two
    for k in range(n):
        start = 0 if k == 0 else ends[k - 1]
        cursor, latest[k] = _update(
            words, start, entities[present[k]], groups, specs, maps, events, now, next_words, cursor
        )
        next_ends[k] = cursor
    return -1, next_words[:cursor], next_ends, latest


@njit(cache=True)
def _valid(words: I64, start: int, end: int, entity: I64, groups: I64) -> bool:  # pragma: no cover
    """The blob's header matches the entity's groups and its sizes add up to its length."""
    n_groups = entity[E_END_GROUP] - entity[E_FIRST_GROUP]
    length = end - start
    if length < 2 + n_groups or words[start] != MAGIC or words[start + 1] != n_groups:
        return False
    total = 2 + n_groups
    for index in range(n_groups):
        group = groups[entity[E_FIRST_GROUP] + index]
        rows = words[start + 2 + index]
        if rows < 0 or rows > length:
            return False
        total += rows * group[G_WIDTH] + group[G_SPECS]
    return bool(total == length)


@njit(cache=True)
def _score(  # noqa: PLR0917
    words: I64, start: int, entity: I64, groups: I64, specs: I64, query: I64, out: F64
) -> None:  # pragma: no cover - compiled
    """Every aggregate of the entity's groups at the query times, into its output column."""
    first = entity[E_FIRST_GROUP]
    n_groups = entity[E_END_GROUP] - first
    q_entity = np.zeros(query.shape[0], np.int64)
    offset = start + 2 + n_groups
    for index in range(n_groups):
        group = groups[first + index]
        n, width, masks, n_specs = words[start + 2 + index], group[G_WIDTH], group[G_MASKS], group[G_SPECS]
        rows = words[offset : offset + n * width].reshape((n, width))
        offset += n * width
        carry = words[offset : offset + n_specs]
        offset += n_specs
        own = specs[group[G_FIRST_SPEC] : group[G_FIRST_SPEC] + n_specs]
        result = aggregate(
            np.zeros(n, np.int64),
            rows[:, TIME],
            rows[:, FIRST_MASK : FIRST_MASK + masks],
            rows[:, FIRST_MASK + masks :],
            q_entity,
            query,
            own,
            carry,
        )
        for s in range(n_specs):
            if own[s, SLOT] >= 0:
                for j in range(query.shape[0]):
                    out[j, own[s, SLOT]] = result[j, s]


@njit(cache=True)
def _update(  # noqa: PLR0917
    words: I64,
    start: int,
    entity: I64,
    groups: I64,
    specs: I64,
    maps: I64,
    events: I64,
    now: int,
    out: I64,
    cursor: int,
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Write the entity's next state at ``out[cursor:]``: each event inserted into the groups of its source at
    its (time, id hash) position, then every group pruned at ``latest - horizon`` (the pruned rows folded into
    the carry). Returns the end of what was written and ``latest``."""
    first = entity[E_FIRST_GROUP]
    n_groups = entity[E_END_GROUP] - first
    latest = _latest(words, start, entity, groups, events, now)
    threshold = latest - entity[E_HORIZON]
    out[cursor] = MAGIC
    out[cursor + 1] = n_groups
    header = cursor + 2
    cursor = header + n_groups
    offset = start + 2 + n_groups
    for index in range(n_groups):
        group = groups[first + index]
        n, width, masks, n_specs = words[start + 2 + index], group[G_WIDTH], group[G_MASKS], group[G_SPECS]
        rows = _inserted(words[offset : offset + n * width].reshape((n, width)), group, maps, events)
        offset += n * width
        carry = words[offset : offset + n_specs].copy()
        offset += n_specs
        cut = 0
        while cut < rows.shape[0] and rows[cut, TIME] < threshold:
            cut += 1
        kept = rows.shape[0] - cut
        out[header + index] = kept
        for i in range(cut, rows.shape[0]):
            for c in range(width):
                out[cursor] = rows[i, c]
                cursor += 1
        if cut > 0:
            own = specs[group[G_FIRST_SPEC] : group[G_FIRST_SPEC] + n_specs]
            carry = fold(rows[:cut, TIME], rows[:cut, FIRST_MASK : FIRST_MASK + masks], own, carry)
        for s in range(n_specs):
            out[cursor + s] = carry[s]
        cursor += n_specs
    return cursor, latest


@njit(cache=True)
def _inserted(rows: I64, group: I64, maps: I64, events: I64) -> I64:  # pragma: no cover - compiled
    """The group's rows with the events of its source inserted, each before the first row at or after its
    (time, id hash): the order the batch engine sorts events in."""
    n, width = rows.shape[0], group[G_WIDTH]
    matching = 0
    for e in range(events.shape[0]):
        if events[e, EV_SOURCE] == group[G_SOURCE]:
            matching += 1
    out = np.empty((n + matching, width), np.int64)
    for i in range(n):  # element loops, not slice assignment: the same code, seconds less to compile
        for c in range(width):
            out[i, c] = rows[i, c]
    filled = n
    for e in range(events.shape[0]):
        if events[e, EV_SOURCE] != group[G_SOURCE]:
            continue
        t, event_id = events[e, EV_TIME], events[e, EV_ID]
        position = _position(out, filled, t, event_id)
        for i in range(filled, position, -1):
            for c in range(width):
                out[i, c] = out[i - 1, c]
        out[position, TIME] = t
        out[position, ID] = event_id
        for c in range(width - FIRST_MASK):
            out[position, FIRST_MASK + c] = events[e, maps[group[G_FIRST_MAP] + c]]
        filled += 1
    return out


@njit(cache=True)
def _position(rows: I64, n: int, t: int, event_id: int) -> int:  # pragma: no cover - compiled
    """Where a (t, event_id) row goes among the first ``n`` rows: after the rows before time ``t`` (a binary
    search; ``np.searchsorted`` takes seconds more to compile), then after the rows at ``t`` with a smaller
    id hash."""
    position, high = 0, n
    while position < high:
        middle = (position + high) // 2
        if rows[middle, TIME] < t:
            position = middle + 1
        else:
            high = middle
    while position < n and rows[position, TIME] == t and rows[position, ID] < event_id:
        position += 1
    return position


@njit(cache=True)
def _latest(  # noqa: PLR0917
    words: I64, start: int, entity: I64, groups: I64, events: I64, now: int
) -> int:  # pragma: no cover - compiled
    """The entity's "now" once the events are inserted: its latest attempt (labels may be delivered ahead of
    their time), or its latest event of any kind when it aggregates no attempts; ``now`` if it has none."""
    first = entity[E_FIRST_GROUP]
    n_groups = entity[E_END_GROUP] - first
    offset = start + 2 + n_groups
    latest = _NO_TIME
    for index in range(n_groups):
        group = groups[first + index]
        n, width = words[start + 2 + index], group[G_WIDTH]
        last = words[offset + (n - 1) * width + TIME] if n > 0 else _NO_TIME
        offset += n * width + group[G_SPECS]
        for e in range(events.shape[0]):
            if events[e, EV_SOURCE] == group[G_SOURCE]:
                last = max(last, events[e, EV_TIME])
        if group[G_SOURCE] == _ATTEMPTS:
            return now if last == _NO_TIME else last
        latest = max(latest, last)
    return now if latest == _NO_TIME else latest


_UNSAFE: Final = re.compile(r'[^\x20-\x7e]|["\\]')


def json_strings(texts: list[str]) -> list[str]:
    """``json.dumps`` of each string; plain printable ASCII (most ids) is quoted without the encoder."""
    return [json.dumps(text) if _UNSAFE.search(text) else '"' + text + '"' for text in texts]
