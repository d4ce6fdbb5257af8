"""Request and response models only the HTTP surface needs; the ledger's own models live in ``models``.

Every model here also feeds the OpenAPI document, so field descriptions are the API's documentation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from models.ai_usage import (
    MAX_CREDITS_PER_EVENT,
    MAX_DURATION_MS,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_ID_CHARS,
    MAX_METADATA_BYTES,
    MAX_MODEL_CHARS,
    MAX_TOKENS_PER_EVENT,
    AIUsageLog,
    FieldError,
    LogStatus,
    TaskType,
    UsageEvent,
)
from models.field_rules import Identifier, NoSlash
from services.errors import ValidationFailed
from services.time_ranges import outside_days
from services.usage_tracking_service import MAX_BATCH_EVENTS

ID_FIELDS = ("request_id", "user_id", "tenant_id", "session_id", "character_id")
COUNT_FIELDS = ("tokens_input", "tokens_output", "tokens_cached", "tokens_cache_write", "tokens_reasoning", "credits")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    # ``date`` alone would also take timestamps and other shapes; the API promises exactly YYYY-MM-DD.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


def within_days(value: date | datetime) -> date | datetime:
    # The ranges' own bounds (services.time_ranges), checked as the query is read: a default range counted back
    # from an end near year 1 would otherwise overflow before the service could name the field.
    if (why := outside_days(value.date() if isinstance(value, datetime) else value)) is not None:
        raise ValueError(why)
    return value


# Path ids follow the rules of the fields they name on the way in (models.field_rules): an id no event can have
# (a control character, among them the separator of tenant-scoped keys, or longer than any stored) is refused by
# name instead of looked up, so it can never meet another tenant's key.
_PATH_IDS = {
    "user_id": TypeAdapter(Annotated[Identifier, NoSlash]),
    "session_id": TypeAdapter(Annotated[Identifier, NoSlash]),
    "tenant_id": TypeAdapter(Identifier),
}


def check_path_ids(params: Mapping[str, str]) -> None:
    """``ValidationFailed`` naming each path id that breaks its field's rules."""
    errors: list[FieldError] = []
    for name, value in params.items():
        adapter = _PATH_IDS.get(name)
        if adapter is None:
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            errors += [
                FieldError(field=name, message=error["msg"].removeprefix("Value error, "))
                for error in exc.errors(include_url=False)
            ]
    if errors:
        raise ValidationFailed(errors)


IsoDate = Annotated[
    date, BeforeValidator(_iso_date), AfterValidator(within_days), Field(description="A UTC day, YYYY-MM-DD")
]


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


def maximal_event_bytes() -> int:
    """The compact JSON size of one event with every field at its bound (ASCII text, metadata at its cap).

    The batch route's body limit is a thousand of these: a body past it cannot be a valid batch of plain
    events, and refusing it unread keeps a caller from making the server parse (and hold) a flood of JSON.
    """
    biggest_int = max(MAX_TOKENS_PER_EVENT, MAX_CREDITS_PER_EVENT, MAX_DURATION_MS)
    event: dict[str, Any] = {name: "x" * MAX_ID_CHARS for name in ID_FIELDS}
    event.update(
        model="m" * MAX_MODEL_CHARS,
        provider="p" * 64,
        task_type=max((task.value for task in TaskType), key=len),
        error_message="e" * MAX_ERROR_MESSAGE_CHARS,
        metadata={"k": "v" * (MAX_METADATA_BYTES - len('{"k":""}'))},
        timestamp="2026-11-24T10:00:00.000000+00:00",
        success=False,
        request_duration_ms=MAX_DURATION_MS,
        **{name: biggest_int for name in COUNT_FIELDS},
    )
    return len(json.dumps(event, separators=(",", ":")))


class BatchItem(BaseModel):
    index: int = Field(description="Position of the event in the request")
    status: LogStatus
    log: AIUsageLog | None = Field(default=None, description="The stored row (stored or duplicate)")
    errors: list[FieldError] = Field(
        default_factory=list, description="Why the event was rejected, or which fields conflict with the stored one"
    )


class BatchResponse(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    conflicts: int = Field(default=0, description="Events whose request_id was logged with other content")
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


# -- OpenTelemetry (OTLP/HTTP) ----------------------------------------------------------------------------
class RawBodyModel(BaseModel):
    """Documents a body its handler decodes itself: ``dispatch`` passes such a route the undecoded bytes and
    content type (``request.RawBody``) instead of parsed JSON, so one route can take JSON and protobuf."""


class OtlpTracesRequest(RawBodyModel):
    """An OTLP ``ExportTraceServiceRequest``: OTLP/JSON (``application/json``) or binary protobuf
    (``application/x-protobuf``), optionally gzip-compressed. Each span with ``gen_ai.operation.name`` becomes
    one usage event; other spans are ignored. Unknown fields are ignored, as OTLP requires."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    # null is an empty list, as protobuf's JSON mapping reads null for any field
    resource_spans: list[dict[str, Any]] | None = Field(
        default=None, alias="resourceSpans", description="ResourceSpans objects (OTLP/JSON)"
    )


class OtlpPartialSuccess(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    rejected_spans: int = Field(alias="rejectedSpans", description="GenAI spans that were not recorded")
    error_message: str = Field(alias="errorMessage", description="Why, for the first rejected spans")


class OtlpTracesResponse(BaseModel):
    """An OTLP ``ExportTraceServiceResponse``: ``{}`` when every GenAI span was recorded (or was a re-export of
    one already recorded); ``partialSuccess`` when some were rejected (the others are recorded all the same)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    partial_success: OtlpPartialSuccess | None = Field(default=None, alias="partialSuccess")
