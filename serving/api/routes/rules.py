"""The fraud team's rules (admin scope): list, create, change, disable, enable and delete them, and read a
rule's versions. An expression is parsed and type-checked against the served feature set's schema and the
current lists when saved; a bad one is answered 422 naming the position (``line 1, column 5 ('amout'):
unknown name; did you mean 'amount'?``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from rules.book import NAME_PATTERN
from serving.api.operations import (
    CONFLICT,
    NOT_FOUND,
    NOT_FOUND_OR_CONFLICT,
    ROUTER_ANSWERS,
    DraftIn,
    DraftOut,
    OperationsDep,
    ReasonIn,
    RuleChangeIn,
    RuleIn,
    RuleOut,
    RulesOut,
    RuleVersionsOut,
    made_by,
)
from serving.api.routes.deps import AdminKey
from serving.store.operations import MAX_REASON

router = APIRouter(tags=["rules"], responses=ROUTER_ANSWERS)
NameParam = Annotated[str, Path(pattern=NAME_PATTERN, description="The rule's name.")]


@router.get("/rules", response_model=RulesOut)
def list_rules(operations: OperationsDep, _: AdminKey) -> RulesOut:
    """The current rules (disabled ones too) in evaluation order, with each one's latest version."""
    store = operations.store
    version = store.version()
    return RulesOut(
        version=version, rules=[RuleOut.of(store.rule(spec.name)) for spec in store.current_rules()]
    )


@router.post("/rules", response_model=RuleOut, status_code=201, responses=CONFLICT)
def create_rule(body: RuleIn, operations: OperationsDep, caller: AdminKey) -> RuleOut:
    """Create a rule (its version 1); refused 422 if the expression does not parse or check."""
    return RuleOut.of(operations.create_rule(body.spec(), made_by(caller, body.reason)))


@router.post("/rule-check", response_model=DraftOut)
def check_rule(body: DraftIn, operations: OperationsDep, _: AdminKey) -> DraftOut:
    """Check a draft expression without saving it: what it reads, or 422 naming the position. (Not under
    /rules/: a rule may be named ``check``.)"""
    checked = operations.check_expression(body.expression)
    return DraftOut(expression=body.expression, names=sorted(checked.names), lists=sorted(checked.lists))


@router.get("/rules/{name}", response_model=RuleOut, responses=NOT_FOUND)
def get_rule(name: NameParam, operations: OperationsDep, _: AdminKey) -> RuleOut:
    """A rule's current version."""
    return RuleOut.of(operations.store.rule(name))


@router.put("/rules/{name}", response_model=RuleOut, responses=NOT_FOUND)
def change_rule(name: NameParam, body: RuleChangeIn, operations: OperationsDep, caller: AdminKey) -> RuleOut:
    """Change a rule (a new version; the earlier ones are kept)."""
    return RuleOut.of(operations.change_rule(body.spec(name), made_by(caller, body.reason)))


@router.post("/rules/{name}/disable", response_model=RuleOut, responses=NOT_FOUND_OR_CONFLICT)
def disable_rule(name: NameParam, body: ReasonIn, operations: OperationsDep, caller: AdminKey) -> RuleOut:
    """Stop evaluating a rule (a new version), keeping it for later."""
    return RuleOut.of(operations.set_enabled(name, False, made_by(caller, body.reason)))


@router.post("/rules/{name}/enable", response_model=RuleOut, responses=NOT_FOUND_OR_CONFLICT)
def enable_rule(name: NameParam, body: ReasonIn, operations: OperationsDep, caller: AdminKey) -> RuleOut:
    """Evaluate a disabled rule again (a new version)."""
    return RuleOut.of(operations.set_enabled(name, True, made_by(caller, body.reason)))


@router.delete("/rules/{name}", response_model=RuleOut, responses=NOT_FOUND)
def delete_rule(
    name: NameParam,
    reason: Annotated[str, Query(min_length=1, max_length=MAX_REASON, description="Why (kept).")],
    operations: OperationsDep,
    caller: AdminKey,
) -> RuleOut:
    """Delete a rule; its versions are kept (the answer is the last, ``deleted``)."""
    return RuleOut.of(operations.delete_rule(name, made_by(caller, reason)))


@router.get("/rules/{name}/versions", response_model=RuleVersionsOut, responses=NOT_FOUND)
def rule_versions(name: NameParam, operations: OperationsDep, _: AdminKey) -> RuleVersionsOut:
    """Every version of a rule, the first first, with who changed it, when and why (deleted rules too)."""
    versions = operations.store.rule_versions(name)
    return RuleVersionsOut(name=name, versions=[RuleOut.of(version) for version in versions])
