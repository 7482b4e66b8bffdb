"""A small simulated world for the evaluation tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import WorldConfig, simulate

#: Four months to learn retries from, then two months of declined renewals to evaluate on.
SMALL = WorldConfig(accounts=3000, months=6, seed=11, chunk_accounts=3000)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recovery-world") / "data"
    simulate(SMALL, out)
    return out
