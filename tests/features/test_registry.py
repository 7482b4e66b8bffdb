"""Pointing the pipeline at another feature-set module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.iptv import FEATURE_SET
from features.registry import FeatureSetSpecError, load_feature_set

CUSTOM = """
from features.definitions import CARD, FeatureSet, Aggregate, Op, Source, hours

def build():
    return FeatureSet("mine", (Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(2)),))

MINE = build()
NOT_A_SET = 42
"""


@pytest.fixture
def provider_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "provider_features.py").write_text(CUSTOM)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "provider_features"
    sys.modules.pop("provider_features", None)


def test_the_default_is_the_iptv_set() -> None:
    assert load_feature_set(None) is FEATURE_SET


def test_a_provider_module_by_attribute_or_factory(provider_module: str) -> None:
    assert load_feature_set(f"{provider_module}:MINE").names == ["card_attempts_count_2h"]
    assert (
        load_feature_set(f"{provider_module}:build").hash == load_feature_set(f"{provider_module}:MINE").hash
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "must look like"),
        ("no_such_module_xyz:X", "cannot import"),
        ("features.iptv:MISSING", "has no 'MISSING'"),
        ("provider_features:NOT_A_SET", "not a features.definitions.FeatureSet"),
    ],
)
def test_bad_specs_are_explained(spec: str, message: str, provider_module: str) -> None:
    with pytest.raises(FeatureSetSpecError, match=message):
        load_feature_set(spec)
