"""Plain-text rendering of the service's results: aligned tables, money rounded for display beside the exact sum.

Pure functions from models to strings; the commands echo what these return. Every value that came from the ledger
(ids, model names, error messages) passes through ``terminal_safe`` on its way in, so a stored escape sequence,
control character or bidi override is shown escaped and never acted on by the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from models.ai_usage import AIUsageLog, LogResult
from models.analytics import Percentiles, SliceStats
from models.summaries import (
    CostBreakdown,
    DailyUsageSummary,
    GlobalDailyUsage,
    MonthlyUsageSummary,
    SessionUsage,
    UsageSummary,
    UsageTotals,
)
from models.usage_kinds import USAGE_KINDS
from services.terminal_text import terminal_safe

DISPLAY_PLACES = Decimal("0.0001")


def usd(exact: Decimal) -> str:
    """Rounded for reading (4 places, half-even); the exact figure is always shown beside it."""
    return f"${exact.quantize(DISPLAY_PLACES, rounding=ROUND_HALF_EVEN):,}"


def exact(value: Decimal) -> str:
    return format(value, "f")


def cost(value: Decimal) -> str:
    return f"{usd(value)} (exact {exact(value)} USD)"


def count(value: int) -> str:
    return f"{value:,}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> str:
    """Columns padded to their widest cell; ``align`` has one ``l``/``r`` per column (default: left)."""
    headers = [terminal_safe(str(h)) for h in headers]
    body = [[terminal_safe(str(cell)) for cell in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in body)]) for i, h in enumerate(headers)]
    sides = align.ljust(len(headers), "l")

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if s == "r" else c.ljust(w) for c, w, s in zip(cells, widths, sides, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in body)])


def fields(pairs: Iterable[tuple[str, str]]) -> str:
    """``label   value`` lines with the values aligned."""
    items = [(terminal_safe(label), terminal_safe(value)) for label, value in pairs]
    width = max((len(label) for label, _ in items), default=0)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in items)


def breakdown_table(heading: str, parts: Mapping[str, CostBreakdown]) -> str:
    if not parts:
        return f"{heading}: none"
    rows = [
        (str(key), count(p.requests), count(p.tokens), usd(p.estimated_cost_exact), exact(p.estimated_cost_exact))
        for key, p in parts.items()
    ]
    return table((heading, "requests", "tokens", "cost", "exact USD"), rows, "lrrrr")


def _requests_line(total: int, failed: int, unpriced: int) -> str:
    return f"{count(total)} (failed {count(failed)}, priced by a default rate {count(unpriced)})"


def kinds_table(t: UsageTotals) -> str:
    """What was used of each usage kind and what it cost: the kinds (and per-request charges) that are not zero."""
    units = {kind.name: kind.unit for kind in USAGE_KINDS}
    parts = [part for part in (*units, "per_request", "unsplit") if t.usage.get(part) or t.cost_by_kind.get(part)]
    rows = [
        (part, count(t.usage[part]) if part in t.usage else "-", units.get(part, "-"), usd(t.cost_by_kind[part]),
         exact(t.cost_by_kind[part]))
        for part in parts
    ]  # fmt: skip
    notes = []
    if t.free_requests:
        notes.append(f"{count(t.free_requests)} request(s) free by rule (a local runtime or an OpenRouter :free id)")
    if t.other_host_requests:
        notes.append(
            f"{count(t.other_host_requests)} request(s) priced by another host's rate (no price of their host)"
        )
    body = table(("kind", "used", "unit", "cost", "exact USD"), rows, "lrlrr") if rows else "no usage"
    return "\n".join([body, *notes])


def of_tenant(tenant_id: str | None) -> str:
    """A heading's tenant suffix: nothing for the default tenant, so the single-tenant output stays as it was."""
    return "" if tenant_id is None else f" in tenant {terminal_safe(tenant_id)}"


