"""False positives of the card-number rule on realistic ids (riskgate issue 16).

A generated, deterministic corpus of ids an integrator may send (UUIDs, ULIDs, epoch-plus-counter ids
joined by one dash or space, order numbers, invoice ids), each checked with the rule the API and the imports
share (:mod:`events.cardnumbers`, vectorised and scalar): the share refused as card numbers must stay
under 0.01%.
Run: ``python -m bench cardnumbers``; the suite checks a 100,000-id corpus (tests/events/test_cardnumbers.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from events.cardnumbers import card_number_mask, contains_card_number

CORPUS_IDS: Final = 1_000_000
#: The bound the issue sets on the share of honest ids refused as card numbers.
MAX_FALSE_POSITIVE_RATE: Final = 0.0001
_CROCKFORD: Final = np.array(list("0123456789ABCDEFGHJKMNPQRSTVWXYZ"))
_EPOCH_2024: Final = 1_704_067_200
_EPOCH_2034: Final = 2_019_686_400

Rng = np.random.Generator


def _uuids(rng: Rng, n: int) -> list[str]:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return [str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw]


def _ulids(rng: Rng, n: int) -> list[str]:
    """26 Crockford base-32 characters: 48 bits of milliseconds, then 80 random bits."""
    millis = rng.integers(_EPOCH_2024 * 1000, _EPOCH_2034 * 1000, n)
    head = np.stack([(millis >> (5 * (9 - i))) & 31 for i in range(10)], axis=1)
    tail = rng.integers(0, 32, size=(n, 16))
    chars = _CROCKFORD[np.concatenate([head, tail], axis=1)]
    return ["".join(row) for row in chars]


def _epoch_counter_ids(rng: Rng, n: int) -> list[str]:
    """An epoch in seconds and a counter joined by one dash or space, with a prefix (``kb1796652151-103``)."""
    prefixes = np.array(["kb", "", "evt_", "tx-", "pay_", "ch "])[rng.integers(0, 6, n)]
    epochs = rng.integers(_EPOCH_2024, _EPOCH_2034, n)
    separators = np.array(["-", " "])[rng.integers(0, 2, n)]
    counters = rng.integers(0, 10 ** rng.integers(1, 7, n))
    return [f"{p}{e}{s}{c}" for p, e, s, c in zip(prefixes, epochs, separators, counters, strict=True)]


def _order_numbers(rng: Rng, n: int) -> list[str]:
    """Shop order numbers: dated with a daily counter, marketplace style (3-7-7), and plain counters."""
    days = np.datetime64("2020-01-01") + rng.integers(0, 3650, n).astype("timedelta64[D]")
    dates = np.datetime_as_string(days).astype("U10")
    style = rng.integers(0, 4, n)
    a, b, c = rng.integers(0, 10**7, n), rng.integers(0, 10**7, n), rng.integers(100, 1000, n)
    out: list[str] = []
    for s, d, x, y, z in zip(style, dates, a, b, c, strict=True):
        if s == 0:
            out.append(f"ORD-{d.replace('-', '')}-{x % 10**6:06d}")
        elif s == 1:
            out.append(f"{z}-{x:07d}-{y:07d}")
        elif s == 2:
            out.append(f"#{x + 1000}")
        else:
            out.append(f"SO{d.replace('-', '')[2:]}{y % 10**5:05d}")
    return out


def _invoice_ids(rng: Rng, n: int) -> list[str]:
    """``INV-2026-000123`` and its neighbours (slashes, a month, a store prefix)."""
    years = rng.integers(2015, 2031, n)
    months = rng.integers(1, 13, n)
    numbers = rng.integers(1, 10**6, n)
    style = rng.integers(0, 3, n)
    return [
        f"INV-{y}-{k:06d}" if s == 0 else f"INV/{y}/{m:02d}/{k:05d}" if s == 1 else f"RG-{y}{m:02d}-{k:06d}"
        for y, m, k, s in zip(years, months, numbers, style, strict=True)
    ]


KINDS: Final[dict[str, Callable[[Rng, int], list[str]]]] = {
    "uuid": _uuids,
    "ulid": _ulids,
    "epoch_counter": _epoch_counter_ids,
    "order_number": _order_numbers,
    "invoice_id": _invoice_ids,
}


def id_corpus(size: int, seed: int = 16) -> pd.DataFrame:
    """``size`` ids (``kind``, ``id``), an equal share of each kind, the same for the same seed."""
    rng = np.random.default_rng(seed)
    share, frames = size // len(KINDS), []
    for index, (kind, make) in enumerate(KINDS.items()):
        count = size - share * (len(KINDS) - 1) if index == len(KINDS) - 1 else share
        frames.append(pd.DataFrame({"kind": kind, "id": make(rng, count)}))
    return pd.concat(frames, ignore_index=True)


def false_positives(corpus: pd.DataFrame) -> dict[str, Any]:
    """Ids the rule calls card numbers, by kind, by the vectorised pass and the scalar check alike."""
    vectorised = card_number_mask(corpus["id"])
    scalar = np.fromiter((contains_card_number(value) for value in corpus["id"]), bool, len(corpus))
    by_kind = pd.Series(vectorised).groupby(corpus["kind"].to_numpy()).agg(["sum", "size"])
    return {
        "ids": len(corpus),
        "refused": int(vectorised.sum()),
        "rate": float(vectorised.mean()),
        "scalar_agrees": bool((vectorised == scalar).all()),
        "by_kind": {
            kind: {"ids": int(row["size"]), "refused": int(row["sum"])} for kind, row in by_kind.iterrows()
        },
    }


def run(scratch: Path) -> dict[str, Any]:
    del scratch  # nothing is written
    started = time.perf_counter()
    corpus = id_corpus(CORPUS_IDS)
    generated = time.perf_counter()
    result = false_positives(corpus)
    return {
        **result,
        "bound": MAX_FALSE_POSITIVE_RATE,
        "within_bound": result["rate"] < MAX_FALSE_POSITIVE_RATE,
        "generate_seconds": round(generated - started, 2),
        "check_seconds": round(time.perf_counter() - generated, 2),
        "examples": corpus.groupby("kind")["id"].first().to_dict(),
    }
