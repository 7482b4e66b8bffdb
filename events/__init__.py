"""riskgate: events — the event contract (docs/contract.md) and how a provider's own data enters through it.

* :mod:`events.schema` — the three event tables (attempts, outcomes, fraud reports) declared once;
* :mod:`events.io` — Parquet parts under a data directory, and the extension recorded there;
* :mod:`events.cardnumbers` — card-number (PAN) detection, scalar and vectorised, never echoing a number;
* :mod:`events.currencies` — accepted ISO 4217 codes and their minor units;
* :mod:`events.mapping` — the column-mapping file of a provider's export;
* :mod:`events.sources` — reading a CSV or Parquet export as written;
* :mod:`events.problems` — problems (file, row, column, code, message), summaries and report files;
* :mod:`events.validate` — vectorised validation of a file against the contract;
* :mod:`events.importer` — import whole, refuse whole, or quarantine bad rows.
"""