def daily(summary: DailyUsageSummary, tenant_id: str | None = None) -> str:
    s = summary
    head = fields([
        ("requests", _requests_line(s.total_requests, s.failed_requests, s.unpriced_requests)),
        ("tokens", f"{count(s.total_tokens)} (input {count(s.total_input_tokens)}, "
                   f"output {count(s.total_output_tokens)}, cached {count(s.total_cached_tokens)}, "
                   f"cache write {count(s.total_cache_write_tokens)}, reasoning {count(s.total_reasoning_tokens)})"),
        ("credits", count(s.total_credits)),
        ("cost", cost(s.estimated_cost_exact)),
    ])  # fmt: skip
    rows = [
        (task, count(s.requests_by_task[task]), usd(s.cost_by_task_exact[task]), exact(s.cost_by_task_exact[task]))
        for task in s.requests_by_task
    ]
    tasks = table(("task", "requests", "cost", "exact USD"), rows, "lrrr")
    title = f"Daily usage of {terminal_safe(s.user_id)}{of_tenant(tenant_id)} on {s.date.isoformat()} (UTC)"
    return f"{title}\n{head}\n\n{tasks}\n\n{kinds_table(s)}"


def monthly(summary: MonthlyUsageSummary, tenant_id: str | None = None) -> str:
    s = summary
    head = fields([
        ("requests", _requests_line(s.total_requests, s.failed_requests, s.unpriced_requests)),
        ("tokens", f"{count(s.total_tokens)} (input {count(s.total_input_tokens)}, "
                   f"output {count(s.total_output_tokens)}, cached {count(s.total_cached_tokens)})"),
        ("credits", count(s.total_credits)),
        ("cost", cost(s.estimated_cost_exact)),
    ])  # fmt: skip
    return (
        f"Monthly usage of {terminal_safe(s.user_id)}{of_tenant(tenant_id)} in {s.year:04d}-{s.month:02d} (UTC)\n"
        f"{head}\n\n{kinds_table(s)}"
    )


def global_daily(usage: GlobalDailyUsage) -> str:
    g = usage
    head = fields(
        [
            ("requests", _requests_line(g.total_requests, g.failed_requests, g.unpriced_requests)),
            ("tokens", count(g.total_tokens)),
            ("cost", cost(g.estimated_cost_exact)),
        ]
    )
    sections = [
        f"Global usage on {g.date.isoformat()} (UTC), all players\n{head}",
        breakdown_table("model", g.cost_by_model),
        breakdown_table("provider", g.cost_by_provider),
        breakdown_table("task", g.cost_by_task),
        kinds_table(g),
    ]
    if g.unpriced_requests:
        sections.append(
            f"{count(g.unpriced_requests)} request(s) used a model missing from the price book and were priced by "
            "a default rate; add the model to the price book (AI_USAGE_PRICES_FILE) to price it exactly."
        )
    return "\n\n".join(sections)


def totals(t: UsageTotals) -> str:
    return fields([
        ("requests", _requests_line(t.total_requests, t.failed_requests, t.unpriced_requests)),
        ("tokens", f"{count(t.total_tokens)} (input {count(t.total_input_tokens)}, "
                   f"output {count(t.total_output_tokens)}, cached {count(t.total_cached_tokens)})"),
        ("credits", count(t.total_credits)),
        ("platform credits", count(t.platform_credits)),
        ("cost", cost(t.estimated_cost_exact)),
    ])  # fmt: skip


def session(usage: SessionUsage, tenant_id: str | None = None) -> str:
    by_task = breakdown_table("task", usage.by_task)
    title = f"Session {terminal_safe(usage.session_id)}{of_tenant(tenant_id)}"
    return f"{title}\n{totals(usage)}\n\n{by_task}\n\n{kinds_table(usage)}"


def usage_summary(usage: UsageSummary, tenant_id: str | None = None) -> str:
    days = {day.isoformat(): part for day, part in usage.by_day.items()}
    return "\n\n".join(
        [
            f"Usage of {terminal_safe(usage.user_id)}{of_tenant(tenant_id)}, last {usage.days} day(s): "
            f"{usage.start.isoformat()} to {usage.end.isoformat()} (UTC)\n{totals(usage)}",
            breakdown_table("task", usage.by_task),
            breakdown_table("day", days),
            kinds_table(usage),
        ]
    )


