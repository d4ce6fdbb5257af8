"""What ``ai-usage stats …`` prints: the analytics answers as terminal tables and sparklines (``stats_command`` reads
them; these only render)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from models.analytics import (
    Breakdown,
    ErrorRate,
    Interval,
    LatencyReport,
    RealtimeMetrics,
    SeriesPoint,
    SliceStats,
    TimeSeries,
    TopOperations,
    TopPlayers,
)
from services.cli import tables

BUCKET_LABELS = {Interval.HOUR: "%Y-%m-%d %H:00", Interval.DAY: "%Y-%m-%d", Interval.MONTH: "%Y-%m"}


def glyphs(force_ascii: bool) -> str:
    return tables.SPARK_ASCII if force_ascii else tables.chart_glyphs(getattr(sys.stdout, "encoding", None))


def with_total(items: Mapping[str, SliceStats]) -> dict[str, SliceStats]:
    """The rows and a ``total`` row (the mean latency of a sum of means is unknown, so it is left out)."""
    total = SliceStats(
        requests=sum(s.requests for s in items.values()),
        failed_requests=sum(s.failed_requests for s in items.values()),
        tokens=sum(s.tokens for s in items.values()),
        cost_usd=sum((s.cost_usd for s in items.values()), start=Decimal(0)),
        mean_latency_ms=None,
    )
    return {**items, "total": total}


def series_charts(points: list[SeriesPoint], interval: Interval, marks: str) -> str:
    """Two sparklines, one glyph per bucket: cost, then requests, each naming its highest bucket."""
    label = BUCKET_LABELS[interval]
    parts = []
    for name, values, show in (
        ("cost (USD)", [p.cost_usd for p in points], tables.usd),
        ("requests", [p.requests for p in points], tables.count),
    ):
        top = max(range(len(values)), key=lambda i: values[i], default=None)
        peak = "" if top is None or not values[top] else f"; highest {show(values[top])} at {points[top].start:{label}}"
        parts.append(tables.chart(f"{name} per {interval.value}, one mark per bucket{peak}", values, marks))
    return "\n".join(parts)


def render_series(series: TimeSeries, scope: str, marks: str) -> str:
    label = BUCKET_LABELS[series.interval]
    rows = {f"{p.start:{label}}": SliceStats(**p.model_dump(exclude={"start"})) for p in series.points}
    title = (
        f"{series.interval.value.capitalize()} series from {series.start:%Y-%m-%d %H:%M} to {series.end:%Y-%m-%d %H:%M}"
        f" UTC (end excluded), {scope}"
    )  # scope holds the filters as typed
    table = tables.slice_table(series.interval.value, {**rows, "total": series.total})
    return f"{tables.terminal_safe(title)}\n\n{series_charts(series.points, series.interval, marks)}\n\n{table}"


def render_realtime(metrics: RealtimeMetrics, scope: str, marks: str) -> str:
    hours = {f"{p.start:%Y-%m-%d %H:00}": SliceStats(**p.model_dump(exclude={"start"})) for p in metrics.hours}
    return "\n\n".join(
        [
            tables.terminal_safe(
                f"Last 24 hours, {metrics.start:%Y-%m-%d %H:%M} to {metrics.end:%Y-%m-%d %H:%M} UTC, {scope}"
            ),
            series_charts(metrics.hours, Interval.HOUR, marks),
            tables.slice_table("hour", {**hours, "total": metrics.total}),
            tables.slice_table("provider", metrics.by_provider),
            error_table(metrics.errors_by_provider),
            tables.percentiles_table("provider", metrics.latency_by_provider),
        ]
    )


def range_title(what: str, first: date, last: date, scope: str) -> str:
    return tables.terminal_safe(f"{what}, {first.isoformat()} to {last.isoformat()} (UTC days, both included), {scope}")


def render_breakdown(report: Breakdown, scope: str) -> str:
    # Events without a feature are summed under ""; a table cell cannot show an empty name.
    items = {name or "(none)": stats for name, stats in report.items.items()}
    title = range_title(f"Cost by {report.by.replace('_', ' ')}", report.start, report.end, scope)
    return f"{title}\n\n{tables.slice_table(report.by, with_total(items) if items else items)}"


def render_operations(report: TopOperations, scope: str) -> str:
    rows = [
        (o.task_type, o.provider, tables.count(o.requests), tables.count(o.failed_requests), tables.count(o.tokens),
         tables.usd(o.cost_usd), tables.exact(o.cost_usd), tables.milliseconds(o.mean_latency_ms))
        for o in report.operations
    ]  # fmt: skip
    heads = ("task type", "provider", "calls", "failed", "tokens", "cost", "exact USD", "mean ms")
    body = tables.table(heads, rows, "llrrrrrr") if rows else "operations: none"
    return f"{range_title('Top operations by cost', report.start, report.end, scope)}\n\n{body}"


def error_table(rates: Mapping[str, ErrorRate]) -> str:
    rows = [
        (name, tables.count(r.requests), tables.count(r.failed_requests), tables.percent(r.error_rate))
        for name, r in rates.items()
    ]
    return tables.table(("provider", "requests", "failed", "error rate"), rows, "lrrr") if rows else "provider: none"


def render_errors(rates: Mapping[str, ErrorRate], first: date, last: date, scope: str) -> str:
    return f"{range_title('Error rate by provider', first, last, scope)}\n\n{error_table(rates)}"


def render_latency(report: LatencyReport, scope: str) -> str:
    note = (
        f"Percentiles of the requests that reported a duration, from the rollups' latency histograms: each is within "
        f"{report.relative_error:.1%} of the exact percentile. Success rate is over all requests."
    )
    return "\n\n".join(
        [
            f"{range_title('Latency', report.start, report.end, scope)}\n{note}",
            tables.percentiles_table("provider", report.by_provider),
            tables.percentiles_table("model", report.by_model),
        ]
    )


def render_players(report: TopPlayers, scope: str) -> str:
    rows = [
        (str(rank), "(default)" if p.tenant_id is None else p.tenant_id, p.user_id, tables.count(p.requests),
         tables.count(p.tokens), tables.usd(p.cost_usd), tables.exact(p.cost_usd))
        for rank, p in enumerate(report.players, 1)
    ]  # fmt: skip
    heads = ("#", "tenant", "player", "requests", "tokens", "cost", "exact USD")
    body = tables.table(heads, rows, "rllrrrr") if rows else "players: none"
    return f"{range_title('Top players by cost', report.start, report.end, scope)}\n\n{body}"
