"""The embedded store's files: refusing what is not a database, private modes for the database and its sidecars,
and the writers' lock file."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import structlog

from services.errors import StoreError

log = structlog.get_logger("ai_usage.store")


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
# The database and every file SQLite or the store keeps beside it.
STORE_SUFFIXES = ("", "-wal", "-shm", "-journal", ".lock")


class UnusableDatabaseFile(StoreError, OSError):
    """``AI_USAGE_DB_PATH`` names something that is not an SQLite database; nothing was changed.

    A ``StoreError`` (503 wherever store errors are answered) whose message names the setting, never the path,
    like every store error; also an ``OSError``, so the commands that report a store they cannot open (with the
    path, to the operator who set it) report this one the same way.
    """


def private_files(db_path: Path) -> None:
    """Check that ``db_path`` is, or can become, our database; then make it and its sidecars private.

    The data directory is created 0700, the database 0600 (SQLite gives its -wal and -shm files the database's
    mode): usage data names players and what they did. Something that is not a database (a device, a directory,
    a FIFO, another program's file) is refused before anything is created or chmod-ed: a mistyped setting must not
    take over /dev/null or someone's notes.
    """
    with suppress(FileNotFoundError):  # a path not there yet is created below, as a new database
        _refuse_non_regular(db_path, os.stat(db_path).st_mode)
    db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_NOCTTY: should the path turn into a terminal between the check and here, opening it must not adopt it.
    fd = os.open(db_path, os.O_RDWR | os.O_CREAT | os.O_NOCTTY, 0o600)
    try:
        info = os.fstat(fd)
        _refuse_non_regular(db_path, info.st_mode)  # what was opened, should the path have changed since
        # Empty: a file made for the store (by us, or touched by an operator), which SQLite turns into a database.
        if info.st_size and os.pread(fd, len(SQLITE_HEADER), 0) != SQLITE_HEADER:
            raise _unusable(db_path, "it is not an SQLite database")
        # An existing file made by an older version (or a looser umask) is tightened if it is ours.
        if info.st_mode & 0o077 and info.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        sidecar = Path(f"{db_path}{suffix}")
        try:
            info = sidecar.lstat()  # never follows a link: only the store's own files are chmod-ed
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 and info.st_uid == os.getuid():
            sidecar.chmod(0o600)


def _refuse_non_regular(db_path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a device, pipe or socket"
        raise _unusable(db_path, f"it is {kind}, not a database file")


def _unusable(db_path: Path, reason: str) -> UnusableDatabaseFile:
    # The error reaches whoever opened the store; this line only carries the path, which no error message names.
    log.info("store.unusable_database_file", path=str(db_path), reason=reason)
    return UnusableDatabaseFile(f"the SQLite store cannot use AI_USAGE_DB_PATH: {reason}; nothing was changed")


def is_store_file(path: str | Path, db_path: str | Path) -> bool:
    """Whether ``path`` is the database at ``db_path`` or one of its files: the same file (a symbolic or hard link
    counts) or, for one not there (yet), the same path once links and relative parts are resolved."""
    resolved = os.path.realpath(path)
    for suffix in STORE_SUFFIXES:
        store_file = f"{db_path}{suffix}"
        with suppress(OSError):  # either side missing: compared by resolved path below
            if os.path.samefile(path, store_file):
                return True
        if resolved == os.path.realpath(store_file):
            return True
    return False


@contextmanager
def file_lock(fd: int | None, deadline: float) -> Iterator[None]:
    """Hold an exclusive flock on ``fd``, waiting until ``deadline`` (a stalled writer must not hang us)."""
    if fd is None:  # an in-memory store has one connection and no other process
        yield
        return
    pause = 0.0001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("database is locked (another process is writing)") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
