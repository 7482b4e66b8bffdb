"""The review queue (admin scope): list cases (open or closed, filtered, oldest first, paginated), read one
with its decision's reasons and its account's recent history, claim it, resolve it (a ``fraud`` resolution
records a fraud report and may add the attempt's card or device to a block list, all or nothing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from serving.api.review import (
    CONFLICT,
    NOT_FOUND,
    ROUTER_ANSWERS,
    CaseDetailOut,
    CaseOut,
    CasesOut,
    DeskDep,
    FraudIn,
    HistoryOut,
    MaybeOperations,
    ResolveIn,
)
from serving.api.routes.deps import AdminKey
from serving.store.cases import MAX_PAGE, CaseQuery, CaseStatus, Outcome

router = APIRouter(tags=["review"], responses=ROUTER_ANSWERS)
CaseId = Annotated[str, Path(min_length=1, max_length=128, description="The case's id (its attempt's id).")]
Hours = Annotated[float | None, Query(ge=0, le=100_000)]
Money = Annotated[float | None, Query(ge=0)]
Label = Annotated[str | None, Query(min_length=1, max_length=128)]


@router.get("/review/cases", response_model=CasesOut)
def list_cases(  # noqa: PLR0917 (one parameter per filter)
    desk: DeskDep,
    _: AdminKey,
    status: CaseStatus = CaseStatus.OPEN,
    rule: Label = None,
    fraud_level: Label = None,
    kind: Label = None,
    min_amount: Money = None,
    max_amount: Money = None,
    min_age_hours: Hours = None,
    max_age_hours: Hours = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    after: Label = None,
) -> CasesOut:
    """Cases oldest first (by decision time). Age: hours since the decision; ``after``: the previous page's
    ``next_after``."""
    now = desk.clock()
    query = CaseQuery(
        status=status,
        opened_before=None if min_age_hours is None else now - timedelta(hours=min_age_hours),
        opened_after=None if max_age_hours is None else now - timedelta(hours=max_age_hours),
        rule=rule,
        fraud_level=fraud_level,
        min_amount=min_amount,
        max_amount=max_amount,
        kind=kind,
        limit=limit,
        after=after,
    )
    page = desk.page(query)
    return CasesOut(cases=[CaseOut.of(case) for case in page.cases], next_after=page.next_after)


@router.get("/review/cases/{case_id}", response_model=CaseDetailOut, responses=NOT_FOUND)
def get_case(
    case_id: CaseId, desk: DeskDep, _: AdminKey, history: Annotated[int, Query(ge=0, le=200)] = 20
) -> CaseDetailOut:
    """A case with its decision's reasons and its account's latest ``history`` decisions and outcomes."""
    case = desk.case(case_id)
    return CaseDetailOut(
        case=CaseOut.of(case), history=[HistoryOut.of(entry) for entry in desk.history(case, history)]
    )


@router.post("/review/cases/{case_id}/claim", response_model=CaseOut, responses={**NOT_FOUND, **CONFLICT})
def claim_case(case_id: CaseId, desk: DeskDep, caller: AdminKey) -> CaseOut:
    """Hold a case for the caller (its API key's name) for RISKGATE_REVIEW_CLAIM_MINUTES; 409 while another
    analyst's claim holds. Claiming again extends one's own claim."""
    return CaseOut.of(desk.claim(case_id, caller.name))


@router.post("/review/cases/{case_id}/resolve", response_model=CaseOut, responses={**NOT_FOUND, **CONFLICT})
def resolve_case(
    case_id: CaseId, body: ResolveIn, desk: DeskDep, operations: MaybeOperations, caller: AdminKey
) -> CaseOut:
    """Close a case with an outcome and a note (who: the API key's name). ``fraud`` records a fraud report
    (reported now: the label the next training reads); with ``block_list``, the attempt's card or device is
    added to that block list in the same call, or nothing changes. 409 if resolved already or held by
    another."""
    block_list = body.block_list if isinstance(body, FraudIn) else None
    closed = desk.resolve(
        case_id, Outcome(body.outcome), body.note, caller.name, block_list=block_list, operations=operations
    )
    return CaseOut.of(closed)
