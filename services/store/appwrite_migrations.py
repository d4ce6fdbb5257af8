"""Data migrations of the Appwrite store that ``ai-usage appwrite setup`` runs after the schema: each is
idempotent (a second run changes nothing), resumable (an interrupted run is finished by the next) and keeps every
event and every total.

SQLite does the same in its schema migrations (``sqlite_schema``), inside one transaction; Appwrite has no
schema transactions, so these work row by row in small transactions of their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from appwrite.operator import Operator
from appwrite.query import Query

from models.ai_usage import FREE_PRICE_RULES
from models.counters import COUNTER_FIELDS
from models.usage_kinds import COST_COUNTERS
from services.errors import StoreError
from services.store.appwrite_rows import (
    event_row_id,
    increment,
    json_size,
    log_from_data,
    rollup_deltas,
    rollup_row_id,
    shard_of,
)
from services.store.appwrite_store import (
    EVENTS_TABLE,
    MAX_BODY_BYTES,
    OPS_PER_TRANSACTION,
    ROLLUPS_TABLE,
    ROWS_PER_BULK,
    _Conflict,
)
from services.store.appwrite_store import AppwriteUsageStore as Store
from services.store.rollups import GLOBAL_KINDS, rollup_keys

_ROLLUP_KEY = ("kind", "scope", "bucket", "dim", "shard")
_FREE = COUNTER_FIELDS.index("free_requests")


def _commit(
    store: Store,
    operations: list[dict[str, Any]],
    what: str,
    landed: Callable[[], bool] | None = None,
    *,
    refused_ends: bool = False,
) -> bool:
    """Stage and commit ``operations`` in one transaction, retrying within the store's budget; True once applied.

    A commit whose answer is lost is settled as the store settles its own (``_transaction_state``) before anything
    is staged again: a new transaction would apply increments twice. ``landed`` reads from the data whether the
    operations were applied, for when Appwrite no longer knows the transaction (None: applying them twice changes
    nothing). A refused commit (an id exists, a row moved) is applied already if ``landed`` says so; else it is
    tried again, or, with ``refused_ends``, answers False."""
    with store.retry.start(what) as backoff:
        while True:
            try:
                store._stage_and_commit(operations, landed, backoff)
                return True
            except _Conflict as conflict:
                if landed is not None and landed():
                    return True
                if refused_ends:
                    return False
                backoff.after(conflict.cause)


def in_transactions(
    operations: Iterable[dict[str, Any]], per_transaction: int = OPS_PER_TRANSACTION
) -> Iterator[list[dict[str, Any]]]:
    """``operations`` in consecutive runs that each fit one transaction: at most ``per_transaction`` operations, and
    ``MAX_BODY_BYTES`` of JSON (a hundred rows with every counter named take about 200 KB)."""
    run: list[dict[str, Any]] = []
    size = 0
    for operation in operations:
        cost = json_size(operation) + 2
        if run and (len(run) >= per_transaction or size + cost > MAX_BODY_BYTES):
            yield run
            run, size = [], 0
        run.append(operation)
        size += cost
    if run:
        yield run


def rekey_tenant_events(store: Store) -> int:
    """Move each event stored under its bare ``request_id`` id but carrying a tenant to its tenant-scoped id.

    Before tenants scoped the idempotency key every row id came from the request id alone; a replay of such an
    event now looks for the tenant's id, so the row must live there or it would be counted twice. Each move is one
    transaction (create at the new id, delete the old), so an event is never lost or doubled. A replay stored
    under the new id before the move (ingest between the deploy and ``appwrite setup``) made the old row a second
    copy: it is deleted, and what it added to the rollups taken off them, in one transaction. Returns how many
    events moved.
    """
    moved = 0
    for row in list(store._list(EVENTS_TABLE, [Query.is_not_null("tenant_id")], "list tenant events")):
        new_id = event_row_id(row["request_id"], row["tenant_id"])
        if row["$id"] != new_id:
            _rekey(store, row, new_id)
            moved += 1
    return moved


def _rekey(store: Store, row: dict[str, Any], new_id: str) -> None:
    old_id = row["$id"]

    def gone() -> bool:  # both moves delete the old row in the transaction that does the rest
        return not store._existing_ids([old_id])

    data = {name: value for name, value in row.items() if not name.startswith("$")}
    delete = {"action": "delete", "databaseId": store.database_id, "tableId": EVENTS_TABLE, "rowId": old_id}
    create = {"action": "create", "databaseId": store.database_id, "tableId": EVENTS_TABLE, "rowId": new_id,
              "data": {**data, "log_id": new_id}}  # fmt: skip
    for _ in range(3):
        if store._existing_ids([new_id]):
            _commit(store, [delete, *_uncount(store, row)], "drop a second copy of a re-keyed event", gone)
            return
        if _commit(store, [create, delete], "re-key tenant events", gone, refused_ends=True):
            return
    raise StoreError(f"Appwrite re-key of event {old_id} failed: its move was refused every time")


def _uncount(store: Store, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Operations taking an event row off the rollups it was counted in (decrements, never below 0)."""
    upserts = []
    for row_id, delta in sorted(rollup_deltas([log_from_data(row)], store.shards).items()):
        if row.get("price_rule") is None:
            delta.values[_FREE] = 0  # stored before rows kept their rule: its free request was never counted
        taken = {name: Operator.decrement(value, 0) for name, value in zip(COUNTER_FIELDS, delta.values, strict=True)
                 if value}  # fmt: skip
        upserts.append({**delta.key_columns(row_id), **taken})
    return [
        {"action": "bulkUpsert", "databaseId": store.database_id, "tableId": ROLLUPS_TABLE,
         "data": upserts[at : at + ROWS_PER_BULK]}
        for at in range(0, len(upserts), ROWS_PER_BULK)
    ]  # fmt: skip


