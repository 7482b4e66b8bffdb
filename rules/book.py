"""The vocabulary the fraud team's rules share between the store, the admin API and the decision path.

A rule is a named condition over one attempt (:mod:`rules.syntax`) with the action it takes when the
condition is true. Rules are evaluated in a documented order, as Stripe Radar does: every *allow* rule
first, then *block*, then *review*, each group in the order the rules were listed; the first rule whose
condition is true decides the attempt, and the decision names it. When none matches, the model policy
decides (``serving.scoring.policy``).

:class:`RuleBook` is the decision path's form of a set of rules: the enabled ones compiled once against the
served schema and the lists, evaluated in that order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rules.compiler import CompiledRule, Values, compile_rule
from rules.errors import RuleError, RuleValueError
from rules.lists import Lists
from rules.schema import Schema

logger = logging.getLogger(__name__)


class RuleAction(StrEnum):
    """What a matching rule does to the attempt."""

    ALLOW = "allow"  # approve, whatever the models say
    BLOCK = "block"  # refuse the charge
    REVIEW = "review"  # hold it for an analyst


#: The order in which the groups of rules are evaluated; the first match decides.
ORDER: Final = (RuleAction.ALLOW, RuleAction.BLOCK, RuleAction.REVIEW)
#: A rule's name: lower case letters, digits, ``_`` and ``-``, starting with a letter (it appears in answers,
#: logs, metrics' labels and URLs).
NAME_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,63}$"


@dataclass(frozen=True)
class RuleSpec:
    """One rule as the store keeps it and the decision path compiles it."""

    name: str
    action: RuleAction
    expression: str
    enabled: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(NAME_PATTERN, self.name):
            raise RuleError(
                f"rule name {self.name[:70]!r} is not a rule name: use 1 to 64 lower-case letters, digits, "
                "'_' or '-', starting with a letter"
            )


def in_order(specs: Sequence[RuleSpec]) -> tuple[RuleSpec, ...]:
    """The enabled rules in evaluation order (allow, block, review; listing order within each)."""
    return tuple(spec for action in ORDER for spec in specs if spec.enabled and spec.action is action)


class RuleBookError(RuleError):
    """A rule of a book that cannot be compiled: the rule's name, then what is wrong and where."""

    def __init__(self, rule: str, error: RuleError) -> None:
        super().__init__(f"rule {rule!r}: {error}")
        self.rule = rule
        self.span, self.text = error.span, error.text


class RuleBook:
    """The enabled rules compiled against a schema and lists, answering which rule decides an attempt.

    :meth:`decide` walks the rules in :data:`ORDER` (allow, block, review; listing order within each) and
    answers the first whose condition is true, or None (the model policy decides). A rule that meets a value
    of the wrong type (:class:`rules.errors.RuleValueError`: the caller's values do not follow the schema)
    does not match: ``on_error`` is called with it (a metric) and it is logged once per rule, without the
    values. A book is immutable: a change compiles a new one, which the caller swaps in whole.
    """

    def __init__(
        self,
        rules: tuple[tuple[RuleSpec, CompiledRule], ...] = (),
        lists: Lists | None = None,
        on_error: Callable[[RuleSpec], None] | None = None,
    ) -> None:
        self._rules = rules
        self._lists: Lists = dict(lists or {})
        self._on_error = on_error
        self._reported: set[str] = set()

    @classmethod
    def compile(
        cls,
        specs: Sequence[RuleSpec],
        lists: Lists,
        schema: Schema,
        on_error: Callable[[RuleSpec], None] | None = None,
    ) -> RuleBook:
        """The book of ``specs`` (their enabled rules) over ``lists``, checked against ``schema`` (the
        served feature set's, :func:`rules.schema.schema_for`); a rule that does not compile raises a
        :class:`RuleBookError` naming it; two rules of one name are refused."""
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise RuleError(f"rule {spec.name!r} is given twice: give every rule its own name")
            seen.add(spec.name)
        with_lists = schema.with_lists(lists)
        compiled = tuple((spec, _compiled(spec, with_lists, lists)) for spec in in_order(specs))
        return cls(compiled, lists, on_error)

    @property
    def specs(self) -> tuple[RuleSpec, ...]:
        """The enabled rules, in evaluation order."""
        return tuple(spec for spec, _ in self._rules)

    @property
    def lists(self) -> Lists:
        return self._lists

    def __len__(self) -> int:
        return len(self._rules)

    def decide(self, values: Values, at_us: int) -> RuleSpec | None:
        """The first rule (in evaluation order) whose condition is true for ``values`` at ``at_us`` (µs
        since the epoch: list items expire by it), None when none is."""
        for spec, rule in self._rules:
            try:
                if rule.evaluate(values, at_us) is True:
                    return spec
            except RuleValueError as error:
                self._failed(spec, error)
        return None

    def _failed(self, spec: RuleSpec, error: RuleValueError) -> None:
        if self._on_error is not None:
            self._on_error(spec)
        if spec.name not in self._reported:  # once per rule and book: an attempt's values are never logged
            self._reported.add(spec.name)
            logger.warning(
                "rule %r does not match attempts whose values have the wrong type (%s); counted as not "
                "matched (riskgate_errors_total); further cases of this rule are not logged",
                spec.name,
                error,
            )


def _compiled(spec: RuleSpec, schema: Schema, lists: Lists) -> CompiledRule:
    try:
        return compile_rule(spec.expression, schema, lists)
    except RuleError as error:
        raise RuleBookError(spec.name, error) from error
