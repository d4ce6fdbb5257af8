"""Trust the rollups: recompute them from the raw events, report every difference, and repair them.

``verify`` reads the events of a range of UTC days page by page, computes what each rollup row should hold
(``rollup_keys`` and ``moved_counters``, exactly what the stores add per event) and compares it with the rows
stored, counter by counter. Which rows a range can vouch for:

- kinds bucketed by day or hour (``user_day``, ``player_day``, ``tenant_hour`` and the ``tenant_day`` kinds): every
  row of the range's days;
- ``user_model`` and ``session`` (no bucket: all time): only in a run without ``start`` and ``end``.

Rows of a kind the rollups no longer define (``global_day`` and the like, left on Appwrite by an earlier
version) are reported in every run, as counter ``row`` (stored 1, expected 0): they should not exist at all.

``rebuild`` repairs every rollup from every event (SQLite: one transaction; Appwrite: absolute values written
in batches, see ``services.store.appwrite_rebuild``). Memory: ``verify`` holds the expected and stored rows of
its range, ``rebuild`` on Appwrite the expected rows of the whole ledger (about 1 KB a row).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import structlog
from pydantic import BaseModel

from models.counters import COUNTER_FIELDS, moved_counters
from services.store import iter_events
from services.store.appwrite_store import AppwriteUsageStore
from services.store.protocol import EventFilter, UsageStore
from services.store.rollups import SHAPES, RollupKind, kept_by, rollup_keys
from services.store.sqlite_store import SQLiteUsageStore

log = structlog.get_logger("ai_usage.rollups")

DATED_KINDS = frozenset(kind for kind, shape in SHAPES.items() if shape.bucket in ("day", "hour"))
ALL_TIME_KINDS = frozenset(kind for kind, shape in SHAPES.items() if shape.bucket is None)
ROW_COUNTER = "row"  # the "counter" a row of a removed kind is reported under
_LOW, _HIGH = "", "9999-99-99"  # below and above every bucket (day and hour buckets start with digits)

Key = tuple[str, str, str, str]  # (kind, scope, bucket, dim)


class Difference(BaseModel):
    kind: str
    scope: str
    bucket: str
    dim: str
    counter: str
    stored: int
    expected: int


class VerifyReport(BaseModel):
    start: date | None
    end: date | None
    events: int
    kinds_checked: list[str]
    kinds_skipped: dict[str, str]  # kind -> why this run cannot vouch for it
    rows_expected: int
    rows_stored: int
    definition_current: bool  # the store's rollups were built by today's definition (its fingerprint)
    difference_count: int
    differences: list[Difference]  # the first ``max_differences``, in key order

    @property
    def clean(self) -> bool:
        return self.difference_count == 0


class RebuildReport(BaseModel):
    store: str
    events: int
    rows: int  # rollup rows once rebuilt
    rows_written: int  # created or changed
    rows_deleted: int  # rows no event feeds (a removed kind, a moved shard, a player with no events)
    rows_unchanged: int
    events_arrived: bool = False  # events were logged while it ran: rows they touched may be off; run it again


def store_of(target: Any) -> UsageStore:
    """The store of a ``UsageTrackingService``, or the store itself."""
    return getattr(target, "store", target)


def _bucket_bounds(kind: RollupKind, start: date | None, end: date | None) -> tuple[str, str]:
    bucket = SHAPES[kind].bucket
    if bucket == "day":
        return (start.isoformat() if start else _LOW), (end.isoformat() if end else _HIGH)
    if bucket == "hour":
        return (f"{start:%Y%m%d}00" if start else _LOW), (f"{end:%Y%m%d}23" if end else _HIGH)
    return "", ""


def verify(
    target: Any, start: date | None = None, end: date | None = None, *, max_differences: int = 1000
) -> VerifyReport:
    """Recompute the rollups of the UTC days ``start``..``end`` (inclusive; None: unbounded) from the events and
    report every stored counter that differs (the first ``max_differences`` of them, and how many in all)."""
    if start is not None and end is not None and end < start:
        raise ValueError("end: must not be before start")
    store = store_of(target)
    full = start is None and end is None
    skipped: dict[str, str] = {}
    checked: dict[RollupKind, tuple[str, str]] = {}
    for kind in SHAPES:
        if kind in ALL_TIME_KINDS and not full:
            skipped[kind.value] = "all-time kind: verified only without --start/--end"
        else:
            checked[kind] = _bucket_bounds(kind, start, end)

    where = EventFilter(
        start=datetime.combine(start, time(0), tzinfo=UTC) if start else None,
        end=datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC) if end else None,
    )
    expected: dict[Key, list[int]] = {}
    events = 0
    for event in iter_events(store, where):
        events += 1
        # An event moves a dozen of the ~110 counters: add those only, to each of its eight rows.
        moved = moved_counters(event)
        for key in rollup_keys(event):
            if key.kind not in checked:
                continue
            row = expected.setdefault((key.kind.value, key.scope, key.bucket, key.dim), [0] * len(COUNTER_FIELDS))
            for index, value in kept_by(key.kind, moved):  # as the stores add it
                row[index] += value

    stored: dict[Key, tuple[int, ...]] = {}
    for kind, (first, last) in checked.items():
        for (scope, bucket, dim), values in store.sum_rollups(kind, None, first, last, COUNTER_FIELDS).items():
            stored[(kind.value, scope, bucket, dim)] = values

    zeros = (0,) * len(COUNTER_FIELDS)
    differences: list[Difference] = []
    count = 0
    for key in sorted(expected.keys() | stored.keys()):
        want, have = expected.get(key, zeros), stored.get(key, zeros)
        if tuple(want) == tuple(have):
            continue
        for name, stored_value, expected_value in zip(COUNTER_FIELDS, have, want, strict=True):
            if stored_value != expected_value:
                count += 1
                if len(differences) < max_differences:
                    differences.append(Difference(**_key_fields(key), counter=name, stored=stored_value,
                                                  expected=expected_value))  # fmt: skip
    maintenance = _maintenance_of(store)
    for key in maintenance.stale_rows(store):
        count += 1
        if len(differences) < max_differences:
            differences.append(Difference(**_key_fields(key), counter=ROW_COUNTER, stored=1, expected=0))
    report = VerifyReport(
        start=start,
        end=end,
        events=events,
        kinds_checked=[kind.value for kind in checked],
        kinds_skipped=skipped,
        rows_expected=len(expected),
        rows_stored=len(stored),
        definition_current=maintenance.definition_current(store),
        difference_count=count,
        differences=differences,
    )
    log.info("rollups.verified", events=events, differences=count, start=str(start), end=str(end))
    return report


def _key_fields(key: Key) -> dict[str, str]:
    return dict(zip(("kind", "scope", "bucket", "dim"), key, strict=True))


def rebuild(target: Any, **options: Any) -> RebuildReport:
    """Recompute every rollup from every event and make the store hold exactly that; safe to run again.

    Pause ingest while it runs on Appwrite (see ``appwrite_rebuild``); on SQLite writers wait for its transaction.
    """
    store = store_of(target)
    counts = _maintenance_of(store).rebuild(store, **options)
    report = RebuildReport(store=type(store).__name__, **counts)
    log.info("rollups.rebuilt", **report.model_dump())
    return report


def _maintenance_of(store: UsageStore) -> Any:
    """The store-specific part: its stale rows, its definition fingerprint and its rebuild."""
    if isinstance(store, SQLiteUsageStore):
        from services.store import sqlite_rebuild

        return sqlite_rebuild
    if isinstance(store, AppwriteUsageStore):
        from services.store import appwrite_rebuild

        return appwrite_rebuild
    raise TypeError(f"no rollup maintenance for {type(store).__name__}")
