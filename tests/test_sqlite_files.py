"""The embedded store opens only a database (or a path that can become one), and touches nothing else.

``AI_USAGE_DB_PATH`` pointing at someone's notes, a directory, a FIFO or a device is refused with a store error
naming the setting, before a mode is changed or a lock file created beside it (review of the CLI: a text file was
chmod-ed 0600 and given a ``.lock``; as root, /dev/null lost its mode).
"""

from __future__ import annotations

import gc
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import cli
from services.errors import StoreError
from services.store.sqlite_files import SQLITE_HEADER, UnusableDatabaseFile, is_store_file, private_files
from services.store.sqlite_store import SQLiteUsageStore
from tests.factories import make_log


def _beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def _refused(path: Path) -> StoreError:
    with pytest.raises(StoreError) as caught:
        SQLiteUsageStore(path)
    error = caught.value
    assert isinstance(error, UnusableDatabaseFile) and isinstance(error, OSError)
    assert "AI_USAGE_DB_PATH" in error.message and str(path) not in error.message  # the path: log line only
    return error


@pytest.mark.parametrize("content", [b"player notes\n", b"SQLite", b"\x00" * 4096, b"SQLite format 2\x00" + b"x" * 100])
def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_was(tmp_path: Path, content: bytes) -> None:
    notes = tmp_path / "data" / "notes.txt"
    notes.parent.mkdir()
    notes.write_bytes(content)
    notes.chmod(0o644)
    error = _refused(notes)
    assert error.message.endswith("it is not an SQLite database; nothing was changed")
    assert stat.S_IMODE(notes.stat().st_mode) == 0o644 and notes.read_bytes() == content
    assert _beside(notes) == []  # no .lock, -wal, -shm or -journal


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "usage.db"
    os.mkfifo(fifo, 0o644)
    assert "a device, pipe or socket" in _refused(fifo).message
    assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_IMODE(fifo.stat().st_mode) == 0o644
    assert _beside(fifo) == []


def test_a_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "usage.db"
    directory.mkdir(mode=0o755)
    assert "it is a directory" in _refused(directory).message
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755 and _beside(directory) == []


def test_a_device_is_refused_before_it_is_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not /dev/null itself: were the check broken, the test would chmod the machine's /dev/null (as root).
    device = tmp_path / "tty0"
    device.touch()
    real_stat = os.stat
    opened: list[object] = []
    monkeypatch.setattr(
        os, "stat", lambda p, *a, **k: _as_device(real_stat(p, *a, **k)) if p == device else real_stat(p)
    )
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a) or -1)
    with pytest.raises(UnusableDatabaseFile, match="a device, pipe or socket"):
        private_files(device)
    assert opened == []


def _as_device(info: os.stat_result) -> os.stat_result:
    fields = list(info)
    fields[stat.ST_MODE] = stat.S_IFCHR | 0o666
    return os.stat_result(fields)


def test_the_cli_names_the_setting_and_exits_1_without_touching_the_file(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = db_path.with_name("notes.txt")
    notes.write_text("player notes\n")
    notes.chmod(0o644)
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(notes))
    result = CliRunner().invoke(cli, ["daily", "p1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "AI_USAGE_DB_PATH: it is not an SQLite database" in result.stderr
    assert stat.S_IMODE(notes.stat().st_mode) == 0o644 and _beside(notes) == []


def test_an_empty_file_becomes_the_database_and_is_made_private(tmp_path: Path) -> None:
    touched = tmp_path / "usage.db"
    touched.touch(mode=0o644)
    touched.chmod(0o644)
    store = SQLiteUsageStore(touched)
    try:
        store.record([make_log(request_id="r1")])
        assert store.get_event("r1") is not None
    finally:
        store.close()
    assert touched.read_bytes()[:16] == SQLITE_HEADER and stat.S_IMODE(touched.stat().st_mode) == 0o600


def test_a_database_and_its_sidecars_are_made_private_but_a_linked_sidecar_is_not_followed(tmp_path: Path) -> None:
    db = tmp_path / "usage.db"
    SQLiteUsageStore(db).close()
    db.chmod(0o644)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not the store's")
    elsewhere.chmod(0o644)
    Path(f"{db}-wal").write_bytes(b"")
    Path(f"{db}-wal").chmod(0o644)
    Path(f"{db}-shm").symlink_to(elsewhere)
    private_files(db)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{db}-wal").stat().st_mode) == 0o600
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o644


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
def test_a_database_that_fails_to_open_keeps_no_descriptor(tmp_path: Path) -> None:
    # A real header over a broken body passes the check and fails in SQLite: the lock file's descriptor, a plain
    # int that no garbage collection closes, must not leak (SQLite's connection is closed when collected).
    broken = tmp_path / "usage.db"
    broken.write_bytes(SQLITE_HEADER + b"\xff" * 4000)
    gc.collect()
    before = _open_fds()
    for _ in range(3):
        with pytest.raises(StoreError):
            SQLiteUsageStore(broken)
    gc.collect()
    assert _open_fds() == before


def test_is_store_file_knows_the_database_and_its_sidecars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "data" / "usage.db"
    SQLiteUsageStore(db).close()
    (tmp_path / "alias").symlink_to(db.parent)
    monkeypatch.chdir(tmp_path)
    for path in (db, "data/usage.db", "alias/usage.db-wal", "data/../data/usage.db-journal", f"{db}.lock"):
        assert is_store_file(path, db), path
    for path in ("data/usage.db.csv", "data/usage", "usage.db", "alias/other.db-wal"):
        assert not is_store_file(path, db), path
