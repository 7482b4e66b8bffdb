"""The online engine: the feature vector of one new attempt, from per-entity state in an online store.

It reads the declaration, the event encoding (:mod:`features.plan`) and the kernels (:mod:`features.kernels`)
that the batch engine uses, so an attempt scored online gets the features the batch table holds for it.

* :meth:`OnlineEngine.features_for` reads one blob per entity of the attempt (one store round trip) and runs
  each group's kernel on that entity's events for the single query time. It never writes.
* :meth:`OnlineEngine.score_and_record` is what the service calls: the same vector, then the attempt recorded,
  in one unit of work that reads each blob once (half the reads and decodes of the two calls).
* The blobs are never decoded into Python objects on these paths: one compiled call
  (:meth:`features.state.Layout.scan`) validates an attempt's entity states, runs every group's aggregates and
  writes each entity's next state; Python around it builds the event row, the request features and the JSON
  attempt record.
* :meth:`OnlineEngine.record_attempt`, :meth:`~OnlineEngine.record_outcome` and
  :meth:`~OnlineEngine.record_report` update state atomically and are idempotent by id: the attempt record
  (``attempt_id`` → entity keys) remembers which outcome and reports were applied. An outcome or report whose
  attempt is not known yet is kept *pending* under its ``attempt_id`` and applied when the attempt arrives,
  so out-of-order delivery loses nothing.
* Events are filtered by *event time* when scoring (strictly before the attempt), never by arrival, which is
  what makes replay parity hold with equal timestamps and late deliveries.
* Pruning: each entity keeps only events newer than its ``latest attempt - longest window - slack`` (a
  delayed window counts with its offset);
  older events are folded into the carry (lifetime counts, first/last times, consecutive runs), so the state
  of an entity is bounded. An event arriving later than that horizon is folded directly (exact for counts
  and first/last times; a consecutive run then counts it as the latest event). Attempt records and pending
  events expire after ``label_horizon``; an entity idle for ``entity_ttl`` is dropped (its whole-history
  features restart).
* Keys are namespaced by the feature-set hash: a changed definition starts from fresh state.
* :func:`features.bulk.load` writes a whole history into an empty store at once (:mod:`features.bulk`):
  the same keys, values and expiry times as recording its events one by one, about 15-25 times faster.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np

from core.errors import RiskgateError
from features import request
from features.definitions import (
    DECLINE_FAMILY_OF,
    DERIVED,
    Entity,
    FeatureSet,
    Filter,
    RequestFeature,
    Source,
)
from features.kernels import F64, I64
from features.plan import (
    MISSING,
    GroupPlan,
    amount_milli_of,
    derive,
    hash_key,
    hash_texts,
    number_or_none,
    plan,
    to_us,
)
from features.state import SOURCE_CODE, EventColumns, GroupState, Layout, Scan, decode, encode, json_strings
from features.stores.base import OnlineStore, Transaction

logger = logging.getLogger(__name__)

US_PER_DAY: Final = 86_400 * 1_000_000


class OnlineEventError(RiskgateError, ValueError):
    """An event handed to the online engine misses a field or has an unusable value."""


@dataclass(frozen=True)
class Retention:
    """How long the online store keeps what (event time, not wall time)."""

    slack: timedelta = timedelta(days=2)  # extra history kept beyond the longest window, for late events
    label_horizon: timedelta = timedelta(
        days=180
    )  # attempt records and pending events (fraud reports arrive late)
    entity_ttl: timedelta | None = timedelta(days=400)  # drop an entity idle this long; None keeps summaries


@dataclass(frozen=True)
class _Event:
    """One event to insert into its attempt's entities: source, time, id and fields (for filters)."""

    source: Source
    t: int
    event_id: str
    fields: Mapping[str, object]


#: No query time: a unit of work that only records.
_NO_QUERY: Final = np.empty(0, dtype=np.int64)


