"""The synthetic IPTV billing world: a seeded, deterministic simulation of a subscription-TV provider.

``simulate(WorldConfig(...), out_dir)`` (or ``riskgate simulate``) writes under ``out_dir``:

* the contract's tables ``attempts/``, ``outcomes/``, ``fraud_reports/`` (:mod:`events.schema`);
* ``truth/``, one row per attempt: ``p_fraud`` and ``p_fail`` (the generative probabilities: the ceiling a
  model can reach), ``is_fraud``, ``fraud_scheme`` (card_testing, stolen_card, account_takeover, reseller,
  friendly; null when not fraud), ``p_fail_<cause>`` per failure cause, and the hidden state behind them
  (``fragility``, ``issuer_logit``, ``card_status``), and the billing system's errors
  (``billing_double_charge``, ``billing_price_mismatch``, ``billing_early_renewal``: see
  :mod:`simulator.billing_errors`);
* ``catalogue.csv``, the price catalogue the world was billed from (:mod:`billing.catalogue`);
* ``accounts/`` (segment, signup channel, country, device type, VPN, fragility, initial plan, the account's
  fraud scenario and final status) and ``payment_methods/`` (issuer quality, stolen/tested, ``blocked_at``);
* ``summary.json`` (:class:`SimulationSummary`) and ``world.yaml``, the exact configuration it ran with.

Each table is written in parts, one per block of ``chunk_accounts`` subscribers; every part is sorted by time,
but parts cover the whole period (sort after concatenating when you need global time order).

Every mechanism and parameter is documented in :mod:`simulator.config`, with the figures of the default world.
Failure is the pure function :func:`simulator.truth.failure_probability`; :mod:`simulator.replay` rebuilds
each attempt's payment state from the tables and answers "what if this declined invoice were retried later?".
"""

from simulator.config import WorldConfig
from simulator.run import OutputExistsError, SimulationSummary, simulate

__all__ = ["OutputExistsError", "SimulationSummary", "WorldConfig", "simulate"]
