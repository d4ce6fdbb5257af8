"""The ``ai-usage`` command line, run in-process with CliRunner against a SQLite file under tmp_path."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from models.ai_usage import AIUsageLog
from services.cli import cli
from services.cli.export_command import EXPORT_FIELDS
from services.pricing import PriceBook
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService

DAY = date(2025, 6, 1)
AT = "2025-06-01T10:00:00Z"


@pytest.fixture
def ledger(db_path: Path) -> Iterator[UsageTrackingService]:
    """The same store the commands use, opened directly, to seed it and to check what was stored."""
    service = UsageTrackingService(SQLiteUsageStore(db_path), PriceBook.load())
    yield service
    service.close()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def log_args(**overrides: str) -> list[str]:
    options = {"user-id": "p1", "model": "anthropic/claude-3.5-sonnet", "tokens-input": "1000",
               "tokens-output": "500", "timestamp": AT}  # fmt: skip
    options.update(overrides)
    return ["log", *(part for name, value in options.items() for part in (f"--{name}", value))]


def stored_count(ledger: UsageTrackingService) -> int:
    return sum(1 for _ in ledger.iter_events())


def seed(ledger: UsageTrackingService, count: int, **fields: object) -> list[str]:
    """``count`` events a second apart from DAY 00:00 UTC, over three players and two sessions."""
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    events = [
        {
            "request_id": f"req-{n:05d}",
            "user_id": f"player-{n % 3}",
            "model": "openai/gpt-4o-mini",
            "tokens_input": 100 + n,
            "tokens_output": 10,
            "session_id": f"session-{n % 2}",
            "metadata": {"n": n, "note": 'comma, "quote"'},
            "timestamp": start + timedelta(seconds=n),
            **fields,
        }
        for n in range(count)
    ]
    for first in range(0, count, 1000):
        ledger.log_usage_batch(events[first : first + 1000])
    return [e["request_id"] for e in events]


# -- log -------------------------------------------------------------------------------------------------
def test_log_stores_the_event_and_prints_its_row(ledger: UsageTrackingService) -> None:
    result = run(*log_args(**{"request-id": "r-1", "task-type": "npc_dialogue", "metadata": '{"quest": "q1"}'}))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("stored: request r-1")
    assert "anthropic/claude-3.5-sonnet" in result.stdout
    # 1000 × 0.003/1K + 500 × 0.015/1K, contracted rate: rounded for display and exact side by side.
    assert "$0.0105 (exact 0.010500000 USD)" in result.stdout
    stored = ledger.get_event("r-1")
    assert stored is not None and stored.metadata == {"quest": "q1"} and stored.task_type == "npc_dialogue"


def test_log_json_is_the_log_result_with_exact_cost_as_a_decimal_string(db_path: Path) -> None:
    result = run(*log_args(**{"request-id": "r-1", "tokens-cached": "200", "duration-ms": "1500"}), "--json")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["status"] == "stored" and body["errors"] == []
    log = AIUsageLog.model_validate(body["log"])
    assert isinstance(body["log"]["estimated_cost_exact"], str)
    assert Decimal(body["log"]["estimated_cost_exact"]) == log.estimated_cost_exact
    assert log.tokens_cached == 200 and log.request_duration_ms == 1500


def test_logging_the_same_request_id_again_reports_a_duplicate_and_changes_no_total(
    ledger: UsageTrackingService,
) -> None:
    assert run(*log_args(**{"request-id": "retry-1"})).exit_code == 0
    before = ledger.get_daily_usage("p1", DAY)
    again = run(*log_args(**{"request-id": "retry-1"}), "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["status"] == "duplicate"
    text = run(*log_args(**{"request-id": "retry-1"}))
    assert text.stdout.startswith("duplicate: request retry-1 was already logged")
    assert ledger.get_daily_usage("p1", DAY) == before
    assert stored_count(ledger) == 1


def test_logging_a_request_id_again_with_other_tokens_is_a_conflict_naming_the_field(
    ledger: UsageTrackingService,
) -> None:
    assert run(*log_args(**{"request-id": "retry-1"})).exit_code == 0
    before = ledger.get_daily_usage("p1", DAY)
    conflict = run(*log_args(**{"request-id": "retry-1", "tokens-input": "9999"}))
    assert conflict.exit_code == 2
    assert "tokens_input: differs from the event already logged" in conflict.stderr
    assert ledger.get_daily_usage("p1", DAY) == before
    assert stored_count(ledger) == 1


def test_a_failed_request_with_provider_and_credits_is_logged(ledger: UsageTrackingService) -> None:
    args = log_args(model="firecrawl/scrape", credits="10", provider="firecrawl", **{"tokens-input": "0"})
    result = run(*args, "--failed", "--error-message", "rate limited", "--json")
    log = json.loads(result.stdout)["log"]
    assert log["success"] is False and log["error_message"] == "rate limited"
    assert log["credits"] == 10 and log["provider"] == "firecrawl"


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"user-id": "  "}, "user_id", "at least 1 character"),
        ({"tokens-input": "-1"}, "tokens_input", "greater than or equal to 0"),
        ({"tokens-output": "20000000"}, "tokens_output", "less than or equal to 10000000"),
        ({"task-type": "fight"}, "task_type", "npc_dialogue"),
        ({"timestamp": "2025-06-01T10:00:00"}, "timestamp", "timezone-aware"),
        ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp", "in the future"),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", "out of range"),
        ({"tokens-cached": "2000"}, "tokens_cached", "must not exceed tokens_input"),
        ({"metadata": "{not json"}, "metadata", "JSON object"),
        ({"metadata": "[1, 2]"}, "metadata", "dictionary"),
        ({"metadata": json.dumps({"blob": "x" * 5000})}, "metadata", "4096 bytes"),
        ({"session-id": "s" * 200}, "session_id", "at most 128"),
    ],
)
def test_bad_log_input_exits_2_names_the_field_and_rule_and_stores_nothing(
    ledger: UsageTrackingService, overrides: dict[str, str], field: str, rule: str
) -> None:
    result = run(*log_args(**overrides))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: invalid input\n")
    assert any(line.strip().startswith(f"{field}:") and rule in line for line in result.stderr.splitlines())
    assert "Traceback" not in result.output
    assert stored_count(ledger) == 0


def test_a_non_integer_token_count_is_refused_by_the_option_itself(ledger: UsageTrackingService) -> None:
    result = run(*log_args(**{"tokens-input": "12.5"}))
    assert result.exit_code == 2 and "--tokens-input" in result.stderr
    assert stored_count(ledger) == 0


# -- summaries ---------------------------------------------------------------------------------------------
@pytest.fixture
def day_of_play(ledger: UsageTrackingService) -> UsageTrackingService:
    for n, (task, model) in enumerate(
        [("npc_dialogue", "anthropic/claude-3.5-sonnet"), ("combat_narration", "anthropic/claude-3.5-haiku"),
         ("quest_selection", "acme/unknown-model")]
    ):  # fmt: skip
        ledger.log_usage(
            request_id=f"r-{n}", user_id="p1", model=model, task_type=task, tokens_input=1000, tokens_output=500,
            session_id="s-1", timestamp=datetime(2025, 6, 1, 10, n, tzinfo=UTC),
        )  # fmt: skip
    ledger.log_usage(request_id="other", user_id="p2", model="gpt-4o", tokens_input=10, timestamp=datetime(
        2025, 6, 2, tzinfo=UTC))  # fmt: skip
    return ledger


def test_daily_prints_totals_and_one_row_per_task(day_of_play: UsageTrackingService) -> None:
    result = run("daily", "p1", "--date", "2025-06-01")
    assert result.exit_code == 0
    out = result.stdout
    assert "Daily usage of p1 on 2025-06-01 (UTC)" in out
    assert "requests  3 (failed 0, priced by a default rate 1)" in out
    for task in ("story_progression", "combat_narration", "quest_selection", "npc_dialogue", "general"):
        assert task in out
    expected = day_of_play.get_daily_usage("p1", DAY).estimated_cost_exact
    assert f"exact {format(expected, 'f')} USD" in out


def test_daily_json_is_the_daily_summary(day_of_play: UsageTrackingService) -> None:
    body = json.loads(run("daily", "p1", "--date", "2025-06-01", "--json").stdout)
    expected = day_of_play.get_daily_usage("p1", DAY)
    assert body == json.loads(expected.model_dump_json())
    assert body["total_requests"] == 3 and body["requests_by_task"]["npc_dialogue"] == 1
    assert isinstance(body["estimated_cost_exact"], str)


def test_monthly_table_and_json(day_of_play: UsageTrackingService) -> None:
    text = run("monthly", "p1", "--year", "2025", "--month", "6")
    assert text.exit_code == 0 and "Monthly usage of p1 in 2025-06 (UTC)" in text.stdout
    body = json.loads(run("monthly", "p1", "--year", "2025", "--month", "6", "--json").stdout)
    assert (body["year"], body["month"], body["total_requests"]) == (2025, 6, 3)
    assert Decimal(body["estimated_cost_exact"]) == day_of_play.get_monthly_cost("p1", 2025, 6).estimated_cost_exact


def test_monthly_with_month_13_exits_2_naming_month(db_path: Path) -> None:
    result = run("monthly", "p1", "--year", "2025", "--month", "13")
    assert result.exit_code == 2
    assert "month: must be an integer from 1 to 12" in result.stderr


def test_global_shows_cost_by_model_provider_task_and_unpriced_requests(day_of_play: UsageTrackingService) -> None:
    text = run("global", "--date", "2025-06-01").stdout
    assert "Global usage on 2025-06-01 (UTC)" in text
    assert "acme/unknown-model" in text and "priced by a default rate" in text
    body = json.loads(run("global", "--date", "2025-06-01", "--json").stdout)
    assert body["total_requests"] == 3 and body["unpriced_requests"] == 1
    assert set(body["cost_by_provider"]) == {"anthropic", "acme"}
    assert set(body["cost_by_task"]) == {"npc_dialogue", "combat_narration", "quest_selection"}
    exact_sum = sum(Decimal(part["estimated_cost_exact"]) for part in body["cost_by_model"].values())
    assert exact_sum == Decimal(body["estimated_cost_exact"])


def test_summary_json_covers_the_last_n_days(ledger: UsageTrackingService) -> None:
    ledger.log_usage(request_id="today", user_id="p1", model="gpt-4o", tokens_input=100, tokens_output=10)
    body = json.loads(run("summary", "p1", "--days", "7", "--json").stdout)
    assert body["days"] == 7 and body["total_requests"] == 1
    assert "general" in body["by_task"]
    assert "Usage of p1, last 7 day(s)" in run("summary", "p1", "--days", "7").stdout
    assert run("summary", "p1", "--days", "0").exit_code == 2


def test_session_prints_what_one_play_session_cost(day_of_play: UsageTrackingService) -> None:
    text = run("session", "s-1")
    assert text.exit_code == 0 and text.stdout.startswith("Session s-1")
    body = json.loads(run("session", "s-1", "--json").stdout)
    assert body["session_id"] == "s-1" and body["total_requests"] == 3
    assert set(body["by_task"]) == {"npc_dialogue", "combat_narration", "quest_selection"}


def test_an_unknown_session_is_an_error_not_a_traceback(db_path: Path) -> None:
    result = run("session", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: no usage recorded for session 'nope'\n"


# -- errors from the environment -----------------------------------------------------------------------------
def test_a_store_that_cannot_open_exits_1_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(tmp_path))  # a directory, not a database file
    result = run("daily", "p1")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and str(tmp_path) in result.stderr
    assert "Traceback" not in result.output


def test_export_to_a_directory_that_does_not_exist_is_an_error(db_path: Path, tmp_path: Path) -> None:
    result = run("export", "--output", str(tmp_path / "missing" / "events.csv"))
    assert result.exit_code == 1 and result.stderr.startswith("error: cannot write")


def test_a_bad_setting_exits_2_naming_the_variable(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_USAGE_SQLITE_SYNCHRONOUS", "OFF")
    result = run("daily", "p1")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid configuration\n  AI_USAGE_SQLITE_SYNCHRONOUS:")


# -- prices ----------------------------------------------------------------------------------------------
def test_prices_list_has_one_row_per_model_with_exact_rates(db_path: Path) -> None:
    body = json.loads(run("prices", "list", "--json").stdout)
    by_id = {entry["model_id"]: entry for entry in body["models"]}
    assert len(by_id) == len(body["models"])
    sonnet = by_id["anthropic/claude-3.5-sonnet"]
    assert (sonnet["input_per_1k"], sonnet["output_per_1k"], sonnet["contracted"]) == ("0.003", "0.015", True)
    assert by_id["cerebras/llama3.1-8b"]["per_request"] == "0.000006"
    assert body["defaults"]["*"]["input_per_1k"] == "0.001"
    text = run("prices", "list").stdout
    assert "anthropic/claude-3.5-sonnet (contracted)" in text and "source date" in text


def test_prices_list_at_a_past_moment_shows_the_price_then_in_force(db_path: Path) -> None:
    then = json.loads(run("prices", "list", "--at", "2025-01-15T00:00:00Z", "--json").stdout)
    now = json.loads(run("prices", "list", "--json").stdout)

    def chat(body: dict) -> dict:
        return next(e for e in body["models"] if e["model_id"] == "deepseek/deepseek-chat")

    assert chat(then)["effective_from"] != chat(now)["effective_from"]


def test_prices_show_normalises_the_model_id(db_path: Path) -> None:
    body = json.loads(run("prices", "show", "claude-3-5-sonnet-20241022", "--json").stdout)
    assert body["is_fallback"] is False and body["entry"]["model_id"] == "anthropic/claude-3.5-sonnet"
    text = run("prices", "show", "claude-3-5-sonnet-latest").stdout
    assert "anthropic/claude-3.5-sonnet" in text and "fallback        no" in text


def test_prices_show_says_when_the_default_price_applies(db_path: Path) -> None:
    body = json.loads(run("prices", "show", "acme/mystery", "--json").stdout)
    assert body["is_fallback"] is True and body["entry"]["model_id"] == "*"
    assert "a DEFAULT rate" in run("prices", "show", "acme/mystery").stdout


def test_a_broken_price_file_is_reported_not_raised(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "prices.toml"
    bad.write_text('[[models]]\nid = "acme/x"\ninput_per_1k = 0.1\n')
    monkeypatch.setenv("AI_USAGE_PRICES_FILE", str(bad))
    result = run("prices", "list")
    assert result.exit_code == 2 and result.stderr.startswith("error: the price book cannot be loaded")


# -- export --------------------------------------------------------------------------------------------------
def test_csv_export_streams_more_rows_than_a_page_each_exactly_once(ledger: UsageTrackingService) -> None:
    ids = seed(ledger, 2500)
    result = run("export", "--format", "csv")
    assert result.exit_code == 0 and result.stderr == ""
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 2500
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
    assert tuple(rows[0]) == EXPORT_FIELDS
    first = rows[0]
    assert json.loads(first["metadata"]) == {"n": 0, "note": 'comma, "quote"'}
    stored = ledger.get_event(first["request_id"])
    assert stored is not None
    assert Decimal(first["estimated_cost_exact"]) == stored.estimated_cost_exact
    assert first["success"] == "true" and first["tenant_id"] == ""


def test_jsonl_export_to_a_file_round_trips_every_event(ledger: UsageTrackingService, tmp_path: Path) -> None:
    ids = seed(ledger, 2500)
    target = tmp_path / "events.jsonl"
    result = run("export", "--format", "jsonl", "--output", str(target), "--page-size", "700")
    assert result.exit_code == 0 and result.stdout == ""
    logs = [AIUsageLog.model_validate_json(line) for line in target.read_text().splitlines()]
    assert [log.request_id for log in logs] == ids  # oldest first, once each
    assert logs[42] == ledger.get_event(ids[42])
    assert not list(tmp_path.glob(".*.partial"))


def test_export_filters_narrow_the_events(ledger: UsageTrackingService) -> None:
    seed(ledger, 30)
    by_user = run("export", "--format", "jsonl", "--user-id", "player-1").stdout.splitlines()
    assert len(by_user) == 10 and all('"user_id":"player-1"' in line for line in by_user)
    window = run("export", "--format", "jsonl", "--start", "2025-06-01T00:00:10Z", "--end", "2025-06-01T00:00:20Z")
    assert len(window.stdout.splitlines()) == 10
    assert len(run("export", "--session-id", "session-0").stdout.splitlines()) == 1 + 15
    assert run("export", "--model", "nope").stdout.splitlines() == [",".join(EXPORT_FIELDS)]


def test_export_refuses_an_empty_window_and_a_naive_moment(db_path: Path) -> None:
    backwards = run("export", "--start", "2025-06-02", "--end", "2025-06-01")
    assert backwards.exit_code == 2 and "end: must be after start" in backwards.stderr
    naive = run("export", "--start", "2025-06-01T10:00:00")
    assert naive.exit_code == 2 and "has no timezone" in naive.stderr


def test_export_progress_goes_to_stderr_and_never_into_the_data(ledger: UsageTrackingService) -> None:
    seed(ledger, 1200)
    result = run("export", "--format", "jsonl", "--progress")
    assert "exported 1,200 events" in result.stderr
    assert len(result.stdout.splitlines()) == 1200
    assert all(line.startswith("{") for line in result.stdout.splitlines())


# -- demo ------------------------------------------------------------------------------------------------------
def test_demo_logs_a_sample_and_shows_the_retry_the_failure_and_the_fallback(ledger: UsageTrackingService) -> None:
    result = run("demo", "--events", "25")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "25 stored, 0 duplicates, 0 rejected" in out
    assert ": duplicate — the same request_id again" in out
    assert "counted as failed" in out
    assert "acme/dragon-lore-7b: fallback price" in out
    for heading in ("Daily usage of", "Monthly usage of", "Global usage on", "Rate limiter"):
        assert heading in out
    assert stored_count(ledger) == 25  # the retry added nothing
    today = ledger.get_global_daily_usage()
    assert today.failed_requests == 1 and today.unpriced_requests == 1


def test_running_the_demo_twice_adds_a_second_sample(ledger: UsageTrackingService) -> None:
    assert run("demo", "--events", "10").exit_code == 0
    assert run("demo", "--events", "10").exit_code == 0
    assert stored_count(ledger) == 20


def test_export_window_out_of_range_in_utc_is_a_usage_error_not_a_traceback() -> None:
    result = run("export", "--start", "0001-01-01T00:00:00+01:00")
    assert result.exit_code == 2
    assert "out of range" in result.output


def test_summaries_show_every_kind_used_and_its_cost(ledger: UsageTrackingService) -> None:
    run(*log_args(**{"request-id": "k-1", "tokens-input": "1000", "tokens-audio-input": "100"}))
    run(*log_args(**{"request-id": "k-2", "model": "firecrawl/scrape", "tokens-input": "0", "credits": "12"}))
    text = run("daily", "p1", "--date", DAY.isoformat()).stdout
    for line in ("tokens_audio_input", "credits"):
        assert any(row.startswith(line) for row in text.splitlines()), line
    data = json.loads(run("daily", "p1", "--date", DAY.isoformat(), "--json").stdout)
    assert data["usage"]["tokens_audio_input"] == 100 and data["usage"]["credits"] == 12
    assert sum(Decimal(v) for v in data["cost_by_kind"].values()) == Decimal(data["estimated_cost_exact"])
