"""Data migrations of the Appwrite store that ``ai-usage appwrite setup`` runs after the schema: each is
idempotent (a second run changes nothing), resumable (an interrupted run is finished by the next) and keeps every
event and every total.

SQLite does the same in its schema migrations (``sqlite_schema``), inside one transaction; Appwrite has no
schema transactions, so these work row by row in small transactions of their own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from appwrite.exception import AppwriteException
from appwrite.query import Query

from models.ai_usage import FREE_PRICE_RULES
from models.usage_kinds import COST_COUNTERS
from services.store.appwrite_rows import event_row_id, increment, log_from_data, rollup_row_id, shard_of
from services.store.appwrite_store import _REFUSED, EVENTS_TABLE, OPS_PER_TRANSACTION, ROLLUPS_TABLE, ROWS_PER_BULK
from services.store.appwrite_store import AppwriteUsageStore as Store
from services.store.rollups import GLOBAL_KINDS, rollup_keys

_ROLLUP_KEY = ("kind", "scope", "bucket", "dim", "shard")


def _commit(store: Store, operations: list[dict[str, Any]], what: str, done: Any = None) -> None:
    """Stage and commit ``operations`` in one transaction, retrying within the budget; ``done()`` says a refused
    commit had already been applied (an earlier run whose answer was lost)."""
    backoff = store.retry.start(what)
    while True:
        try:
            transaction = store.db.create_transaction(ttl=store.transaction_ttl)
            store.db.create_operations(transaction.id, operations)
            store.db.update_transaction(transaction.id, commit=True)
            return
        except AppwriteException as exc:
            if exc.type in _REFUSED and done is not None and done():
                return
            backoff.after(exc)


def rekey_tenant_events(store: Store) -> int:
    """Move each event stored under its bare ``request_id`` id but carrying a tenant to its tenant-scoped id.

    Before tenants scoped the idempotency key every row id came from the request id alone; a replay of such an
    event now looks for the tenant's id, so the row must live there or it would be counted twice. Each move is one
    transaction (create at the new id, delete the old), so an event is never lost or doubled. Returns how many
    events moved.
    """
    moved = 0
    for row in list(store._list(EVENTS_TABLE, [Query.is_not_null("tenant_id")], "list tenant events")):
        new_id = event_row_id(row["request_id"], row["tenant_id"])
        if row["$id"] == new_id:
            continue
        data = {name: value for name, value in row.items() if not name.startswith("$")}
        data["log_id"] = new_id
        operations = [
            {"action": "create", "databaseId": store.database_id, "tableId": EVENTS_TABLE, "rowId": new_id,
             "data": data},
            {"action": "delete", "databaseId": store.database_id, "tableId": EVENTS_TABLE, "rowId": row["$id"]},
        ]  # fmt: skip
        _commit(store, operations, "re-key tenant events", done=lambda i=new_id: bool(store._existing_ids([i])))
        moved += 1
    return moved


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
    per_transaction = ROWS_PER_BULK * OPS_PER_TRANSACTION
    for start in range(0, len(changes), per_transaction):
        group = changes[start : start + per_transaction]
        operations = [
            {"action": "bulkUpsert", "databaseId": store.database_id, "tableId": ROLLUPS_TABLE,
             "data": group[at : at + ROWS_PER_BULK]}
            for at in range(0, len(group), ROWS_PER_BULK)
        ]  # fmt: skip
        # No "already applied" check: a lost commit answer is retried only while the transaction is unknown to
        # have run (transient errors), and the next run computes the difference afresh.
        _commit(store, operations, "split old costs")
    return len(changes)


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
        _commit(store, operations, "settle price rules")
        settled += len(rows)
