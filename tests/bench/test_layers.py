"""python -m bench layers: the package graph it reports is this checkout's, cycles found where they are."""

from __future__ import annotations

from bench.layers import REPOSITORY, _cycles, shape_of


def test_cycles_are_the_groups_of_packages_that_import_each_other() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "d"), ("d", "f"), ("f", "d")]
    assert _cycles(edges) == [["a", "b", "c"], ["d", "f"]]
    assert _cycles([("a", "b"), ("b", "c")]) == []


def test_this_checkout_has_no_package_cycle_and_serving_reads_models_through_the_registry() -> None:
    shape = shape_of(REPOSITORY)
    assert shape["cycles"] == []
    assert "registry" in shape["imports"]["serving"]
    assert "training" not in shape["imports"]["serving"]
    assert shape["package_edges"] == sum(len(targets) for targets in shape["imports"].values())
    lines = [length for _, length in shape["longest_modules"]]
    assert len(lines) == 10
    assert lines == sorted(lines, reverse=True)
