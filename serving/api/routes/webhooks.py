"""Admin: the delivery status of signed webhooks, and retrying one (docs/webhooks.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query

from serving.api.routes.deps import AdminKey, ServiceDep
from serving.api.service import Service
from serving.api.webhook_schemas import DeliveriesOut, DeliveryOut
from serving.errors import NotFoundError
from serving.scoring.schemas import ErrorOut
from serving.store.outbox import Outbox

#: the largest delivery id (SQLite's integers are 64-bit signed)
MAX_ID: Final = 2**63 - 1

router = APIRouter(
    prefix="/admin/webhooks",
    tags=["admin"],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
)


def _outbox(service: Service) -> Outbox:
    if service.outbox is None:  # pragma: no cover - build_service always opens one
        raise NotFoundError("this service keeps no webhook outbox")
    return service.outbox


@router.get("/deliveries", response_model=DeliveriesOut)
def list_deliveries(
    service: ServiceDep,
    _: AdminKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The previous page's `next_before`.")
    ] = None,
) -> DeliveriesOut:
    """Webhook deliveries, newest first: event, endpoint, tries, last status, next try, state."""
    page = _outbox(service).deliveries(limit, before)
    more = len(page) == limit and page[-1].delivery_id > 1
    return DeliveriesOut(
        deliveries=[DeliveryOut.of(d) for d in page], next_before=page[-1].delivery_id if more else None
    )


@router.post(
    "/deliveries/{delivery_id}/retry", response_model=DeliveryOut, responses={404: {"model": ErrorOut}}
)
def retry_delivery(
    delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)], service: ServiceDep, _: AdminKey
) -> DeliveryOut:
    """Try a delivery again now (a failed one, or to resend a delivered event); its tries are kept."""
    delivery = _outbox(service).retry(delivery_id, datetime.now(UTC))
    if delivery is None:
        raise NotFoundError(f"no webhook delivery {delivery_id}")
    return DeliveryOut.of(delivery)
