"""The route handlers: plain functions from a parsed call to a pydantic model. No runtime types here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from models.ai_usage import FieldError, LogStatus
from models.summaries import DailyUsageSummary, GlobalDailyUsage, MonthlyUsageSummary, SessionUsage
from services.errors import Forbidden, StoreError, ValidationFailed
from services.pricing import model_cost_info
from services.usage_tracking_service import UsageTrackingService

from .request import Caller, Role
from .schemas import (
    BatchItem,
    BatchResponse,
    DayQuery,
    Health,
    LoggedUsage,
    MonthQuery,
    PriceInfo,
    PriceList,
    RequestCountResponse,
    price_info,
)


@dataclass
class Call:
    """One parsed request as a handler receives it."""

    service: UsageTrackingService
    caller: Caller
    params: dict[str, str] = field(default_factory=dict)
    query: Any = None  # the route's query model, validated
    body: Any = None  # parsed JSON
    openapi: Callable[[], dict[str, Any]] | None = None  # the document of the routes being served


@dataclass
class Reply:
    """A handler's answer when the status (or headers) depend on the outcome."""

    status: int
    payload: BaseModel | dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _invalid(name: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field=name, message=message)])


# -- logging -----------------------------------------------------------------------------------------------
def log_usage(call: Call) -> Reply:
    if not isinstance(call.body, dict):
        raise _invalid("body", "must be a JSON object (one usage event)")
    result = call.service.log_event(call.body)
    assert result.log is not None  # stored and duplicate results always carry the row
    row = LoggedUsage.model_construct(**dict(result.log), duplicate=result.duplicate)
    return Reply(200 if result.duplicate else 201, row)


def log_usage_batch(call: Call) -> BatchResponse:
    body = call.body
    if not isinstance(body, dict):
        raise _invalid("body", 'must be a JSON object: {"events": [...]}')
    unknown = sorted(set(body) - {"events"})
    if unknown:
        raise ValidationFailed([FieldError(field=name, message="unknown field") for name in unknown])
    events = body.get("events")
    if not isinstance(events, list):
        raise _invalid("events", "required: an array of usage events")
    results = call.service.log_usage_batch(events)
    items = [
        BatchItem(index=index, status=result.status, log=result.log, errors=result.errors)
        for index, result in enumerate(results)
    ]
    counts = {status: 0 for status in LogStatus}
    for item in items:
        counts[item.status] += 1
    return BatchResponse(
        stored=counts[LogStatus.STORED],
        duplicates=counts[LogStatus.DUPLICATE],
        rejected=counts[LogStatus.REJECTED],
        conflicts=counts[LogStatus.CONFLICT],
        results=items,
    )


# -- summaries -----------------------------------------------------------------------------------------------
def _tenant(call: Call) -> str | None:
    """The tenant a per-player route reads. A signed-in player is known by their user id only, not by a tenant,
    so naming one could read another tenant's player of the same id: they get the default tenant's rows."""
    tenant_id = getattr(call.query, "tenant_id", None)
    if tenant_id is not None and call.caller.role is Role.USER:
        raise Forbidden("tenant_id is for the server and admin keys; a signed-in player reads their own usage")
    return tenant_id


def daily_usage(call: Call) -> DailyUsageSummary:
    query: DayQuery = call.query
    return call.service.get_daily_usage(call.params["user_id"], query.date, _tenant(call))


def monthly_cost(call: Call) -> MonthlyUsageSummary:
    query: MonthQuery = call.query
    return call.service.get_monthly_cost(call.params["user_id"], query.year, query.month, _tenant(call))


def requests_today(call: Call) -> RequestCountResponse:
    # Fail-open lives in the service: a store failure gives count 0, degraded true and a warning log line.
    count = call.service.request_count_today(call.params["user_id"], _tenant(call))
    return RequestCountResponse(user_id=count.user_id, date=count.date, count=count.count, degraded=count.degraded)


def session_usage(call: Call) -> SessionUsage:
    return call.service.get_session_usage(call.params["session_id"], _tenant(call))


def global_daily_cost(call: Call) -> GlobalDailyUsage:
    query: DayQuery = call.query
    return call.service.get_global_daily_usage(query.date)


# -- prices -----------------------------------------------------------------------------------------------
def list_prices(call: Call) -> PriceList:
    now = call.service.clock()
    entries = call.service.price_book.current_entries(now)
    return PriceList(at=now.isoformat(), prices=[price_info(model_cost_info(entry)) for entry in entries])


def model_price(call: Call) -> PriceInfo:
    model = call.params["model"].strip()
    if not model:
        raise _invalid("model", "must not be empty")
    try:
        match = call.service.price_book.lookup(model, at=call.service.clock())
    except ValueError as exc:
        raise _invalid("model", str(exc)) from None
    return price_info(model_cost_info(match.entry))


# -- operations ---------------------------------------------------------------------------------------------
def health(call: Call) -> Reply:
    try:
        call.service.store.ping()
    except StoreError:
        return Reply(503, Health(status="unavailable", store="unreachable"), {"Retry-After": "5"})
    return Reply(200, Health(status="ok", store="reachable"))


def openapi_document(call: Call) -> dict[str, Any]:
    assert call.openapi is not None
    return call.openapi()
