"""CLI tables show odd characters escaped, never acted on by the terminal (issue 8, point 8).

Rows are put in through the store itself, as older data or another writer would have left them, so these tests do
not depend on what ingest validation refuses today.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from services.cli import cli, tables
from services.cli.tables import terminal_safe
from services.store.sqlite_store import SQLiteUsageStore
from tests.factories import make_log

AT = datetime(2025, 6, 1, 10, tzinfo=UTC)
ESC = "\x1b"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "txt.exe" shown as "exe.txt"
# Characters a terminal acts on or hides: none may reach stdout as themselves.
ODD = (ESC, "\x07", "\x08", "\r", "\x9b", RLO, "\u2066", "\u200b", "\u2028")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLiteUsageStore]:
    for name in list(os.environ):
        if name.startswith(("AI_USAGE_", "APPWRITE_")):
            monkeypatch.delenv(name)
    path = tmp_path / "usage.db"
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(path))
    sqlite_store = SQLiteUsageStore(path)
    yield sqlite_store
    sqlite_store.close()


def run(*args: str) -> Result:
    # color=True: output as a terminal gets it (click strips ANSI sequences from output that is not a terminal).
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, color=True)


def assert_nothing_odd(text: str) -> None:
    assert not [char for char in ODD if char in text], repr(text)


# -- the rule --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("p\x1b[2J\x1b[31mred", "p\\x1b[2J\\x1b[31mred"),  # clear screen, colour
        ("title\x1b]0;pwned\x07", "title\\x1b]0;pwned\\x07"),  # OSC: sets the window title
        ("csi\x9b31m", "csi\\x9b31m"),  # the 8-bit CSI
        ("gpt\u202e4o-mini", "gpt\\u202e4o-mini"),  # bidi override
        ("a\u2066b\u2069c\u200fd", "a\\u2066b\\u2069c\\u200fd"),  # isolates and a right-to-left mark
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("line\nbreak\ttab\rreturn", "line\\nbreak\\ttab\\rreturn"),
        ("sep\u2028arator", "sep\\u2028arator"),
        ("broken\ud800", "broken\\ud800"),  # a lone surrogate cannot even be encoded for the terminal
        ("tag\U000e0041", "tag\\U000e0041"),
        ("nb\u00a0sp", "nb\\xa0sp"),
    ],
)
def test_odd_characters_are_shown_as_escapes(raw: str, shown: str) -> None:
    assert terminal_safe(raw) == shown


@pytest.mark.parametrize("text", ["player-42", "Café 北京 🐉", "anthropic/claude-3.5-sonnet", "C:\\path\\x1b", ""])
def test_printable_text_is_shown_exactly_as_stored(text: str) -> None:
    assert terminal_safe(text) == text


def test_table_columns_line_up_on_the_escaped_text() -> None:
    out = tables.table(("model", "requests"), [("a\x1bb", "1"), ("plain", "22")], "lr")
    lines = out.splitlines()
    assert lines[2] == "a\\x1bb         1" and lines[3] == "plain         22"
    assert len({len(line) for line in lines}) == 1


# -- every table that prints stored text ----------------------------------------------------------------------------
def test_global_table_escapes_model_and_provider_ids(store: SQLiteUsageStore) -> None:
    store.record([make_log(model=f"evil{RLO}model{ESC}[2J", provider=f"acme{ESC}]0;x\x07", timestamp=AT)])
    result = run("global", "--date", "2025-06-01")
    assert result.exit_code == 0
    assert_nothing_odd(result.stdout)
    assert "evil\\u202emodel\\x1b[2J" in result.stdout and "acme\\x1b]0;x\\x07" in result.stdout


def test_daily_monthly_and_summary_headings_escape_the_player_id(store: SQLiteUsageStore) -> None:
    player = f"p{ESC}[31m{RLO}1"
    store.record([make_log(user_id=player, timestamp=AT)])
    for args in (("daily", player, "--date", "2025-06-01"), ("monthly", player, "--year", "2025", "--month", "6")):
        result = run(*args)
        assert result.exit_code == 0
        assert_nothing_odd(result.stdout)
        assert "p\\x1b[31m\\u202e1" in result.stdout
    summary = run("summary", player, "--days", "3")
    assert summary.exit_code == 0
    assert_nothing_odd(summary.stdout)


def test_session_heading_and_task_rows_are_escaped(store: SQLiteUsageStore) -> None:
    session = f"s{ESC}[1A\r"
    store.record([make_log(session_id=session, timestamp=AT)])
    result = run("session", session)
    assert result.exit_code == 0
    assert_nothing_odd(result.stdout)
    assert result.stdout.startswith("Session s\\x1b[1A\\r\n")


def test_log_output_escapes_the_ids_and_the_provider_error(store: SQLiteUsageStore) -> None:
    # An error message is free text a provider wrote; control characters are allowed in it, never printed raw.
    result = run(
        "log", "--user-id", "p1", "--model", "gpt-4o", "--request-id", "req-1", "--timestamp", "2025-06-01T10:00:00Z",
        "--failed", "--error-message", f"upstream said {ESC}[2J{ESC}]0;owned\x07 and\nmore",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_nothing_odd(result.stdout)
    assert "no: upstream said \\x1b[2J\\x1b]0;owned\\x07 and\\nmore" in result.stdout


def test_a_stored_row_with_odd_ids_prints_as_escapes_in_the_event_view() -> None:
    log = make_log(
        request_id=f"r{ESC}c",
        character_id=f"inn{RLO}keeper",
        tenant_id="t\u200b1",
        error_message="x\ud800",
        success=False,
    )
    text = tables.usage_log(log)
    assert_nothing_odd(text)
    text.encode("utf-8")  # a lone surrogate would make the terminal write fail
    assert "r\\x1bc" in text and "inn\\u202ekeeper" in text and "t\\u200b1" in text and "no: x\\ud800" in text


def test_console_log_lines_escape_stored_text(capsys: pytest.CaptureFixture[str]) -> None:
    # An alert's scope or a rejected event's id can be stored text: on a terminal the log line shows it escaped.
    import structlog

    from services.log_config import configure_logging

    configure_logging("console", "INFO", force=True)
    try:
        structlog.get_logger("test").warning(f"rule {ESC}[2J", scope=f"player:t{ESC}]0;pwn\x07{RLO}", count=3)
        line = capsys.readouterr().err
    finally:
        configure_logging("console", "WARNING", force=True)
    assert_nothing_odd(line)
    assert "rule \\x1b[2J" in line and "scope=player:t\\x1b]0;pwn\\x07\\u202e" in line and "count=3" in line
