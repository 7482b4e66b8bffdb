"""POST /v1/rule-backtest (admin scope): replay a draft rule, or a stored one, over a period of the decision
log before enabling it (:mod:`serving.readers.rule_backtest`)."""

from __future__ import annotations

from fastapi import APIRouter

from rules.book import RuleSpec
from rules.lists import ListItem, MemberList, make_list
from serving.api.operations import NOT_FOUND, ROUTER_ANSWERS, OperationsDep
from serving.api.routes.deps import AdminKey, ServiceDep
from serving.api.rule_backtest import RuleBacktestIn, RuleBacktestOut
from serving.readers.rule_backtest import Draft, Sources, log_backtest
from serving.readers.trends import maturity_days, parse_moment, resolve_range
from serving.store.operations import Operations

router = APIRouter(tags=["rules"], responses=ROUTER_ANSWERS)
DRAFT_NAME = "draft"


def draft_of(body: RuleBacktestIn, operations: Operations) -> Draft:
    """The rule to replay (the stored one, or the draft) with the stored lists, the draft's in their place."""
    if body.rule is not None:
        spec = operations.store.rule(body.rule).spec
    else:
        spec = RuleSpec(DRAFT_NAME, body.action, body.expression or "")
    lists: dict[str, MemberList] = dict(operations.store.current_lists())
    for listed in body.lists:
        items = [ListItem(i.value, i.reason or DRAFT_NAME, i.expires_at) for i in listed.items]
        lists[listed.name] = make_list(listed.name, listed.field, items, operations.fields)
    return Draft(spec, lists)


@router.post("/rule-backtest", response_model=RuleBacktestOut, responses=NOT_FOUND)
def backtest_rule(
    body: RuleBacktestIn, service: ServiceDep, operations: OperationsDep, _: AdminKey
) -> RuleBacktestOut:
    """What a rule would have done over a period of the decision log: the attempts it hits, the fraud it
    catches (mature labels as known at `as_of`), the good customers and revenue it hits, and its overlap
    with what was blocked or reviewed already. Nothing is saved. 422: an expression that does not check (the
    position named), a field the log does not keep (backtest over a data directory with `riskgate rules
    backtest --data-dir`), an empty log or a period without decisions."""
    draft = draft_of(body, operations)
    schema = operations.schema({name: member.kind for name, member in draft.lists.items()})
    engine = service.engine
    fraud = engine.holder.current.fraud
    engine.flush()  # every answered decision, also those still only in the journal
    with engine.log.ranges() as reader:
        span = resolve_range(reader, parse_moment("start", body.start), parse_moment("end", body.end))
        result = log_backtest(
            reader,
            draft,
            schema,
            Sources(engine.feature_names, engine.fields),
            span,
            maturity_days(None if fraud is None else fraud.bundle),
            parse_moment("as_of", body.as_of),
            body.sample,
        )
    return RuleBacktestOut.model_validate(result)
