"""The online state of one entity (a card, an account, ...): its recent events per source group, packed.

Per group the state holds the events still inside the longest window (time, id hash, filter masks, values),
sorted by (time, id hash) like the batch engine sorts them, and the *carry*: what whole-history aggregates
(lifetime counts, first/last times, consecutive runs) retain of events pruned from the window. A state
serialises to one compact blob of little-endian arrays, so the store reads one value per entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from features.kernels import I64, U8, fold, initial_carry
from features.plan import GroupPlan

_MAGIC: Final = np.int64(0x5247_4631)  # "RGF1"


class CorruptStateError(ValueError):
    """A stored entity state cannot be decoded with the current feature set."""


@dataclass
class GroupState:
    t: I64
    ids: I64
    masks: U8
    values: I64
    carry: I64

    @classmethod
    def empty(cls, group: GroupPlan) -> GroupState:
        return cls(
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty((0, len(group.filters)), np.uint8),
            np.empty((0, len(group.values)), np.int64),
            initial_carry(group.specs),
        )

    def contains(self, event_id: int) -> bool:
        return bool((self.ids == event_id).any())

    def insert(self, t: int, event_id: int, masks: U8, values: I64) -> None:
        """Insert one event at its (time, id) position."""
        n = len(self.t)
        if n == 0 or (t, event_id) > (int(self.t[-1]), int(self.ids[-1])):  # the usual case: the latest event
            self.t = np.append(self.t, t)
            self.ids = np.append(self.ids, event_id)
            self.masks = np.concatenate((self.masks, masks.reshape(1, -1)))
            self.values = np.concatenate((self.values, values.reshape(1, -1)))
            return
        position = int(np.searchsorted(self.t, t, side="left"))
        while position < n and self.t[position] == t and self.ids[position] < event_id:
            position += 1
        self.t = np.insert(self.t, position, t)
        self.ids = np.insert(self.ids, position, event_id)
        self.masks = np.insert(self.masks, position, masks, axis=0)
        self.values = np.insert(self.values, position, values, axis=0)

    def prune(self, group: GroupPlan, before_us: int) -> None:
        """Fold the events before ``before_us`` into the carry and drop them."""
        cut = int(np.searchsorted(self.t, before_us, side="left"))
        if cut == 0:
            return
        self.carry = fold(self.t[:cut], self.masks[:cut], group.specs, self.carry)
        self.t, self.ids = self.t[cut:], self.ids[cut:]
        self.masks, self.values = self.masks[cut:], self.values[cut:]

    def remove(self, event_ids: I64) -> int:
        """Forget the events with these ids (erasure); returns how many were removed."""
        keep = ~np.isin(self.ids, event_ids)
        removed = int((~keep).sum())
        if removed:
            self.t, self.ids, self.masks, self.values = (
                self.t[keep],
                self.ids[keep],
                self.masks[keep],
                self.values[keep],
            )
        return removed


def encode(groups: list[GroupPlan], states: list[GroupState]) -> bytes:
    header = np.array([_MAGIC, len(states), *(len(s.t) for s in states)], dtype="<i8")
    parts = [header.tobytes()]
    for state in states:
        parts += [
            state.t.astype("<i8").tobytes(),
            state.ids.astype("<i8").tobytes(),
            np.ascontiguousarray(state.masks).tobytes(),
            state.values.astype("<i8").tobytes(),
            state.carry.astype("<i8").tobytes(),
        ]
    return b"".join(parts)


def decode(groups: list[GroupPlan], blob: bytes | None) -> list[GroupState]:
    """The states of an entity's groups (empty ones when ``blob`` is None)."""
    if blob is None:
        return [GroupState.empty(group) for group in groups]
    head = np.frombuffer(blob, dtype="<i8", count=2)
    if head[0] != _MAGIC or head[1] != len(groups):
        raise CorruptStateError(
            f"entity state does not match the feature set's groups "
            f"({int(head[1])} stored, {len(groups)} expected); "
            "the store key is namespaced by feature-set hash, so this indicates a corrupt value"
        )
    sizes = np.frombuffer(blob, dtype="<i8", count=len(groups), offset=16)
    offset = 16 + 8 * len(groups)
    states = []
    for group, size in zip(groups, sizes.tolist(), strict=True):
        n_masks, n_values, n_specs = len(group.filters), len(group.values), len(group.specs)
        t = np.frombuffer(blob, "<i8", size, offset)
        ids = np.frombuffer(blob, "<i8", size, offset + 8 * size)
        offset += 16 * size
        masks = np.frombuffer(blob, np.uint8, size * n_masks, offset).reshape(size, n_masks)
        offset += size * n_masks
        values = np.frombuffer(blob, "<i8", size * n_values, offset).reshape(size, n_values)
        offset += 8 * size * n_values
        carry = np.frombuffer(blob, "<i8", n_specs, offset)
        offset += 8 * n_specs
        states.append(GroupState(t, ids, masks, values, carry))
    return states
