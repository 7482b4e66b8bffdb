from __future__ import annotations

from pathlib import Path

import pytest

from training.config import DEFAULT_CONFIG_PATH, TrainingConfig, load_config
from training.errors import ConfigError


def test_the_packaged_config_states_the_defaults() -> None:
    assert load_config(DEFAULT_CONFIG_PATH) == TrainingConfig()


def test_a_misspelt_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  trails: 3\n")
    with pytest.raises(ConfigError, match="trails"):
        load_config(path)


def test_dotted_overrides_apply() -> None:
    config = load_config(overrides={"model.trials": 3, "seed": 11})
    assert config.model.trials == 3
    assert config.seed == 11


def test_invalid_values_and_missing_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trials"):
        load_config(overrides={"model.trials": 0})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="fraud_metric"):
        load_config(overrides={"promotion.fraud_metric": "accuracy"})
    with pytest.raises(ConfigError, match="not a section"):
        load_config(overrides={"seed.x": 1})


def test_the_feature_set_is_not_a_config_key_but_the_one_flag_and_setting() -> None:
    with pytest.raises(ConfigError, match="--feature-set or RISKGATE_FEATURE_SET"):
        load_config(overrides={"feature_set": "provider.features:FEATURE_SET"})


def test_a_test_window_by_date_is_read_as_utc_and_must_end_after_it_starts() -> None:
    split = load_config(
        overrides={"split.test_start": "2026-03-01", "split.test_end": "2026-03-08T12:30"}
    ).split
    assert split.test_start is not None
    assert split.test_end is not None
    assert (split.test_start.isoformat(), split.test_end.isoformat()) == (
        "2026-03-01T00:00:00+00:00",
        "2026-03-08T12:30:00+00:00",
    )
    with pytest.raises(ConfigError, match="not after test_start"):
        load_config(overrides={"split.test_start": "2026-03-08", "split.test_end": "2026-03-01"})