def split_old_costs(store: Store) -> int:
    """Give every rollup row's cost that no part accounts for to its ``unsplit`` part.

    Rows written before costs were split by kind have a ``cost_nano`` and no parts; events since add to both
    alike. The difference is added with the increment operator, so writers running meanwhile are not undone, and
    a row whose parts already add up is left alone. Returns how many rollup rows were changed.
    """
    select = Query.select([*_ROLLUP_KEY, "cost_nano", *COST_COUNTERS])
    changes = []
    for row in store._list(ROLLUPS_TABLE, [select], "list rollups"):
        missing = (row.get("cost_nano") or 0) - sum(row.get(column) or 0 for column in COST_COUNTERS)
        if missing:
            key = {name: row[name] for name in _ROLLUP_KEY}
            changes.append({"$id": row["$id"], **key, "cost_nano_unsplit": increment(missing)})
    operations = [
        {"action": "bulkUpsert", "databaseId": store.database_id, "tableId": ROLLUPS_TABLE,
         "data": changes[at : at + ROWS_PER_BULK]}
        for at in range(0, len(changes), ROWS_PER_BULK)
    ]  # fmt: skip
    for run in in_transactions(operations):
        # Increments: a commit whose answer is lost must not be applied again. A row's parts add up to its cost
        # once its transaction is applied (writers meanwhile add to both alike): its first row tells.
        _commit(store, run, "split old costs", _parts_add_up(store, run[0]["data"][0]["$id"]))
    return len(changes)


def _parts_add_up(store: Store, row_id: str) -> Callable[[], bool]:
    def landed() -> bool:
        data = store.retry.call("read a rollup", lambda: store._get_row(ROLLUPS_TABLE, row_id))
        return (data.get("cost_nano") or 0) == sum(data.get(column) or 0 for column in COST_COUNTERS)

    return landed


def settle_price_rules(store: Store, per_transaction: int = 80) -> int:
    """Write the price rule onto every event stored before rows kept it, counting its free ones in the rollups.

    Such a row reads with the rule its price implies (``log_from_data``), but the rollups it was added to never
    counted it in ``free_requests``. Each transaction writes the rule onto a group of events and adds their free
    ones to their rollup rows, together: an event with its rule written is never counted again, so a second run
    (or one after an interruption) changes nothing. Returns how many events were settled.
    """
    settled = 0
    while True:
        # The first page of what is left: the events settled by the last round no longer match.
        queries = [Query.is_null("price_rule"), Query.limit(per_transaction)]
        rows = store.retry.call("list events", lambda q=queries: store._list_rows(EVENTS_TABLE, q))
        if not rows:
            return settled
        logs = [log_from_data(row) for row in rows]
        operations = [
            {"action": "update", "databaseId": store.database_id, "tableId": EVENTS_TABLE, "rowId": row["$id"],
             "data": {"price_rule": log.price_rule}}
            for row, log in zip(rows, logs, strict=True)
        ]  # fmt: skip
        free: Counter[tuple[str, str, str, str, int]] = Counter()
        for log in logs:
            if log.price_rule in FREE_PRICE_RULES:
                shard = shard_of(log.user_id, store.shards)
                for key in rollup_keys(log):
                    free[
                        (key.kind.value, key.scope, key.bucket, key.dim, shard if key.kind in GLOBAL_KINDS else 0)
                    ] += 1
        upserts = sorted(
            ({"$id": rollup_row_id(*key), **dict(zip(_ROLLUP_KEY, key, strict=True)), "free_requests": increment(n)}
             for key, n in free.items()),
            key=lambda row: row["$id"],
        )  # fmt: skip
        for at in range(0, len(upserts), ROWS_PER_BULK):
            operations.append(
                {"action": "bulkUpsert", "databaseId": store.database_id, "tableId": ROLLUPS_TABLE,
                 "data": upserts[at : at + ROWS_PER_BULK]}
            )  # fmt: skip
        # Its events' rule is written with the increments: the first event tells whether a lost answer was applied.
        _commit(store, operations, "settle price rules", _rule_written(store, rows[0]["$id"]))
        settled += len(rows)


def _rule_written(store: Store, row_id: str) -> Callable[[], bool]:
    def landed() -> bool:
        return (store._get_event_data(row_id) or {}).get("price_rule") is not None

    return landed
