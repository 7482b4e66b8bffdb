"""Opt-in: training time and peak memory for a world of about 10 million attempts (see ``bench.training``).

Not in ``python -m bench``'s default set (``OPT_IN``): it needs hours on a 2-core machine and about 15 GB of
memory. Run it by name, in the background and nice'd, keeping the simulated world for a second run::

    BENCH_TRAINING_WORLDS=/var/tmp/riskgate-worlds nohup nice -n 10 .venv/bin/python -m bench training_10m &

The result (or how far it got within ``BENCH_TRAINING_TIMEOUT``) goes to ``bench/results/training_10m.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

#: Left out of ``python -m bench`` without names; run as ``python -m bench training_10m``.
OPT_IN: Final = True
SIZE: Final = 10_000_000


def run(scratch: Path) -> dict[str, Any]:
    from bench.training import measure_sizes  # noqa: PLC0415

    return measure_sizes((SIZE,), scratch)
