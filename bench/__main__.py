"""Run the benchmarks: ``python -m bench`` runs every one, ``python -m bench NAME ...`` the named ones.

Every module of this package with a ``run(scratch: Path) -> dict`` function is a benchmark; its result goes
to ``bench/results/NAME.json``. ``training_10m`` alone takes about an hour: ``make bench BENCH="..."`` (or
``python -m bench NAME ...``) runs a subset.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import pkgutil
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
Runner = Callable[[Path], dict[str, Any]]


def discover() -> dict[str, Runner]:
    """Every module of this package that has a ``run`` function, by name."""
    runners: dict[str, Runner] = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        run = getattr(module, "run", None)
        if callable(run):
            runners[info.name] = run
    return runners


def selected(argv: list[str] | None, runners: dict[str, Runner]) -> list[str]:
    """The benchmarks named on the command line (``argv``), or all of them when none is named."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*sorted(runners), []], help="benchmarks to run")
    names: list[str] = parser.parse_args(argv).names
    return names or sorted(runners)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runners = discover()
    names = selected(None, runners)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as scratch:
            result = runners[name](Path(scratch))
        record = {
            "benchmark": name,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "wall_seconds": round(time.perf_counter() - started, 2),
            "results": result,
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"== {name}\n{json.dumps(result, indent=2)}")


if __name__ == "__main__":
    main()
