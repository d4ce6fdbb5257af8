"""Transactions: staging operations, reads that see them, and all-or-nothing commits."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from . import queries
from .conflicts import CONFLICT_MESSAGE, CommitGuard
from .errors import AppwriteError, argument_invalid
from .rows import RowWriter
from .rowset import RowSet
from .schema import Catalog, Table
from .values import UNIQUE, Clock, format_timestamp, unique_id

# appwrite-facts §1.3: the valid `action` values [S Validator/Operation.php].
ACTIONS = (
    "create",
    "update",
    "upsert",
    "delete",
    "increment",
    "decrement",
    "bulkCreate",
    "bulkUpdate",
    "bulkUpsert",
    "bulkDelete",
)
MAX_OPERATIONS = 100  # appwrite-facts §1.3: plan databasesTransactionSize ?? 100
TTL_MIN, TTL_MAX, TTL_DEFAULT = 60, 3600, 300  # appwrite-facts §1.3
_NEEDS_ROW = ("update", "delete", "increment", "decrement")

# appwrite-facts §1.3: commit errors use legacy/document type names [S Transactions/Update.php L312-347].
_COMMIT_TYPES = {
    "transaction_conflict": "transaction_conflict",  # a row changed after staging (conflicts.py)
    "row_already_exists": "transaction_conflict",
    "row_unique_constraint_violation": "transaction_conflict",
    "row_invalid_structure": "document_invalid_structure",
    "row_missing_data": "document_invalid_structure",
    "row_missing_payload": "document_invalid_structure",
    "general_argument_invalid": "document_invalid_structure",
    "column_limit_exceeded": "attribute_limit_exceeded",
    "general_query_invalid": "general_query_invalid",
    "general_cursor_not_found": "general_query_invalid",
}


@dataclass
class Operation:
    action: str
    database_id: str
    table_id: str
    row_id: str | None = None
    data: Any = None
    permissions: Any = None
    # When it was staged: its transactionLogs row's `$createdAt`, what the commit's conflict check compares
    # a row's `$updatedAt` with (conflicts.py) [S Transactions/Update.php @1.9.6 L229].
    staged_at: str | None = None


@dataclass
class Transaction:
    id: str
    created_at: str
    updated_at: str
    expires_at: float
    status: str = "pending"
    operations: list[Operation] = field(default_factory=list)

    def model(self) -> dict[str, Any]:
        return {
            "$id": self.id,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
            "status": self.status,
            "operations": len(self.operations),
            "expiresAt": format_timestamp(self.expires_at),
        }


class TransactionBook:
    def __init__(self, catalog: Catalog, clock: Clock) -> None:
        self.catalog, self.clock = catalog, clock
        self.items: dict[str, Transaction] = {}
        self.late: dict[str, Transaction] = {}  # commits still running (fault `late_commit`)

    def create(self, ttl: int) -> Transaction:
        # A late commit (fault `late_commit`) lands before the next transaction opens: the worst moment for a writer
        # that took it for failed and is about to write its events again.
        self.land_late()
        now = self.clock.now_iso()
        tx = Transaction(unique_id(self.clock), now, now, self.clock.time() + ttl)
        self.items[tx.id] = tx
        return tx

    def get(self, tx_id: str) -> Transaction:
        tx = self.items.get(tx_id)
        if tx is None:  # appwrite-facts §2.2: transaction_not_found (404)
            raise AppwriteError("transaction_not_found", "Transaction with the requested ID could not be found.")
        return tx

    def delete(self, tx_id: str) -> None:
        self.items.pop(self.get(tx_id).id)

    def _open(self, tx_id: str, *, check_expiry: bool = True) -> Transaction:
        tx = self.get(tx_id)
        if tx.status != "pending":
            # appwrite-facts §1.3: a transaction that is no longer pending → 400 transaction_not_ready.
            raise AppwriteError("transaction_not_ready", f"Transaction is {tx.status}, not pending.")
        if check_expiry and self.clock.time() > tx.expires_at:
            # appwrite-facts §1.3: an expired transaction → 410 transaction_expired.
            raise AppwriteError("transaction_expired", "Transaction has expired.")
        return tx

    def stage(self, tx_id: str, operations: list[Operation], *, check_expiry: bool = True) -> Transaction:
        """Stage operations without writing; staged data is validated only at commit (facts §8)."""
        tx = self._open(tx_id, check_expiry=check_expiry)
        if len(tx.operations) + len(operations) > MAX_OPERATIONS:
            # appwrite-facts §1.3: at most 100 operations per transaction, bulk calls count as 1.
            raise AppwriteError(
                "transaction_limit_exceeded",
                f"Transaction already has {len(tx.operations)} operations, adding {len(operations)} "
                f"would exceed the maximum of {MAX_OPERATIONS}",
            )
        now = self.clock.now_iso()
        for op in operations:  # one call's logs share one `$createdAt` (createDocuments' single `$time`)
            op.staged_at = now
        tx.operations.extend(operations)
        tx.updated_at = now
        return tx

    def parse_operations(self, tx_id: str, raw: Any) -> list[Operation]:
        """Validate a create_operations body (appwrite-facts §1.3)."""
        tx = self._open(tx_id)
        if not isinstance(raw, list) or not raw:
            raise argument_invalid("operations", "Value must be a non-empty array of operations")
        parsed: list[Operation] = []
        for item in raw:
            if not isinstance(item, dict) or item.get("action") not in ACTIONS:
                raise argument_invalid("operations", f"Each operation needs an action, one of: {', '.join(ACTIONS)}")
            action, data, row_id = item["action"], item.get("data"), item.get("rowId")
            table = self.catalog.table(str(item.get("databaseId")), str(item.get("tableId")))
            _check_shape(action, data)
            if action == "create":
                given = row_id or (data.get("$id") if isinstance(data, dict) else None)
                row_id = unique_id(self.clock) if given in (None, UNIQUE) else given
            if action in _NEEDS_ROW:
                if not isinstance(row_id, str) or not row_id:
                    raise argument_invalid("operations", f"A {action} operation needs a rowId")
                staged = _staged_ids([*tx.operations, *parsed], table)
                if table.rows.get(row_id) is None and _fold(table, row_id) not in staged:
                    # appwrite-facts §1.3: update/delete/increment/decrement of a missing row → 404 at staging.
                    raise AppwriteError(
                        "document_not_found", f"Document with the requested ID '{row_id}' could not be found."
                    )
            parsed.append(Operation(action, table.database_id, table.id, row_id, data))
        return parsed

    def rows_for_read(self, tx_id: str, table: Table) -> RowSet:
        """appwrite-facts §1.3: reads with the same transaction id see the staged writes;
        §8: but not staged increments."""
        tx = self.get(tx_id)
        if tx.status != "pending":
            return table.rows
        overlay = table.rows.copy()
        for op in tx.operations:
            if (op.database_id, op.table_id) == (table.database_id, table.id) and op.action not in (
                "increment",
                "decrement",
            ):
                # a staged write that would fail at commit is simply not visible
                with contextlib.suppress(AppwriteError):
                    self._apply(op, table, overlay)
        return overlay

    def rollback(self, tx_id: str) -> Transaction:
        tx = self._open(tx_id)
        tx.status = "failed"  # appwrite-facts §1.3: rollback sets `failed`
        tx.updated_at = self.clock.now_iso()
        return tx

    def conflict(self, tx_id: str) -> None:
        """Fault `conflict`: answer 409 and mark the transaction failed without applying it."""
        tx = self._open(tx_id)
        tx.status = "failed"  # appwrite-facts §1.3: after a commit error the status is `failed`
        raise AppwriteError("transaction_conflict", CONFLICT_MESSAGE)

    def commit(self, tx_id: str) -> Transaction:
        return self.apply(self.begin_commit(tx_id))

    def begin_commit(self, tx_id: str) -> Transaction:
        # Databases/Transactions/Update.php writes `committing` before its database transaction (withTransaction)
        # and `committed` after it: a commit still running shows `committing` to every other request.
        tx = self._open(tx_id)
        tx.status = "committing"
        return tx

    def commit_later(self, tx_id: str) -> Transaction:
        """Fault `late_commit`: the commit starts (`committing`) and lands later, through `land_late`."""
        tx = self.begin_commit(tx_id)
        self.late[tx.id] = tx
        return tx

    def land_late(self, tx_id: str | None = None) -> None:
        """Finish the late commits (every one, or `tx_id`'s): all or nothing, as a commit; an error only leaves the
        transaction `failed`, its answer being long lost."""
        for late_id in list(self.late) if tx_id is None else [tx_id]:
            tx = self.late.pop(late_id, None)
            if tx is not None:
                with contextlib.suppress(AppwriteError):
                    self.apply(tx)

    def apply(self, tx: Transaction) -> Transaction:
        snapshots: dict[int, tuple[Table, Any]] = {}
        guard = CommitGuard()  # a row changed after an operation was staged refuses the commit (conflicts.py)
        try:
            for op in tx.operations:
                table = self.catalog.table(op.database_id, op.table_id)
                if id(table) not in snapshots:
                    snapshots[id(table)] = (table, table.rows.snapshot())
                guard.run(op, table, lambda op=op, table=table: self._apply(op, table, table.rows))
        except BaseException as exc:
            # appwrite-facts §1.3: commit is one database transaction: all or nothing; status → failed.
            for table, snapshot in snapshots.values():
                table.rows.restore(snapshot)
            tx.status = "failed"
            tx.updated_at = self.clock.now_iso()
            if isinstance(exc, AppwriteError):
                raise _commit_error(exc) from exc
            raise
        tx.status = "committed"
        tx.updated_at = self.clock.now_iso()
        return tx

    def _apply(self, op: Operation, table: Table, rows: RowSet) -> list[str]:
        """Write one operation; answers the ids of the rows it wrote or deleted."""
        writer = RowWriter(table, rows, self.clock)
        data = op.data
        if op.action == "create":
            done = [writer.create(op.row_id or unique_id(self.clock), data, op.permissions)]
        elif op.action == "update":
            done = [writer.update(op.row_id or "", data, op.permissions)]
        elif op.action == "upsert":
            # appwrite-facts §8: upserts ignore rowId at commit; without `$id` in data a random id is made.
            row_id = data.get("$id") if isinstance(data, dict) else None
            body = {k: v for k, v in (data or {}).items() if k != "$id"}
            new_id = unique_id(self.clock) if row_id in (None, UNIQUE) else row_id
            done = [writer.upsert(new_id, body, op.permissions)]
        elif op.action == "delete":
            done = [writer.delete(op.row_id or "")]
        elif op.action in ("increment", "decrement"):
            sign = 1 if op.action == "increment" else -1
            bound = data.get("max" if sign > 0 else "min")
            done = [writer.increment(op.row_id or "", data["column"], data.get("value", 1), bound, sign)]
        elif op.action == "bulkCreate":
            done = writer.create_many(data)
        elif op.action == "bulkUpsert":
            done = writer.upsert_many(data)
        else:
            plan = queries.parse((data or {}).get("queries"), table, writer.now_ts)
            bulk_update = op.action == "bulkUpdate"
            done = writer.update_many(data.get("data"), plan) if bulk_update else writer.delete_many(plan)
        return [row["$id"] for row in done]


def _check_shape(action: str, data: Any) -> None:
    if action in ("bulkCreate", "bulkUpsert"):
        ok = isinstance(data, list) and len(data) <= 100
    elif action in ("increment", "decrement"):
        # appwrite-facts §1.3: increment/decrement take data {column, value?, max?|min?}.
        step = data.get("value", 1) if isinstance(data, dict) else None
        ok = (
            isinstance(data, dict)
            and isinstance(data.get("column"), str)
            and isinstance(step, int | float)
            and not isinstance(step, bool)
            and step > 0
        )
    elif action == "bulkUpdate":
        ok = isinstance(data, dict) and isinstance(data.get("data"), dict)
    elif action in ("delete", "bulkDelete"):
        ok = data is None or isinstance(data, dict)
    else:
        ok = isinstance(data, dict)
    if not ok:
        raise argument_invalid("operations", f"Invalid data for a {action} operation")


def _staged_ids(operations: list[Operation], table: Table) -> set[str]:
    ids: set[str] = set()
    for op in operations:
        if (op.database_id, op.table_id) != (table.database_id, table.id):
            continue
        if op.action == "create" and op.row_id:
            ids.add(op.row_id)
        elif op.action == "upsert" and isinstance(op.data, dict) and op.data.get("$id"):
            ids.add(op.data["$id"])
        elif op.action in ("bulkCreate", "bulkUpsert"):
            ids.update(r["$id"] for r in op.data if isinstance(r, dict) and isinstance(r.get("$id"), str))
    return {_fold(table, i) for i in ids}


def _fold(table: Table, row_id: str) -> str:
    return row_id.lower() if table.rows.case_insensitive else row_id


def _commit_error(exc: AppwriteError) -> AppwriteError:
    kind = _COMMIT_TYPES.get(exc.type)
    if kind is None:
        kind = "document_not_found" if exc.type.endswith("_not_found") else "transaction_failed"
    if kind == "transaction_conflict":
        # Update.php @1.9.6 L317-321: `new Exception(TRANSACTION_CONFLICT, previous: $e)`: no message of its
        # own, so duplicates and unique violations also answer the error's description.
        return AppwriteError(kind, CONFLICT_MESSAGE)
    return AppwriteError(kind, exc.message)
