"""Round trips and throughput of the Appwrite store through the local strict TablesDB server; prints figures.

    .venv/bin/python benchmarks/appwrite_bench.py [--single 300] [--batches 5] [--player-events 3000]

1. Requests per logged event (``log_usage``), per ``log_usage_batch`` of 1,000 events for 1,000 players,
   and per summary, counted by the server; events/s for both ways of logging.
2. Requests per analytics call and tenant summary (issues 10 and 11: at most 3 per analytics call, at most 2
   per tenant summary) with ``--analytics-events`` stored over 30 days for 3 tenants.
3. The approach this replaces, on the same server: one ``create_row`` per event (no rollups), and a daily
   summary that lists the player's rows of the day page by page (Appwrite's default page of 25 rows, and
   the replaced code's single ``limit(1000)`` read, which is wrong past 1,000 rows).

The server is a local Python double, so absolute times are the double's, not Appwrite's: read the request
counts as the portable figure (each is a network round trip in production).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appwrite.query import Query

from models.ai_usage import TaskType, UsageEvent
from services.cli.tables import table
from services.log_config import configure_logging
from services.store.appwrite_rows import event_data, event_row_id
from services.store.appwrite_store import EVENTS_TABLE
from services.store.rollups import GLOBAL_KINDS
from services.usage_events import EventPricer
from services.usage_tracking_service import UsageTrackingService
from tests.appwrite_support import make_appwrite_store, provision, tables_db_for
from tests.tablesdb_double import TablesDBDouble

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
TASKS = list(TaskType)
LEGACY_DB = "legacy"


def event(n: int, user: str, tag: str) -> UsageEvent:
    return UsageEvent(
        request_id=f"{tag}-{n}",
        user_id=user,
        model="anthropic/claude-3.5-sonnet",
        task_type=TASKS[n % len(TASKS)],
        tokens_input=1200 + n % 50,
        tokens_output=300,
        session_id=f"{user}-session",
        timestamp=NOW - timedelta(seconds=n % 3600),
    )


ANALYTICS_TARGET = {"tenant": 2}  # requests; every other call: 3


def analytics_requests(double: TablesDBDouble, service: UsageTrackingService, count: int) -> str:
    """Requests per analytics call, with ``count`` events of 3 tenants, 4 providers and 3 features over 30 days."""
    models = ("anthropic/claude-3.5-sonnet", "openai/gpt-4o-mini", "gemini-2.5-flash", "deepseek-chat")
    tenants = (None, "studio-a", "studio-b")
    events = [
        UsageEvent(
            request_id=f"an-{n}",
            user_id=f"p-{n % 200}",
            tenant_id=tenants[n % 3],
            model=models[n % 4],
            task_type=TASKS[n % len(TASKS)],
            feature=("quest_board", "npc_banter", None)[n % 3],
            tokens_input=900 + n % 300,
            tokens_output=200,
            request_duration_ms=300 + n % 4000,
            success=n % 31 != 0,
            timestamp=NOW - timedelta(minutes=7 * n % (30 * 24 * 60)),
        )
        for n in range(count)
    ]
    for start in range(0, count, 1000):
        service.log_usage_batch(events[start : start + 1000])
    day, month_ago, week_ago = NOW.date(), NOW.date() - timedelta(days=29), NOW - timedelta(days=7)
    calls = {
        "hourly series, 7 days": lambda: service.get_time_series(week_ago, NOW, "hour"),
        "daily series, 30 days": lambda: service.get_time_series(month_ago, NOW, "day"),
        "daily series, 30 days, one model": lambda: service.get_time_series(month_ago, NOW, "day", model=models[0]),
        "monthly series": lambda: service.get_time_series(month_ago, NOW, "month"),
        "latency percentiles, 30 days": lambda: service.get_latency_report(month_ago, day),
        "top players of the day": lambda: service.get_top_players(day),
        "top players of the day, one tenant": lambda: service.get_top_players(day, tenant_id="studio-a"),
        "top players over 7 days": lambda: service.get_top_players(day - timedelta(days=6), day),
        "cost by provider, 30 days": lambda: service.get_cost_by_provider(month_ago, day),
        "cost by model, 30 days": lambda: service.get_cost_by_model(month_ago, day),
        "cost by feature, 30 days": lambda: service.get_cost_by_feature(month_ago, day),
        "top operations, 30 days": lambda: service.get_top_operations(month_ago, day),
        "error rates, 30 days": lambda: service.get_error_rates(month_ago, day),
        "realtime (last 24 hours)": lambda: service.get_realtime_metrics(),
        "tenant daily usage": lambda: service.get_tenant_daily_usage("studio-a", day),
        "tenant monthly usage": lambda: service.get_tenant_monthly_usage("studio-a", day.year, day.month),
        "tenant summary, 30 days": lambda: service.get_tenant_usage_summary("studio-a", 30),
    }
    rows = []
    for name, call in calls.items():
        _, requests, seconds = measured(double, call)
        target = ANALYTICS_TARGET["tenant"] if name.startswith("tenant") else 3
        rows.append([name, str(requests), f"<= {target}", "ok" if requests <= target else "MISSED",
                     f"{seconds * 1000:.1f}"])  # fmt: skip
    stored = len(double.rows("ai_usage", "rollups"))
    return f"\nanalytics with {count:,} events over 30 days (3 tenants), {stored:,} rollup rows stored\n" + table(
        ["analytics call", "requests", "target", "", "ms"], rows
    )


def measured(double: TablesDBDouble, action):  # type: ignore[no-untyped-def]
    double.reset_counts()
    start = time.perf_counter()
    result = action()
    return result, double.request_count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=300, help="events logged one per call")
    parser.add_argument("--batches", type=int, default=5, help="log_usage_batch calls of 1,000 events")
    parser.add_argument("--player-events", type=int, default=3000, help="events of one player's day")
    parser.add_argument("--analytics-events", type=int, default=3000, help="events stored for the analytics calls")
    args = parser.parse_args()
    configure_logging("console", "ERROR")

    with TablesDBDouble() as double:
        store = make_appwrite_store(double)
        service = UsageTrackingService(store=store, clock=lambda: NOW)
        rows: list[list[str]] = []

        _, requests, seconds = measured(
            double, lambda: [service.log_usage(**event(n, "hero", "one").model_dump()) for n in range(args.single)]
        )
        rows.append(["log_usage, 1 event per call", f"{requests / args.single:.2f}", f"{args.single / seconds:,.0f}"])

        batch_requests, batch_seconds = [], 0.0
        for b in range(args.batches):
            events = [event(n, f"player-{n}", f"batch{b}") for n in range(1000)]
            _, requests, seconds = measured(double, lambda events=events: service.log_usage_batch(events))
            batch_requests.append(requests)
            batch_seconds += seconds
        rows.append([
            "log_usage_batch, 1,000 events / 1,000 players",
            f"{max(batch_requests)} per batch ({max(batch_requests) / 1000:.3f} per event)",
            f"{1000 * args.batches / batch_seconds:,.0f}",
        ])  # fmt: skip

        big_day = [event(n, "whale", "whale") for n in range(args.player_events)]
        for start in range(0, len(big_day), 1000):
            service.log_usage_batch(big_day[start : start + 1000])
        _, requests, _ = measured(double, lambda: service.log_usage(**event(0, "hero", "one").model_dump()))
        rows.append(["log_usage of a duplicate", str(requests), ""])
        print(table(["logging through the Appwrite store", "requests", "events/s"], rows))

        summaries = {
            "get_daily_usage": lambda: service.get_daily_usage("whale"),
            "get_monthly_cost": lambda: service.get_monthly_cost("whale"),
            "get_total_daily_cost": lambda: service.get_total_daily_cost(),
            "get_user_request_count_today": lambda: service.get_user_request_count_today("whale"),
            "get_session_usage": lambda: service.get_session_usage("whale-session"),
            "get_usage_summary (30 days)": lambda: service.get_usage_summary("whale", 30),
            "get_user_total_credits": lambda: service.get_user_total_credits("whale"),
            "get_global_daily_usage": lambda: service.get_global_daily_usage(),
            f"store.get_rollup_kinds ({len(GLOBAL_KINDS)} shared kinds)": lambda: store.get_rollup_kinds(
                sorted(GLOBAL_KINDS), "", NOW.date().isoformat()
            ),
        }
        rows = []
        for name, read in summaries.items():
            _, requests, seconds = measured(double, read)
            rows.append([name, str(requests), f"{seconds * 1000:.1f}"])
        rollup_rows = len(double.rows("ai_usage", "rollups"))
        print(f"\nsummaries with {rollup_rows:,} rollup rows stored ({args.player_events:,} events on the whale's day)")
        print(table(["summary", "requests", "ms"], rows))

        print(analytics_requests(double, service, args.analytics_events))

        print("\nthe replaced approach on the same server")
        provision(double, LEGACY_DB)
        legacy = tables_db_for(double)
        pricer = EventPricer(service.price_book, lambda: NOW, timedelta(minutes=5))
        logs = [pricer.build(event(n, "whale", "legacy")) for n in range(args.player_events)]
        _, requests, seconds = measured(
            double,
            lambda: [
                legacy.create_row(LEGACY_DB, EVENTS_TABLE, event_row_id(log.request_id), event_data(log))
                for log in logs
            ],
        )
        rows = [["create_row per event (no rollups)", f"{requests / len(logs):.2f} per event",
                 f"{len(logs) / seconds:,.0f} events/s"]]  # fmt: skip
        filters = [Query.equal("user_id", ["whale"]), Query.equal("day", [NOW.date().isoformat()])]
        for label, page in (("pages of 25 (Appwrite's default)", 25), ("pages of 1,000", 1000)):

            def daily(page: int = page) -> int:
                total, cursor = 0, None
                while True:
                    queries = [*filters, Query.limit(page)] + ([Query.cursor_after(cursor)] if cursor else [])
                    found = legacy.list_rows(LEGACY_DB, EVENTS_TABLE, queries, total=False).rows
                    total += sum(row.data["cost_nano"] for row in found)
                    if len(found) < page:
                        return total
                    cursor = found[-1].id

            _, requests, seconds = measured(double, daily)
            rows.append([f"daily summary listing rows, {label}", f"{requests} requests", f"{seconds * 1000:.0f} ms"])
        capped, requests, seconds = measured(
            double, lambda: legacy.list_rows(LEGACY_DB, EVENTS_TABLE, [*filters, Query.limit(1000)]).rows
        )
        rows.append([
            "the replaced code: first 1,000 rows of today",
            f"{requests} request, counts {len(capped):,} of {len(logs):,}",
            f"{seconds * 1000:.0f} ms",
        ])  # fmt: skip
        print(table(["replaced approach", "requests", "time"], rows))
        store.close()
        legacy.client.close()


if __name__ == "__main__":
    main()
