"""A small simulated world shared by the simulator tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import SimulationSummary, WorldConfig, simulate
from tests.worlds import recovery_world

__all__ = ["recovery_world", "small_world"]

SMALL = WorldConfig(accounts=4000, months=6, seed=7, chunk_accounts=2000)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp("world") / "data"
    return out, simulate(SMALL, out)
