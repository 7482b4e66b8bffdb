"""The failure truth rebuilt from the tables agrees with what the simulation did: the smart-retry oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from events.io import read_events, read_table
from events.schema import DeclineFamily, EventKind
from simulator import SimulationSummary
from simulator.replay import attempt_states, load_world, retry_approval
from simulator.truth import CAUSES, failure_probability

World = tuple[Path, SimulationSummary]


def _p_fail(out: Path, attempt_ids: list[str]) -> np.ndarray:
    truth = read_table(out, "truth", columns=["attempt_id", "p_fail"]).to_pandas().set_index("attempt_id")
    return np.asarray(truth.loc[attempt_ids, "p_fail"], dtype=float)


def test_rebuilt_states_reproduce_the_truth(small_world: World) -> None:
    out = small_world[0]
    states, world = attempt_states(out), load_world(out)
    p_fail = failure_probability(states.state, states.at, world.incidents, world.config.failure).p_fail
    np.testing.assert_allclose(p_fail, _p_fail(out, list(states.attempt_id)), rtol=1e-9, atol=1e-12)


def test_retry_oracle_matches_the_retries_that_happened(small_world: World) -> None:
    out = small_world[0]
    declined = attempt_states(out).declined()
    attempts = read_events(out, EventKind.ATTEMPTS)
    keys = ["invoice_id", "retry_number", "payment_method_id"]
    before = attempts.set_index("attempt_id").loc[list(declined.attempt_id), keys].reset_index()
    before["retry_number"] += 1
    retried = attempts.merge(before, on=keys, suffixes=("", "_declined")).head(200)
    assert len(retried) == 200
    position = {attempt: i for i, attempt in enumerate(declined.attempt_id)}
    world = load_world(out)
    approval = []
    for declined_id, retry_at in zip(retried["attempt_id_declined"], retried["occurred_at"], strict=True):
        one = declined.take(np.array([position[declined_id]]))
        delay = np.datetime64(retry_at.tz_convert(None), "s") - one.at
        approval.append(retry_approval(one, np.asarray(delay), world)[0, 0])
    expected = 1 - _p_fail(out, list(retried["attempt_id"]))
    np.testing.assert_allclose(approval, expected, rtol=1e-9)


def test_waiting_after_a_funds_decline_raises_the_approval_odds(small_world: World) -> None:
    out = small_world[0]
    declined = attempt_states(out).declined()
    funds = declined.select(declined.cause == CAUSES.index(DeclineFamily.FUNDS))
    assert len(funds) > 50
    delays = np.array([1, 7 * 24, 28 * 24], dtype="timedelta64[h]")
    approval = retry_approval(funds, delays, load_world(out))
    assert approval.shape == (len(funds), 3)
    mean = approval.mean(axis=0)
    assert mean[0] < mean[1] < mean[2]
