"""Simulated worlds shared by test packages (generated once per session, where a package's conftest imports
the fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import WorldConfig, simulate

#: Four months to learn retries from, then two months of declined renewals to evaluate on.
RECOVERY_WORLD = WorldConfig(accounts=3000, months=6, seed=11, chunk_accounts=3000)


@pytest.fixture(scope="session")
def recovery_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recovery tests' world: its declined renewals and their retries (the planner's evaluation)."""
    out = tmp_path_factory.mktemp("recovery-world") / "data"
    simulate(RECOVERY_WORLD, out)
    return out
