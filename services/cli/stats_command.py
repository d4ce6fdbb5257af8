"""``ai-usage stats …``: the admin analytics (series, costs, operations, errors, latency, top players, last 24 hours).

Each command reads the settings, opens the service, makes one analytics call (a bounded read of rollups) and
prints its table, or the answer's JSON with ``--json``. Ranges are UTC days with both ends included (default: the
last seven days, today included); a series takes instants. ``--tenant-id`` narrows to one tenant ("" is the
default tenant); without it every tenant counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import click
from pydantic import TypeAdapter

from models.ai_usage import TaskType
from models.analytics import (
    ErrorRate,
    Interval,
)
from services.cli.common import ISO_DAY, ISO_MOMENT, IsoMoment, emit, json_option, load_settings, open_service
from services.cli.common import translate_errors as _translate
from services.cli.stats_render import (
    glyphs,
    render_breakdown,
    render_errors,
    render_latency,
    render_operations,
    render_players,
    render_realtime,
    render_series,
)
from services.cli.tenant_commands import options_named
from services.time_ranges import FIRST_DAY, LAST_DAY, MAX_TOP, as_instant, outside_days

DEFAULT_RANGE_DAYS = 7
EPOCH = datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC)


class EndMoment(IsoMoment):
    """As ``IsoMoment`` but a bare YYYY-MM-DD ends *after* that day, so ``--end 2026-11-07`` includes the 7th."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        moment = super().convert(value, param, ctx)
        if len(str(value).strip()) != 10:
            return moment  # an instant: the service checks it and names --end
        # The series ends at the next midnight, which must itself be a day the ledger knows (9998-12-31 at the
        # latest): checked here, before the day is added, so 9999-12-31 is refused rather than overflowing.
        if outside_days(moment.date()) is not None or moment.date() == LAST_DAY:
            self.fail(f"a bare date must be from {FIRST_DAY} to {LAST_DAY - timedelta(days=1)}", param, ctx)
        return moment + timedelta(days=1)


def translate_errors(command: Callable[..., None]) -> Callable[..., None]:
    # Service errors about an option name it; anything else is the ledger's usual error and exit code.
    return _translate(options_named(command))


tenant_option = click.option(
    "--tenant-id",
    callback=lambda _ctx, _param, value: None if value is None else value.strip(),
    help='One tenant only ("" is the default tenant, events logged without one); default: every tenant.',
)
ascii_option = click.option("--ascii", "force_ascii", is_flag=True, help="Draw the chart in ASCII.")


