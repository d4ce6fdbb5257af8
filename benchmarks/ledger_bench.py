"""Throughput and latency of the ledger on the embedded SQLite store; prints figures, asserts nothing.

    .venv/bin/python benchmarks/ledger_bench.py [--events 1000000] [--single 20000] [--batch 100000]
    .venv/bin/python benchmarks/ledger_bench.py --ingest-only --json   # one A/B round of the write figures

1. ``log_usage`` one event per call (one durable commit each), beside a plain sqlite3 insert-and-commit
   loop of the same rows into a table with only a primary key (same WAL + synchronous settings), and the pages
   each event's commit writes to the WAL (counted, not timed: the same on any machine).
2. ``log_usage_batch`` with 1,000 events per call, and the rollup rows each event adds to: its own keys
   (``rollup_keys``) and the distinct rows a batch writes, per event (a batch folds events of one row).
3. Median and p99 latency of the four hot reads with 1,000 events stored and with ``--events`` stored.

Targets (issues 2 and 11): >= 5,000 events/s single; batched >= 20,000 events/s with 100 players a batch and
>= 15,000 with 5,000 players; reads < 1 ms median at 1,000,000 events and within 1.5x of the same read at
1,000 events. The script runs unchanged on older commits (``git worktree add``), for alternating A/B runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.ai_usage import AIUsageLog, TaskType, UsageEvent
from services.cli.tables import table
from services.log_config import configure_logging
from services.pricing import PriceBook
from services.settings import Settings
from services.store import open_store
from services.store.rollups import rollup_keys
from services.usage_tracking_service import UsageTrackingService

BATCH = 1000
SEED_DAYS = 60
HOUR = timedelta(hours=1)
MODELS = (
    "anthropic/claude-3.5-sonnet",
    "anthropic/claude-3.5-haiku",
    "meta/meta-llama-3-70b-instruct",
    "openai/gpt-4o-mini",
    "deepseek-chat",
    "gemini-2.5-flash",
)
TASKS = tuple(t.value for t in TaskType)
# Product features (issue 10), on code that has them: a third of the events carry none.
FEATURES = ("quest_board", "npc_banter", "lore_codex", None)
HAS_FEATURE = "feature" in UsageEvent.model_fields
# The fixed moment the service believes is "now": yesterday 12:00 UTC, so every seeded day is complete.
NOW = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def clock() -> datetime:
    return NOW


def event(n: int, users: int, span: timedelta, rng: random.Random, prefix: str) -> dict[str, Any]:
    """One realistic ``log_usage`` call: a player, a model, a task, tokens, a session, a timestamp in ``span``."""
    user = rng.randrange(users)
    prompt = rng.randint(300, 6000)
    extra = {"feature": FEATURES[n % len(FEATURES)]} if HAS_FEATURE else {}
    return {
        **extra,
        "request_id": f"{prefix}-{n}",
        "user_id": f"player-{user:06d}",
        "model": MODELS[n % len(MODELS)],
        "task_type": TASKS[n % len(TASKS)],
        "tokens_input": prompt,
        "tokens_output": rng.randint(20, 900),
        "tokens_cached": prompt // 3 if n % 4 == 0 else 0,
        "session_id": f"s-{user}-{n % 7}",
        "request_duration_ms": rng.randint(200, 9000),
        "metadata": {"scene": n % 50},
        "timestamp": NOW - timedelta(seconds=rng.randrange(int(span.total_seconds()))),
    }


def open_service(path: Path, book: PriceBook) -> UsageTrackingService:
    # Settings defaults (WAL, synchronous=NORMAL, busy timeout) for a file in the temp dir.
    settings = Settings(db_path=path)
    return UsageTrackingService(open_store(settings), book, clock=clock, settings=settings)


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# -- 1. one event per call ------------------------------------------------------------------------------------
def plain_row(log: AIUsageLog, columns: tuple[str, ...]) -> tuple[Any, ...]:
    """The values the store writes for this event, column by column, as plain SQLite types."""
    extra = {
        "ts": log.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
        "day": log.timestamp.date().isoformat(),
        "month": log.timestamp.strftime("%Y-%m"),
        "metadata": json.dumps(log.metadata, separators=(",", ":")),
    }
    row = []
    for column in columns:
        value = extra[column] if column in extra else getattr(log, column, None)
        row.append(value.value if isinstance(value, TaskType) else int(value) if isinstance(value, bool) else value)
    return tuple(row)


def plain_sqlite_loop(path: Path, rows: list[tuple[Any, ...]], columns: tuple[str, ...], sync: str) -> float:
    """Insert-and-commit per row into a table with only a primary key: the floor for a durable commit."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute(f"CREATE TABLE events (seq INTEGER PRIMARY KEY, {', '.join(columns)})")
    sql = f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

    def loop() -> None:
        for row in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, row)
            conn.execute("COMMIT")

    elapsed = timed(loop)
    conn.close()
    return elapsed


