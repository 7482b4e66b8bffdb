from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import BaseModel

from simulator import WorldConfig
from simulator.config import ConfigFileError, PopulationConfig


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _models(annotation)
    return found


def test_every_parameter_is_documented() -> None:
    for model in _models(WorldConfig):
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                continue
            assert field.description, f"{model.__name__}.{name} has no description"


def test_the_small_test_world_is_the_documented_one() -> None:
    config = WorldConfig(accounts=2000, months=3, seed=7)
    assert (config.accounts, config.months, config.seed, config.start) == (2000, 3, 7, date(2025, 1, 1))


def test_yaml_loads_a_subset(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text("seed: 3\naccounts: 500\nfraud:\n  friendly_rate: 0.01\ndunning:\n  retry_days: [2, 4]\n")
    config = WorldConfig.from_yaml(path)
    assert config.seed == 3
    assert config.accounts == 500
    assert config.fraud.friendly_rate == 0.01
    assert config.dunning.retry_days == [2, 4]
    assert config.months == WorldConfig().months


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds: 3\n", "seeds"),
        ("fraud:\n  friendly: 0.1\n", "friendly"),
        ("dunning:\n  retry_days: [3, 1]\n", "strictly increasing"),
        ("accounts: -5\n", "accounts"),
        ("- 1\n- 2\n", "mapping"),
        ("seed: [\n", "not valid YAML at line"),
    ],
)
def test_invalid_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=message):
        WorldConfig.from_yaml(path)


def test_an_empty_file_is_the_default_world(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text("")
    assert WorldConfig.from_yaml(path) == WorldConfig()


def test_unknown_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="country_weights: unknown keys \\['XX'\\]"):
        WorldConfig(population=PopulationConfig(country_weights={"XX": 1.0}))
    with pytest.raises(ValueError, match="monthly_price_eur: every one of"):
        WorldConfig.model_validate({"plans": {"monthly_price_eur": {"basic": 5.0}}})


def test_weights_without_mass_are_refused() -> None:
    with pytest.raises(ValueError, match="positive sum"):
        WorldConfig(population=PopulationConfig(country_weights={"GB": 0.0}))
    with pytest.raises(ValueError, match="non-negative"):
        WorldConfig.model_validate({"payment": {"funding_weights": {"credit": 2.0, "debit": -1.0}}})


def test_overrides_are_validated() -> None:
    assert WorldConfig().with_overrides(accounts=10, months=None).accounts == 10
    with pytest.raises(ValueError, match="months"):
        WorldConfig().with_overrides(months=0)
