"""The documents of the review queue's admin API (:mod:`serving.api.routes.review`) and the dependency that
gives a route the service's desk.

A case is shown with its decision as logged (rule, fraud level and probability, amount, the models' reasons),
its claim and its resolution; never a raw id of a person (the account is the decision log's pseudonym) nor
the raw values a block list may take (``block_fields`` says which ones the case kept).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import Depends, Request
from pydantic import BaseModel, Field

from serving.api.operations import LIST_NAME_PATTERN
from serving.errors import NotReadyError
from serving.scoring.review import MAX_NOTE, ReviewDesk
from serving.scoring.schemas import ErrorOut, ReasonOut, _Body
from serving.store.cases import Case, CaseStatus, HistoryEntry, Outcome
from serving.store.operations import Operations

Answers = dict[int | str, dict[str, Any]]
#: The answers of every route of the queue: the caller's key, and a service without a queue.
ROUTER_ANSWERS: Final[Answers] = {
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    503: {"model": ErrorOut, "description": "This service has no review queue."},
}
NOT_FOUND: Final[Answers] = {404: {"model": ErrorOut, "description": "No review case of this id."}}
CONFLICT: Final[Answers] = {
    409: {"model": ErrorOut, "description": "The case is resolved already, or another analyst holds it."}
}


async def get_desk(request: Request) -> ReviewDesk:
    """The service's review desk (503 without one)."""
    desk: ReviewDesk | None = getattr(request.app.state.service, "review", None)
    if desk is None:
        raise NotReadyError("this service has no review queue: start it with `riskgate serve`")
    return desk


DeskDep = Annotated[ReviewDesk, Depends(get_desk)]


async def get_operations(request: Request) -> Operations | None:
    """The store of rules and lists, if the app has one (only a resolution that blocks needs it)."""
    operations: Operations | None = getattr(request.app.state, "operations", None)
    return operations


MaybeOperations = Annotated[Operations | None, Depends(get_operations)]


Note = Annotated[str, Field(max_length=MAX_NOTE, description="Why (kept with the resolution).")]


class FraudIn(_Body):
    """A fraud resolution, optionally adding the attempt's card or device to a block list (the list's field
    says which: ``payment_method_id`` or ``device_id``)."""

    outcome: Literal["fraud"]
    note: Note = ""
    block_list: Annotated[str, Field(pattern=LIST_NAME_PATTERN)] | None = Field(
        None, description="A block list's name: its field's value of the attempt is added to it."
    )


class NotFraudIn(_Body):
    """Any other resolution (``declined`` is expiry's alone)."""

    outcome: Literal["approved", "not_fraud", "customer_contacted"]
    note: Note = ""


#: How an analyst resolves a case: told apart by ``outcome`` (only fraud may block).
ResolveIn = Annotated[FraudIn | NotFraudIn, Field(discriminator="outcome")]


class ClaimOut(BaseModel):
    claimed_by: str
    claimed_at: datetime
    until: datetime


class ResolutionOut(BaseModel):
    outcome: Outcome
    note: str
    resolved_by: str = Field(description="The API key's name, or 'expiry'.")
    resolved_at: datetime
    report_id: str | None = Field(description="The fraud report a fraud resolution recorded.")


class CaseOut(BaseModel):
    """A case: its decision as logged, its claim (a lapsed one shows its past ``until``), its resolution."""

    case_id: str
    attempt_id: str
    status: CaseStatus
    opened_at: datetime
    occurred_at: datetime
    account: str | None = Field(description="The account's pseudonym in the decision log (null: erased).")
    kind: str | None
    rule: str
    decided_by: str
    fraud_probability: float | None
    fraud_level: str | None
    amount: float | None
    currency: str | None
    fraud_reasons: list[ReasonOut]
    failure_reasons: list[ReasonOut]
    block_fields: list[str] = Field(description="The attempt's fields the case kept for block lists.")
    claim: ClaimOut | None
    resolution: ResolutionOut | None

    @classmethod
    def of(cls, case: Case) -> CaseOut:
        claim, made = case.claim, case.resolution
        return cls(
            case_id=case.case_id,
            attempt_id=case.case_id,
            status=case.status,
            opened_at=case.opened_at,
            occurred_at=case.occurred_at,
            account=case.account,
            kind=case.kind,
            rule=case.rule,
            decided_by=case.decided_by,
            fraud_probability=case.fraud_probability,
            fraud_level=case.fraud_level,
            amount=case.amount,
            currency=case.currency,
            fraud_reasons=_reasons(case.answer, "fraud"),
            failure_reasons=_reasons(case.answer, "failure"),
            block_fields=sorted(case.values),
            claim=None
            if claim is None
            else ClaimOut(claimed_by=claim.by, claimed_at=claim.at, until=claim.until),
            resolution=None
            if made is None
            else ResolutionOut(
                outcome=made.outcome,
                note=made.note,
                resolved_by=made.by,
                resolved_at=made.at,
                report_id=made.report_id,
            ),
        )


def _reasons(answer: Any, model: str) -> list[ReasonOut]:
    part = answer.get(model) if hasattr(answer, "get") else None
    reasons = part.get("reasons") if isinstance(part, dict) else None
    return [ReasonOut.model_validate(reason) for reason in reasons or []]


class CasesOut(BaseModel):
    """A page of cases, oldest first; ``next_after``: pass it as ``after`` for the next page (null: last)."""

    cases: list[CaseOut]
    next_after: str | None


class HistoryOut(BaseModel):
    """One decision of the case's account, with its gateway outcome and whether it was reported as fraud."""

    attempt_id: str
    occurred_at: datetime
    kind: str | None
    action: str
    rule: str
    amount: float | None
    currency: str | None
    fraud_level: str | None
    status: str | None
    decline_code: str | None
    fraud_reported: bool

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryOut:
        return cls(**{name: getattr(entry, name) for name in cls.model_fields})


class CaseDetailOut(BaseModel):
    """A case with its account's latest decisions (newest first; the case's own among them)."""

    case: CaseOut
    history: list[HistoryOut]