def bench_single(workdir: Path, book: PriceBook, count: int) -> dict[str, float]:
    rng = random.Random(1)
    calls = [event(n, 500, HOUR, rng, "single") for n in range(count)]
    service = open_service(workdir / "single.db", book)
    results: list[Any] = []
    elapsed = timed(lambda: results.extend(service.log_usage(**call) for call in calls))
    pages = wal_pages_per_event(service, workdir / "single.db", [event(n, 500, HOUR, rng, "pages") for n in range(500)])
    service.close()
    logs = [r.log for r in results]
    try:
        from services.store.sqlite_schema import EVENT_COLUMNS as columns
    except ImportError:  # the store's column list moved: the model's fields are the same row
        columns = tuple(AIUsageLog.model_fields)
    rows = [plain_row(log, columns) for log in logs]
    plain = plain_sqlite_loop(workdir / "plain.db", rows, columns, Settings().sqlite_synchronous)
    keys = sum(len(rollup_keys(log)) for log in logs) / count
    return {"service_per_s": count / elapsed, "plain_per_s": count / plain, "rows_per_event": keys, "pages": pages}


def wal_pages_per_event(service: UsageTrackingService, path: Path, calls: list[dict[str, Any]]) -> float:
    """The pages each single-event commit writes to the WAL: what its commit costs, free of this machine's noise.

    Counted over ``calls`` more events with checkpoints held off (the WAL then only grows): its size in frames."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store_conn = service.store._conn()  # type: ignore[attr-defined]  # the store's own connection checkpoints
    store_conn.execute("PRAGMA wal_autocheckpoint = 0")
    for call in calls:
        service.log_usage(**call)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    frames = (Path(f"{path}-wal").stat().st_size - 32) / (page_size + 24)  # a 32-byte header, 24 per frame
    conn.close()
    return frames / len(calls)


# -- 2. batches of 1,000 --------------------------------------------------------------------------------------
def bench_batch(
    workdir: Path, book: PriceBook, count: int, span: timedelta, name: str, players: int = 5000
) -> dict[str, float]:
    """Batches from ``players`` players with timestamps spread over ``span`` (an hour: a live game's ingest).

    With 5,000 players nearly every event of a batch lands on its own player's rollup rows; with 100 (one
    game server flushing its own players' calls) a batch folds into far fewer rows. Returns events/s and the
    distinct rollup rows a batch writes, per event (counted from ``rollup_keys`` after the timing).
    """
    rng = random.Random(2)
    batches = [
        [UsageEvent(**event(n, players, span, rng, "batch")) for n in range(start, min(start + BATCH, count))]
        for start in range(0, count, BATCH)
    ]
    service = open_service(workdir / f"{name}.db", book)
    results: list[Any] = []
    elapsed = timed(lambda: results.extend(service.log_usage_batch(b) for b in batches))
    service.close()
    distinct = sum(len({key for r in batch for key in rollup_keys(r.log)}) for batch in results)
    return {"per_s": count / elapsed, "rows_per_event": distinct / count}


# -- 3. read latency at two sizes -----------------------------------------------------------------------------
def seed(service: UsageTrackingService, count: int, users: int, rng: random.Random) -> Iterator[int]:
    """Log ``count`` events over ``users`` players and SEED_DAYS days in batches; yields progress."""
    for start in range(0, count, BATCH):
        service.log_usage_batch(
            [event(n, users, timedelta(days=SEED_DAYS), rng, "seed") for n in range(start, min(start + BATCH, count))]
        )
        yield min(start + BATCH, count)


def latencies(call: Callable[[str], Any], users: list[str], calls: int) -> tuple[float, float]:
    for user in users[:50]:
        call(user)  # warm the page cache and the statement cache
    samples = []
    for i in range(calls):
        user = users[i % len(users)]
        start = time.perf_counter_ns()
        call(user)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def bench_reads(path: Path, book: PriceBook, events: int, calls: int) -> tuple[dict[str, tuple[float, float]], float]:
    users = max(20, min(10_000, events // 100))
    service = open_service(path, book)
    rng = random.Random(3)
    started = time.perf_counter()
    for done in seed(service, events, users, rng):
        if events >= 100_000 and done % 100_000 == 0:
            print(
                f"  seeded {done:,}/{events:,} events ({done / (time.perf_counter() - started):,.0f}/s)",
                file=sys.stderr,
            )
    seed_rate = events / (time.perf_counter() - started)
    today: date = NOW.date()
    players = [f"player-{u:06d}" for u in range(users)]
    active = [p for p in players if service.get_user_request_count_today(p) > 0][:200] or players[:200]
    reads: dict[str, Callable[[str], Any]] = {
        "get_daily_usage": lambda u: service.get_daily_usage(u, today),
        "get_monthly_cost": lambda u: service.get_monthly_cost(u, today.year, today.month),
        "get_total_daily_cost": lambda u: service.get_total_daily_cost(today),
        "get_user_request_count_today": service.get_user_request_count_today,
    }
    figures = {name: latencies(call, active, calls) for name, call in reads.items()}
    service.close()
    return figures, seed_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events stored for the large read test")
    parser.add_argument("--single", type=int, default=20_000, help="events logged one per call")
    parser.add_argument("--batch", type=int, default=100_000, help="events logged in batches of 1,000")
    parser.add_argument("--calls", type=int, default=2_000, help="calls per read measurement")
    parser.add_argument("--ingest-only", action="store_true", help="only the write figures (for A/B rounds)")
    parser.add_argument("--json", action="store_true", help="print the write figures as one JSON line too")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one, removed)")
    args = parser.parse_args()
    configure_logging("json", "WARNING", force=True)
    book = PriceBook.load()
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        print(
            f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"journal WAL, synchronous={settings.sqlite_synchronous}, load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        single = bench_single(workdir, book, args.single)
        batches = {
            "hour": bench_batch(workdir, book, args.batch, HOUR, "batch-hour"),
            "month": bench_batch(workdir, book, args.batch, timedelta(days=30), "batch-month"),
            "few": bench_batch(workdir, book, args.batch, HOUR, "batch-few", players=100),
        }
        reads = None
        if not args.ingest_only:
            small, _ = bench_reads(workdir / "small.db", book, 1000, args.calls)
            large, large_seed = bench_reads(workdir / "large.db", book, args.events, args.calls)
            large_size = sum(f.stat().st_size for f in workdir.glob("large.db*"))
            reads = (small, large, large_seed, large_size)

    print(write_report(args, single, batches))
    if reads is not None:
        print(read_report(args, *reads))
    if args.json:
        figures = {"single": single["service_per_s"], "plain": single["plain_per_s"], "pages": single["pages"],
                   **{name: batch["per_s"] for name, batch in batches.items()},
                   "load": os.getloadavg()[0]}  # fmt: skip
        print(json.dumps(figures))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes on these CPUs slow every figure)")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def write_report(args: argparse.Namespace, single: dict[str, float], batches: dict[str, dict[str, float]]) -> str:
    ratio = single["service_per_s"] / single["plain_per_s"]
    targets = {"hour": 15_000, "month": 15_000, "few": 20_000}
    labels = {
        "hour": "log_usage_batch, 1,000/call, 5,000 players, last hour",
        "month": "log_usage_batch, 1,000/call, 5,000 players, 30 days",
        "few": "log_usage_batch, 1,000/call, 100 players, last hour",
    }
    rows = [
        ("log_usage, one event and one commit per call", f"{args.single:,}", f"{single['service_per_s']:,.0f}",
         f"{single['rows_per_event']:.2f}", ">= 5,000", verdict(single["service_per_s"] >= 5000)),
        ("plain sqlite3 insert + commit, same rows", f"{args.single:,}", f"{single['plain_per_s']:,.0f}", "", "", ""),
        ("  log_usage / plain sqlite3", "", f"{ratio:.2f}x", "", "", ""),
        ("  WAL pages each single event's commit writes", "", f"{single['pages']:.1f}", "", "", ""),
    ]  # fmt: skip
    for name, batch in batches.items():
        rows.append((labels[name], f"{args.batch:,}", f"{batch['per_s']:,.0f}", f"{batch['rows_per_event']:.2f}",
                     f">= {targets[name]:,}", verdict(batch["per_s"] >= targets[name])))  # fmt: skip
    return (
        "\n"
        + table(("write", "events", "rate /s", "rollup rows / event", "target", ""), rows, "lrrrrl")
        + "\n(rollup rows / event: the event's rollup keys when logged alone; distinct rows a batch writes, per event)"
    )


def read_report(
    args: argparse.Namespace,
    small: dict[str, tuple[float, float]],
    large: dict[str, tuple[float, float]],
    seed_rate: float,
    store_bytes: int,
) -> str:
    rows = []
    for name in large:
        (s_med, s_p99), (l_med, l_p99) = small[name], large[name]
        ratio = l_med / s_med
        rows.append((name, f"{s_med:,.0f}", f"{s_p99:,.0f}", f"{l_med:,.0f}", f"{l_p99:,.0f}", f"{ratio:.2f}",
                     verdict(l_med < 1000 and ratio <= 1.5)))  # fmt: skip
    big = f"{args.events // 1000:,}K"
    latency = table(
        ("read (µs per call)", "1K median", "1K p99", f"{big} median", f"{big} p99", "ratio", "< 1 ms, <= 1.5x"),
        rows,
        "lrrrrrl",
    )  # fmt: skip
    seeding = f"seeded {args.events:,} events at {seed_rate:,.0f}/s (batches of 1,000), {store_bytes / 1e6:,.0f} MB"
    return f"\n{seeding}\n\n{latency}  ({args.calls:,} calls each)"


if __name__ == "__main__":
    main()
