"""The durable spool: events the ledger has not acknowledged, and the ones it refused (dead letters).

One SQLite file, created 0600 (events name players). ``pending`` keeps events waiting to be sent again, oldest
first by ``seq``; ``dead_letters`` keeps events the ledger refused as invalid or conflicting, with its reasons,
until an operator retries or purges them (``ai-usage-client dead-letters``). Each event is stored as the JSON the
client sends, so a replay carries its original ``request_id`` and timestamp and the ledger counts it once.

WAL with ``synchronous=NORMAL``: a commit survives the process crashing (what the spool is for) without an
fsync on the game's hot path when the queue spills; power loss may take the last commits.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    spooled_at REAL NOT NULL,
    reason TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    rejected_at REAL NOT NULL,
    status TEXT NOT NULL,
    errors TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_request_id ON dead_letters (request_id);
"""


class SpoolError(Exception):
    """The spool file cannot be opened, read or written."""


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    request_id: str
    body: str  # the event as JSON


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    request_id: str
    rejected_at: float  # seconds since the epoch
    status: str  # "rejected" (invalid) or "conflict" (the request_id was stored with other content)
    errors: list[dict[str, Any]]
    event: dict[str, Any]


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


class Spool:
    """Thread-safe: the sender thread and a game thread spilling a full queue share one connection under a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._open()

    def _open(self) -> None:
        self._lock = threading.Lock()
        try:
            if str(self.path) != ":memory:":  # in memory: UsageClient.in_process without a spool_path
                _create_private(self.path)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from exc

    def reopen_in_child(self) -> None:
        """After ``fork``: the parent's connection (and a lock its threads may have held) are not this process's
        to use; open the file again. An in-memory spool starts empty (its rows were the parent's)."""
        self._open()

    # -- pending ---------------------------------------------------------------------------------------------
    def add(self, events: Iterable[tuple[str, str]], reason: str) -> int:
        """Keep (request_id, body) pairs to send later; returns how many were written."""
        now = time.time()
        rows = [(request_id, now, reason, body) for request_id, body in events]
        if rows:
            self._write("INSERT INTO pending (request_id, spooled_at, reason, body) VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def oldest(self, limit: int) -> list[SpooledEvent]:
        rows = self._read("SELECT seq, request_id, body FROM pending ORDER BY seq LIMIT ?", (limit,))
        return [SpooledEvent(*row) for row in rows]

    def pending_count(self) -> int:
        return int(self._read("SELECT count(*) FROM pending", ())[0][0])

    def has_pending(self) -> bool:
        return bool(self._read("SELECT EXISTS (SELECT 1 FROM pending)", ())[0][0])

    def settle(self, acknowledged: Sequence[int], refused: Sequence[tuple[int, str, list[dict[str, Any]]]]) -> None:
        """Forget acknowledged pending events; move refused ones (seq, status, errors) to the dead letters."""
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for seq, status, errors in refused:
                    self._db.execute(
                        "INSERT INTO dead_letters (request_id, rejected_at, status, errors, body) "
                        "SELECT request_id, ?, ?, ?, body FROM pending WHERE seq = ?",
                        (time.time(), status, json.dumps(errors), seq),
                    )
                gone = [*acknowledged, *(seq for seq, _, _ in refused)]
                self._db.executemany("DELETE FROM pending WHERE seq = ?", [(seq,) for seq in gone])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- dead letters ------------------------------------------------------------------------------------------
    def add_dead(self, request_id: str, body: str, status: str, errors: list[dict[str, Any]]) -> None:
        self._write(
            "INSERT INTO dead_letters (request_id, rejected_at, status, errors, body) VALUES (?, ?, ?, ?, ?)",
            [(request_id, time.time(), status, json.dumps(errors), body)],
        )

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        rows = self._read(
            "SELECT seq, request_id, rejected_at, status, errors, body FROM dead_letters ORDER BY seq LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [
            DeadLetter(seq, rid, at, status, json.loads(errors), _event(body))
            for seq, rid, at, status, errors, body in rows
        ]

    def retry_dead(self, request_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or those with these request ids) back to pending; the next client sends them."""
        where, args = _selection(request_ids)
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                moved = self._db.execute(
                    "INSERT INTO pending (request_id, spooled_at, reason, body) "
                    f"SELECT request_id, ?, 'retried', body FROM dead_letters {where} ORDER BY seq",
                    (time.time(), *args),
                ).rowcount
                self._db.execute(f"DELETE FROM dead_letters {where}", args)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return moved

    def purge_dead(self, request_ids: Sequence[str] | None = None) -> int:
        where, args = _selection(request_ids)
        with self._guard():
            return self._db.execute(f"DELETE FROM dead_letters {where}", args).rowcount

    def dead_count(self) -> int:
        return int(self._read("SELECT count(*) FROM dead_letters", ())[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _guard(self) -> _Guard:
        return _Guard(self)

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._guard():
            return self._db.execute(sql, args).fetchall()


class _Guard:
    """Hold the spool's lock and turn SQLite's and the OS's errors into ``SpoolError``."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool

    def __enter__(self) -> None:
        self._spool._lock.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self._spool._lock.release()
        # Any failure, not only SQLite's and the OS's: text SQLite cannot take (a lone surrogate raises
        # UnicodeEncodeError) must reach the sender as a SpoolError it handles, never stop its thread.
        if isinstance(exc, Exception) and not isinstance(exc, SpoolError):
            raise SpoolError(f"spool {self._spool.path}: {exc!r}") from exc


def _selection(request_ids: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    if request_ids is None:
        return "", ()
    marks = ", ".join("?" for _ in request_ids) or "NULL"
    return f"WHERE request_id IN ({marks})", tuple(request_ids)


def _event(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {"unreadable_body": body}
    return value if isinstance(value, dict) else {"unreadable_body": body}
