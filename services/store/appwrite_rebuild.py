"""Rollup maintenance on Appwrite: rebuild every rollup row from the events, and record which definition built them.

Appwrite has no schema transactions and no server-side GROUP BY, so the rebuild works in three phases:

1. **Compute.** Every event is read, 5,000 to a request, and added to the row it feeds (its shard included),
   in memory: bounded by the number of rollup rows (about 1 KB each), not by the number of events.
2. **Compare.** Every stored rollup row is read, 5,000 to a request: a row already holding its expected values
   is left alone; a row no event feeds (a removed kind such as ``global_day``, an old shard) is to be deleted.
3. **Write.** The rows that differ are written with their *absolute* values (every counter named, so a counter
   added later is filled too) by ``bulkUpsert``, and the others deleted by ``bulkDelete`` on their ids: at most
   ``ROWS_PER_BULK`` rows per operation, and ``OPS_PER_TRANSACTION`` operations and ``MAX_BODY_BYTES`` of JSON per
   transaction, each transaction retried within the store's budget (429s and 5xx included). A failed rebuild puts
   the definition it found back, so ingest is not left refused.

Idempotent and resumable: values are absolute and deletions by id, so a repeated transaction (a lost answer)
or a second run writes the same thing, and a run interrupted after some transactions is finished by the next
(the rows already written compare equal and are skipped). The definition's fingerprint is written last, in a
meta row of the rollups table (kind ``_meta``, never read as a rollup), so ``ai-usage appwrite setup`` sees an
unfinished or outdated rebuild and runs it again.

Concurrent ingest: an event logged between phase 1 and the write of a row it feeds is lost from that row (the
absolute value overwrites its increment). **Pause ingest while rebuilding.** The newest event is compared before
and after: when events arrived, the report says so and the fingerprint is not recorded, so run it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from appwrite.query import Query

from models.counters import COUNTER_FIELDS
from services.store.appwrite_migrations import _commit, in_transactions
from services.store.appwrite_rows import (
    META_KIND,
    META_ROW_ID,
    ROLLUP_DEFINITION,
    RollupDelta,
    definition_row,
    log_from_data,
    rollup_deltas,
    rollup_key_of,
)
from services.store.appwrite_store import (
    EVENTS_TABLE,
    OPS_PER_TRANSACTION,
    ROLLUPS_TABLE,
    ROWS_PER_BULK,
    AppwriteUsageStore,
)
from services.store.rollups import SHAPES

log = structlog.get_logger("ai_usage.rollups")

_KEY_COLUMNS = ["kind", "scope", "bucket", "dim", "long_key", "shard"]


def definition_current(store: AppwriteUsageStore) -> bool:
    return store.recorded_definition() == ROLLUP_DEFINITION


def stale_rows(store: AppwriteUsageStore) -> Iterator[tuple[str, str, str, str]]:
    """(kind, scope, bucket, dim) of every row of a kind the rollups no longer define."""
    # One notEqual per kind (each takes one value): the rows left are exactly the unknown kinds.
    queries = [Query.not_equal("kind", kind) for kind in (*(k.value for k in SHAPES), META_KIND)]
    for data in store._list(ROLLUPS_TABLE, [*queries, Query.select(_KEY_COLUMNS)], "list stale rollups"):
        scope, dim = rollup_key_of(data)
        yield data["kind"], scope, data["bucket"], dim


def _newest_event(store: AppwriteUsageStore) -> str | None:
    queries = [Query.order_desc("$sequence"), Query.limit(1), Query.select(["request_id"])]
    rows = store.retry.call("read the newest event", lambda: store._list_rows(EVENTS_TABLE, queries))
    return rows[0]["$id"] if rows else None


def expected_rows(store: AppwriteUsageStore) -> tuple[int, dict[str, RollupDelta]]:
    """Phase 1: every rollup row the stored events feed, by row id, and how many events there are."""
    expected: dict[str, RollupDelta] = {}
    events = 0
    page: list[Any] = []

    def add(logs: list[Any]) -> None:
        for row_id, delta in rollup_deltas(logs, store.shards).items():
            have = expected.get(row_id)
            if have is None:
                expected[row_id] = delta
            else:
                have.values = [a + b for a, b in zip(have.values, delta.values, strict=True)]

    for data in store._list(EVENTS_TABLE, [], "list events"):
        page.append(log_from_data(data))
        events += 1
        if len(page) >= 1000:
            add(page)
            page = []
    add(page)
    return events, expected


def absolute_row(row_id: str, delta: RollupDelta) -> dict[str, Any]:
    """A ``bulkUpsert`` row setting every counter to its value (never an increment: writing it twice is the same)."""
    # The key columns as record writes them (the same long_key text, or a rebuilt row would never compare equal);
    # long_key named even when null, to clear a stale one.
    return {"long_key": None, **delta.key_columns(row_id), **dict(zip(COUNTER_FIELDS, delta.values, strict=True))}


def rebuild(
    store: AppwriteUsageStore, *, ops_per_transaction: int = OPS_PER_TRANSACTION, rows_per_op: int = ROWS_PER_BULK
) -> dict[str, Any]:
    """Make the rollups hold exactly what the events add up to (see the module's docstring)."""
    newest = _newest_event(store)
    events, expected = expected_rows(store)
    select = Query.select([*_KEY_COLUMNS, *COUNTER_FIELDS])
    unchanged, deletes = 0, []
    for data in store._list(ROLLUPS_TABLE, [select], "list rollups"):
        row_id = data["$id"]
        if row_id == META_ROW_ID:
            continue
        want = expected.get(row_id)
        if want is None:
            deletes.append(row_id)
        elif _same(data, want):
            unchanged += 1
            del expected[row_id]  # nothing to write
    rows = len(expected) + unchanged
    upserts = [absolute_row(row_id, expected.pop(row_id)) for row_id in sorted(expected)]
    operations = [
        {"action": "bulkUpsert", "databaseId": store.database_id, "tableId": ROLLUPS_TABLE,
         "data": upserts[at : at + rows_per_op]}
        for at in range(0, len(upserts), rows_per_op)
    ] + [
        {"action": "bulkDelete", "databaseId": store.database_id, "tableId": ROLLUPS_TABLE,
         "data": {"queries": [Query.equal("$id", deletes[at : at + rows_per_op])]}}
        for at in range(0, len(deletes), rows_per_op)
    ]  # fmt: skip
    if operations:
        _write(store, operations, ops_per_transaction)
    arrived = _newest_event(store) != newest
    if arrived:
        log.warning("rollups.events_arrived_during_rebuild", hint="pause ingest and run the rebuild again")
    else:
        record_definition(store)
    return {
        "events": events,
        "rows": rows,
        "rows_written": len(upserts),
        "rows_deleted": len(deletes),
        "rows_unchanged": unchanged,
        "events_arrived": arrived,
    }


def _write(store: AppwriteUsageStore, operations: list[dict[str, Any]], ops_per_transaction: int) -> None:
    """Phase 3, with no definition recorded until the rebuild ends: a store refuses to write meanwhile
    (check_definition), and setup sees an interrupted rebuild as one and runs it again.

    A rebuild that fails puts back the definition it found: each row then holds either its old value or its rebuilt
    one, as good as before, and ingest goes on instead of waiting for someone to repair what refused the rebuild."""
    found = store.recorded_definition()
    forget = {"action": "bulkDelete", "databaseId": store.database_id, "tableId": ROLLUPS_TABLE,
              "data": {"queries": [Query.equal("$id", [META_ROW_ID])]}}  # fmt: skip
    _commit(store, [forget], "forget the rollup definition")
    try:
        for run in in_transactions(operations, ops_per_transaction):
            _commit(store, run, "rebuild rollups")
    except Exception:
        if found is not None:
            try:
                record_definition(store, found)
            except Exception as exc:  # Appwrite unreachable: the failure to report is the rebuild's
                log.warning("rollups.definition_not_restored", definition=found, error=str(exc))
            else:
                log.warning("rollups.rebuild_failed_definition_restored", definition=found)
        raise


def record_definition(store: AppwriteUsageStore, definition: str = ROLLUP_DEFINITION) -> None:
    """Record that the rollups hold what ``definition`` adds up: today's after a rebuild or on an empty ledger, or
    the one a failed rebuild found."""
    row = {**definition_row(), "dim": definition}
    _commit(store, [{"action": "bulkUpsert", "databaseId": store.database_id, "tableId": ROLLUPS_TABLE,
                     "data": [row]}], "record the rollup definition")  # fmt: skip
    store.definition_checked = definition == ROLLUP_DEFINITION


def _same(data: dict[str, Any], want: RollupDelta) -> bool:
    key = rollup_key_of(data)
    if (data["kind"], key[0], data["bucket"], key[1]) != (want.kind, want.scope, want.bucket, want.dim):
        return False
    return all((data.get(name) or 0) == value for name, value in zip(COUNTER_FIELDS, want.values, strict=True))


def backfill_if_changed(store: AppwriteUsageStore) -> dict[str, Any] | None:
    """Rebuild when the recorded definition is not today's (never recorded, or the shapes or counters changed)."""
    if definition_current(store):
        return None
    return rebuild(store)