class OnlineEngine:
    """Computes and maintains the features of ``feature_set`` over ``store``."""

    def __init__(
        self, store: OnlineStore, feature_set: FeatureSet, retention: Retention | None = None
    ) -> None:
        self.store = store
        self.feature_set = feature_set
        self.retention = retention or Retention()
        self._prefix = f"rg:{feature_set.hash}:"
        self._groups = plan(feature_set)
        self._entities: list[Entity] = feature_set.entities
        self._by_entity = {
            e.name: [g for g in self._groups if g.entity.name == e.name] for e in self._entities
        }
        self._requests = [d for d in feature_set.definitions if isinstance(d, RequestFeature)]
        self._request_columns = request.required_columns(self._requests)
        derived = [d for d in feature_set.definitions if isinstance(d, DERIVED)]
        self._position = {name: index for index, name in enumerate(feature_set.names)}
        #: output columns: the vector's, then the aggregates only derived definitions read
        unused = list(
            dict.fromkeys(a.name for d in derived for a in d.inputs if a.name not in self._position)
        )
        self._columns = {**self._position, **{n: len(self._position) + i for i, n in enumerate(unused)}}
        #: per derived definition: its column, and the columns of the aggregates it reads
        self._derived_columns = [
            (d, self._position[d.name], [self._columns[a.name] for a in d.inputs]) for d in derived
        ]
        slots = [self._position[d.name] for d in self._requests]
        #: where the request features go: a slice when they are declared together (the usual case)
        self._request_slots: I64 | slice = (
            slice(slots[0], slots[0] + len(slots))
            if slots and slots == list(range(slots[0], slots[0] + len(slots)))
            else np.array(slots, dtype=np.int64)
        )
        self._vocabulary = feature_set.vocabulary
        self._request_row = request.scalar_row(self._requests, self._vocabulary)
        self._index = {entity.name: index for index, entity in enumerate(self._entities)}
        slack = _us(self.retention.slack)
        self._horizon = {  # per entity: its longest reach, window + offset (whole-history state: the carry)
            e.name: max(
                (a.window.reach_us for g in self._by_entity[e.name] for a in g.aggregates if a.window),
                default=0,
            )
            + slack
            for e in self._entities
        }
        self._value_keys = sorted({v for g in self._groups for v in g.values if v != "amount"})
        #: per entity (layout order), the blob of its empty state (an entity seen for the first time)
        self._empty_states = [
            encode([GroupState.empty(g) for g in self._by_entity[e.name]]) for e in self._entities
        ]
        self._fields = EventColumns.of(self._groups)
        self._filter_tests = [(f.field, f.values) for f in self._fields.filters if isinstance(f, Filter)]
        #: with a range filter, every filter is tested through its ``matches`` (else the faster ``in``)
        self._filter_matches = (
            None
            if len(self._filter_tests) == len(self._fields.filters)
            else [(f.field, f.matches) for f in self._fields.filters]
        )
        numbers = feature_set.attempt_fields.numbers
        #: the attempt fields its record keeps for filters (numbers as floats, the others as text)
        self._record_fields = [
            (name, number_or_none if name in numbers else _text_or_none)
            for name in feature_set.filtered_fields
        ]
        self._hashed_values = [name for name in self._fields.values if name != "amount"]
        self._layout = Layout.of(
            [self._by_entity[e.name] for e in self._entities],
            [self._horizon[e.name] for e in self._entities],
            self._fields,
            lambda aggregate: self._columns.get(aggregate.name, -1),
        )
        self._label_us = _us(self.retention.label_horizon)
        ttl = self.retention.entity_ttl
        self._ttl_us = None if ttl is None else _us(ttl)

    # -- scoring -------------------------------------------------------------------------------------------

    def features_for(self, attempt: Mapping[str, object]) -> F64:
        """The feature vector of a new attempt (``feature_set.names`` order), from state before its time."""
        t = _time(attempt, "occurred_at")
        keyed = self._keyed(self._keys_of(attempt))
        blobs = self.store.get_many([key for _, key in keyed])
        vector: F64 = self._matrix(attempt, np.array([t], dtype=np.int64), keyed, blobs)[0]
        return vector

    def score_and_record(self, attempt: Mapping[str, object]) -> tuple[F64, bool]:
        """:meth:`features_for` then :meth:`record_attempt` in one unit of work, reading each blob once.

        The vector is the one :meth:`features_for` gives (state strictly before the attempt's time, pending
        labels not yet applied); the flag is False if the attempt was already recorded (state unchanged).
        Reading the states, scoring them and writing their next versions is one compiled call.
        """
        t = _time(attempt, "occurred_at")
        attempt_id = _text(attempt, "attempt_id")
        record = self._record_of(attempt, t)
        keyed = self._keyed(record["keys"])
        query = np.array([t], dtype=np.int64)

        def work(tx: Transaction) -> tuple[F64, bool]:
            own = self._own_keys(attempt_id, record)
            blobs = tx.get_many([*own, *(key for _, key in keyed)])
            existing, pending, index = blobs[0], blobs[1], blobs[2]
            entities = blobs[len(own) :]
            if existing is not None:
                return self._matrix(attempt, query, keyed, entities)[0], False
            events = self._events(self._attempt_events(attempt_id, record, pending), record)
            out = self._empty_matrix(1)
            states = self._next_states(keyed, entities, query, out, events, t)
            self._write_attempt(tx, attempt_id, record, (pending, index), states)
            return self._finish(attempt, query, out)[0], True

        return self.store.transact(work)

    def features_at(self, attempt: Mapping[str, object], times: Sequence[datetime]) -> F64:
        """The vectors of ``attempt`` made at each of ``times`` (one row per time, in that order).

        Row ``k`` is :meth:`features_for` of the attempt with ``occurred_at = times[k]``; the state of its
        entities is read once and every time is one query of the same kernel call (how the recovery planner
        scores dozens of candidate retry times of one invoice). Never writes.
        """
        t = np.array([to_us(moment) for moment in times], dtype=np.int64)
        keyed = self._keyed(self._keys_of(attempt))
        blobs = self.store.get_many([key for _, key in keyed])
        order = np.argsort(t, kind="stable")
        rows = np.empty((len(t), len(self._position)))
        rows[order] = self._matrix(attempt, t[order], keyed, blobs)
        return rows

    def _keys_of(self, attempt: Mapping[str, object]) -> dict[str, str]:
        """The attempt's entity keys by entity name, for the entities it names."""
        return {e.name: key for e in self._entities if (key := _key(attempt, e)) is not None}

    def _keyed(self, keys: Mapping[str, str]) -> list[tuple[int, str]]:
        """Entity index (in the layout) and store key of each entity in ``keys``, in the layout's order."""
        return [
            (self._index[name], self._entity_key(self._entities[self._index[name]], key))
            for name, key in keys.items()
        ]

    def _scan(self, keyed: Sequence[tuple[int, str]], blobs: Sequence[bytes | None], query: I64) -> Scan:
        """The states read for ``keyed`` (an entity seen for the first time has the empty state)."""
        empty = self._empty_states
        return Scan.of(
            [empty[index] if blob is None else blob for (index, _), blob in zip(keyed, blobs, strict=True)],
            [index for index, _ in keyed],
            query,
            [key for _, key in keyed],
        )

    def _next_states(  # noqa: PLR0917
        self,
        keyed: Sequence[tuple[int, str]],
        blobs: Sequence[bytes | None],
        query: I64,
        out: F64,
        events: I64,
        now: int,
    ) -> list[tuple[str, tuple[bytes, int]]]:
        """Score the states into ``out`` at the query times and insert the events: each entity's store key
        with its next state and latest event time (``now``: the time of the attempt the events belong to)."""
        states = self._layout.scan(self._scan(keyed, blobs, query), out, events, now)
        return [(key, state) for (_, key), state in zip(keyed, states, strict=True)]

    def _empty_matrix(self, rows: int) -> F64:
        """The output of a scan: the vector's columns and the ratios' inputs, NaN where no entity writes."""
        return np.full((rows, len(self._columns)), np.nan)

    def _matrix(
        self,
        attempt: Mapping[str, object],
        query: I64,
        keyed: Sequence[tuple[int, str]],
        blobs: Sequence[bytes | None],
    ) -> F64:
        """One vector per query time (ascending) of the attempt, from its entities' states and its fields."""
        out = self._empty_matrix(len(query))
        self._layout.scan(self._scan(keyed, blobs, query), out, None, 0)
        return self._finish(attempt, query, out)

    def _finish(self, attempt: Mapping[str, object], query: I64, out: F64) -> F64:
        """Add the request features and the derived definitions to the scanned aggregates."""
        if self._requests:
            if len(query) == 1:
                out[0, self._request_slots] = self._request_row(attempt, int(query[0]))
            else:
                out[:, self._request_slots] = request.compute_at(
                    self._requests, attempt, query, self._vocabulary
                )
        if self._derived_columns:
            amount = amount_milli_of(_number(attempt, "amount")) / 1000.0
            for definition, column, inputs in self._derived_columns:
                out[:, column] = derive(definition, amount, [out[:, k] for k in inputs])
        return out[:, : len(self._position)]

    def warm_up(self) -> None:
        """Load the compiled kernels (from numba's cache, or compile them) before the first real request:
        score a probe from the store, and build the states recording it would write, writing nothing."""
        t = datetime.now(UTC)
        probe: dict[str, object] = {"occurred_at": t, "amount": 1.0, "account_id": "__warm_up__"}
        probe.update({entity.key: f"__warm_up__{entity.name}" for entity in self._entities})
        self.features_for(probe)
        record = self._record_of(probe, to_us(t))
        keyed = self._keyed(record["keys"])
        events = self._events(self._attempt_events("__warm_up__", record, None), record)
        self._next_states(keyed, [None] * len(keyed), _NO_QUERY, self._empty_matrix(0), events, record["t"])

    # -- recording -----------------------------------------------------------------------------------------

    def record_attempt(self, attempt: Mapping[str, object]) -> bool:
        """Add an attempt to the state of its entities; False if it was already recorded."""
        t = _time(attempt, "occurred_at")
        attempt_id = _text(attempt, "attempt_id")
        record = self._record_of(attempt, t)
        keyed = self._keyed(record["keys"])

        def work(tx: Transaction) -> bool:
            existing, pending, index = tx.get_many(self._own_keys(attempt_id, record))
            if existing is not None:
                return False
            blobs = tx.get_many([key for _, key in keyed])
            events = self._events(self._attempt_events(attempt_id, record, pending), record)
            states = self._next_states(keyed, blobs, _NO_QUERY, self._empty_matrix(0), events, t)
            self._write_attempt(tx, attempt_id, record, (pending, index), states)
            return True

        return self.store.transact(work)

    def record_outcome(self, outcome: Mapping[str, object]) -> bool:
        """Add a gateway outcome; False if already recorded. Kept pending if its attempt is not known yet."""
        attempt_id, payload = self._outcome_payload(outcome)
        return self.store.transact(lambda tx: self._apply_label(tx, attempt_id, payload))

    def record_report(self, report: Mapping[str, object]) -> bool:
        """Add a fraud report (counted from its ``reported_at``); False if already recorded."""
        attempt_id, payload = self._report_payload(report)
        return self.store.transact(lambda tx: self._apply_label(tx, attempt_id, payload))

    def expire(self, now: datetime) -> int:
        """Drop attempt records, pending events and idle entities past their retention; returns how many."""
        removed = self.store.expire(to_us(now))
        logger.info("online store: expired %d keys as of %s", removed, now.isoformat())
        return removed

    def erase_account(self, account_id: str) -> int:
        """Erase an account: its attempt records, its events in every entity it touched, its own state.

        Whole-history summaries of events already pruned (counts, first/last times) hold no identifiers and
        are not reverted. Returns the number of events removed.
        """
        return self.store.transact(lambda tx: self._erase(tx, account_id))

    # -- internals -----------------------------------------------------------------------------------------

    def _entity_key(self, entity: Entity, key: str) -> str:
        return f"{self._prefix}e:{entity.name}:{key}"

    def _attempt_key(self, attempt_id: str) -> str:
        return f"{self._prefix}a:{attempt_id}"

    def _pending_key(self, attempt_id: str) -> str:
        return f"{self._prefix}p:{attempt_id}"

    def _account_key(self, account_id: str) -> str:
        return f"{self._prefix}x:{account_id}"

    def _outcome_payload(self, outcome: Mapping[str, object]) -> tuple[str, dict[str, Any]]:
        """The outcome as its attempt's label: (attempt id, payload kept pending or applied)."""
        attempt_id = _text(outcome, "attempt_id")
        code = outcome.get("decline_code")
        return attempt_id, {
            "source": Source.OUTCOMES.value,
            "t": _time(outcome, "occurred_at"),
            "id": attempt_id,
            "fields": {
                "status": _text(outcome, "status"),
                "decline_code": code if isinstance(code, str) else None,
                "decline_family": DECLINE_FAMILY_OF.get(code) if isinstance(code, str) else None,
            },
        }

    def _report_payload(self, report: Mapping[str, object]) -> tuple[str, dict[str, Any]]:
        """The fraud report as its attempt's label: (attempt id, payload)."""
        return _text(report, "attempt_id"), {
            "source": Source.REPORTS.value,
            "t": _time(report, "reported_at"),
            "id": _text(report, "report_id"),
            "fields": {"report_type": _text(report, "report_type")},
        }

    def _own_keys(self, attempt_id: str, record: Mapping[str, Any]) -> list[str]:
        """The attempt's record, its pending labels and its account's index of attempts."""
        return [
            self._attempt_key(attempt_id),
            self._pending_key(attempt_id),
            self._account_key(record["account"]),
        ]

    def _record_of(self, attempt: Mapping[str, object], t: int) -> dict[str, Any]:
        """What the store remembers of an attempt (JSON): its time, account, amount, entity keys, the values
        and fields its events carry, and the labels applied to it so far."""
        return {
            "t": t,
            "account": _text(attempt, "account_id"),
            "milli": amount_milli_of(_number(attempt, "amount")),
            "keys": self._keys_of(attempt),
            "values": {k: _text_or_none(attempt.get(k)) for k in self._value_keys},
            "fields": {name: convert(attempt.get(name)) for name, convert in self._record_fields},
            "labels": [],
        }

    def _attempt_events(self, attempt_id: str, record: dict[str, Any], pending: bytes | None) -> list[_Event]:
        """A new attempt's event, then those of the labels waiting for it (marked applied on the record)."""
        events = [_Event(Source.ATTEMPTS, record["t"], attempt_id, record["fields"])]
        for payload in [] if pending is None else json.loads(pending):
            if _label(payload) not in record["labels"]:
                events.append(self._label_event(payload, record))
        return events

    def _write_attempt(
        self,
        tx: Transaction,
        attempt_id: str,
        record: dict[str, Any],
        own: tuple[bytes | None, bytes | None],
        states: Sequence[tuple[str, tuple[bytes, int]]],
    ) -> None:
        """Write a new attempt's entity states, its record and its account index; drop its pending labels.

        ``own`` holds its pending labels and its account index as read in ``tx``.
        """
        pending, index = own
        self._put_states(tx, states)
        expires = record["t"] + self._label_us
        tx.put(self._attempt_key(attempt_id), json.dumps(record).encode(), expires)
        if pending is not None:
            tx.delete(self._pending_key(attempt_id))
        tx.put(self._account_key(record["account"]), _appended(index, attempt_id), expires)

    def _put_states(self, tx: Transaction, states: Sequence[tuple[str, tuple[bytes, int]]]) -> None:
        """Write entity states (store key, (blob, latest event time)), each expiring ``entity_ttl`` after its
        latest event."""
        ttl = self._ttl_us
        for key, (blob, latest) in states:
            tx.put(key, blob, None if ttl is None else latest + ttl)

    def _apply_label(self, tx: Transaction, attempt_id: str, payload: dict[str, Any]) -> bool:
        blob, pending = tx.get_many([self._attempt_key(attempt_id), self._pending_key(attempt_id)])
        if blob is None:
            waiting = [] if pending is None else json.loads(pending)
            if any(p["id"] == payload["id"] and p["source"] == payload["source"] for p in waiting):
                return False
            expires = payload["t"] + self._label_us
            tx.put(self._pending_key(attempt_id), json.dumps([*waiting, payload]).encode(), expires)
            return True
        record = json.loads(blob)
        if _label(payload) in record["labels"]:
            return False
        self._insert(tx, record, [self._label_event(payload, record)])
        tx.put(self._attempt_key(attempt_id), json.dumps(record).encode(), record["t"] + self._label_us)
        return True

    def _label_event(self, payload: dict[str, Any], record: dict[str, Any]) -> _Event:
        """The event of an outcome or report, with its attempt's fields; marks it applied on the record."""
        fields = {**record["fields"], **payload["fields"]}
        record["labels"].append(_label(payload))
        return _Event(Source(payload["source"]), payload["t"], payload["id"], fields)

    def _insert(self, tx: Transaction, record: dict[str, Any], events: Sequence[_Event]) -> None:
        """Insert events of a recorded attempt into its entities' states and write them back."""
        keyed = self._keyed(record["keys"])
        blobs = tx.get_many([key for _, key in keyed])
        matrix = self._events(events, record)
        states = self._next_states(keyed, blobs, _NO_QUERY, self._empty_matrix(0), matrix, record["t"])
        self._put_states(tx, states)

    def _events(self, events: Sequence[_Event], record: Mapping[str, Any]) -> I64:
        """The events as rows of :class:`features.state.EventColumns` (the batch engine's encoding: id hash,
        0/1 per filter, amounts in thousandths, key values as hashes)."""
        values = record["values"]
        texts = [event.event_id for event in events]
        texts += [raw for name in self._hashed_values if (raw := values[name]) is not None]
        hashes = hash_texts(texts)
        cells, next_hash = [], len(events)
        for name in self._fields.values:
            if name == "amount":
                cells.append(record["milli"])
            elif values[name] is None:
                cells.append(MISSING)
            else:
                cells.append(hashes[next_hash])
                next_hash += 1
        flat: list[int] = []
        for event, event_hash in zip(events, hashes[: len(events)], strict=True):
            fields = event.fields
            flat += [SOURCE_CODE[event.source], event.t, event_hash]
            if self._filter_matches is None:
                flat += [int(fields.get(field) in allowed) for field, allowed in self._filter_tests]
            else:
                flat += [int(matches(fields.get(field))) for field, matches in self._filter_matches]
            flat += cells
        return np.array(flat, dtype=np.int64).reshape(len(events), self._fields.width)

    def _erase(self, tx: Transaction, account_id: str) -> int:
        (index,) = tx.get_many([self._account_key(account_id)])
        attempt_ids: list[str] = [] if index is None else json.loads(index)
        blobs = tx.get_many([self._attempt_key(a) for a in attempt_ids])
        removed = 0
        by_entity: dict[tuple[str, str], list[int]] = {}
        for attempt_id, blob in zip(attempt_ids, blobs, strict=True):
            tx.delete(self._attempt_key(attempt_id))
            tx.delete(self._pending_key(attempt_id))
            if blob is None:
                continue
            record = json.loads(blob)
            ids = [hash_key(attempt_id)] + [hash_key(label.split(":", 1)[1]) for label in record["labels"]]
            for entity_name, key in record["keys"].items():
                by_entity.setdefault((entity_name, key), []).extend(ids)
        for entity in self._entities:
            for (name, key), ids in by_entity.items():
                if name != entity.name:
                    continue
                removed += self._remove_events(tx, entity, key, np.array(ids, dtype=np.int64))
        account = next((e for e in self._entities if e.key == "account_id"), None)
        if account is not None:
            tx.delete(self._entity_key(account, account_id))
        tx.delete(self._account_key(account_id))
        logger.info("erased account state: %d attempts, %d events", len(attempt_ids), removed)
        return removed

    def _remove_events(self, tx: Transaction, entity: Entity, key: str, ids: I64) -> int:
        store_key = self._entity_key(entity, key)
        (blob,) = tx.get_many([store_key])
        if blob is None:
            return 0
        groups = self._by_entity[entity.name]
        states = decode(groups, blob)
        removed = sum(state.remove(ids) for state in states)
        if removed:
            latest = _now_of(groups, states, 0)
            ttl = self.retention.entity_ttl
            tx.put(store_key, encode(states), None if ttl is None else latest + _us(ttl))
        return removed


