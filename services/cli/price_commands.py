"""``ai-usage prices``: the price book as the service sees it (shipped file plus AI_USAGE_PRICES_FILE).

Prices need no store, so these commands load only the price book named by the settings.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from services.cli import tables
from services.cli.common import (
    ISO_MOMENT,
    configure_cli_logging,
    echo_json,
    json_option,
    load_settings,
    translate_errors,
)
from services.cli.litellm_command import import_litellm
from services.cli.reprice_command import reprice
from services.pricing import OTHER_RATES, PriceBook, PriceEntry, decimal_text, entry_json, rate_value


def _other_rates(entry: PriceEntry) -> str:
    """The rates beside input/output as one line of text; a rate the entry lacks is not shown."""
    parts = [
        f"{label} {format(rate, 'f')}" for _, key, label in OTHER_RATES if (rate := rate_value(entry, key)) is not None
    ]
    for tier, rates in entry.tiers:
        scale = f"x{format(rates.multiplier, 'f')}" if rates.multiplier is not None else ""
        named = " ".join(f"{key} {format(value, 'f')}" for key, value in rates.rates)
        parts.append(f"{tier}: {' '.join(p for p in (scale, named) if p)}")
    if entry.long_context is not None and entry.long_context_threshold is not None:
        long = entry.long_context
        rates = f"in {decimal_text(long.input_per_1k)} out {decimal_text(long.output_per_1k)}"
        parts.append(f">{entry.long_context_threshold:,} prompt tokens: {rates}")
    return ", ".join(parts)


def _row(entry: PriceEntry) -> tuple[str, ...]:
    note = " (contracted)" if entry.contracted else ""
    per_token = entry.unit in ("tokens", "free")
    return (
        entry.model_id + note,
        entry.provider,
        entry.unit,
        *((decimal_text(entry.input_per_1k), decimal_text(entry.output_per_1k)) if per_token else ("-", "-")),
        _other_rates(entry),
        entry.source_date.isoformat() if entry.source_date else "-",
    )


_HEADERS = ("model", "provider", "unit", "input/1K", "output/1K", "other rates (USD)", "source date")


def _load_book() -> PriceBook:
    settings = load_settings()
    configure_cli_logging(settings)
    return PriceBook.load(settings.prices_file)


@click.group("prices")
def prices() -> None:
    """List and look up the prices in force (USD per 1K tokens unless the unit says otherwise)."""


@prices.command("list")
@click.option("--at", "at", type=ISO_MOMENT, help="Prices in force at this moment (default: now).")
@json_option
@translate_errors
def list_prices(at: datetime | None, as_json: bool) -> None:
    """One row per model with the price in force, then the defaults that price unknown models."""
    when = at or datetime.now(UTC)
    book = _load_book()
    entries = book.current_entries(when)
    defaults = book.defaults()
    if as_json:
        echo_json(
            {
                "at": when.isoformat(),
                "models": [entry_json(e) for e in entries],
                "defaults": {provider: entry_json(e) for provider, e in sorted(defaults.items())},
            }
        )
        return
    click.echo(f"Prices in force at {when.isoformat()} (USD per 1K tokens; per request / per credit as stated)\n")
    click.echo(tables.table(_HEADERS, [_row(e) for e in entries], "lllrrll"))
    click.echo("\nDefaults for models not in the price book (flagged as unpriced on every event they price):\n")
    click.echo(tables.table(_HEADERS, [_row(defaults[p]) for p in sorted(defaults)], "lllrrll"))


@prices.command("show")
@click.argument("model")
@click.option("--at", "at", type=ISO_MOMENT, help="Price in force at this moment (default: now).")
@click.option("--provider", help="Provider hint, as log_usage takes it.")
@json_option
@translate_errors
def show_price(model: str, at: datetime | None, provider: str | None, as_json: bool) -> None:
    """The price entry a model id matches (aliases and spellings are normalised) and whether it is a fallback."""
    when = at or datetime.now(UTC)
    match = _load_book().lookup(model, at=when, provider=provider)
    if as_json:
        echo_json(
            {"query": model, "at": when.isoformat(), "is_fallback": match.is_fallback, "entry": entry_json(match.entry)}
        )
        return
    entry = match.entry
    matched = (
        f"{entry.model_id}: a DEFAULT rate, '{model}' is not in the price book" if match.is_fallback else entry.model_id
    )
    click.echo(tables.fields([
        ("query", model),
        ("matched", matched),
        ("fallback", "yes" if match.is_fallback else "no"),
        ("provider", entry.provider),
        ("unit", entry.unit),
        ("input/1K", decimal_text(entry.input_per_1k)),
        ("output/1K", decimal_text(entry.output_per_1k)),
        ("other rates", _other_rates(entry) or "-"),
        ("contracted", "yes" if entry.contracted else "no"),
        ("effective from", entry.effective_from.isoformat() if entry.effective_from else "always"),
        ("aliases", ", ".join(entry.aliases) or "-"),
        ("source", entry.source),
        ("source date", entry.source_date.isoformat() if entry.source_date else "-"),
    ]))  # fmt: skip


prices.add_command(import_litellm)  # LiteLLM price JSON -> a price file (services/cli/litellm_command.py)
prices.add_command(reprice)  # what stored events would cost under another price file (services/reprice.py)
