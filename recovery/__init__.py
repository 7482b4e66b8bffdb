"""Failed-payment recovery: when to retry a declined renewal, and when to ask the customer (issue 7).

* :mod:`recovery.config`: the provider's dunning policy (window, maximum attempts, quiet hours, card-network
  retry caps, cost of an attempt), validated strictly;
* :mod:`recovery.rules`: the hard rules no model overrides (forbidden and hard declines, fraud blocks,
  network caps, card expiry);
* :mod:`recovery.planner`: the plan for one renewal or declined attempt, from a failure model evaluated at
  candidate times;
* :mod:`recovery.optimise`: the best retry sequence over the candidate grid (dynamic programming);
* :mod:`recovery.models`: the failure-model protocol and the adapter of riskgate's failure model (online
  features + calibrated scorer); :mod:`recovery.learned`: the retry model learned from observed outcomes
  (trained, registered as ``riskgate-retry`` and promoted by ``training.retry``; the service plans declines
  with ``riskgate-retry@champion`` when it has one);
* :mod:`simulator.recovery_eval`: the fixed schedule against the planner on a simulated world, with the
  simulator's true approval probabilities as the oracle.
"""
