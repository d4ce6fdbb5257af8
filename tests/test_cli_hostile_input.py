"""Input a review found turning into a traceback (or a wall of text) where the CLI promises one line naming the
option, variable or file, and exit 2: --metadata past what json.loads can read, the alert settings and rules file,
an unreachable Appwrite endpoint, and the rollups rebuild's JSON naming its store as the table does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from services.alerts.configured import webhook_urls
from services.cli import cli
from services.cli.common import MAX_ERROR_LENGTH, one_line
from services.errors import ValidationFailed


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def log(metadata: str) -> Result:
    return run("log", "--user-id", "p1", "--model", "openai/gpt-4o-mini", "--metadata", metadata)


# -- log --metadata ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ('{"a": ' + "[" * 3000 + "]" * 3000 + "}", "is nested too deeply"),  # RecursionError in json.loads
        ('{"a": ' + "1" * 5000 + "}", "holds a number too long to read"),  # int's 4,300-digit limit
        ("{", "must be a JSON object"),
    ],
)
def test_unreadable_metadata_exits_2_naming_it(db_path: Path, metadata: str, why: str) -> None:
    result = log(metadata)

    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: invalid input\n  metadata: {why}\n" or result.stderr.startswith(
        f"error: invalid input\n  metadata: {why} ("
    ), result.stderr


# -- alerts -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["[not json", "[" * 5000, '["https://hooks.example.com/s3cr3t"'])
def test_webhook_urls_that_are_not_a_json_list_name_the_variable_not_the_value(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("AI_USAGE_ALERT_WEBHOOK_URLS", value)
    result = run("alerts", "check", "--dry-run")

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: invalid input\n  AI_USAGE_ALERT_WEBHOOK_URLS: "), result.stderr
    assert "s3cr3t" not in result.output and "Traceback" not in result.output
    with pytest.raises(ValidationFailed):
        webhook_urls(value)


def test_webhook_urls_still_take_a_json_list_or_a_plain_list() -> None:
    assert webhook_urls('["https://a.example/1", "https://b.example/2"]') == [
        "https://a.example/1",
        "https://b.example/2",
    ]
    assert webhook_urls("https://a.example/1, https://b.example/2") == ["https://a.example/1", "https://b.example/2"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'[[rule]]\nname = "caf\xe9"\n', "is not UTF-8 text: byte 0xe9 at offset 20"),
        (b"x = " + b"[" * 3000 + b"]" * 3000 + b"\n", "is not valid TOML"),
        (b"x = " + b"1" * 5000 + b"\n", "is not valid TOML"),
    ],
)
@pytest.mark.parametrize("given_by", ["--rules", "AI_USAGE_ALERTS_FILE"])
def test_an_unreadable_rules_file_exits_2_naming_the_file(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, why: str, given_by: str
) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_bytes(content)
    if given_by == "--rules":
        result = run("alerts", "check", "--dry-run", "--rules", str(rules))
    else:
        monkeypatch.setenv("AI_USAGE_ALERTS_FILE", str(rules))
        result = run("alerts", "check", "--dry-run")

    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "error: invalid input" and lines[1].startswith(f"  alerts_file: {why}"), result.stderr
    assert str(rules) in lines[1] and len(lines) == 2


# -- the store's errors -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", ["0.3", "0.001"])  # a refused connection, or a request the deadline cut off
def test_an_unreachable_appwrite_endpoint_is_one_short_line_naming_its_host(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, budget: str
) -> None:
    monkeypatch.setenv("APPWRITE_ENDPOINT", "http://user:pa55@127.0.0.1:1/v1")  # nothing listens on port 1
    monkeypatch.setenv("APPWRITE_PROJECT_ID", "p")
    monkeypatch.setenv("APPWRITE_API_KEY", "k")
    monkeypatch.setenv("AI_USAGE_APPWRITE_RETRY_BUDGET_SECONDS", budget)
    result = run("daily", "p1")

    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: Appwrite ") and len(lines[0]) <= len("error: ") + MAX_ERROR_LENGTH, lines
    assert "127.0.0.1:1" in result.stderr and len(lines) <= 3, lines
    assert "queries" not in result.stderr and "pa55" not in result.stderr


def test_one_line_keeps_the_host_and_the_reason_and_drops_the_request() -> None:
    query = "queries%5B0%5D=%7B%22method%22%3A%22equal%22%7D&" * 100
    message = (
        "Appwrite read rollups failed after 6 attempt(s) in 8s: network error: ConnectionError: "
        f"_GuardedHTTPPool(host='appwrite.example', port=443): Max retries exceeded with url: /v1/tablesdb/rows?{query}"
        " (Caused by NewConnectionError(\"_GuardedHTTPConnection(host='appwrite.example', port=443): "
        'Failed to establish a new connection: [Errno 111] Connection refused"))'
    )

    assert one_line(message) == (
        "Appwrite read rollups failed after 6 attempt(s) in 8s: network error: ConnectionError: appwrite.example:443: "
        "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    assert one_line(f"HTTP 502: <html>\n<body>{'x' * 5000}</body>\n</html>") == (
        f"HTTP 502: <html> <body>{'x' * (MAX_ERROR_LENGTH - 24)}…"
    )
    assert (
        one_line("see https://appwrite.example/v1/tablesdb/rows?x=1 for more")
        == "see https://appwrite.example for more"
    )


# -- rollups ----------------------------------------------------------------------------------------------------------
def test_rollups_rebuild_json_names_the_store_as_its_table_does(db_path: Path) -> None:
    table = run("rollups", "rebuild", "--yes")
    printed = run("rollups", "rebuild", "--yes", "--json")

    assert table.exit_code == 0 and printed.exit_code == 0, table.output + printed.output
    assert f"SQLite {db_path}" in table.stdout
    assert json.loads(printed.stdout)["store"] == f"SQLite {db_path}"


@pytest.mark.parametrize(("option", "day"), [("--end", "9999-12-31"), ("--start", "0001-01-01")])
def test_rollups_verify_refuses_a_day_outside_the_ledgers_naming_it(db_path: Path, option: str, day: str) -> None:
    result = run("rollups", "verify", option, day)

    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}': must be from 1970-01-01 to 9998-12-31" in result.stderr
