"""``ai-usage prices reprice``: what a window of stored events would cost under another price file.

Glue only: the window and the repricing live in ``services/reprice.py``, reached through the service.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import click

from services.cli import tables
from services.cli.common import (
    ISO_MOMENT,
    echo_json,
    invalid,
    json_option,
    load_settings,
    open_service,
    translate_errors,
)
from services.reprice import CostChange, RepriceReport


def _signed(value: Decimal) -> str:
    return ("-" if value < 0 else "+") + tables.usd(abs(value))


def _money(change: CostChange) -> tuple[str, str, str, str]:
    return (
        tables.usd(change.cost_before),
        tables.usd(change.cost_after),
        _signed(change.change),
        tables.exact(change.change),
    )


_MONEY_HEADERS = ("before", "after", "change", "exact change USD")


def _render(report: RepriceReport, heading: str) -> str:
    head = tables.fields([
        ("events", f"{tables.count(report.events)} ({tables.count(report.repriced_events)} priced differently)"),
        ("cost as stored", tables.cost(report.cost_before)),
        ("cost repriced", tables.cost(report.cost_after)),
        ("change", f"{_signed(report.change)} (exact {tables.exact(report.change)} USD)"),
    ])  # fmt: skip
    models = [
        (
            model,
            tables.count(m.events),
            tables.count(m.repriced_events),
            *_money(m),
            ", ".join(m.price_versions_before),
            ", ".join(m.price_versions_after),
        )
        for model, m in report.by_model.items()
    ]
    parts = [(part, *_money(p)) for part, p in report.by_part.items()]
    return "\n\n".join(
        [
            f"{tables.terminal_safe(heading)}\n{head}",
            tables.table(
                ("model", "events", "repriced", *_MONEY_HEADERS, "price as stored", "price repriced"),
                models,
                "lrrrrrrll",
            )
            if models
            else "model: none",
            tables.table(("part", *_MONEY_HEADERS), parts, "lrrrr") if parts else "part: none",
        ]
    )


@click.command("reprice")
@click.option(
    "--prices",
    "prices_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A price file laid on the shipped price book in place of AI_USAGE_PRICES_FILE (which is not applied): "
    "to keep your overrides, copy that file and edit the copy.",
)
@click.option("--start", type=ISO_MOMENT, required=True, help="From this moment, inclusive (a bare date is 00:00 UTC).")
@click.option("--end", type=ISO_MOMENT, required=True, help="Up to this moment, exclusive.")
@click.option("--user-id", help="Only this player's events.")
@click.option("--tenant-id", help="Only this tenant's events.")
@json_option
@translate_errors
def reprice(
    prices_file: Path, start: datetime, end: datetime, user_id: str | None, tenant_id: str | None, as_json: bool
) -> None:
    """What the events from --start to --end would cost under another price file, by model and usage kind,
    beside what they did cost. Each event is priced at its own timestamp; nothing stored changes."""
    if end <= start:
        raise invalid("--end", "must be after --start (the end is exclusive)")
    with open_service(load_settings()) as service:
        report = service.reprice(prices_file, start, end, user_id=user_id, tenant_id=tenant_id)
    window = {"start": start.isoformat(), "end": end.isoformat(), "user_id": user_id, "tenant_id": tenant_id}
    if as_json:
        echo_json({**window, "prices_file": str(prices_file), **report.model_dump(mode="json")})
        return
    who = f"user {user_id}" if user_id else "all users"
    tenant = f", tenant {tenant_id}" if tenant_id else ""
    heading = (
        f"Events from {start.isoformat()} to {end.isoformat()} (UTC, end exclusive), {who}{tenant}: as stored, and "
        f"repriced with {prices_file} on top of the shipped price book. Nothing stored changes."
    )
    click.echo(_render(report, heading))
