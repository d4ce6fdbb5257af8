"""Ledger commands: log an event and read the summaries back. Each one reads the settings, opens the
service, makes one call and prints a table or ``--json``; prices, export and demo live beside this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

import click

from models.usage_kinds import KIND_NAMES, USAGE_KINDS
from services.cli import tables
from services.cli.common import (
    EXIT_INVALID,
    ISO_DAY,
    CommandFailed,
    emit,
    json_option,
    load_settings,
    open_service,
    translate_errors,
)
from services.cli.demo_command import demo
from services.cli.export_command import export
from services.cli.price_commands import prices
from services.cli.tenant_commands import player_tenant_option, tenant_of

# Options of `log` that map one-to-one onto UsageEvent fields; None means "not given", so defaults apply.
_EVENT_OPTIONS = (
    "request_id", "user_id", "tenant_id", "model", "provider", "task_type", "feature", *KIND_NAMES, "session_id",
    "character_id", "request_duration_ms", "error_message", "timestamp",
)  # fmt: skip


def _kind_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One ``--tokens-input``-style option per usage kind, from the table of kinds."""
    for kind in reversed(USAGE_KINDS):
        about = kind.description[:1].upper() + kind.description[1:]
        command = click.option(f"--{kind.name.replace('_', '-')}", type=int, help=f"{about} ({kind.unit}s).")(command)
    return command


@click.command("log")
@click.option("--user-id", required=True, help="The player (or account) the request was made for.")
@click.option("--model", required=True, help="Model id as the provider reports it, e.g. anthropic/claude-3.5-sonnet.")
@click.option("--task-type", help="story_progression, combat_narration, quest_selection, npc_dialogue or general.")
@_kind_options
@click.option("--request-id", help="Idempotency key; logging it again reports a duplicate. Generated if absent.")
@click.option("--session-id")
@click.option("--character-id")
@click.option("--tenant-id", help="The tenant (a game, a studio's title); default: the default tenant.")
@click.option("--feature", help="The product feature that made the call (a template, a quest board…).")
@click.option("--provider", help="Inferred from the model id when absent.")
@click.option("--duration-ms", "request_duration_ms", type=int, help="How long the request took.")
@click.option("--failed", is_flag=True, help="The request failed (it is still counted and priced).")
@click.option("--error-message")
@click.option("--metadata", help='A small JSON object, e.g. \'{"quest": "q-17"}\'.')
@click.option("--timestamp", help="ISO-8601 with a timezone, e.g. 2026-11-23T10:00:00Z (default: now).")
@json_option
@translate_errors
def log_command(failed: bool, metadata: str | None, as_json: bool, **options: Any) -> None:
    """Log one AI request and print whether it was stored or was a duplicate."""
    event = {name: options[name] for name in _EVENT_OPTIONS if options.get(name) is not None}
    if failed:
        event["success"] = False
    if metadata is not None:
        event["metadata"] = _metadata(metadata)
    with open_service(load_settings()) as service:
        result = service.log_usage(**event)
    emit(result, tables.log_result, as_json)


def _metadata(text: str) -> Any:
    """``--metadata`` parsed; the service checks its shape (an object, how deep, how big) and names it."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        why = f"must be a JSON object ({exc})"
    except RecursionError:  # json.loads gives up on a few thousand levels of nesting this way
        why = "is nested too deeply"
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        why = "holds a number too long to read"
    raise CommandFailed("invalid input", [f"metadata: {why}"], EXIT_INVALID)


@click.command("daily")
@click.argument("user_id")
@click.option("--date", "day", type=ISO_DAY, help="UTC day (default: today, UTC).")
@player_tenant_option
@json_option
@translate_errors
def daily(user_id: str, day: date | None, tenant_id: str | None, as_json: bool) -> None:
    """One player's usage on a UTC day, by task type."""
    tenant = tenant_of(tenant_id)
    with open_service(load_settings()) as service:
        summary = service.get_daily_usage(user_id, day, tenant_id=tenant)
    emit(summary, partial(tables.daily, tenant_id=tenant), as_json)


@click.command("monthly")
@click.argument("user_id")
@click.option("--year", type=int, help="Default: this year (UTC).")
@click.option("--month", type=int, help="1-12. Default: this month (UTC).")
@player_tenant_option
@json_option
@translate_errors
def monthly(user_id: str, year: int | None, month: int | None, tenant_id: str | None, as_json: bool) -> None:
    """One player's usage and cost in a calendar month (UTC)."""
    tenant = tenant_of(tenant_id)
    with open_service(load_settings()) as service:
        summary = service.get_monthly_cost(user_id, year, month, tenant_id=tenant)
    emit(summary, partial(tables.monthly, tenant_id=tenant), as_json)


@click.command("global")
@click.option("--date", "day", type=ISO_DAY, help="UTC day (default: today, UTC).")
@json_option
@translate_errors
def global_daily(day: date | None, as_json: bool) -> None:
    """Everyone's usage on a UTC day: cost by model, provider and task type, and unpriced requests."""
    with open_service(load_settings()) as service:
        usage = service.get_global_daily_usage(day)
    emit(usage, tables.global_daily, as_json)


@click.command("summary")
@click.argument("user_id")
@click.option("--days", type=int, default=30, show_default=True, help="How many UTC days, today included.")
@player_tenant_option
@json_option
@translate_errors
def summary(user_id: str, days: int, tenant_id: str | None, as_json: bool) -> None:
    """One player's usage over the last N days, by task type and by day."""
    tenant = tenant_of(tenant_id)
    with open_service(load_settings()) as service:
        usage = service.get_usage_summary(user_id, days, tenant_id=tenant)
    emit(usage, partial(tables.usage_summary, tenant_id=tenant), as_json)


@click.command("session")
@click.argument("session_id")
@player_tenant_option
@json_option
@translate_errors
def session(session_id: str, tenant_id: str | None, as_json: bool) -> None:
    """What one play session cost, by task type."""
    tenant = tenant_of(tenant_id)
    with open_service(load_settings()) as service:
        usage = service.get_session_usage(session_id, tenant_id=tenant)
    emit(usage, partial(tables.session, tenant_id=tenant), as_json)


commands: list[click.Command] = [log_command, daily, monthly, global_daily, summary, session, prices, export, demo]
