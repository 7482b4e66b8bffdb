"""Training time and peak memory for a world of about 10 million attempts (see ``bench.training``).

In ``python -m bench``'s default set, so ``make bench`` records both sizes (figures in
``bench/results/training_10m.json``). It takes about an hour on this shared 2-core machine; the world (half
an hour to simulate) is kept in the worlds cache and reused. Run it alone, in the background and nice'd::

    nohup nice -n 10 .venv/bin/python -m bench training_10m &
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

SIZE: Final = 10_000_000


def run(scratch: Path) -> dict[str, Any]:
    from bench.training import measure_sizes  # noqa: PLC0415

    return measure_sizes((SIZE,), scratch)