def _now_of(groups: list[GroupPlan], states: list[GroupState], default: int) -> int:
    """The entity's "now" for pruning: its latest attempt (labels may be delivered ahead of their time),
    or its latest event of any kind when the entity aggregates no attempts."""
    for group, state in zip(groups, states, strict=True):
        if group.source == Source.ATTEMPTS:
            return int(state.t[-1]) if len(state.t) else default
    return max((int(state.t[-1]) for state in states if len(state.t)), default=default)


def _appended(index: bytes | None, attempt_id: str) -> bytes:
    """An account's index of attempts (``json.dumps`` of a list of ids) with one more id, without parsing
    the list (an account's index grows with its attempts)."""
    item = json_strings([attempt_id])[0].encode()
    if index is None or index == b"[]":
        return b"[" + item + b"]"
    return index[:-1] + b", " + item + b"]"


def _label(payload: dict[str, Any]) -> str:
    """How an attempt record remembers an applied outcome or report (idempotency)."""
    return f"{payload['source']}:{payload['id']}"


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text_or_none(value: object) -> str | None:
    if _missing(value):
        return None
    return value if type(value) is str else str(value)  # enum members (StrEnum) become their value


def _key(event: Mapping[str, object], entity: Entity) -> str | None:
    value = event.get(entity.key)
    return None if _missing(value) else str(value)


def _text(event: Mapping[str, object], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise OnlineEventError(f"event field {name!r} must be a non-empty string, got {value!r}")
    return value


def _number(event: Mapping[str, object], name: str) -> float:
    value = event.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OnlineEventError(f"event field {name!r} must be a number, got {value!r}")
    return float(value)


def _time(event: Mapping[str, object], name: str) -> int:
    value = event.get(name)
    if not isinstance(value, datetime):
        raise OnlineEventError(f"event field {name!r} must be a tz-aware datetime, got {value!r}")
    if value.tzinfo is None:
        raise OnlineEventError(f"event field {name!r} must be tz-aware (UTC), got naive {value.isoformat()}")
    return to_us(value)
