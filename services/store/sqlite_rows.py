"""How usage events and rollups look as SQLite rows: the column values of an event, the way back, and which
columns and counters a batch of rows moves (the SQLite store writes only those)."""

from __future__ import annotations

import functools
import json
import sqlite3
from datetime import UTC, datetime
from operator import attrgetter

import structlog

from models.ai_usage import FREE_PRICE_RULES, AIUsageLog, derived_fields
from models.counters import COUNTER_FIELDS, Counters
from models.latency import LATENCY_COUNTERS, latency_bucket
from models.usage_kinds import COST_COUNTERS, COST_PARTS, KIND_NAMES
from services.store.sqlite_schema import EVENT_COLUMNS, PLAIN_COLUMNS, V1_EVENT_COLUMNS

log = structlog.get_logger("ai_usage.store")


def ts_text(ts: datetime) -> str:
    # Fixed width, always UTC: text order is time order, so range filters work on the column directly.
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


# json.dumps builds a new encoder whenever it is given options; one reused encoder costs half as much.
_encode_json = json.JSONEncoder(separators=(",", ":")).encode


_plain_values = attrgetter(*PLAIN_COLUMNS)


_ZEROS = (0,) * len(COST_PARTS)


def event_row(log: AIUsageLog) -> tuple[object, ...]:
    """The row's values in ``EVENT_COLUMNS`` order: the plain columns by name, then the converted ones."""
    metadata = _encode_json(log.metadata) if log.metadata else "{}"
    converted = (log.task_type.value, int(log.success), metadata, ts_text(log.timestamp), int(log.price_is_fallback))
    return (*_plain_values(log), *converted, *map(log.cost_nano_by_kind.get, COST_PARTS, _ZEROS))


def log_from_row(row: sqlite3.Row) -> AIUsageLog:
    fields = {name: row[name] for name in PLAIN_COLUMNS}
    return AIUsageLog(
        **fields,
        **derived_fields(fields["cost_nano"], fields["tokens_input"], fields["tokens_output"]),
        task_type=row["task_type"],
        success=bool(row["success"]),
        metadata=_metadata(row),
        timestamp=datetime.fromisoformat(row["ts"]),
        price_is_fallback=bool(row["price_is_fallback"]),
        cost_nano_by_kind={
            part: row[column] for part, column in zip(COST_PARTS, COST_COUNTERS, strict=True) if row[column]
        },
    )


def _metadata(row: sqlite3.Row) -> dict:
    try:
        return json.loads(row["metadata"])
    except RecursionError:  # stored by an older version before depth was capped: keep the row readable
        log.warning("store.metadata_unreadable", log_id=row["log_id"])
        return {"_unreadable_metadata": row["metadata"]}


def counter_name(name: str) -> str:
    if name not in _COUNTER_SET:  # names go into SQL text: only the table's own counters
        raise ValueError(f"unknown counter {name!r}")
    return name


_COUNTER_SET = frozenset(COUNTER_FIELDS)


def counters_of(row: sqlite3.Row) -> Counters:
    return Counters(*row[-len(COUNTER_FIELDS) :])


# Event columns that are zero unless the event used that kind (or paid for it). When a whole batch leaves one at
# zero, its rollup counter is not summed, and (if the column has a default: all but version 1's) it is not written.
_USUALLY_ZERO = {name: EVENT_COLUMNS.index(name) for name in (*KIND_NAMES, *COST_COUNTERS)}
_NO_DEFAULT = frozenset(V1_EVENT_COLUMNS)
_AT = {
    name: EVENT_COLUMNS.index(name)
    for name in ("success", "price_is_fallback", "price_rule", "cost_nano", "request_duration_ms")
}
_FREE = frozenset(FREE_PRICE_RULES)


def moved(rows: list[tuple[object, ...]]) -> tuple[tuple[str, ...], tuple[str, ...], list[tuple[object, ...]]]:
    """The event columns worth writing for these rows, the rollup counters they move, and the rows cut to them."""
    by_column = list(zip(*rows, strict=True))
    quiet = {name for name, at in _USUALLY_ZERO.items() if not any(by_column[at])}
    columns = tuple(name for name in EVENT_COLUMNS if name not in quiet or name in _NO_DEFAULT)
    rules = set(by_column[_AT["price_rule"]])
    durations = [ms for ms in by_column[_AT["request_duration_ms"]] if ms is not None]
    buckets = {latency_bucket(ms) for ms in durations}
    moves = {
        "timed_requests": bool(durations),
        "latency_ms_total": any(durations),
        **{name: index in buckets for index, name in enumerate(LATENCY_COUNTERS)},
        "failed_requests": not all(by_column[_AT["success"]]),
        "unpriced_requests": any(by_column[_AT["price_is_fallback"]]),
        "free_requests": bool(rules & _FREE),
        "other_host_requests": "other_host" in rules,
        "cost_nano": any(by_column[_AT["cost_nano"]]),
        "platform_credits": any(by_column[_AT["cost_nano"]]),
    }
    counters = tuple(name for name in COUNTER_FIELDS if name not in quiet and moves.get(name, True))
    if len(columns) < len(EVENT_COLUMNS):
        kept = [by_column[EVENT_COLUMNS.index(name)] for name in columns]
        rows = list(zip(*kept, strict=True))
    return columns, counters, rows


@functools.lru_cache(maxsize=256)
def insert_event(columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO events ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT (log_id) DO NOTHING"
