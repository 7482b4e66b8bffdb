"""The price catalogue as a provider writes it: CSV or YAML, and errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.catalogue import Price, read_catalogue, write_catalogue
from billing.errors import CatalogueError

CSV = "plan_tier,plan_period,currency,price\nbasic,monthly,EUR,7.99\npremium,annual,GBP,149.99\n"
YAML = """prices:
  - {plan_tier: basic, plan_period: monthly, currency: EUR, price: 7.99}
  - plan_tier: premium
    plan_period: annual
    currency: GBP
    price: 149.99
"""


def written(tmp_path: Path, text: str, name: str = "catalogue.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "text"), [("catalogue.csv", CSV), ("catalogue.yaml", YAML)])
def test_reads_csv_and_yaml_alike(tmp_path: Path, name: str, text: str) -> None:
    catalogue = read_catalogue(written(tmp_path, text, name))
    assert len(catalogue) == 2
    assert catalogue.price("basic", "monthly", "EUR") == 7.99
    assert catalogue.price("premium", "annual", "GBP") == 149.99
    assert catalogue.price("basic", "monthly", "USD") is None  # no entry: not checked
    assert catalogue.price(None, "monthly", "EUR") is None


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (CSV + "basic,monthly,EUR,8.99\n", 4, "already priced at line 2"),
        (CSV + "gold,monthly,EUR,8.99\n", 4, "plan_tier 'gold' is not one of basic, standard, premium"),
        (CSV + "basic,weekly,EUR,8.99\n", 4, "plan_period 'weekly'"),
        (CSV + "basic,quarterly,EURO,8.99\n", 4, "not an ISO 4217 code"),
        (CSV + "basic,quarterly,EUR,cheap\n", 4, "is not a number"),
        (CSV + "basic,quarterly,EUR,-1\n", 4, "positive amount"),
        (CSV + "basic,quarterly,EUR,8.999\n", 4, "more decimals than EUR has"),
        ("tier,period,currency,price\n", 1, "the header must name the columns"),
    ],
)
def test_a_bad_csv_line_is_named(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = written(tmp_path, text)
    with pytest.raises(CatalogueError, match=rf"catalogue.csv, line {line}: .*{words}"):
        read_catalogue(path)


def test_a_bad_yaml_entry_is_named_by_its_line(tmp_path: Path) -> None:
    path = written(tmp_path, YAML.replace("price: 149.99", "price: free"), "catalogue.yml")
    with pytest.raises(CatalogueError, match=r"catalogue.yml, line 3: price 'free' is not a number"):
        read_catalogue(path)
    with pytest.raises(CatalogueError, match=r"line 1: expected a mapping with a list under 'prices'"):
        read_catalogue(written(tmp_path, "- basic\n", "list.yaml"))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        read_catalogue(tmp_path / "nowhere.csv")


@given(
    st.dictionaries(
        st.tuples(
            st.sampled_from(["basic", "standard", "premium"]),
            st.sampled_from(["monthly", "quarterly", "annual"]),
            st.sampled_from(["EUR", "GBP", "JPY", "KWD"]),
        ),
        st.integers(1, 10**7),
        max_size=20,
    )
)
def test_what_is_written_reads_back(
    tmp_path_factory: pytest.TempPathFactory, prices: dict[tuple[str, str, str], int]
) -> None:
    decimals = {"EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3}
    entries = [Price(*key, minor / 10 ** decimals[key[2]]) for key, minor in prices.items()]
    path = write_catalogue(tmp_path_factory.mktemp("cat") / "catalogue.csv", entries)
    assert dict(read_catalogue(path).prices) == {entry.key: entry.price for entry in entries}
