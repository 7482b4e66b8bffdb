"""The vocabulary the fraud team's rules share between the store, the admin API and the decision path.

A rule is a named condition over one attempt (:mod:`rules.syntax`) with the action it takes when the
condition is true. Rules are evaluated in a documented order, as Stripe Radar does: every *allow* rule
first, then *block*, then *review*, each group in the order the rules were listed; the first rule whose
condition is true decides the attempt, and the decision names it. When none matches, the model policy
decides (``serving.scoring.policy``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rules.errors import RuleError


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


def in_order(specs: list[RuleSpec] | tuple[RuleSpec, ...]) -> tuple[RuleSpec, ...]:
    """The enabled rules in evaluation order (allow, block, review; listing order within each)."""
    return tuple(spec for action in ORDER for spec in specs if spec.enabled and spec.action is action)
