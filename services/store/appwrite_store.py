"""The Appwrite store: the ledger on Appwrite TablesDB, with rollups written in the event's transaction.

Two tables (declared in ``appwrite.json``): ``events``, one row per event with an id derived from its
idempotency key (``tenant_id``, ``request_id``), and ``rollups``, one row per (kind, scope, bucket, dim,
shard) holding 64-bit counters.
``record`` stages, in one transaction, a ``bulkCreate`` of the events and a ``bulkUpsert`` of every rollup
row they touch with ``Operator.increment`` values, then commits: three requests whatever the batch size
(up to 100 operations and 8 MiB of JSON; a larger batch is split into transactions that each carry their events
and their rollups). An event already stored makes the commit fail with a conflict; the store then asks which ids
exist and writes the rest, so a duplicate never adds to a total. A commit whose answer is lost is asked about,
and waited for while Appwrite still applies it, before anything is written again. Reads are rollup rows, 5,000 to
a page.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from appwrite.exception import AppwriteException
from appwrite.query import Query
from appwrite.services.tables_db import TablesDB

from models.ai_usage import AIUsageLog
from services.errors import ConfigurationError, StoreError
from services.settings import Settings
from services.store.appwrite_client import TimeoutClient
from services.store.appwrite_event_reads import EVENTS_TABLE, EventReads
from services.store.appwrite_retry import TRANSACTION_CONFLICT, Backoff, RetryPolicy, is_ambiguous
from services.store.appwrite_rollup_reads import ROLLUPS_TABLE, RollupReads
from services.store.appwrite_rows import (
    META_ROW_ID,
    ROLLUP_DEFINITION,
    RollupRowsSize,
    event_data,
    json_size,
    rollup_deltas,
)

ROWS_PER_BULK = 100  # appwrite-facts §1.2
OPS_PER_TRANSACTION = 100  # appwrite-facts §1.3
# Appwrite's HTTP server refuses a request whose headers and body pass 12 MiB (Swoole's package_max_length, set from
# `$payloadSize = 12 * (1024 * 1024)` in app/http.php): 413, nothing run. A transaction's operations are kept to
# 8 MiB of JSON, the rest left for headers and for how far an estimate may be off.
MAX_BODY_BYTES = 8 * 2**20
# Commit refusals that mean "an id exists or a row moved" (1.9.6 names a duplicate id row_already_exists).
_REFUSED = frozenset({TRANSACTION_CONFLICT, "row_already_exists", "document_already_exists"})
_RECENT_EVENTS = 1024
_UNSETTLED = frozenset({"transaction_not_ready", "transaction_not_found", "transaction_failed"})


class _Conflict(Exception):
    """The commit was refused: an event id already exists, or a rollup row changed after staging."""

    def __init__(self, cause: AppwriteException) -> None:
        super().__init__(cause.message)
        self.cause = cause


class AppwriteUsageStore(EventReads, RollupReads):
    """``UsageStore`` on Appwrite TablesDB (Cloud, self-hosted 1.8.1+ and 1.9.x) through the ``appwrite`` SDK 27."""

    def __init__(
        self,
        tables_db: TablesDB,
        database_id: str,
        *,
        shards: int = 16,
        retry: RetryPolicy | None = None,
        transaction_ttl: int = 300,
    ) -> None:
        if not 1 <= shards <= 1024:
            raise ValueError("shards must be between 1 and 1024")
        self.db = tables_db
        self.database_id = database_id
        self.shards = shards
        self.retry = retry or RetryPolicy()
        self.transaction_ttl = transaction_ttl
        # Events never change once stored, so rows read while spotting duplicates can answer the caller's
        # next get_event (the service asks for the original of a duplicate) without another round trip.
        self._recent_events: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._recent_lock = threading.Lock()
        # Set once the rollups are known to be built by this code's definition (checked before the first write).
        self.definition_checked = False

    @classmethod
    def from_settings(cls, settings: Settings, api_key: str | None = None, **options: Any) -> AppwriteUsageStore:
        key = api_key or (settings.appwrite_api_key.get_secret_value() if settings.appwrite_api_key else None)
        if not (settings.appwrite_endpoint and settings.appwrite_project_id and key):
            raise ConfigurationError("the Appwrite store needs APPWRITE_ENDPOINT, APPWRITE_PROJECT_ID and an API key")
        client = TimeoutClient(settings.appwrite_timeout_seconds)
        client.set_endpoint(settings.appwrite_endpoint).set_project(settings.appwrite_project_id).set_key(key)
        options.setdefault("retry", RetryPolicy(budget_seconds=settings.appwrite_retry_budget_seconds))
        return cls(TablesDB(client), settings.appwrite_database_id, **options)

    # -- writes ------------------------------------------------------------------------------------
    def record(self, logs: Sequence[AIUsageLog]) -> list[bool]:
        if not self.definition_checked:
            self.check_definition()
        first: dict[str, AIUsageLog] = {}
        repeated: list[bool] = []
        for log in logs:
            repeated.append(log.log_id in first)
            first.setdefault(log.log_id, log)
        stored = self._record_unique(list(first.values())) if first else set()
        return [not again and log.log_id in stored for log, again in zip(logs, repeated, strict=True)]

    def _record_unique(self, logs: list[AIUsageLog]) -> set[str]:
        """Store the events not stored yet; returns the row ids (``log_id``) this call stored."""
        stored: set[str] = set()
        pending = logs
        rows: dict[str, dict[str, Any]] = {}  # event rows by id, built once for sizing and for writing
        # The budget is the ambient deadline of every request inside, so a write ends within it too.
        with self.retry.start("record") as backoff:
            while pending:
                group = self._next_group(pending, rows)
                try:
                    self._write_group(group, backoff, rows)
                except _Conflict as conflict:
                    existing = self._existing_ids([log.log_id for log in group])
                    if not existing:
                        backoff.wait(conflict.cause)  # a rollup row moved under us: write the same group again
                        continue
                    pending = [log for log in pending if log.log_id not in existing]
                    continue
                stored.update(log.log_id for log in group)
                pending = pending[len(group) :]
        return stored

    def _next_group(self, logs: list[AIUsageLog], rows: dict[str, dict[str, Any]] | None = None) -> list[AIUsageLog]:
        """The longest prefix of ``logs`` whose events and rollup rows fit in one transaction: at most
        ``OPS_PER_TRANSACTION`` operations, and ``MAX_BODY_BYTES`` of JSON (1,000 events of long non-ASCII text,
        escaped six bytes to a character, take 30 MB). ``rows`` keeps the event rows built on the way."""
        rows = {} if rows is None else rows
        rollups = RollupRowsSize(self.shards)
        envelope = json_size({"action": "bulkUpsert", "databaseId": self.database_id, "tableId": ROLLUPS_TABLE})
        events_bytes = 0
        for count, log in enumerate(logs):
            row = rows.get(log.log_id) or rows.setdefault(log.log_id, self._event_row(log))
            events_bytes += json_size(row) + 2
            rollups.add(log)
            ops = math.ceil((count + 1) / ROWS_PER_BULK) + math.ceil(len(rollups.named) / ROWS_PER_BULK)
            body = 32 + ops * (envelope + 16) + events_bytes + rollups.bytes  # {"operations": [...]} and each op
            if count and (ops > OPS_PER_TRANSACTION or body > MAX_BODY_BYTES):
                return logs[:count]
        return logs

    @staticmethod
    def _event_row(log: AIUsageLog) -> dict[str, Any]:
        return {"$id": log.log_id, **event_data(log)}

    def _operations(
        self, group: list[AIUsageLog], rows: dict[str, dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        rows = {} if rows is None else rows
        events = [rows.get(log.log_id) or self._event_row(log) for log in group]
        # Rows in id order: two batches touching the same rollup rows then lock them in the same order,
        # which keeps MariaDB from deadlocking them against each other at commit.
        rollups = [delta.row(row_id) for row_id, delta in sorted(rollup_deltas(group, self.shards).items())]
        ops = []
        for action, table, chunk_rows in (("bulkCreate", EVENTS_TABLE, events), ("bulkUpsert", ROLLUPS_TABLE, rollups)):
            for start in range(0, len(chunk_rows), ROWS_PER_BULK):
                chunk = chunk_rows[start : start + ROWS_PER_BULK]
                ops.append({"action": action, "databaseId": self.database_id, "tableId": table, "data": chunk})
        return ops

    def _write_group(self, group: list[AIUsageLog], backoff: Backoff, rows: dict[str, dict[str, Any]]) -> None:
        """Stage and commit one transaction; raises ``_Conflict`` when the commit is refused."""
        operations = self._operations(group, rows)
        row_ids = [log.log_id for log in group]

        def landed() -> bool:  # events and rollups are written together: the events tell
            return self._existing_ids(row_ids) >= set(row_ids)

        self._stage_and_commit(operations, landed, backoff)

    def _stage_and_commit(
        self, operations: list[dict[str, Any]], landed: Callable[[], bool] | None, backoff: Backoff
    ) -> None:
        """Stage ``operations`` in a fresh transaction and commit it, again until one commits (``_commit`` settles a
        lost answer); raises ``_Conflict`` when a commit is refused. Setup's data migrations write through it too."""
        while True:
            try:
                transaction = self.db.create_transaction(ttl=self.transaction_ttl)
                # If this answer is lost the operations may be staged or not: the transaction is left to
                # expire uncommitted and a fresh one is used, so nothing is ever staged twice.
                self.db.create_operations(transaction.id, operations)
            except AppwriteException as exc:
                backoff.after(exc)
                continue
            if self._commit(transaction.id, landed, backoff):
                return

    def _commit(self, transaction_id: str, landed: Callable[[], bool] | None, backoff: Backoff) -> bool:
        """True once committed; False when this transaction can never commit (start another one)."""
        while True:
            try:
                self.db.update_transaction(transaction_id, commit=True)
                return True
            except AppwriteException as exc:
                if exc.type in _REFUSED:
                    raise _Conflict(exc) from exc
                if exc.code == 410:  # expired before the commit: nothing was applied
                    return False
                if exc.code == 429:  # refused before it ran
                    backoff.wait(exc)
                    continue
                # transaction_failed: the database transaction could not start or commit; nothing was applied.
                if not (is_ambiguous(exc) or exc.type in _UNSETTLED):
                    raise backoff.final(exc) from exc
                # The commit may have run: ask the transaction (or, once it is cleaned up, the events).
                state = self._transaction_state(transaction_id, landed, backoff)
                if state == "committed":
                    return True
                if state == "failed":
                    raise _Conflict(exc) from exc
                backoff.wait(exc)

    def _transaction_state(self, transaction_id: str, landed: Callable[[], bool] | None, backoff: Backoff) -> str:
        """How a commit whose answer was lost ended: "committed", "pending" (it never ran: commit it again) or
        "failed" (nothing applied: start another). ``landed`` reads from the data whether it was applied (None when
        applying it twice changes nothing); it answers once Appwrite has deleted the transaction.

        "committing" is waited out, within the budget: Appwrite writes it before its database transaction and
        "committed" after (Databases/Transactions/Update.php), so the commit may still land, and a transaction
        written again now would meet its events and call them duplicates. One that died midway stays
        "committing" with nothing applied: the budget ends (StoreError) and the caller's retry writes it afresh."""
        while True:
            try:
                status = self.db.get_transaction(transaction_id).status
            except AppwriteException as exc:
                if exc.code == 404:  # Appwrite deletes a committed transaction (Update.php queues its deletion)
                    return "committed" if landed is not None and landed() else "failed"
                backoff.after(exc)
                continue
            if status in ("committed", "pending"):
                return status
            if status in ("failed", "rolled_back"):
                return "failed"
            if landed is not None and landed():  # applied; only its status is not written yet
                return "committed"
            backoff.wait(AppwriteException(f"transaction {transaction_id} is still {status}", 503, "transaction_busy"))

    def _existing_ids(self, row_ids: list[str]) -> set[str]:
        """Which of these event row ids are stored: one ``get_row`` for one id, else ``equal`` queries."""
        if len(row_ids) == 1:
            data = self._get_event_data(row_ids[0])
            if data is None:
                return set()
            with self._recent_lock:
                self._recent_events[row_ids[0]] = data
                if len(self._recent_events) > _RECENT_EVENTS:
                    self._recent_events.popitem(last=False)
            return set(row_ids)
        return {row["$id"] for row in self._rows_by_id(row_ids, [Query.select(["request_id"])])}

    def recorded_definition(self) -> str | None:
        """The definition (``appwrite_rows.ROLLUP_DEFINITION``) that last built the rollups, or None (never)."""

        def read() -> str | None:
            try:
                return self._get_row(ROLLUPS_TABLE, META_ROW_ID).get("dim")
            except AppwriteException as exc:
                if exc.code == 404 and exc.type in ("row_not_found", "document_not_found"):
                    return None
                raise

        return self.retry.call("read the rollup definition", read)

    def check_definition(self) -> None:
        """Refuse to write rollups built by another definition: after an upgrade, the new code's rows would start
        from zero beside stale ones until ``ai-usage appwrite setup`` rebuilds them. One read per store."""
        if self.recorded_definition() != ROLLUP_DEFINITION:
            raise StoreError(
                "the Appwrite rollups were built by another version's definition (or never set up): run "
                "`ai-usage appwrite setup` with ingest paused, which adds what is missing and rebuilds them"
            )
        self.definition_checked = True

    def ping(self) -> None:
        queries = [Query.limit(1), Query.select(["request_id"])]
        self.retry.call("ping", lambda: self._list_rows(EVENTS_TABLE, queries))

    def close(self) -> None:
        close = getattr(self.db.client, "close", None)
        if close is not None:
            close()
