"""GET /v1/trends and GET /v1/drift: risk over time from the decision log (JSON, or CSV with format=csv)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from serving.api.routes.deps import ServiceDep
from serving.api.security import API_KEY_HEADER, Principal, Scope
from serving.errors import ForbiddenError
from serving.readers.drift import DriftModel, drift
from serving.readers.trends import (
    KEY_SEGMENT_TOP,
    SEGMENTS,
    TrendQueryError,
    drift_csv,
    maturity_days,
    parse_moment,
    resolve_range,
    trends,
    trends_csv,
)
from serving.scoring.schemas import MOMENT_PATTERN, DriftOut, ErrorOut, TrendsOut

router = APIRouter(tags=["trends"])
ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "JSON, or CSV (format=csv).",
    },
    **{code: {"model": ErrorOut} for code in (401, 403, 422)},
}
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Your riskgate API key.")
_READERS = frozenset({Scope.SCORE.value, Scope.ADMIN.value})


def read_key(service: ServiceDep, key: Annotated[str | None, Security(_api_key)]) -> Principal:
    """A caller with the ``score`` or the ``admin`` scope (both may read trends)."""
    principal = service.keys.authenticate(key)
    if not principal.scopes & _READERS:
        raise ForbiddenError("reading trends needs an API key with the 'score' or 'admin' scope")
    return principal


ReadKey = Annotated[Principal, Depends(read_key)]
Start = Annotated[
    str | None,
    Query(
        description="ISO 8601 date or time, UTC unless an offset is given (default: end - 30 days).",
        json_schema_extra={"pattern": MOMENT_PATTERN},
    ),
]
End = Annotated[
    str | None,
    Query(
        description="Exclusive end, ISO 8601 (default: just after the newest logged decision).",
        json_schema_extra={"pattern": MOMENT_PATTERN},
    ),
]
Format = Annotated[Literal["json", "csv"], Query(description="json, or csv for export.")]
Bucket = Annotated[Literal["hour", "day", "week"], Query(description="Calendar buckets in UTC.")]
Segment = Annotated[
    str,
    Query(
        max_length=64,
        description=f"One series per value of this field (none: one series): one of {', '.join(SEGMENTS)}, "
        "or a category or key attribute of the served feature set (a key: its "
        f"{KEY_SEGMENT_TOP} most frequent values in the range, then 'other').",
    ),
]


def _moment(name: str, text: str | None) -> datetime | None:
    """A ``start`` or ``end`` parameter as :func:`serving.readers.trends.parse_moment` reads it, written as
    the schema's pattern says (:data:`serving.scoring.schemas.MOMENT_PATTERN`: what the schema documents is
    what is accepted)."""
    moment = parse_moment(name, text)
    if text is not None and re.fullmatch(MOMENT_PATTERN, text) is None:
        raise TrendQueryError(
            f"{name} must be written YYYY-MM-DD or YYYY-MM-DDThh:mm:ss, with an optional fraction of a "
            "second and offset (Z or +hh:mm)"
        )
    return moment


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/trends", response_model=TrendsOut, responses=ERRORS)
def get_trends(  # noqa: PLR0917 (one parameter per query parameter)
    service: ServiceDep,
    _: ReadKey,
    start: Start = None,
    end: End = None,
    bucket: Bucket = "day",
    segment: Segment = "none",
    format: Format = "json",
) -> Response:
    """Attempts, actions, score quantiles, predicted vs realised fraud and decline rates, money at risk.

    Per calendar bucket of the attempts' `occurred_at` (UTC) and per segment value. Fraud rates count only
    attempts whose label is mature (`fraud_maturity_days` before `as_of`, the newest label the log knows).
    """
    fraud = service.engine.holder.current.fraud
    service.engine.flush()  # every answered decision, also those still only in the journal
    with service.engine.log.ranges() as reader:
        span = resolve_range(reader, _moment("start", start), _moment("end", end))
        maturity = maturity_days(None if fraud is None else fraud.bundle)
        result = trends(reader, span, bucket, segment, maturity, service.engine.fields)
    return _csv(trends_csv(result), "riskgate-trends") if format == "csv" else JSONResponse(result)


@router.get("/drift", response_model=DriftOut, responses=ERRORS)
def get_drift(
    service: ServiceDep, _: ReadKey, start: Start = None, end: End = None, format: Format = "json"
) -> Response:
    """PSI of each served model's score and top features against its training reference, with bands.

    Bands: < 0.1 stable, 0.1–0.25 moderate, ≥ 0.25 significant; fewer than 100 decisions: insufficient_data.
    Without a served model the task says `status: no_model` (and no rows).
    """
    pair = service.engine.holder.current
    models = {task: DriftModel.of(pair.get(task)) for task in ("fraud", "failure")}
    service.engine.flush()
    with service.engine.log.ranges() as reader:
        span = resolve_range(reader, _moment("start", start), _moment("end", end))
        result = drift(reader, span.start, span.end, models)
    return _csv(drift_csv(result), "riskgate-drift") if format == "csv" else JSONResponse(result)
