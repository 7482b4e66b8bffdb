"""The documents of ``POST /v1/rule-backtest`` (:mod:`serving.api.routes.rule_backtest`): a draft rule (or a
stored one by name) with optional draft lists and a period in, what it would have done out (the figures are
described in :mod:`serving.readers.rule_backtest`)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.book import RuleAction
from serving.api.operations import LIST_NAME_PATTERN, Expression, ItemIn, RuleName
from serving.readers.rule_backtest import MAX_SAMPLE, SAMPLE_SIZE
from serving.scoring.schemas import MOMENT_PATTERN, _Body

Moment = Annotated[
    str, Field(pattern=MOMENT_PATTERN, description="ISO 8601 date or time, UTC unless an offset.")
]


class DraftListIn(_Body):
    """A list the draft reads as ``@name``, in place of a stored list of that name (nothing is saved)."""

    name: Annotated[str, Field(pattern=LIST_NAME_PATTERN, description="As the rule reads it: @name.")]
    field: Annotated[str, Field(min_length=1, max_length=64, description="The attempt field it holds.")]
    items: Annotated[list[ItemIn], Field(max_length=100_000)]


class RuleBacktestIn(_Body):
    """What to backtest: a stored rule by ``rule``, or a draft ``expression`` with its ``action``; over the
    decisions of ``[start, end)`` (default: the log's last 30 days), labels as known at ``as_of`` (default:
    the newest label the log knows)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"properties": {"rule": {"type": "string"}}, "required": ["rule"]},
                {"properties": {"expression": {"type": "string"}}, "required": ["expression"]},
            ]
        }
    )

    rule: RuleName | None = Field(None, description="A stored rule's name (instead of an expression).")
    expression: Expression | None = None
    action: RuleAction = RuleAction.BLOCK
    lists: Annotated[list[DraftListIn], Field(max_length=20)] = Field(default_factory=list)
    start: Moment | None = None
    end: Moment | None = Field(None, description="Exclusive end (default: just after the newest decision).")
    as_of: Moment | None = Field(None, description="Judge labels as known then (default: the newest known).")
    sample: int = Field(SAMPLE_SIZE, ge=0, le=MAX_SAMPLE, description="How many hit attempt ids to show.")

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        if (self.rule is None) == (self.expression is None):
            raise ValueError("give a stored rule's name (rule) or a draft expression, not both or neither")
        return self


class RuleOfBacktest(BaseModel):
    name: str
    action: RuleAction
    expression: str


class HitsOut(BaseModel):
    """The attempts the rule's condition is true for."""

    attempts: int
    share: float | None = Field(description="Of the period's attempts (null: none).")
    amount: dict[str, float] = Field(description="Their amounts by currency (never converted).")


class FraudCaughtOut(BaseModel):
    """Fraud as known at ``as_of``, counted only over attempts whose label is mature (as the trends)."""

    as_of: str | None
    maturity_days: float
    mature_attempts: int
    frauds: int = Field(description="Mature attempts a fraud report names.")
    mature_hits: int
    caught: int = Field(description="Frauds the rule hits.")
    recall: float | None = Field(description="caught / frauds.")
    precision: float | None = Field(description="caught / mature_hits.")
    immature_hits: int = Field(description="Hits too recent to judge.")


class GoodHitOut(BaseModel):
    """Hits no fraud report names (as of ``as_of``): the customers and revenue the rule would hold up."""

    attempts: int
    mature_attempts: int = Field(description="Of them, mature: known good.")
    accounts: int = Field(description="Distinct accounts (erased ones not counted).")
    amount: dict[str, float]


class OverlapOut(BaseModel):
    """The hits against what was decided: blocked or reviewed already, or newly touched (approved or
    deferred)."""

    already_blocked: int
    already_reviewed: int
    newly_touched: int
    by_rules: int = Field(description="Hits an enabled rule decided.")


class UnreadableOut(BaseModel):
    """Decisions the rule could not read in full (they do not hit)."""

    erased: int = Field(description="Decisions of erased accounts in the period.")
    without_fields: int = Field(description="Logged before the fields the rule reads were kept.")
    value_errors: int = Field(description="A value of the wrong type for the rule.")


class RuleBacktestOut(BaseModel):
    """What the rule would have done over the period."""

    rule: RuleOfBacktest
    start: str
    end: str
    attempts: int
    hits: HitsOut
    fraud: FraudCaughtOut
    good: GoodHitOut
    overlap: OverlapOut
    sample: list[str] = Field(description="Hit attempt ids, evenly spread over the period.")
    unreadable: UnreadableOut
    seconds: float
