"""Run the benchmarks: ``python -m bench`` runs the default set, ``python -m bench NAME ...`` the named ones.

A module with ``OPT_IN = True`` (e.g. ``training_10m``, hours long) runs only when named.
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


def default_set(runners: dict[str, Runner]) -> list[str]:
    """The benchmarks ``python -m bench`` runs without names: all but the opt-in ones."""
    return [
        name
        for name in sorted(runners)
        if not getattr(importlib.import_module(f"bench.{name}"), "OPT_IN", False)
    ]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runners = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*sorted(runners), []], help="benchmarks to run")
    names = parser.parse_args().names or default_set(runners)
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