def usage_log(log: AIUsageLog) -> str:
    price = log.price_model_id + (" (default rate: model not in the price book)" if log.price_is_fallback else "")
    pairs = [
        ("request_id", log.request_id),
        ("user_id", log.user_id),
        ("model", f"{log.model} (provider {log.provider or 'unknown'})"),
        ("task_type", log.task_type.value),
        ("timestamp", log.timestamp.isoformat()),
        ("tokens", f"{count(log.tokens_total)} (input {count(log.tokens_input)}, output {count(log.tokens_output)}, "
                   f"cached {count(log.tokens_cached)}, cache write {count(log.tokens_cache_write)}, "
                   f"reasoning {count(log.tokens_reasoning)})"),
        ("cost", cost(log.estimated_cost_exact)),
        ("priced by", price),
        ("platform credits", count(log.platform_credits)),
    ]  # fmt: skip
    optional = [
        ("credits", count(log.credits) if log.credits else None),
        ("session_id", log.session_id),
        ("character_id", log.character_id),
        ("tenant_id", log.tenant_id),
        ("feature", log.feature),
        ("duration", f"{count(log.request_duration_ms)} ms" if log.request_duration_ms is not None else None),
        ("success", "no: " + (log.error_message or "(no message)") if not log.success else None),
    ]
    pairs.extend((label, value) for label, value in optional if value is not None)
    return fields(pairs)


def log_result(result: LogResult) -> str:
    if result.log is None:
        return f"{result.status.value}"
    request_id = terminal_safe(result.log.request_id)
    if result.duplicate:
        first = f"duplicate: request {request_id} was already logged; nothing new stored, no total changed"
    else:
        first = f"stored: request {request_id}"
    return f"{first}\n{usage_log(result.log)}"


# -- analytics: slices, percentiles, charts --------------------------------------------------------------------------
def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def slice_table(heading: str, items: Mapping[str, SliceStats]) -> str:
    """One row per slice (a bucket, a provider, a model…) in the order given."""
    if not items:
        return f"{heading}: none"
    rows = [
        (key, count(s.requests), count(s.failed_requests), count(s.tokens), usd(s.cost_usd), exact(s.cost_usd),
         milliseconds(s.mean_latency_ms))
        for key, s in items.items()
    ]  # fmt: skip
    return table((heading, "requests", "failed", "tokens", "cost", "exact USD", "mean ms"), rows, "lrrrrrr")


def percentiles_table(heading: str, items: Mapping[str, Percentiles]) -> str:
    if not items:
        return f"{heading}: none"
    rows = [
        (key, count(p.requests), milliseconds(p.p50), milliseconds(p.p95), milliseconds(p.p99), percent(p.success_rate))
        for key, p in items.items()
    ]
    return table((heading, "timed", "p50 ms", "p95 ms", "p99 ms", "success"), rows, "lrrrrr")


SPARK_UNICODE = "▁▂▃▄▅▆▇█"
SPARK_ASCII = ".:-=+*#@"  # the same eight levels for a terminal that cannot print block elements


def chart_glyphs(encoding: str | None) -> str:
    """Block elements when the output's encoding can write them, else ASCII (a C-locale pipe, cp437 and the like)."""
    try:
        SPARK_UNICODE.encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return SPARK_ASCII
    return SPARK_UNICODE


def sparkline(values: Sequence[Decimal | int], glyphs: str = SPARK_UNICODE) -> str:
    """One glyph per value, scaled to the largest: a space for zero, the lowest glyph for any value above zero
    (so a small bucket is never mistaken for an empty one), the highest for the largest."""
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    levels = len(glyphs)
    return "".join(
        " " if v <= 0 else glyphs[min(levels, math.ceil(Decimal(v) * levels / Decimal(top))) - 1] for v in values
    )


def chart(title: str, values: Sequence[Decimal | int], glyphs: str, width: int = 60) -> str:
    """A titled sparkline framed by ``|`` (so empty buckets at either end still show), wrapped every ``width``."""
    line = sparkline(values, glyphs)
    rows = [f"|{line[i : i + width]}|" for i in range(0, len(line), width)] or ["||"]
    return "\n".join([title, *rows])
