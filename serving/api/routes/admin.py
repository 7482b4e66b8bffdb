"""Admin: DELETE /v1/accounts/{account_id} (erasure) and POST /v1/admin/reload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from serving.api.answers import NOT_TAKING_WRITES
from serving.api.routes.deps import AdminKey, ServiceDep
from serving.scoring.schemas import ErasureOut, ErrorOut, ModelRef, ModelStatusOut, ReloadOut

router = APIRouter(tags=["admin"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})

KEPT = [
    "decisions: attempt id, times, kind, scores, action, rule and model versions, unlinked from the account "
    "(no account or payment-method pseudonym, no feature values)",
    "gateway outcomes and fraud reports by attempt id (labels for retraining and monitoring)",
    "whole-history aggregates in the online store that hold no identifier (counts, first/last times)",
    "an erasure record: the account's pseudonym, when, and how much was erased",
]


@router.delete("/accounts/{account_id}", response_model=ErasureOut, responses=NOT_TAKING_WRITES)
def erase_account(
    account_id: Annotated[str, Path(min_length=1, max_length=128)], service: ServiceDep, _: AdminKey
) -> ErasureOut:
    """Erase an account's personal data from the online store and the decision log (GDPR / CCPA)."""
    key, removed, erasure = service.engine.erase_account(account_id)
    return ErasureOut(
        account=key, online_events_removed=removed, decisions_unlinked=erasure.decisions, kept=KEPT
    )


@router.post("/admin/reload", response_model=ReloadOut, responses={422: {"model": ErrorOut}})
async def reload_models(service: ServiceDep, _: AdminKey) -> ReloadOut:
    """Load what `@champion` points at now, and the rules file again; each swap is atomic (no request
    mixes versions). A bad rules file is answered 422 naming its problem, and the rules served stay. In a
    fleet (PostgreSQL), every other instance is told to reload its models too."""
    results = await run_in_threadpool(service.reload)
    await run_in_threadpool(service.announce_reload)
    await run_in_threadpool(service.reload_rules)
    return ReloadOut(
        models=[
            ModelStatusOut(
                task=r.task,
                model=None if r.model is None else ModelRef(**r.model.ref),
                changed=r.changed,
                error=r.error,
            )
            for r in results
        ]
    )
