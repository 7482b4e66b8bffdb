"""The one way riskgate reads a YAML configuration file: a mapping, validated strictly, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from events import yamlfile


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = "A"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_days: int = Field(default=14, gt=0)
    inner: _Inner = _Inner()


class _RefusedError(ValueError):
    pass


def _load(tmp_path: Path, text: str) -> _Settings:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return yamlfile.load(_Settings, path, what="test settings", error=_RefusedError, reference="the docs")


def test_an_empty_file_is_the_defaults_and_a_subset_overrides_them(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == _Settings()
    assert _load(tmp_path, "window_days: 3\n").window_days == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("window_dayz: 3\n", "window_dayz: unknown key (check its spelling against the docs)"),
        ("window_days: 0\n", "window_days: Input should be greater than 0"),
        ("inner: {code: 01}\n", "inner.code: Input should be a valid string (quote it in YAML"),
        ("- 1\n", "expected a mapping of settings, found list"),
        ("window_days: [\n", "not valid YAML at line 2, column 1"),
        ("window_dayz: 3\ninner: {cod: B}\n", "window_dayz: unknown key"),
    ],
)
def test_every_problem_names_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(_RefusedError) as error:
        _load(tmp_path, text)
    assert str(error.value).startswith(f"{tmp_path / 'settings.yaml'}: ")
    assert expected in str(error.value)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(_RefusedError) as error:
        _load(tmp_path, "window_dayz: 3\ninner: {cod: B}\n")
    problems = str(error.value).split(": ", 1)[1].split("; ")
    assert sorted(p.split(":")[0] for p in problems) == ["inner.cod", "window_dayz"]


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(_RefusedError, match="cannot read the test settings: it does not exist"):
        yamlfile.load(
            _Settings, tmp_path / "absent.yaml", what="test settings", error=_RefusedError, reference="x"
        )
