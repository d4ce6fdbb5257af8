"""``ai-usage tenant daily|monthly|summary TENANT_ID``: a tenant's day, month and last days, from its rollups.

Also what every tenant-aware command shares: the ``--tenant-id`` option and how an empty id reads (the default
tenant, as events logged without one), and bad values reported under the option's own name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import ParamSpec, TypeVar

import click

from models.analytics import TenantDailyUsage, TenantMonthlyUsage, TenantUsageSummary
from services.cli import tables
from services.cli.common import ISO_DAY, emit, json_option, load_settings, open_service, translate_errors
from services.errors import ValidationFailed
from services.time_ranges import MAX_RANGE_DAYS

P = ParamSpec("P")
R = TypeVar("R")


def tenant_of(value: str | None) -> str | None:
    """An id as given on the command line: blank means the default tenant (``None`` to the service)."""
    if value is None:
        return None
    return value.strip() or None


def options_named(command: Callable[P, R]) -> Callable[P, R]:
    """A ``ValidationFailed`` about a field that is one of the command's options (``end``, ``limit``, ``date``…)
    becomes click's usage error naming that option (``Invalid value for '--end'``, exit 2); others pass on."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ValidationFailed as exc:
            ctx = click.get_current_context()
            for error in exc.fields:
                flag = f"--{error.field.replace('_', '-')}"
                param = next((p for p in ctx.command.params if p.name == error.field or flag in p.opts), None)
                if param is not None:
                    messages = "; ".join(e.message for e in exc.fields if e.field == error.field)
                    raise click.BadParameter(messages, ctx=ctx, param=param) from exc
            raise

    return wrapper


def player_tenant_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--tenant-id",
        help="The tenant the player or session belongs to (default: the default tenant, events logged without one).",
    )(command)


# -- rendering --------------------------------------------------------------------------------------------------
def tenant_name(tenant_id: str | None) -> str:
    return "the default tenant" if tenant_id is None else f"tenant {tables.terminal_safe(tenant_id)}"


def provider_table(requests: Mapping[str, int], cost: Mapping[str, Decimal]) -> str:
    if not requests:
        return "provider: none"
    rows = [(name, tables.count(requests[name]), tables.usd(cost[name]), tables.exact(cost[name])) for name in requests]
    return tables.table(("provider", "requests", "cost", "exact USD"), rows, "lrrr")


def render_daily(usage: TenantDailyUsage) -> str:
    title = f"Usage of {tenant_name(usage.tenant_id)} on {usage.date.isoformat()} (UTC)"
    body = provider_table(usage.requests_by_provider, usage.cost_by_provider)
    return f"{title}\n{tables.totals(usage)}\n\n{body}\n\n{tables.kinds_table(usage)}"


def render_monthly(usage: TenantMonthlyUsage) -> str:
    title = f"Usage of {tenant_name(usage.tenant_id)} in {usage.year:04d}-{usage.month:02d} (UTC)"
    body = provider_table(usage.requests_by_provider, usage.cost_by_provider)
    return f"{title}\n{tables.totals(usage)}\n\n{body}\n\n{tables.kinds_table(usage)}"


def render_summary(usage: TenantUsageSummary) -> str:
    # Events logged without a feature are summed under "" by the service; a heading cell cannot be empty.
    features = {name or "(none)": part for name, part in usage.by_feature.items()}
    return "\n\n".join(
        [
            f"Usage of {tenant_name(usage.tenant_id)}, last {usage.days} day(s): {usage.start.isoformat()} to "
            f"{usage.end.isoformat()} (UTC)\n{tables.totals(usage)}",
            tables.breakdown_table("feature", features),
            tables.breakdown_table("task", usage.by_task),
            tables.breakdown_table("provider", usage.by_provider),
            tables.kinds_table(usage),
        ]
    )


# -- commands ---------------------------------------------------------------------------------------------------
TENANT_ARGUMENT = click.argument("tenant_id")


@click.group("tenant")
def tenant() -> None:
    """A tenant's usage: its day, month and last days (TENANT_ID "" is the default tenant)."""


@tenant.command("daily")
@TENANT_ARGUMENT
@click.option("--date", "day", type=ISO_DAY, help="UTC day (default: today, UTC).")
@json_option
@translate_errors
@options_named
def daily(tenant_id: str, day: date | None, as_json: bool) -> None:
    """A tenant's usage on a UTC day: totals, requests and cost by provider."""
    with open_service(load_settings()) as service:
        usage = service.get_tenant_daily_usage(tenant_of(tenant_id), day)
    emit(usage, render_daily, as_json)


@tenant.command("monthly")
@TENANT_ARGUMENT
@click.option("--year", type=click.IntRange(1970, 9999), help="Default: this year (UTC).")
@click.option("--month", type=click.IntRange(1, 12), help="1-12. Default: this month (UTC).")
@json_option
@translate_errors
@options_named
def monthly(tenant_id: str, year: int | None, month: int | None, as_json: bool) -> None:
    """A tenant's usage in a calendar month (UTC): totals, requests and cost by provider."""
    with open_service(load_settings()) as service:
        usage = service.get_tenant_monthly_usage(tenant_of(tenant_id), year, month)
    emit(usage, render_monthly, as_json)


@tenant.command("summary")
@TENANT_ARGUMENT
@click.option(
    "--days", type=click.IntRange(1, MAX_RANGE_DAYS), default=30, show_default=True, help="UTC days, today included."
)
@json_option
@translate_errors
@options_named
def summary(tenant_id: str, days: int, as_json: bool) -> None:
    """A tenant's last N days: totals, and requests, tokens and cost by feature, task type and provider."""
    with open_service(load_settings()) as service:
        usage = service.get_tenant_usage_summary(tenant_of(tenant_id), days)
    emit(usage, render_summary, as_json)


commands: list[click.Command] = [tenant]
