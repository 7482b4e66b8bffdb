"""The online engine: the feature vector of one new attempt, from per-entity state in an online store.

It reads the declaration, the event encoding (:mod:`features.plan`) and the kernels (:mod:`features.kernels`)
that the batch engine uses, so an attempt scored online gets the features the batch table holds for it.

* :meth:`OnlineEngine.features_for` reads one blob per entity of the attempt (one store round trip) and runs
  each group's kernel on that entity's events for the single query time. It never writes.
* :meth:`OnlineEngine.score_and_record` is what the service calls: the same vector, then the attempt recorded,
  in one unit of work that reads each blob once (half the reads and decodes of the two calls).
* :meth:`OnlineEngine.record_attempt`, :meth:`~OnlineEngine.record_outcome` and
  :meth:`~OnlineEngine.record_report` update state atomically and are idempotent by id: the attempt record
  (``attempt_id`` → entity keys) remembers which outcome and reports were applied. An outcome or report whose
  attempt is not known yet is kept *pending* under its ``attempt_id`` and applied when the attempt arrives,
  so out-of-order delivery loses nothing.
* Events are filtered by *event time* when scoring (strictly before the attempt), never by arrival, which is
  what makes replay parity hold with equal timestamps and late deliveries.
* Pruning: each entity keeps only events newer than its ``latest attempt - longest window - slack``;
  older events are folded into the carry (lifetime counts, first/last times, consecutive runs), so the state
  of an entity is bounded. An event arriving later than that horizon is folded directly (exact for counts
  and first/last times; a consecutive run then counts it as the latest event). Attempt records and pending
  events expire after ``label_horizon``; an entity idle for ``entity_ttl`` is dropped (its whole-history
  features restart).
* Keys are namespaced by the feature-set hash: a changed definition starts from fresh state.
* :meth:`OnlineEngine.load_bulk` writes a whole history into an empty store at once (:mod:`features.bulk`):
  the same keys, values and expiry times as recording its events one by one, about 15-25 times faster.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np

from features import bulk, request
from features.bulk import Arrivals
from features.definitions import (
    ATTEMPT_FILTER_FIELDS,
    DECLINE_FAMILY_OF,
    AmountToUsual,
    Entity,
    FeatureSet,
    RequestFeature,
    Source,
)
from features.kernels import F64, I64, aggregate
from features.plan import MISSING, GroupPlan, amount_milli, hash_key, plan, to_us
from features.state import FIRST_MASK, TIME, GroupState, decode, encode
from features.stores.base import OnlineStore, Transaction

logger = logging.getLogger(__name__)

US_PER_DAY: Final = 86_400 * 1_000_000


class OnlineEventError(ValueError):
    """An event handed to the online engine misses a field or has an unusable value."""


@dataclass(frozen=True)
class Retention:
    """How long the online store keeps what (event time, not wall time)."""

    slack: timedelta = timedelta(days=2)  # extra history kept beyond the longest window, for late events
    label_horizon: timedelta = timedelta(
        days=180
    )  # attempt records and pending events (fraud reports arrive late)
    entity_ttl: timedelta | None = timedelta(days=400)  # drop an entity idle this long; None keeps summaries


@dataclass
class _Event:
    """One event ready to insert: time, id hash, its fields (for filters) and its attempt's record."""

    source: Source
    t: int
    event_id: int
    fields: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)


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
        self._ratios = [d for d in feature_set.definitions if isinstance(d, AmountToUsual)]
        self._position = {name: index for index, name in enumerate(feature_set.names)}
        wanted = {r.usual.name for r in self._ratios}
        #: per entity, per group: where its results go in the vector, and which feed an amount-to-usual ratio
        self._outputs: dict[str, list[tuple[GroupPlan, I64, I64, list[tuple[str, int]]]]] = {}
        for group in self._groups:
            names = [a.name for a in group.aggregates]
            sources = [k for k, name in enumerate(names) if name in self._position]
            self._outputs.setdefault(group.entity.name, []).append(
                (
                    group,
                    np.array(sources, dtype=np.int64),
                    np.array([self._position[names[k]] for k in sources], dtype=np.int64),
                    [(name, k) for k, name in enumerate(names) if name in wanted],
                )
            )
        self._request_slots = np.array([self._position[d.name] for d in self._requests], dtype=np.int64)
        self._zeros = np.zeros(4096, dtype=np.int64)
        slack = _us(self.retention.slack)
        self._horizon = {  # per entity: its longest window (whole-history aggregates live in the carry)
            e.name: max(
                (a.window.us for g in self._by_entity[e.name] for a in g.aggregates if a.window), default=0
            )
            + slack
            for e in self._entities
        }
        self._value_keys = sorted({v for g in self._groups for v in g.values if v != "amount"})
        #: per entity, the blob of its empty state (an entity seen for the first time decodes this)
        self._empty = {
            e.name: encode([GroupState.empty(g) for g in self._by_entity[e.name]]) for e in self._entities
        }

    # -- scoring -------------------------------------------------------------------------------------------

    def features_for(self, attempt: Mapping[str, object]) -> F64:
        """The feature vector of a new attempt (``feature_set.names`` order), from state before its time."""
        t = _time(attempt, "occurred_at")
        keyed = self._keyed(attempt)
        blobs = self.store.get_many([key for _, key in keyed])
        return self._vector(attempt, t, keyed, self._decoded(keyed, blobs))

    def score_and_record(self, attempt: Mapping[str, object]) -> tuple[F64, bool]:
        """:meth:`features_for` then :meth:`record_attempt` in one unit of work, reading each blob once.

        The vector is the one :meth:`features_for` gives (state strictly before the attempt's time, pending
        labels not yet applied); the flag is False if the attempt was already recorded (state unchanged).
        """
        t = _time(attempt, "occurred_at")
        attempt_id = _text(attempt, "attempt_id")
        record = self._record_of(attempt)
        keyed = self._keyed(attempt)

        def work(tx: Transaction) -> tuple[F64, bool]:
            own = [
                self._attempt_key(attempt_id),
                self._pending_key(attempt_id),
                self._account_key(record["account"]),
            ]
            blobs = tx.get_many([*own, *(key for _, key in keyed)])
            decoded = self._decoded(keyed, blobs[len(own) :])
            vector = self._vector(attempt, t, keyed, decoded)
            return vector, self._apply_attempt(
                tx, attempt_id, record, (blobs[0], blobs[1], blobs[2]), decoded
            )

        return self.store.transact(work)

    def _keyed(self, attempt: Mapping[str, object]) -> list[tuple[Entity, str]]:
        """The attempt's entities that it names, with their store keys."""
        return [
            (e, self._entity_key(e, key)) for e in self._entities if (key := _key(attempt, e)) is not None
        ]

    def _decoded(
        self, keyed: Sequence[tuple[Entity, str]], blobs: Sequence[bytes | None]
    ) -> dict[str, list[GroupState]]:
        """Each entity's group states by store key (empty states where the entity has none yet)."""
        return {
            key: decode(self._by_entity[entity.name], self._empty[entity.name] if blob is None else blob)
            for (entity, key), blob in zip(keyed, blobs, strict=True)
        }

    def features_at(self, attempt: Mapping[str, object], times: Sequence[datetime]) -> F64:
        """The vectors of ``attempt`` made at each of ``times`` (one row per time, in that order).

        Row ``k`` is :meth:`features_for` of the attempt with ``occurred_at = times[k]``; the state of its
        entities is read once and every time is one query of the same kernel call (how the recovery planner
        scores dozens of candidate retry times of one invoice). Never writes.
        """
        t = np.array([to_us(moment) for moment in times], dtype=np.int64)
        keyed = self._keyed(attempt)
        blobs = self.store.get_many([key for _, key in keyed])
        order = np.argsort(t, kind="stable")
        rows = np.empty((len(t), len(self._position)))
        rows[order] = self._matrix(attempt, t[order], keyed, self._decoded(keyed, blobs))
        return rows

    def _vector(
        self,
        attempt: Mapping[str, object],
        t: int,
        keyed: Sequence[tuple[Entity, str]],
        decoded: Mapping[str, list[GroupState]],
    ) -> F64:
        """The vector from the decoded states of the attempt's entities (``keyed``) and its own fields."""
        vector: F64 = self._matrix(attempt, np.array([t], dtype=np.int64), keyed, decoded)[0]
        return vector

    def _matrix(
        self,
        attempt: Mapping[str, object],
        query: I64,
        keyed: Sequence[tuple[Entity, str]],
        decoded: Mapping[str, list[GroupState]],
    ) -> F64:
        """One vector per query time (ascending) of the attempt, from the decoded states and its fields."""
        out = np.full((len(query), len(self._position)), np.nan)
        q_ent = np.zeros(len(query), dtype=np.int64)
        usual: dict[str, F64] = {}
        for entity, key in keyed:
            for (group, sources, targets, usual_at), state in zip(
                self._outputs[entity.name], decoded[key], strict=True
            ):
                n = len(state.rows)
                codes = self._zeros[:n] if n <= len(self._zeros) else np.zeros(n, np.int64)
                masks = state.rows[:, FIRST_MASK : FIRST_MASK + state.n_masks]
                values = state.rows[:, FIRST_MASK + state.n_masks :]
                result = aggregate(
                    codes, state.rows[:, TIME], masks, values, q_ent, query, group.specs, state.carry
                )
                out[:, targets] = result[:, sources]
                for name, k in usual_at:
                    usual[name] = result[:, k]
        if self._requests:
            out[:, self._request_slots] = request.compute_at(self._requests, attempt, query)
        for ratio in self._ratios:
            amount = amount_milli(np.array([_number(attempt, "amount")]))[0] / 1000.0
            out[:, self._position[ratio.name]] = amount / usual.get(
                ratio.usual.name, np.full(len(query), np.nan)
            )
        return out

    def warm_up(self) -> None:
        """Load the compiled kernels (from numba's cache, or compile them) before the first real request."""
        probe: dict[str, object] = {"occurred_at": datetime.now(UTC), "amount": 1.0}
        probe.update({entity.key: f"__warm_up__{entity.name}" for entity in self._entities})
        self.features_for(probe)

    # -- recording -----------------------------------------------------------------------------------------

    def record_attempt(self, attempt: Mapping[str, object]) -> bool:
        """Add an attempt to the state of its entities; False if it was already recorded."""
        attempt_id = _text(attempt, "attempt_id")
        record = self._record_of(attempt)
        keyed = self._keyed(attempt)

        def work(tx: Transaction) -> bool:
            own = tx.get_many(
                [
                    self._attempt_key(attempt_id),
                    self._pending_key(attempt_id),
                    self._account_key(record["account"]),
                ]
            )
            if own[0] is not None:
                return False
            decoded = self._decoded(keyed, tx.get_many([key for _, key in keyed]))
            return self._apply_attempt(tx, attempt_id, record, (own[0], own[1], own[2]), decoded)

        return self.store.transact(work)

    def record_outcome(self, outcome: Mapping[str, object]) -> bool:
        """Add a gateway outcome; False if already recorded. Kept pending if its attempt is not known yet."""
        attempt_id, payload = self._outcome_payload(outcome)
        return self.store.transact(lambda tx: self._apply_label(tx, attempt_id, payload))

    def record_report(self, report: Mapping[str, object]) -> bool:
        """Add a fraud report (counted from its ``reported_at``); False if already recorded."""
        attempt_id, payload = self._report_payload(report)
        return self.store.transact(lambda tx: self._apply_label(tx, attempt_id, payload))

    def load_bulk(self, attempts: Arrivals, outcomes: Arrivals, reports: Arrivals) -> int:
        """Record a whole history into an empty store at once: the state (keys, values, expiry times) that
        recording the events one by one in arrival order leaves, built per entity in one pass
        (:mod:`features.bulk`). Refuses a store that holds state for this feature set already. Returns the
        number of keys written."""
        return bulk.load(self, attempts, outcomes, reports)

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

    def _record_of(self, attempt: Mapping[str, object]) -> dict[str, Any]:
        keys = {e.name: str(_key(attempt, e)) for e in self._entities if _key(attempt, e) is not None}
        values = {k: None if _missing(attempt.get(k)) else str(attempt.get(k)) for k in self._value_keys}
        return {
            "t": _time(attempt, "occurred_at"),
            "account": _text(attempt, "account_id"),
            "milli": int(amount_milli(np.array([_number(attempt, "amount")]))[0]),
            "keys": keys,
            "values": values,
            "fields": {
                f: None if _missing(attempt.get(f)) else str(attempt.get(f)) for f in ATTEMPT_FILTER_FIELDS
            },
            "labels": [],
        }

    def _apply_attempt(
        self,
        tx: Transaction,
        attempt_id: str,
        record: dict[str, Any],
        own: tuple[bytes | None, bytes | None, bytes | None],
        decoded: dict[str, list[GroupState]],
    ) -> bool:
        """Insert a new attempt (and the labels waiting for it) into the entity states read in ``tx``.

        ``own`` holds the attempt's record, its pending labels and its account index, as read in ``tx``.
        """
        existing, pending, index = own
        if existing is not None:
            return False
        events = [_Event(Source.ATTEMPTS, record["t"], hash_key(attempt_id), dict(record["fields"]), record)]
        for payload in [] if pending is None else json.loads(pending):
            if _label(payload) not in record["labels"]:
                events.append(self._label_event(payload, record))
        self._insert(tx, record, events, decoded)
        tx.put(
            self._attempt_key(attempt_id),
            json.dumps(record).encode(),
            record["t"] + _us(self.retention.label_horizon),
        )
        if pending is not None:
            tx.delete(self._pending_key(attempt_id))
        attempts = [] if index is None else json.loads(index)
        tx.put(
            self._account_key(record["account"]),
            json.dumps([*attempts, attempt_id]).encode(),
            record["t"] + _us(self.retention.label_horizon),
        )
        return True

    def _apply_label(self, tx: Transaction, attempt_id: str, payload: dict[str, Any]) -> bool:
        blob, pending = tx.get_many([self._attempt_key(attempt_id), self._pending_key(attempt_id)])
        if blob is None:
            waiting = [] if pending is None else json.loads(pending)
            if any(p["id"] == payload["id"] and p["source"] == payload["source"] for p in waiting):
                return False
            expires = payload["t"] + _us(self.retention.label_horizon)
            tx.put(self._pending_key(attempt_id), json.dumps([*waiting, payload]).encode(), expires)
            return True
        record = json.loads(blob)
        if _label(payload) in record["labels"]:
            return False
        self._insert(tx, record, [self._label_event(payload, record)])
        tx.put(
            self._attempt_key(attempt_id),
            json.dumps(record).encode(),
            record["t"] + _us(self.retention.label_horizon),
        )
        return True

    def _label_event(self, payload: dict[str, Any], record: dict[str, Any]) -> _Event:
        """The event of an outcome or report, with its attempt's fields; marks it applied on the record."""
        fields = {**record["fields"], **payload["fields"]}
        record["labels"].append(_label(payload))
        return _Event(Source(payload["source"]), payload["t"], hash_key(payload["id"]), fields, record)

    def _insert(
        self,
        tx: Transaction,
        record: dict[str, Any],
        events: Sequence[_Event],
        decoded: Mapping[str, list[GroupState]] | None = None,
    ) -> None:
        """Insert events into their entities' states and write them back (states read in ``tx`` if given)."""
        entities = [e for e in self._entities if e.name in record["keys"]]
        keys = [self._entity_key(e, record["keys"][e.name]) for e in entities]
        if decoded is None:
            decoded = self._decoded(list(zip(entities, keys, strict=True)), tx.get_many(keys))
        for entity, key in zip(entities, keys, strict=True):
            groups = self._by_entity[entity.name]
            states = decoded[key]
            for group, state in zip(groups, states, strict=True):
                for event in events:
                    if event.source == group.source:  # the attempt record makes recording idempotent
                        state.insert(self._row(group, event))
            latest = _now_of(groups, states, record["t"])
            for group, state in zip(groups, states, strict=True):
                state.prune(group, latest - self._horizon[entity.name])
            ttl = self.retention.entity_ttl
            tx.put(key, encode(states), None if ttl is None else latest + _us(ttl))

    def _row(self, group: GroupPlan, event: _Event) -> I64:
        """The event as a state row: time, id hash, filter bits, values (the batch engine's encoding)."""
        row = [event.t, event.event_id]
        row += [int(event.fields.get(f.field) in f.values) for f in group.filters]
        for name in group.values:
            if name == "amount":
                row.append(event.record["milli"])
            else:
                raw = event.record["values"][name]
                row.append(MISSING if raw is None else hash_key(raw))
        return np.array(row, dtype=np.int64)

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


def _label(payload: dict[str, Any]) -> str:
    """How an attempt record remembers an applied outcome or report (idempotency)."""
    return f"{payload['source']}:{payload['id']}"


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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
