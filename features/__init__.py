"""Payment-behaviour features: one declaration, a batch engine and an online engine, equal by test.

* :mod:`features.definitions` — the vocabulary (entities, sources, filters, windows, ops, request features)
  and :class:`~features.definitions.FeatureSet` (generated names, content hash, contract);
* :mod:`features.iptv` — the default IPTV feature set; :mod:`features.registry` — load another one by spec;
* :mod:`features.plan` and :mod:`features.kernels` — event encoding and the numba kernels both engines run;
* :mod:`features.batch` — point-in-time features for a whole history (``riskgate features build``);
* :mod:`features.online` — the same vector for one new attempt from per-entity state in a store
  (:mod:`features.stores`: SQLite by default, Redis for several instances, memory for tests);
* :mod:`features.request` — request-time features, :mod:`features.state` — the packed per-entity state.
"""