def range_options(default_days: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def add(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option("--end", type=ISO_DAY, help="Last UTC day, included (default: today, UTC).")(command)
        first = "the day of --end" if default_days == 1 else f"{default_days - 1} days before --end"
        return click.option("--start", type=ISO_DAY, help=f"First UTC day (default: {first}).")(command)

    return add


def day_range(today: date, start: date | None, end: date | None, default_days: int) -> tuple[date, date]:
    """The days asked for; the service checks their order and length (and names --start or --end).

    A default start never precedes 1970-01-01: the service would refuse it as --start, which was not given."""
    last = end or today
    return start or max(FIRST_DAY, last - timedelta(days=default_days - 1)), last


def tenant_scope(value: str | None) -> str:
    """Who a title speaks of, unescaped (titles are escaped whole)."""
    if value is None:
        return "every tenant"
    return f"tenant {value}" if value else "the default tenant"


# -- commands -------------------------------------------------------------------------------------------------------
@click.group("stats")
def stats() -> None:
    """Admin analytics from the rollups: series, costs, operations, errors, latency, top players."""


@stats.command("series")
@click.option("--interval", type=click.Choice([i.value for i in Interval]), default="day", show_default=True)
@click.option("--start", type=ISO_MOMENT, help="ISO-8601 (a bare date is 00:00 UTC). Default: 24 hours, 30 days or "
              "12 months of buckets up to --end, by interval.")  # fmt: skip
@click.option("--end", type=EndMoment(), help="Exclusive instant, or a bare date whose day is included. Default: now.")
@click.option("--provider", help="Only this provider (as stored, e.g. openai).")
@click.option("--model", help="Only this model, exactly as logged (interval day or month).")
@click.option("--task-type", type=click.Choice([t.value for t in TaskType]), help="Only this task (day or month).")
@tenant_option
@ascii_option
@json_option
@translate_errors
def series(interval: str, start: datetime | None, end: datetime | None, tenant_id: str | None, force_ascii: bool,
           as_json: bool, **filters: str | None) -> None:  # fmt: skip
    """Requests, failures, tokens, cost and mean latency per hour, day or month, with a chart of each bucket."""
    with open_service(load_settings()) as service:
        stop = end or service.clock().astimezone(UTC)
        # Checked before a default start is counted back from it: an --end near year 1 would overflow there.
        as_instant(stop, "end")
        if start is None and stop <= EPOCH:  # else "must be after start", of a start nobody gave
            raise click.BadParameter(
                f"must be after {EPOCH.isoformat()}, the ledger's first instant", param_hint="'--end'"
            )
        begin = start or default_series_start(Interval(interval), stop)
        answer = service.get_time_series(begin, stop, interval, tenant_id=tenant_id, **filters)
    scope = ", ".join([f"{k.replace('_', ' ')} {v}" for k, v in filters.items() if v] + [tenant_scope(tenant_id)])
    emit(answer, partial(render_series, scope=scope, marks=glyphs(force_ascii)), as_json)


def default_series_start(interval: Interval, stop: datetime) -> datetime:
    """The first of the 24 hours, 30 days or 12 months whose last bucket holds ``stop`` (exclusive), but not before
    1970-01-01 00:00 UTC (the first bucket of every interval): --start was not given, so it must not be refused."""
    last = max(stop - timedelta(microseconds=1), EPOCH)
    if interval is Interval.HOUR:
        begin = last.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    elif interval is Interval.DAY:
        begin = last.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=29)
    else:
        months = last.year * 12 + last.month - 1 - 11
        begin = datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    return max(begin, EPOCH)


@stats.command("realtime")
@tenant_option
@ascii_option
@json_option
@translate_errors
def realtime(tenant_id: str | None, force_ascii: bool, as_json: bool) -> None:
    """The last 24 hours by hour (the current one included): totals, providers, error rates and latency."""
    with open_service(load_settings()) as service:
        answer = service.get_realtime_metrics(tenant_id)
    emit(answer, partial(render_realtime, scope=tenant_scope(tenant_id), marks=glyphs(force_ascii)), as_json)


def breakdown_command(name: str, method: str, about: str) -> click.Command:
    @stats.command(name, help=f"Cost by {about}: requests, failures, tokens, cost, mean latency over a range of days.")
    @range_options(DEFAULT_RANGE_DAYS)
    @tenant_option
    @json_option
    @translate_errors
    def command(start: date | None, end: date | None, tenant_id: str | None, as_json: bool) -> None:
        with open_service(load_settings()) as service:
            first, last = day_range(service.today(), start, end, DEFAULT_RANGE_DAYS)
            answer = getattr(service, method)(first, last, tenant_id)
        emit(answer, partial(render_breakdown, scope=tenant_scope(tenant_id)), as_json)

    return command


breakdown_command("providers", "get_cost_by_provider", "provider")
breakdown_command("models", "get_cost_by_model", "model (as logged)")
breakdown_command("tasks", "get_cost_by_task_type", "task type")
breakdown_command("features", "get_cost_by_feature", "feature")

limit_option = click.option(
    "--limit", type=click.IntRange(1, MAX_TOP), default=10, show_default=True, help="How many to list."
)


@stats.command("operations")
@range_options(DEFAULT_RANGE_DAYS)
@limit_option
@tenant_option
@json_option
@translate_errors
def operations(start: date | None, end: date | None, limit: int, tenant_id: str | None, as_json: bool) -> None:
    """The costliest operations (task type × provider): calls, failures, tokens, cost and mean latency."""
    with open_service(load_settings()) as service:
        first, last = day_range(service.today(), start, end, DEFAULT_RANGE_DAYS)
        answer = service.get_top_operations(first, last, limit, tenant_id)
    emit(answer, partial(render_operations, scope=tenant_scope(tenant_id)), as_json)


@stats.command("errors")
@range_options(DEFAULT_RANGE_DAYS)
@tenant_option
@json_option
@translate_errors
def errors(start: date | None, end: date | None, tenant_id: str | None, as_json: bool) -> None:
    """Requests, failures and error rate by provider, highest rate first."""
    with open_service(load_settings()) as service:
        first, last = day_range(service.today(), start, end, DEFAULT_RANGE_DAYS)
        rates = service.get_error_rates(first, last, tenant_id)
    if as_json:  # the shape of GET /v1/admin/errors/by-provider
        answer = {"start": first.isoformat(), "end": last.isoformat(), "by_provider": ERROR_RATES.dump_python(rates)}
        click.echo(json.dumps(answer, indent=2, ensure_ascii=True))
    else:
        click.echo(render_errors(rates, first, last, tenant_scope(tenant_id)))


ERROR_RATES = TypeAdapter(dict[str, ErrorRate])


@stats.command("latency")
@range_options(DEFAULT_RANGE_DAYS)
@click.option("--provider", help="Only this provider (as stored, e.g. openai).")
@tenant_option
@json_option
@translate_errors
def latency(start: date | None, end: date | None, provider: str | None, tenant_id: str | None, as_json: bool) -> None:
    """p50, p95 and p99 latency and success rate per provider and per model."""
    with open_service(load_settings()) as service:
        first, last = day_range(service.today(), start, end, DEFAULT_RANGE_DAYS)
        answer = service.get_latency_report(first, last, tenant_id, provider)
    emit(answer, partial(render_latency, scope=tenant_scope(tenant_id)), as_json)


@stats.command("players")
@click.option("--date", "day", type=ISO_DAY, help="One UTC day (the default: today); not with --start or --end.")
@range_options(1)
@limit_option
@tenant_option
@json_option
@translate_errors
def players(day: date | None, start: date | None, end: date | None, limit: int, tenant_id: str | None,
            as_json: bool) -> None:  # fmt: skip
    """The players who cost the most on a day or over a range of days."""
    if day is not None and (start or end):
        raise click.BadParameter("give either --date or --start/--end", param_hint="'--date'")
    with open_service(load_settings()) as service:
        first, last = (day, day) if day else day_range(service.today(), start, end, 1)
        answer = service.get_top_players(first, last, limit, tenant_id)
    emit(answer, partial(render_players, scope=tenant_scope(tenant_id)), as_json)


commands: list[click.Command] = [stats]
