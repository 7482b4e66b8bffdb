"""Benchmarks: ``make bench`` (or ``python -m bench [NAME ...]``) runs them and records results under
``bench/results/``.

Each module here with a ``run(scratch: pathlib.Path) -> dict`` function is one benchmark. ``run`` does its
measurements (medians and ratios measured side by side in one run, since the machines are shared and noisy),
may use ``scratch`` for temporary files, and returns a JSON-able dict of results, written to
``bench/results/<name>.json``.
"""
