"""Query strings and handlers of the tenant, analytics and export routes (the route table lists them).

Ranges are UTC days, both ends included, defaulting to the last seven days; series take instants.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from models.ai_usage import MAX_MODEL_CHARS, TaskType
from models.analytics import (
    Breakdown,
    ErrorRate,
    Interval,
    LatencyReport,
    RealtimeMetrics,
    TenantDailyUsage,
    TenantMonthlyUsage,
    TenantUsageSummary,
    TimeSeries,
    TopOperations,
    TopPlayers,
)
from models.field_rules import AwareDatetime, OptionalIdentifier
from services.cli.export_command import EXPORT_FIELDS, csv_cells, jsonl_line
from services.store import EventFilter
from services.time_ranges import MAX_RANGE_DAYS, MAX_TOP

from .handlers import Call
from .responses import ApiResponse
from .schemas import IsoDate, within_days

DEFAULT_RANGE_DAYS = 7
CSV_TYPE = "text/csv; charset=utf-8"
JSONL_TYPE = "application/x-ndjson"
_ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_instant(value: object) -> object:
    # pydantic would read "0.5" as Unix seconds; the API documents ISO-8601 with an offset, so say so.
    if isinstance(value, str) and not _ISO_INSTANT.match(value):
        raise ValueError("must be an ISO-8601 date-time with a UTC offset, e.g. 2026-11-24T00:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_instant), AfterValidator(within_days)]
EXPORT_PAGE = 1000


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantQuery(_Query):
    tenant_id: OptionalIdentifier = Field(default=None, description="The tenant; default: the default tenant")


class TenantDayQuery(TenantQuery):
    date: IsoDate | None = Field(default=None, description="UTC day as YYYY-MM-DD; default: today (UTC)")


class TenantMonthQuery(TenantQuery):
    year: int | None = Field(default=None, ge=1970, le=9999, description="Default: this year (UTC)")
    month: int | None = Field(default=None, ge=1, le=12, description="1-12; default: this month (UTC)")


class EveryTenantQuery(_Query):
    tenant_id: OptionalIdentifier = Field(default=None, description="One tenant only; default: every tenant")


class DaysQuery(_Query):
    days: int = Field(default=30, ge=1, le=MAX_RANGE_DAYS, description="The last N UTC days, today included")


class RangeQuery(_Query):
    start: IsoDate | None = Field(default=None, description="First UTC day; default: six days before end")
    end: IsoDate | None = Field(default=None, description="Last UTC day (included); default: today")
    tenant_id: OptionalIdentifier = Field(default=None, description="One tenant only; default: every tenant")

    def days(self, today: date) -> tuple[date, date]:
        end = self.end or today
        return self.start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1), end


class TopQuery(RangeQuery):
    limit: int = Field(default=10, ge=1, le=MAX_TOP)


class LatencyQuery(RangeQuery):
    provider: str | None = Field(default=None, max_length=64)


class TopPlayersQuery(TopQuery):
    start: IsoDate | None = Field(default=None, description="First UTC day; default: today (one day)")

    def days(self, today: date) -> tuple[date, date]:
        start = self.start or self.end or today
        return start, self.end or start


class SeriesQuery(_Query):
    interval: Interval = Interval.DAY
    start: Instant | None = Field(default=None, description="Default: 7 days (hour: 24 hours) before end")
    end: Instant | None = Field(default=None, description="Exclusive; default: the end of the current bucket")
    provider: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=MAX_MODEL_CHARS)
    task_type: TaskType | None = None
    tenant_id: OptionalIdentifier = Field(default=None, description="One tenant only; default: every tenant")


class ExportQuery(_Query):
    format: Literal["csv", "jsonl"] = "jsonl"
    user_id: OptionalIdentifier = None
    session_id: OptionalIdentifier = None
    model: str | None = Field(default=None, max_length=MAX_MODEL_CHARS)
    start: Instant | None = Field(default=None, description="Inclusive")
    end: Instant | None = Field(default=None, description="Exclusive")

    @model_validator(mode="after")
    def _ordered(self) -> ExportQuery:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


# -- tenants ----------------------------------------------------------------------------------------------
def tenant_daily(call: Call) -> TenantDailyUsage:
    query: TenantDayQuery = call.query
    return call.service.get_tenant_daily_usage(call.params["tenant_id"], query.date)


def tenant_monthly(call: Call) -> TenantMonthlyUsage:
    query: TenantMonthQuery = call.query
    return call.service.get_tenant_monthly_usage(call.params["tenant_id"], query.year, query.month)


def tenant_summary(call: Call) -> TenantUsageSummary:
    query: DaysQuery = call.query
    return call.service.get_tenant_usage_summary(call.params["tenant_id"], query.days)


# -- analytics --------------------------------------------------------------------------------------------
def realtime(call: Call) -> RealtimeMetrics:
    query: EveryTenantQuery = call.query
    return call.service.get_realtime_metrics(query.tenant_id)


def aggregates(call: Call) -> TimeSeries:
    query: SeriesQuery = call.query
    # By default the series ends with the bucket now falls in: the current hour, today, this month.
    now = call.service.clock().astimezone(UTC)
    if query.interval is Interval.HOUR:
        current, back = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1), timedelta(hours=24)
    else:
        current, back = (
            datetime.combine(now.date() + timedelta(days=1), time(), UTC),
            timedelta(days=DEFAULT_RANGE_DAYS),
        )
    end = query.end or current
    return call.service.get_time_series(
        query.start or end - back, end, query.interval, query.provider, query.model,
        None if query.task_type is None else query.task_type.value, query.tenant_id,
    )  # fmt: skip


def cost_by_provider(call: Call) -> Breakdown:
    query: RangeQuery = call.query
    return call.service.get_cost_by_provider(*query.days(call.service.today()), query.tenant_id)


def cost_by_model(call: Call) -> Breakdown:
    query: RangeQuery = call.query
    return call.service.get_cost_by_model(*query.days(call.service.today()), query.tenant_id)


def latency(call: Call) -> LatencyReport:
    query: LatencyQuery = call.query
    return call.service.get_latency_report(*query.days(call.service.today()), query.tenant_id, query.provider)


def top_players(call: Call) -> TopPlayers:
    query: TopPlayersQuery = call.query
    return call.service.get_top_players(*query.days(call.service.today()), query.limit, query.tenant_id)


def top_operations(call: Call) -> TopOperations:
    query: TopQuery = call.query
    return call.service.get_top_operations(*query.days(call.service.today()), query.limit, query.tenant_id)


class ErrorRates(BaseModel):
    start: date
    end: date
    by_provider: dict[str, ErrorRate]


def errors_by_provider(call: Call) -> ErrorRates:
    query: RangeQuery = call.query
    first, last = query.days(call.service.today())
    return ErrorRates(start=first, end=last, by_provider=call.service.get_error_rates(first, last, query.tenant_id))


# -- export -------------------------------------------------------------------------------------------------
def export(call: Call) -> ApiResponse:
    """Raw events oldest first, page by page as they are sent (bounded memory), formulas neutralised as in the CLI."""
    query: ExportQuery = call.query
    where = EventFilter(
        user_id=query.user_id, session_id=query.session_id, model=query.model, start=query.start, end=query.end
    )
    first = call.service.list_events(where, limit=EXPORT_PAGE)  # a store failure is an error answer, not a cut file
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    content_type = CSV_TYPE if query.format == "csv" else JSONL_TYPE
    disposition = f'attachment; filename="ai-usage-{stamp}.{query.format}"'
    return ApiResponse(
        200, None, {"Content-Disposition": disposition}, content_type=content_type,
        chunks=_export_chunks(call, where, first, query.format),
    )  # fmt: skip


def _export_chunks(call: Call, where: EventFilter, page, fmt: str) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv":
        writer.writerow(EXPORT_FIELDS)
    while True:
        for log in page.items:
            if fmt == "csv":
                writer.writerow(csv_cells(log))
            else:
                buffer.write(jsonl_line(log) + "\n")
        yield buffer.getvalue().encode("utf-8", "replace")
        buffer.seek(0)
        buffer.truncate()
        if page.next_cursor is None:
            return
        page = call.service.list_events(where, limit=EXPORT_PAGE, cursor=page.next_cursor)
