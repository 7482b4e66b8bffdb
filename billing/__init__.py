"""Billing-error checks before the charge: double charges, prices off the catalogue, renewals too early.

* :mod:`billing.catalogue` — the provider's price catalogue (CSV or YAML: tier, period, currency, price);
* :mod:`billing.checks` — the one state machine that answers the checks for an attempt, online (the
  service, over its store) and offline (:mod:`billing.replay`, over a data directory), so the two cannot
  disagree;
* :mod:`billing.replay` — a data directory's attempts and outcomes replayed through it in time order;
* :mod:`billing.errors` — the errors (a catalogue that cannot be read names its file and line).

The checks are not features: they never enter the model's feature set (its hash does not change); the
decision path computes them before the analysts' rules, which read them by name.
"""
