"""``ai-usage export`` never harms the ledger or the terminal, and no stored row stops it (review of the CLI).

- ``--output`` naming the store's database or one of its files is refused before anything is written;
- SIGTERM and SIGHUP clean up like Ctrl-C: no partial file, the previous file untouched, exit 128 + the signal;
- a row edited by hand into something the event model refuses is written as stored;
- stored control characters reach a terminal escaped, a file or a pipe as stored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

from services.cli.export_command import printable_json
from services.store.sqlite_store import SQLiteUsageStore
from tests.factories import make_log
from tests.test_export_safety import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteUsageStore]:
    sqlite_store = SQLiteUsageStore(db_path)
    yield sqlite_store
    sqlite_store.close()


CONTROLS = "red\x1b[31m bell\x07 csi\x9b2J del\x7f bidi\u202e end"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


# -- 1. the ledger's own files are never an export's target ---------------------------------------------------------
@pytest.mark.parametrize(
    "output",
    ["{db}", "usage.db", "./sub/../usage.db", "link", "hard", "{db}-wal", "usage.db-shm", "{db}-journal", "{db}.lock"],
)
def test_output_naming_the_database_or_one_of_its_files_exits_2_and_changes_nothing(
    store: SQLiteUsageStore, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    store.record([make_log(request_id="r1")])
    store._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the database file alone holds the row
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(db_path)
    os.link(db_path, tmp_path / "hard")
    monkeypatch.chdir(tmp_path)
    before = {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()}
    result = run("export", "--output", output.format(db=db_path))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: invalid input\n  output: ")
    assert "the ledger's database (AI_USAGE_DB_PATH) or one of its files" in result.stderr
    assert {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()} == before
    assert not (tmp_path / "usage.db-journal").exists() and leftovers(tmp_path) == []
    assert store.get_event("r1") is not None


def test_a_file_beside_the_database_is_still_a_fine_target(store: SQLiteUsageStore, db_path: Path) -> None:
    store.record([make_log(request_id="r1")])
    for name in ("usage.db.csv", "usage.db-wal.bak", "other.db"):
        assert run("export", "--output", str(db_path.parent / name)).exit_code == 0, name


# -- 2. SIGTERM and SIGHUP clean up as Ctrl-C does ------------------------------------------------------------------
# The child writes one row and then waits: the signal certainly arrives while the temporary file is being written.
_STALLED_EXPORT = """
import sys, time
from services.cli import main
from services.usage_tracking_service import UsageTrackingService
read = UsageTrackingService.iter_events
def stalled(self, *args, **kwargs):
    for row in read(self, *args, **kwargs):
        yield row
        time.sleep(60)
UsageTrackingService.iter_events = stalled
main()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_an_export_removes_the_partial_file_and_keeps_the_old_one(
    store: SQLiteUsageStore, db_path: Path, tmp_path: Path, signum: int
) -> None:
    store.record([make_log() for _ in range(3)])
    out = tmp_path / "out"
    out.mkdir()
    target = out / "events.csv"
    target.write_text("yesterday's export\n")
    child = subprocess.Popen(
        [sys.executable, "-c", _STALLED_EXPORT, "export", "--output", str(target), "--page-size", "1"],
        cwd=ROOT,
        env={**os.environ, "AI_USAGE_DB_PATH": str(db_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not leftovers(out):
            assert child.poll() is None and time.monotonic() < deadline, "the export never started its file"
            time.sleep(0.01)
        time.sleep(0.2)  # past the first row, into the stall
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert target.read_text() == "yesterday's export\n"
    assert leftovers(out) == []


def test_the_previous_signal_handlers_are_back_after_an_export(store: SQLiteUsageStore, tmp_path: Path) -> None:
    store.record([make_log()])
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    assert run("export", "--output", str(tmp_path / "a.csv")).exit_code == 0
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_an_export_from_another_thread_leaves_signals_alone(store: SQLiteUsageStore, tmp_path: Path) -> None:
    # Only the main thread may set handlers (signal.signal raises ValueError elsewhere).
    store.record([make_log(request_id="r1")])
    results: list[Result] = []
    worker = threading.Thread(target=lambda: results.append(run("export", "--output", str(tmp_path / "t.csv"))))
    worker.start()
    worker.join(60)
    assert results[0].exit_code == 0, results[0].stderr
    assert [row["request_id"] for row in csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text()))] == ["r1"]


# -- 5. stored control characters never reach a terminal raw ------------------------------------------------------
def _on_a_terminal(db_path: Path, *args: str) -> bytes:
    """What ``ai-usage`` writes to stdout when stdout is a terminal (a pseudo-terminal)."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", "from services.cli import main; main()", *args],
        cwd=ROOT,
        env={**os.environ, "AI_USAGE_DB_PATH": str(db_path)},
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert child.wait(timeout=60) == 0, child.stderr.read() if child.stderr else ""
    return b"".join(chunks)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_control_characters_are_escaped_on_a_terminal(store: SQLiteUsageStore, db_path: Path, fmt: str) -> None:
    store.record([make_log(request_id="r1", error_message=CONTROLS, metadata={"note": CONTROLS})])
    shown = _on_a_terminal(db_path, "export", "--format", fmt).decode()
    for raw in ("\x1b", "\x07", "\x9b", "\x7f", "\u202e"):
        assert raw not in shown, repr(raw)
    if fmt == "csv":
        assert "red\\x1b[31m bell\\x07 csi\\x9b2J del\\x7f bidi\\u202e end" in shown
    else:
        record = json.loads(shown.strip())  # escaped as JSON: the same values once parsed
        assert record["error_message"] == CONTROLS and record["metadata"] == {"note": CONTROLS}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_file_and_a_pipe_keep_control_characters_as_stored(store: SQLiteUsageStore, tmp_path: Path, fmt: str) -> None:
    store.record([make_log(request_id="r1", error_message=CONTROLS)])
    target = tmp_path / f"events.{fmt}"
    assert run("export", "--format", fmt, "--output", str(target)).exit_code == 0
    piped = run("export", "--format", fmt).stdout
    for text in (target.read_text(encoding="utf-8"), piped):
        assert CONTROLS in text or json.dumps(CONTROLS, ensure_ascii=False)[1:-1] in text


def test_printable_json_escapes_what_a_terminal_would_act_on_and_nothing_else() -> None:
    line = json.dumps({"a": CONTROLS, "b": "naïve 日本 \\ \U0001f600", "c": "\U000e0001"}, ensure_ascii=False)
    escaped = printable_json(line)
    assert escaped.isprintable() and json.loads(escaped) == json.loads(line)
    assert "naïve 日本" in escaped and "\U0001f600" in escaped and "\\udb40\\udc01" in escaped
