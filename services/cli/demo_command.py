"""``ai-usage demo``: log a sample day of game traffic into the configured store and print what it cost.

The README's "run it" fallback: it shows idempotent retries, failed requests and default-priced models
going through the real service, then the same summaries the other commands print.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import click

from models.ai_usage import LogResult, LogStatus
from services.cli import tables
from services.cli.common import load_settings, open_service, store_label, translate_errors
from services.cli.demo_data import PLAYERS, sample_events
from services.usage_tracking_service import MAX_BATCH_EVENTS


def _describe(result: LogResult, what: str) -> str:
    log = result.log
    if log is None:
        return f"{what}: {result.status.value}"
    return f"{what} {log.request_id}: {result.status.value}"


@click.command("demo")
@click.option(
    "--events",
    "count",
    type=click.IntRange(7, 100_000),
    default=60,
    show_default=True,
    help="How many sample requests to log (plus one retry).",
)
@translate_errors
def demo(count: int) -> None:
    """Log a realistic sample of game AI requests, then print daily, monthly and global summaries."""
    settings = load_settings()
    now = datetime.now(UTC)
    events = sample_events(count, uuid.uuid4().hex[:8], now)
    click.echo(
        f"ai-usage demo: logging {count:,} sample AI requests of {len(PLAYERS)} players into {store_label(settings)}\n"
    )
    with open_service(settings) as service:
        results: list[LogResult] = []
        for start in range(0, len(events), MAX_BATCH_EVENTS):
            results.extend(service.log_usage_batch(events[start : start + MAX_BATCH_EVENTS]))
        # The game timed out waiting for the first answer and sent the same request again.
        retry = service.log_usage(**events[0])
        counts = {player: service.request_count_today(player) for player in PLAYERS}
        busiest = max(PLAYERS, key=lambda p: counts[p].count)
        daily = service.get_daily_usage(busiest)
        monthly = service.get_monthly_cost(busiest)
        everyone = service.get_global_daily_usage()

    by_status = {status: sum(r.status is status for r in results) for status in LogStatus}
    failed, unknown = results[5], results[6]
    lines = [
        f"logged {len(results):,} events: {by_status[LogStatus.STORED]:,} stored, "
        f"{by_status[LogStatus.DUPLICATE]:,} duplicates, {by_status[LogStatus.REJECTED]:,} rejected",
        f"{_describe(retry, 'retry of request')} — the same request_id again, so nothing was stored twice "
        "and no total changed",
        f"{_describe(failed, 'failed request')} — kept and counted as failed "
        f"({failed.log.error_message if failed.log else ''})",
    ]
    if unknown.log is not None:
        flag = "fallback price" if unknown.log.price_is_fallback else "priced"
        lines.append(
            f"unknown model {unknown.log.model}: {flag}, by the default entry '{unknown.log.price_model_id}' "
            f"at {tables.cost(unknown.log.estimated_cost_exact)}, counted as unpriced in the summaries"
        )
    click.echo("\n".join(lines))
    click.echo(f"\n== Busiest player today: {busiest} ==\n")
    click.echo(tables.daily(daily))
    click.echo("")
    click.echo(tables.monthly(monthly))
    click.echo("\n== Everyone today ==\n")
    click.echo(tables.global_daily(everyone))
    click.echo("\n== Rate limiter: AI requests today (get_user_request_count_today) ==\n")
    rows = [
        (p, tables.count(c.count) + (" (store unavailable: fail-open)" if c.degraded else ""))
        for p, c in counts.items()
    ]
    click.echo(tables.table(("player", "requests today"), rows, "lr"))
    click.echo(
        "\nTotals include every earlier run against this store. Try: ai-usage daily "
        f"{busiest} · ai-usage global --json · ai-usage export --format jsonl"
    )
