"""Request and response models only the HTTP surface needs; the ledger's own models live in ``models``.

Every model here also feeds the OpenAPI document, so field descriptions are the API's documentation.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from models.ai_usage import AIUsageLog, FieldError, LogStatus, UsageEvent
from services.usage_tracking_service import MAX_BATCH_EVENTS

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    # ``date`` alone would also take timestamps and other shapes; the API promises exactly YYYY-MM-DD.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date), Field(description="A UTC day, YYYY-MM-DD")]


# -- query strings ---------------------------------------------------------------------------------------
class DayQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: IsoDate | None = Field(default=None, description="UTC day as YYYY-MM-DD; default: today (UTC)")


class MonthQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int | None = Field(default=None, ge=1970, le=9999, description="Default: this year (UTC)")
    month: int | None = Field(default=None, ge=1, le=12, description="1-12; default: this month (UTC)")


# -- bodies ------------------------------------------------------------------------------------------------
class BatchRequest(BaseModel):
    """Up to 1,000 events; each is validated on its own, so one bad event does not reject the others."""

    model_config = ConfigDict(extra="forbid")

    # Documented as "a UsageEvent or anything": an item that is not a valid event is answered in its own
    # result, never by refusing the whole request, so the schema must not promise a refusal.
    events: list[UsageEvent | Any] = Field(
        max_length=MAX_BATCH_EVENTS, description="UsageEvent objects; an invalid item is rejected on its own"
    )


# -- answers -------------------------------------------------------------------------------------------------
class LoggedUsage(AIUsageLog):
    """The stored row; ``duplicate`` is true when this ``request_id`` had been logged before (a retry)."""

    duplicate: bool = False


class BatchItem(BaseModel):
    index: int = Field(description="Position of the event in the request")
    status: LogStatus
    log: AIUsageLog | None = Field(default=None, description="The stored row (stored or duplicate)")
    errors: list[FieldError] = Field(default_factory=list, description="Why the event was rejected")


class BatchResponse(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    results: list[BatchItem] = Field(description="One result per event, in request order")


class RequestCountResponse(BaseModel):
    """The rate limiter's count. Fail-open: ``degraded`` is true (and ``count`` 0) when the store failed."""

    user_id: str
    date: date
    count: int
    degraded: bool


class PriceInfo(BaseModel):
    """USD per 1K tokens (floats, for display); ``is_default`` marks the fallback price of an unknown model."""

    model_config = ConfigDict(extra="allow")

    model_id: str
    provider: str
    unit: str
    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None
    per_request: float | None = None
    per_credit: float | None = None
    long_context_threshold: int | None = None
    source: str | None = None
    source_date: str | None = None
    effective_from: str | None = None
    contracted: bool = False
    is_default: bool = False


class PriceList(BaseModel):
    at: str = Field(description="The moment (UTC) the prices are in force")
    prices: list[PriceInfo]


class Health(BaseModel):
    status: str = Field(description="ok, or unavailable when the store cannot answer")
    store: str = Field(description="reachable or unreachable")


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] = Field(default_factory=list)
    correlation_id: str | None = Field(default=None, description="Quote it when reporting a problem")


class ErrorBody(BaseModel):
    error: ErrorDetail


def price_info(info: dict[str, Any]) -> PriceInfo:
    return PriceInfo.model_validate(info)
