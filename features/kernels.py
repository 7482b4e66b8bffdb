"""Numeric kernels shared by the batch and the online engine: the same compiled code computes every aggregate.

Events and queries are integer arrays: entity codes, event times in microseconds since the epoch (int64),
a 0/1 mask per filter, and int64 values (amounts in thousandths of the currency unit, or dense codes of a key
column for distinct counts, ``-1`` when missing). Events are sorted by (entity, time, id hash) and queries by
(entity, time). All arithmetic on amounts is integer until the final division, so a sliding-window sum in the
batch engine and a fresh sum in the online engine give bit-identical results.

A *spec* row describes one aggregate: ``(op code, window µs or -1, mask column or -1, value column or -1,
time unit µs, window offset µs, quantile q in millionths)``: a window covers ``[t - offset - window,
t - offset)`` of a query at ``t``. ``carry`` holds, per spec, the state folded from events that were pruned
from the online store (lifetime counts, first/last times, the consecutive run); the batch engine passes the
initial state.

Key columns for distinct counts may hold dense codes (the batch engine factorizes) or 64-bit hashes (the
online store keeps hashes); the kernel ranks hashes itself: a distinct count does not depend on the coding.

Standard deviations and quantiles are not slid: each query takes a fresh pass over its window's matching
events in the order both engines store them, so the float result does not depend on how the window got
there. A standard deviation is the population one (divides by n), computed integer-centred: the deviations
from the integer part of the mean (from the exact int64 sum) are exact integers; their squares are summed in
float64 (no int64 squares of amounts, which could overflow) and the mean's fractional part is corrected for
at the end, so the error stays relative to the spread, whatever the size of the amounts. A quantile sorts
the window's integer amounts and interpolates linearly between the two nearest ranks (numpy's default
``linear`` method).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from features.definitions import PPM, Op

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
#: Filter bits: uint8 in the batch engine, int64 columns of the online state rows.
Masks = npt.NDArray[np.uint8] | npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

OP_CODE: Final[dict[Op, int]] = {op: index for index, op in enumerate(Op)}
COUNT, SUM, MEAN, MAX, DISTINCT, RATIO, SINCE_LAST, SINCE_FIRST, CONSECUTIVE, STD, QUANTILE = range(len(Op))
NO_EVENT_LAST: Final = np.iinfo(np.int64).min
NO_EVENT_FIRST: Final = np.iinfo(np.int64).max
NO_RUN: Final = -1
MILLI: Final = 1000.0
#: spec columns, and how many there are
OP, WINDOW, MASK, VALUE, UNIT, OFFSET, PARAM = range(7)
SPEC_WIDTH: Final = 7


def initial_carry(specs: I64) -> I64:
    """The state of an entity with no pruned history, per spec."""
    carry = np.zeros(len(specs), dtype=np.int64)
    carry[specs[:, OP] == SINCE_LAST] = NO_EVENT_LAST
    carry[specs[:, OP] == SINCE_FIRST] = NO_EVENT_FIRST
    carry[specs[:, OP] == CONSECUTIVE] = NO_RUN
    return carry


@njit(cache=True)
def _step(op: int, state: int, t: int, matched: bool) -> int:  # noqa: PLR0911  # pragma: no cover
    """Advance the whole-history state of one spec by one event (in time order)."""
    if op == CONSECUTIVE:
        if matched:
            return max(state, 0) + 1
        return 0
    if not matched:
        return state
    if op == COUNT:
        return state + 1
    if op == SINCE_LAST:
        return max(state, t)
    if op == SINCE_FIRST:
        return min(state, t)
    return state


@njit(cache=True)
def _finish_unbounded(op: int, state: int, t: int, unit: int) -> float:  # pragma: no cover
    if op == COUNT:
        return float(state)
    if op == SINCE_LAST:
        return np.nan if state == NO_EVENT_LAST else (t - state) / unit
    if op == SINCE_FIRST:
        return np.nan if state == NO_EVENT_FIRST else (t - state) / unit
    return np.nan if state == NO_RUN else float(state)


@njit(cache=True)
def fold(ev_t: I64, masks: Masks, specs: I64, carry: I64) -> I64:  # pragma: no cover - compiled
    """The carry after the (time-ordered) events given: how the online store prunes without forgetting."""
    out = carry.copy()
    for s in range(specs.shape[0]):
        if specs[s, WINDOW] >= 0:
            continue
        op, mc = specs[s, OP], specs[s, MASK]
        for i in range(ev_t.shape[0]):
            out[s] = _step(op, out[s], ev_t[i], mc < 0 or masks[i, mc] == 1)
    return out


@njit(cache=True)
def fold_groups(  # noqa: PLR0917
    entity: I64, ev_t: I64, masks: Masks, specs: I64, carry: I64, n_entities: int
) -> I64:  # pragma: no cover - compiled
    """:func:`fold` for many entities at once: ``out[e]`` is ``carry`` folded with the events of entity ``e``,
    taken in the order given (the bulk loader orders them as one-by-one pruning folds them)."""
    out = np.empty((n_entities, specs.shape[0]), dtype=np.int64)
    for e in range(n_entities):
        out[e] = carry
    for i in range(ev_t.shape[0]):
        e = entity[i]
        for s in range(specs.shape[0]):
            if specs[s, WINDOW] >= 0:
                continue
            mc = specs[s, MASK]
            out[e, s] = _step(specs[s, OP], out[e, s], ev_t[i], mc < 0 or masks[i, mc] == 1)
    return out


@njit(cache=True)
def aggregate(  # noqa: PLR0917 (numba kernels take arrays positionally)
    ev_ent: I64, ev_t: I64, masks: Masks, values: I64, q_ent: I64, q_t: I64, specs: I64, carry: I64
) -> F64:  # pragma: no cover - compiled
    """Every spec for every query: ``out[j, s]`` over the events of entity ``q_ent[j]`` before ``q_t[j]``."""
    out = np.empty((q_t.shape[0], specs.shape[0]))
    for s in range(specs.shape[0]):
        if specs[s, WINDOW] < 0:
            _unbounded(ev_ent, ev_t, masks, q_ent, q_t, specs[s], carry[s], out[:, s])
        else:
            _windowed(ev_ent, ev_t, masks, values, q_ent, q_t, specs[s], out[:, s])
    return out


@njit(cache=True)
def _unbounded(  # noqa: PLR0917
    ev_ent: I64, ev_t: I64, masks: Masks, q_ent: I64, q_t: I64, spec: I64, carry: int, out: F64
) -> None:  # pragma: no cover - compiled
    op, mc, unit = spec[OP], spec[MASK], spec[UNIT]
    n = ev_t.shape[0]
    hi = 0
    entity = -1
    state = carry
    for j in range(q_t.shape[0]):
        if q_ent[j] != entity:
            entity = q_ent[j]
            state = carry
            while hi < n and ev_ent[hi] < entity:
                hi += 1
        while hi < n and ev_ent[hi] == entity and ev_t[hi] < q_t[j]:
            state = _step(op, state, ev_t[hi], mc < 0 or masks[hi, mc] == 1)
            hi += 1
        out[j] = _finish_unbounded(op, state, q_t[j], unit)


@njit(cache=True)
def _windowed(  # noqa: PLR0912, PLR0915, PLR0917 (one single-pass loop, kept whole for speed)
    ev_ent: I64, ev_t: I64, masks: Masks, values: I64, q_ent: I64, q_t: I64, spec: I64, out: F64
) -> None:  # pragma: no cover - compiled
    op, width, mc, vc, offset = spec[OP], spec[WINDOW], spec[MASK], spec[VALUE], spec[OFFSET]
    n = ev_t.shape[0]
    codes = _distinct_codes(values[:, vc]) if op == DISTINCT else np.empty(0, dtype=np.int64)
    seen = np.zeros(codes.shape[0] + 1, dtype=np.int64)
    # the max's deque of event indices, or a quantile's scratch of values (one allocation per spec)
    deque = np.empty(n if op == MAX or op == QUANTILE else 0, dtype=np.int64)  # noqa: PLR1714, SIM109 (numba)
    typical = op == STD or op == QUANTILE  # noqa: PLR1714 (numba)
    head = 0
    tail = 0
    lo = 0
    hi = 0
    entity = -1
    matched = 0
    total = 0
    amount = 0
    distinct = 0
    for j in range(q_t.shape[0]):
        end = q_t[j] - offset  # the window is [end - width, end)
        if q_ent[j] != entity:
            entity = q_ent[j]
            while lo < hi:  # leave the previous entity: empty the window
                if op == DISTINCT and (mc < 0 or masks[lo, mc] == 1) and codes[lo] >= 0:
                    seen[codes[lo]] -= 1
                lo += 1
            while hi < n and ev_ent[hi] < entity:
                hi += 1
            hi = _skip_before(ev_ent, ev_t, hi, entity, end - width)
            lo = hi
            matched = total = amount = distinct = 0
            head = tail = 0
        while hi < n and ev_ent[hi] == entity and ev_t[hi] < end:
            total += 1
            if mc < 0 or masks[hi, mc] == 1:
                matched += 1
                if op == SUM or op == MEAN:  # noqa: PLR1714, SIM109 (numba)
                    amount += values[hi, vc]
                elif op == MAX:
                    while tail > head and values[deque[tail - 1], vc] <= values[hi, vc]:
                        tail -= 1
                    deque[tail] = hi
                    tail += 1
                elif op == DISTINCT and codes[hi] >= 0:
                    seen[codes[hi]] += 1
                    if seen[codes[hi]] == 1:
                        distinct += 1
            hi += 1
        start = end - width
        while lo < hi and ev_t[lo] < start:
            total -= 1
            if mc < 0 or masks[lo, mc] == 1:
                matched -= 1
                if op == SUM or op == MEAN:  # noqa: PLR1714, SIM109 (numba)
                    amount -= values[lo, vc]
                elif op == DISTINCT and codes[lo] >= 0:
                    seen[codes[lo]] -= 1
                    if seen[codes[lo]] == 0:
                        distinct -= 1
            lo += 1
        if op == MAX:
            while tail > head and deque[head] < lo:
                head += 1
        if typical:
            out[j] = _typical(op, masks, values, lo, hi, mc, vc, spec[PARAM], deque)
        else:
            out[j] = _finish_windowed(op, matched, total, amount, distinct, values, deque, head, tail, vc)


@njit(cache=True)
def _typical(  # noqa: PLR0917
    op: int, masks: Masks, values: I64, lo: int, hi: int, mc: int, vc: int, ppm: int, scratch: I64
) -> float:  # pragma: no cover - compiled
    """Standard deviation or quantile of the matching values of rows ``lo..hi-1``, from a fresh pass in row
    order (``scratch`` holds at least ``hi - lo`` values)."""
    k = 0
    total = 0
    for i in range(lo, hi):
        if mc < 0 or masks[i, mc] == 1:
            value = values[i, vc]
            if op == QUANTILE:
                scratch[k] = value
            total += value
            k += 1
    if k == 0:
        return np.nan
    if op == STD:
        pivot = total // k  # the mean's integer part: deviations from it are exact integers
        squares = 0.0
        for i in range(lo, hi):
            if mc < 0 or masks[i, mc] == 1:
                deviation = float(values[i, vc] - pivot)
                squares += deviation * deviation
        rest = (total - pivot * k) / k  # the mean's fractional part, below 1
        return float(np.sqrt(max(squares / k - rest * rest, 0.0))) / MILLI
    ordered = np.sort(scratch[:k])
    rank = (k - 1) * (ppm / PPM)
    below = int(np.floor(rank))
    if below >= k - 1:
        return float(ordered[k - 1] / MILLI)
    return float((ordered[below] + (rank - below) * (ordered[below + 1] - ordered[below])) / MILLI)


@njit(cache=True)
def _skip_before(ev_ent: I64, ev_t: I64, start: int, entity: int, since: int) -> int:  # pragma: no cover
    """First event of ``entity`` (from ``start``) at or after ``since``; earlier ones never enter a window."""
    lo = start
    hi = start
    n = ev_t.shape[0]
    step = 1
    while hi < n and ev_ent[hi] == entity and ev_t[hi] < since:  # gallop, then bisect
        lo = hi + 1
        hi = min(hi + step, n)
        step *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if mid < n and ev_ent[mid] == entity and ev_t[mid] < since:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _distinct_codes(keys: I64) -> I64:  # pragma: no cover - compiled
    """Codes 0..n-1 of key values in first-seen order (dense codes pass through; 64-bit hashes are coded with
    an open-addressing table, linear time); ``-1`` stays missing."""
    n = keys.shape[0]
    dense = True
    for i in range(n):
        if keys[i] < -1 or keys[i] >= n:
            dense = False
            break
    if dense:
        return keys.copy()
    size = 16
    while size < 2 * n:
        size *= 2
    slots = np.full(size, -1, dtype=np.int64)  # index of the first row holding the key, -1 when empty
    codes = np.empty(n, dtype=np.int64)
    next_code = 0
    for i in range(n):
        key = keys[i]
        if key == -1:
            codes[i] = -1
            continue
        slot = (key ^ (key >> 29)) & (size - 1)
        while slots[slot] >= 0 and keys[slots[slot]] != key:
            slot = (slot + 1) & (size - 1)
        if slots[slot] < 0:
            slots[slot] = i
            codes[i] = next_code
            next_code += 1
        else:
            codes[i] = codes[slots[slot]]
    return codes


@njit(cache=True)
def _finish_windowed(  # noqa: PLR0917
    op: int,
    matched: int,
    total: int,
    amount: int,
    distinct: int,
    values: I64,
    deque: I64,
    head: int,
    tail: int,
    vc: int,
) -> float:  # pragma: no cover - compiled
    if op == COUNT:
        return float(matched)
    if op == SUM:
        return amount / MILLI
    if op == MEAN:
        return np.nan if matched == 0 else amount / MILLI / matched
    if op == MAX:
        return np.nan if tail == head else values[deque[head], vc] / MILLI
    if op == DISTINCT:
        return float(distinct)
    return np.nan if total == 0 else matched / total


@njit(cache=True)
def order_by_code(codes: I64, n_codes: int) -> I64:  # pragma: no cover - compiled
    """A stable order of rows by code (a linear counting sort); rows with code ``-1`` are left out."""
    counts = np.zeros(n_codes + 1, dtype=np.int64)
    for code in codes:
        if code >= 0:
            counts[code + 1] += 1
    for k in range(n_codes):
        counts[k + 1] += counts[k]
    order = np.empty(counts[n_codes], dtype=np.int64)
    for i in range(codes.shape[0]):
        code = codes[i]
        if code >= 0:
            order[counts[code]] = i
            counts[code] += 1
    return order


@njit(cache=True)
def hash_strings(data: U8, offsets: I64, valid: U8) -> I64:  # pragma: no cover - compiled
    """64-bit hashes of UTF-8 strings laid out Arrow-style (``data[offsets[i]:offsets[i + 1]]``): FNV-1a
    finished with MurmurHash3's fmix64 so every bit mixes. ``-1`` where ``valid`` is 0."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        if valid[i] == 0:
            out[i] = -1
            continue
        h = np.uint64(0xCBF29CE484222325)
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
        out[i] = np.int64(h)
    return out
