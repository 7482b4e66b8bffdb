"""The recovery tests' simulated world (generated once per session, shared with the simulator's tests)."""

from tests.worlds import recovery_world

__all__ = ["recovery_world"]
