"""The online state of one entity (a card, an account, ...): its recent events per source group, packed.

Per group the state holds the events still inside the longest window as one int64 matrix, one row per event
(time, id hash, one 0/1 column per filter, the value columns), sorted by (time, id hash) as the batch engine
sorts them; and the *carry*: what whole-history aggregates (lifetime counts, first/last times, consecutive
runs) retain of events pruned from the window. A state serialises to one blob of little-endian int64, so the
store reads one value per entity and decoding is a single ``frombuffer`` plus views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from features.kernels import I64, fold, initial_carry
from features.plan import GroupPlan

MAGIC: Final = 0x5247_4632  # "RGF2": the first word of every encoded entity state
TIME, ID, FIRST_MASK = 0, 1, 2


class CorruptStateError(ValueError):
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

    def insert(self, row: I64) -> None:
        """Insert one event row at its (time, id) position."""
        n = len(self.rows)
        t, event_id = int(row[TIME]), int(row[ID])
        if n == 0 or (t, event_id) > (int(self.rows[-1, TIME]), int(self.rows[-1, ID])):  # the usual case
            self.rows = np.concatenate((self.rows, row.reshape(1, -1)))
            return
        times = self.rows[:, TIME]
        position = int(np.searchsorted(times, t, side="left"))
        while position < n and times[position] == t and self.rows[position, ID] < event_id:
            position += 1
        self.rows = np.insert(self.rows, position, row, axis=0)

    def prune(self, group: GroupPlan, before_us: int) -> None:
        """Fold the events before ``before_us`` into the carry and drop them."""
        if len(self.rows) == 0 or self.rows[0, TIME] >= before_us:
            return
        cut = int(np.searchsorted(self.rows[:, TIME], before_us, side="left"))
        gone = self.rows[:cut]
        self.carry = fold(
            gone[:, TIME].copy(), gone[:, FIRST_MASK : FIRST_MASK + self.n_masks], group.specs, self.carry
        )
        self.rows = self.rows[cut:]

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
