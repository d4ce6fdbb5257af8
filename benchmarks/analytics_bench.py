"""Latency of the admin analytics and tenant summaries on SQLite at 1,000 and 1,000,000 events; prints figures.

    .venv/bin/python benchmarks/analytics_bench.py [--events 1000000] [--calls 50] [--cache /tmp]

A game's ledger: 6 models of 4 providers, 5 task types, 6 features (and none), 3 tenants (the default one and
two studios), latencies log-normal per provider, 3% failures; 90% of the events spread over the 99 days before
the benchmark day (a pool of 50,000 players), 10% on the benchmark day (10,000 active players at 1M).

The stores are generated once and cached under ``--cache`` (file name keyed by this generator's version and
the rollups' fingerprint, so a changed rollup definition never reads a stale file). Generating writes through
the real store: ``SQLiteUsageStore.record`` in calls of 5,000 prebuilt ``AIUsageLog`` rows, each a copy of
one of 3,000 events priced by ``EventPricer`` with its player, tenant, time, id and latency replaced (the cost
depends only on what is kept), so the rollups are those ``log_usage_batch`` would write, without its ~26 µs
an event of validation and pricing. The store's own work still dominates once it is large (1,800–2,200 events/s,
8–10 minutes for 1,000,000 on the 2-core machine: 3.4 million rollup rows, 1.4 GB, mostly random player rows).
For each call: median and p95 over ``--calls`` calls (at most ~10 s of them), taken alternately on the two
stores, the rollup rows the store returned, and the share of the time spent inside the store (the rest is
Python regrouping and the models).

Targets (issues 10 and 11): median < 10 ms at 1,000,000 events and within 1.5x of the same call at 1,000.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.ai_usage import AIUsageLog, UsageEvent, log_id_for
from services.cli.tables import table
from services.log_config import configure_logging
from services.pricing import PriceBook
from services.settings import Settings
from services.store.sqlite_schema import ROLLUPS_FINGERPRINT
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_events import EventPricer
from services.usage_tracking_service import UsageTrackingService

GENERATOR_VERSION = 1  # bump when the generated data changes
NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # fixed, so a cached store stays valid on any date
TODAY = NOW.date()
DAYS = 100  # the benchmark day and the 99 before it
TODAY_SHARE = 0.10
POOL = 50_000  # players over the earlier days
ACTIVE_TODAY = 10_000
TENANTS = ((None, 0.5), ("studio-a", 0.3), ("studio-b", 0.2))
MODELS = (  # (model, provider, median latency ms)
    ("anthropic/claude-3.5-sonnet", "anthropic", 2400),
    ("anthropic/claude-3.5-haiku", "anthropic", 900),
    ("openai/gpt-4o", "openai", 1800),
    ("openai/gpt-4o-mini", "openai", 700),
    ("gemini-2.5-flash", "google", 800),
    ("deepseek-chat", "deepseek", 3000),
)
TASKS = ("story_progression", "combat_narration", "quest_selection", "npc_dialogue", "general")
FEATURES = ("quest_board", "npc_banter", "lore_codex", "item_art", "tavern_rumours", "boss_taunts", None)
TEMPLATES = 3000
RECORD_BATCH = 5000


def clock() -> datetime:
    return NOW


# -- generating --------------------------------------------------------------------------------------------------
def templates(book: PriceBook, rng: random.Random) -> list[tuple[AIUsageLog, int]]:
    """Priced events to copy from, each with its model's median latency."""
    pricer = EventPricer(book, clock, timedelta(minutes=5))
    built = []
    for n in range(TEMPLATES):
        model, provider, latency = MODELS[n % len(MODELS)]
        prompt = rng.randint(300, 6000)
        ok = rng.random() > 0.03
        event = UsageEvent(
            request_id=f"t-{n}",
            user_id="template",
            model=model,
            provider=provider,
            task_type=TASKS[rng.randrange(len(TASKS))],
            feature=FEATURES[rng.randrange(len(FEATURES))],
            tokens_input=prompt,
            tokens_output=rng.randint(20, 900),
            tokens_cached=prompt // 3 if n % 4 == 0 else 0,
            success=ok,
            error_message=None if ok else "upstream timeout",
            timestamp=NOW,
        )
        built.append((pricer.build(event), latency))
    return built


