"""The embedded store's files: private modes for the database and its sidecars, and the writers' lock file."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def private_files(db_path: Path) -> None:
    """The data directory 0700 when created here, the database 0600 (SQLite gives its -wal and -shm files the
    database's mode): usage data names players and what they did."""
    db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(db_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # An existing file made by an older version (or a looser umask) is tightened if it is ours.
        info = os.fstat(fd)
        if info.st_mode & 0o077 and info.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        sidecar = Path(f"{db_path}{suffix}")
        try:
            info = sidecar.lstat()
        except FileNotFoundError:
            continue
        if info.st_mode & 0o077 and info.st_uid == os.getuid() and not sidecar.is_symlink():
            sidecar.chmod(0o600)


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
