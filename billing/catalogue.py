"""The provider's price catalogue: what a new subscription or a renewal of (tier, period, currency) costs.

A CSV file with the header ``plan_tier,plan_period,currency,price``, one price a line::

    plan_tier,plan_period,currency,price
    basic,monthly,EUR,7.99
    premium,annual,GBP,149.99

or a YAML file with the same entries under ``prices``::

    prices:
      - {plan_tier: basic, plan_period: monthly, currency: EUR, price: 7.99}

Tiers and periods are the contract's (``events.schema.PlanTier`` / ``PlanPeriod``), currencies ISO 4217 codes,
prices positive amounts in the currency's major unit with no more decimals than its minor unit. A
(tier, period, currency) listed twice is an error naming both lines. Every error names the file and the line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from billing.errors import CatalogueError
from events.currencies import MINOR_UNITS, fits_minor_unit
from events.schema import PlanPeriod, PlanTier

#: The catalogue's columns, in the order a CSV file lists them.
COLUMNS: Final = ("plan_tier", "plan_period", "currency", "price")
#: The file name the simulator writes its world's catalogue to, beside the data.
CATALOGUE_FILE: Final = "catalogue.csv"
_YAML_SUFFIXES: Final = (".yaml", ".yml")

PlanKey = tuple[str, str, str]


@dataclass(frozen=True)
class Price:
    """One entry: the price of a plan of ``plan_tier`` billed every ``plan_period`` in ``currency``."""

    plan_tier: str
    plan_period: str
    currency: str
    price: float

    @property
    def key(self) -> PlanKey:
        return (self.plan_tier, self.plan_period, self.currency)


@dataclass(frozen=True)
class Catalogue:
    """The prices by (tier, period, currency), and where they came from (for messages)."""

    prices: Mapping[PlanKey, float]
    source: str = "catalogue"

    def price(self, plan_tier: str | None, plan_period: str | None, currency: str | None) -> float | None:
        """The catalogue price of the plan, None when a part is missing or the catalogue has no entry."""
        if plan_tier is None or plan_period is None or currency is None:
            return None
        return self.prices.get((plan_tier, plan_period, currency))

    def __len__(self) -> int:
        return len(self.prices)


def read_catalogue(path: Path) -> Catalogue:
    """The catalogue in ``path`` (``.csv``, or ``.yaml``/``.yml``); raises :class:`CatalogueError` naming the
    file and line of the first problem."""
    if not path.is_file():
        raise CatalogueError(f"{path}: the price catalogue does not exist (expected a CSV or YAML file)")
    rows = _yaml_rows(path) if path.suffix.lower() in _YAML_SUFFIXES else _csv_rows(path)
    prices: dict[PlanKey, float] = {}
    lines: dict[PlanKey, int] = {}
    for line, raw in rows:
        entry = _entry(path, line, raw)
        if entry.key in prices:
            raise CatalogueError(
                f"{path}, line {line}: {'/'.join(entry.key)} is already priced at line {lines[entry.key]}; "
                "list each (plan_tier, plan_period, currency) once"
            )
        prices[entry.key], lines[entry.key] = entry.price, line
    return Catalogue(prices, str(path))


def write_catalogue(path: Path, entries: Iterable[Price]) -> Path:
    """Write ``entries`` as a CSV catalogue (sorted by tier, period, currency) that :func:`read_catalogue`
    reads back."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for entry in sorted(entries, key=lambda e: e.key):
            writer.writerow([*entry.key, f"{entry.price:.{MINOR_UNITS.get(entry.currency, 2)}f}"])
    return path


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise CatalogueError(f"{path}: cannot read the price catalogue ({problem})") from None
    reader = csv.DictReader(text.splitlines())
    header = tuple(reader.fieldnames or ())
    if sorted(header) != sorted(COLUMNS):
        raise CatalogueError(
            f"{path}, line 1: the header must name the columns {', '.join(COLUMNS)} "
            f"(found {', '.join(header)})"
        )
    for row in reader:
        yield reader.line_num, dict(row)


def _yaml_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as problem:
        raise CatalogueError(f"{path}: cannot read the price catalogue ({problem})") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        why = getattr(problem, "problem", problem)
        raise CatalogueError(f"{path}{where}: not valid YAML ({why})") from None
    entries = _prices_node(path, node)
    for item in entries.value:
        line = item.start_mark.line + 1
        value = yaml.safe_load(yaml.serialize(item))
        if not isinstance(value, dict):
            raise CatalogueError(f"{path}, line {line}: each price is a mapping of {', '.join(COLUMNS)}")
        yield line, value


def _prices_node(path: Path, node: yaml.Node | None) -> yaml.SequenceNode:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "prices" and isinstance(value, yaml.SequenceNode):
                return value
    raise CatalogueError(f"{path}, line 1: expected a mapping with a list under 'prices'")


def _entry(path: Path, line: int, raw: Mapping[str, Any]) -> Price:
    where = f"{path}, line {line}"
    if sorted(raw) != sorted(COLUMNS):
        raise CatalogueError(f"{where}: an entry has exactly {', '.join(COLUMNS)} (found {', '.join(raw)})")
    tier, period, currency = (str(raw[name]).strip() for name in COLUMNS[:3])
    _one_of(where, "plan_tier", tier, tuple(t.value for t in PlanTier))
    _one_of(where, "plan_period", period, tuple(p.value for p in PlanPeriod))
    if currency not in MINOR_UNITS:
        raise CatalogueError(f"{where}: currency {currency[:8]!r} is not an ISO 4217 code (e.g. EUR, USD)")
    try:
        price = float(raw["price"])
    except (TypeError, ValueError):
        raise CatalogueError(f"{where}: price {str(raw['price'])[:20]!r} is not a number") from None
    if not math.isfinite(price) or price <= 0:
        raise CatalogueError(f"{where}: price must be a positive amount, got {price}")
    if not fits_minor_unit(price, currency):
        raise CatalogueError(f"{where}: price {price} has more decimals than {currency} has (minor unit)")
    return Price(tier, period, currency, price)


def _one_of(where: str, column: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise CatalogueError(f"{where}: {column} {value[:20]!r} is not one of {', '.join(allowed)}")