def generate(path: Path, events: int, book: PriceBook) -> float:
    """Write ``events`` events into a new store at ``path``; returns events/s."""
    rng = random.Random(11)
    pool = templates(book, rng)
    today = max(1, int(events * TODAY_SHARE))
    active = min(ACTIVE_TODAY, today)
    tenants, weights = zip(*TENANTS, strict=True)
    store = SQLiteUsageStore(path)
    started = time.perf_counter()
    batch: list[AIUsageLog] = []
    for n in range(events):
        template, latency = pool[rng.randrange(len(pool))]
        if n < today:
            user = n % active  # every active player of the day at least once
            at = NOW - timedelta(seconds=rng.randrange(18 * 3600))
        else:
            user = rng.randrange(POOL)
            at = NOW - timedelta(days=rng.randint(1, DAYS - 1), seconds=rng.randrange(86400))
        tenant = rng.choices(tenants, weights)[0]
        request_id = f"r-{n}"
        batch.append(
            template.model_copy(
                update={
                    "request_id": request_id,
                    "log_id": log_id_for(request_id, tenant),
                    "user_id": f"player-{user:05d}",
                    "tenant_id": tenant,
                    "session_id": f"s-{user}-{at.day}",
                    "timestamp": at.replace(microsecond=at.microsecond // 1000 * 1000),
                    "request_duration_ms": max(1, int(rng.lognormvariate(0, 0.6) * latency)),
                }
            )
        )
        if len(batch) == RECORD_BATCH:
            store.record(batch)
            batch = []
        if events >= 100_000 and (n + 1) % 200_000 == 0:
            print(f"  generated {n + 1:,}/{events:,} ({(n + 1) / (time.perf_counter() - started):,.0f}/s)", flush=True)
    if batch:
        store.record(batch)
    rate = events / (time.perf_counter() - started)
    store.close()
    return rate


def cached_store(cache: Path, events: int, book: PriceBook) -> Path:
    key = hashlib.sha256(f"{GENERATOR_VERSION} {ROLLUPS_FINGERPRINT}".encode()).hexdigest()[:12]
    path = cache / f"analytics-bench-{events}-{key}.db"
    if not path.exists():
        print(f"generating {events:,} events into {path} …", flush=True)
        partial = path.with_suffix(".partial")
        for stale in cache.glob(f"{partial.name}*"):
            stale.unlink()
        rate = generate(partial, events, book)
        with sqlite3.connect(partial) as conn:  # fold the WAL in, so the cached file stands alone
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        partial.rename(path)
        Path(f"{partial}.lock").unlink(missing_ok=True)
        print(f"  {rate:,.0f} events/s through SQLiteUsageStore.record", flush=True)
    return path


# -- measuring ---------------------------------------------------------------------------------------------------
def calls(service: UsageTrackingService) -> dict[str, Callable[[], Any]]:
    week_ago = NOW - timedelta(days=7)
    return {
        "hourly series, 7 days": lambda: service.get_time_series(week_ago, NOW, "hour"),
        "daily series, 90 days": lambda: service.get_time_series(TODAY - timedelta(days=89), NOW, "day"),
        "daily series, 90 days, one model": lambda: service.get_time_series(
            TODAY - timedelta(days=89), NOW, "day", model="openai/gpt-4o-mini"
        ),
        "latency percentiles, 30 days": lambda: service.get_latency_report(TODAY - timedelta(days=29), TODAY),
        "top 10 players of the day": lambda: service.get_top_players(TODAY, limit=10),
        "top 10 players of the day, one tenant": lambda: service.get_top_players(TODAY, limit=10, tenant_id="studio-a"),
        "cost by provider, 30 days": lambda: service.get_cost_by_provider(TODAY - timedelta(days=29), TODAY),
        "cost by model, 30 days": lambda: service.get_cost_by_model(TODAY - timedelta(days=29), TODAY),
        "top operations, 30 days": lambda: service.get_top_operations(TODAY - timedelta(days=29), TODAY),
        "error rates, 30 days": lambda: service.get_error_rates(TODAY - timedelta(days=29), TODAY),
        "realtime (last 24 hours)": lambda: service.get_realtime_metrics(),
        "tenant daily usage": lambda: service.get_tenant_daily_usage("studio-a", TODAY),
        "tenant monthly usage": lambda: service.get_tenant_monthly_usage("studio-a", TODAY.year, TODAY.month),
        "tenant summary, 30 days": lambda: service.get_tenant_usage_summary("studio-a", 30),
    }


class Counting:
    """Wraps the store's rollup reads: rows returned and seconds spent inside the store."""

    READS = ("sum_rollups", "top_rollups", "get_rollups", "get_rollup_kinds", "get_rollup_range")

    def __init__(self, store: SQLiteUsageStore) -> None:
        self.rows, self.seconds = 0, 0.0
        for name in self.READS:
            setattr(store, name, self._wrap(getattr(store, name)))

    def _wrap(self, read: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = read(*args, **kwargs)
            self.seconds += time.perf_counter() - start
            self.rows += len(result)
            return result

        return counted


def open_service(path: Path, book: PriceBook) -> tuple[SQLiteUsageStore, UsageTrackingService]:
    store = SQLiteUsageStore(path)
    return store, UsageTrackingService(store, book, clock=clock, settings=Settings(db_path=path))


Figures = dict[str, tuple[float, float, int, float]]


def measure(paths: tuple[Path, Path], book: PriceBook, repeat: int) -> tuple[Figures, Figures]:
    """Per call and store: median ms, p95 ms, rollup rows returned, share of the time inside the store.

    The two stores' samples alternate, call by call, so both see the same state of this shared machine (its
    speed drifts by 2x within minutes): their ratio compares the stores, not two moments."""
    opened = [open_service(path, book) for path in paths]
    services = [calls(service) for _, service in opened]
    figures: tuple[Figures, Figures] = ({}, {})
    for name in services[0]:
        for each in services:
            each[name]()  # warm the page and statement caches
        samples: tuple[list[float], list[float]] = ([], [])
        began = time.perf_counter()
        # At most ~10 s per call (at least 3 samples): a call that misses by 100x need not be timed 50 times.
        while len(samples[1]) < repeat and (len(samples[1]) < 3 or time.perf_counter() - began < 10):
            for each, timings in zip(services, samples, strict=True):
                start = time.perf_counter()
                each[name]()
                timings.append((time.perf_counter() - start) * 1000)
        for found, timings in zip(figures, samples, strict=True):
            timings.sort()
            found[name] = (statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.95))])
    for (store, _), each, found in zip(opened, services, figures, strict=True):
        counting = Counting(store)
        for name, call in each.items():
            counting.rows, counting.seconds = 0, 0.0
            start = time.perf_counter()
            call()
            total = time.perf_counter() - start
            found[name] = (*found[name], counting.rows, counting.seconds / total if total else 0.0)
        store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the large store")
    parser.add_argument("--calls", type=int, default=50, help="timed calls of each analytics call per store")
    parser.add_argument("--cache", type=Path, default=Path("/tmp"), help="where the generated stores are kept")
    args = parser.parse_args()
    configure_logging("json", "WARNING", force=True)
    book = PriceBook.load()
    small_path = cached_store(args.cache, 1000, book)
    large_path = cached_store(args.cache, args.events, book)
    print(
        f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; large store {large_path.stat().st_size / 1e6:,.0f} MB",
        flush=True,
    )
    small, large = measure((small_path, large_path), book, args.calls)
    print(report(args, small, large))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes on these CPUs slow every figure)")


def report(
    args: argparse.Namespace,
    small: dict[str, tuple[float, float, int, float]],
    large: dict[str, tuple[float, float, int, float]],
) -> str:
    big = f"{args.events // 1000:,}K"
    rows = []
    for name, (l_med, l_p95, l_rows, l_store) in large.items():
        s_med, _s_p95, s_rows, _s_store = small[name]
        ratio = l_med / s_med
        ok = l_med < 10 and ratio <= 1.5
        rows.append((name, f"{s_med:.2f}", f"{s_rows:,}", f"{l_med:.2f}", f"{l_p95:.2f}", f"{l_rows:,}",
                     f"{l_store:.0%}", f"{ratio:.2f}", "ok" if ok else "MISSED"))  # fmt: skip
    return "\n" + table(
        ("call (ms)", "1K median", "1K rows", f"{big} median", f"{big} p95", f"{big} rows", "in store", "ratio",
         "< 10 ms, <= 1.5x"),
        rows,
        "lrrrrrrrl",
    ) + f"\n({args.calls} calls each; rows: rollup rows the store returned; in store: share of the call)"  # fmt: skip


if __name__ == "__main__":
    main()
