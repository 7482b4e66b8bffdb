"""The synthetic IPTV billing world: a seeded, deterministic simulation of a subscription-TV provider.

``simulate(WorldConfig(...), out_dir)`` writes the contract's tables (``attempts/``, ``outcomes/``,
``fraud_reports/``), the simulator's ground truth (``truth/``: generative fraud and failure probabilities per
attempt) and accounts (``accounts/``), ``summary.json`` and the ``world.yaml`` it ran with. Every
mechanism and parameter is documented in :mod:`simulator.config`; the failure mechanism is the pure function
:func:`simulator.truth.failure_probability`.
"""

from simulator.config import WorldConfig
from simulator.run import OutputExistsError, SimulationSummary, simulate

__all__ = ["OutputExistsError", "SimulationSummary", "WorldConfig", "simulate"]
