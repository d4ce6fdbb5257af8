"""``ai-usage stats …``: every command prints what the analytics call answers, on a seeded SQLite ledger.

The commands run in-process against the ``db_path`` file, on a service whose clock is pinned, so the default ranges
("today", "the last 7 days", "the last 24 hours") are the same for the command and the check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import BaseModel

from services.cli import cli, stats_command, tables
from services.usage_tracking_service import UsageTrackingService
from tests.factories import make_log, pinned_commands

NOW = datetime(2025, 6, 7, 15, 30, tzinfo=UTC)
START = datetime(2025, 6, 1, tzinfo=UTC)
ESC, RLO = "\x1b", "\u202e"
ODD = (ESC, "\x07", "\x9b", RLO, "\r")


@pytest.fixture
def ledger(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UsageTrackingService]:
    """The ledger the commands read, and the commands' service on the same file with the same pinned clock."""
    yield from pinned_commands(db_path, NOW, monkeypatch, stats_command)


def seed(ledger: UsageTrackingService) -> None:
    """60 events, one every 145 minutes from 2025-06-01: three tenants, three models on two providers, four
    features, every task type, durations from 100 ms to a few seconds, one in eleven failed."""
    models = ("openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet", "openai/gpt-4o", "anthropic/claude-3-haiku")
    tasks = ("story_progression", "combat_narration", "quest_selection", "npc_dialogue", "general")
    events = [
        {
            "request_id": f"req-{n}", "user_id": f"player-{n % 4}", "tenant_id": (None, "t1", "t2")[n % 3],
            "model": models[n % 4], "task_type": tasks[n % 5], "feature": ("quest_board", "npc_chat", None)[n % 3 - 1],
            "tokens_input": 500 + 40 * n, "tokens_output": 100 + 7 * n, "request_duration_ms": 100 + 97 * n,
            "success": n % 11 != 0, "timestamp": START + timedelta(minutes=145 * n),
        }
        for n in range(60)
    ]  # fmt: skip
    results = ledger.log_usage_batch(events)
    assert all(r.status.value == "stored" for r in results)


@pytest.fixture
def seeded(ledger: UsageTrackingService) -> UsageTrackingService:
    seed(ledger)
    return ledger


def run(*args: str, charset: str = "utf-8") -> Result:
    return CliRunner(charset=charset).invoke(cli, ["stats", *args], catch_exceptions=False, color=True)


def as_json(model: BaseModel) -> Any:
    return json.loads(json.dumps(model.model_dump(mode="json")))


def printed_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def chart_rows(text: str) -> list[str]:
    """The framed sparkline rows (``|…|``) of the output, frames removed."""
    return [line[1:-1] for line in text.splitlines() if line.startswith("|") and line.endswith("|")]


# -- series -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "call"),
    [
        (("--start", "2025-06-01", "--end", "2025-06-07"), {"interval": "day"}),
        (
            (
                "--interval",
                "hour",
                "--start",
                "2025-06-02T00:00:00Z",
                "--end",
                "2025-06-03T06:00:00Z",
                "--provider",
                "openai",
            ),
            {"interval": "hour", "provider": "openai"},
        ),
        (
            (
                "--interval",
                "month",
                "--start",
                "2025-05-01",
                "--end",
                "2025-06-30",
                "--model",
                "openai/gpt-4o",
                "--task-type",
                "general",
                "--tenant-id",
                "t1",
            ),
            {"interval": "month", "model": "openai/gpt-4o", "task_type": "general", "tenant_id": "t1"},
        ),
    ],
)
def test_series_json_is_the_services_answer(seeded: UsageTrackingService, args: tuple, call: dict) -> None:
    printed = printed_json("series", *args)
    start = datetime.fromisoformat(printed["start"])
    end = datetime.fromisoformat(printed["end"])
    assert printed == as_json(seeded.get_time_series(start, end, **call))
    assert printed["total"]["requests"] > 0


def test_series_end_given_as_a_day_includes_that_day(seeded: UsageTrackingService) -> None:
    printed = printed_json("series", "--start", "2025-06-01", "--end", "2025-06-07")
    assert [p["start"][:10] for p in printed["points"]] == [f"2025-06-0{d}" for d in range(1, 8)]
    assert printed["end"] == "2025-06-08T00:00:00Z"


@pytest.mark.parametrize(
    ("interval", "buckets", "first"),
    [("hour", 24, "2025-06-06T16:00:00Z"), ("day", 30, "2025-05-09T00:00:00Z"), ("month", 12, "2024-07-01T00:00:00Z")],
)
def test_series_defaults_to_the_last_24_hours_30_days_or_12_months(
    seeded: UsageTrackingService, interval: str, buckets: int, first: str
) -> None:
    printed = printed_json("series", "--interval", interval)
    assert len(printed["points"]) == buckets
    assert printed["points"][0]["start"] == first and printed["end"] == "2025-06-07T15:30:00Z"
    assert printed == as_json(seeded.get_time_series(datetime.fromisoformat(first), NOW, interval))


def test_series_table_prints_every_bucket_and_a_chart_mark_for_each(seeded: UsageTrackingService) -> None:
    answer = seeded.get_time_series(START, START + timedelta(days=7), "day", provider="anthropic")
    result = run("series", "--start", "2025-06-01", "--end", "2025-06-07", "--provider", "anthropic")
    assert result.exit_code == 0, result.output
    for point in answer.points:
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"{point.start:%Y-%m-%d} "))
        assert row.split()[1:6] == [
            str(point.requests), str(point.failed_requests), f"{point.tokens:,}", tables.usd(point.cost_usd),
            tables.exact(point.cost_usd),
        ]  # fmt: skip
    total = next(line for line in result.stdout.splitlines() if line.startswith("total "))
    assert tables.exact(answer.total.cost_usd) in total
    cost_marks, request_marks = chart_rows(result.stdout)
    assert len(cost_marks) == len(request_marks) == len(answer.points) == 7
    # The costliest bucket gets the top mark, an empty one a blank, any other bucket a mark.
    costs = [p.cost_usd for p in answer.points]
    assert cost_marks[costs.index(max(costs))] == "█"
    assert all((mark == " ") == (cost == 0) for mark, cost in zip(cost_marks, costs, strict=True))


def test_a_long_series_wraps_its_chart_but_keeps_one_mark_per_bucket(seeded: UsageTrackingService) -> None:
    result = run("series", "--interval", "hour", "--start", "2025-06-01", "--end", "2025-06-06")
    assert result.exit_code == 0, result.output
    rows = chart_rows(result.stdout)
    assert sum(len(row) for row in rows) == 2 * 6 * 24 and max(len(row) for row in rows) == 60


def test_sparkline_scales_to_the_largest_and_marks_every_nonzero_value() -> None:
    assert tables.sparkline([0, 1, 2, 8, 4]) == " ▁▂█▄"
    assert tables.sparkline([Decimal("0.000000001"), Decimal(3)]) == "▁█"
    assert tables.sparkline([0, 0]) == "  " and tables.sparkline([]) == ""
    assert tables.sparkline([0, 1, 8], tables.SPARK_ASCII) == " .@"


def test_chart_falls_back_to_ascii_when_the_output_cannot_encode_blocks(seeded: UsageTrackingService) -> None:
    assert tables.chart_glyphs("utf-8") == tables.SPARK_UNICODE
    assert tables.chart_glyphs("ascii") == tables.chart_glyphs("latin-1") == tables.SPARK_ASCII
    assert tables.chart_glyphs("no-such-codec") == tables.SPARK_ASCII
    for result in (run("series", "--end", "2025-06-07", charset="ascii"), run("realtime", "--ascii")):
        assert result.exit_code == 0, result.output
        marks = "".join(chart_rows(result.stdout))
        assert marks.strip() and set(marks) <= set(tables.SPARK_ASCII + " ")


# -- realtime ---------------------------------------------------------------------------------------------------------
def test_realtime_prints_the_last_24_hours(seeded: UsageTrackingService) -> None:
    expected = seeded.get_realtime_metrics()
    assert expected.total.requests > 0
    assert printed_json("realtime") == as_json(expected)
    assert printed_json("realtime", "--tenant-id", "t2") == as_json(seeded.get_realtime_metrics("t2"))
    result = run("realtime")
    assert [len(row) for row in chart_rows(result.stdout)] == [24, 24]
    assert f"{expected.total.requests}" in next(line for line in result.stdout.splitlines() if line.startswith("total"))


# -- breakdowns -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "method"),
    [
        ("providers", "get_cost_by_provider"),
        ("models", "get_cost_by_model"),
        ("tasks", "get_cost_by_task_type"),
        ("features", "get_cost_by_feature"),
    ],
)
def test_breakdowns_print_the_services_figures(seeded: UsageTrackingService, command: str, method: str) -> None:
    first, last = date(2025, 6, 1), date(2025, 6, 7)
    answer = getattr(seeded, method)(first, last)
    assert printed_json(command, "--start", "2025-06-01", "--end", "2025-06-07") == as_json(answer)
    assert printed_json(command, "--start", "2025-06-01", "--tenant-id", "t1") == as_json(
        getattr(seeded, method)(first, last, "t1")
    )
    # Default range: the last seven days, today (by the pinned clock) included.
    assert printed_json(command) == as_json(getattr(seeded, method)(date(2025, 6, 1), date(2025, 6, 7)))
    result = run(command, "--start", "2025-06-01", "--end", "2025-06-07")
    lines = result.stdout.splitlines()
    for name, stats in answer.items.items():
        row = next(line for line in lines if line.startswith(f"{name or '(none)'} "))
        assert f" {stats.requests} " in row and tables.exact(stats.cost_usd) in row
    total = sum((s.cost_usd for s in answer.items.values()), Decimal(0))
    assert tables.exact(total) in next(line for line in lines if line.startswith("total "))


def test_operations_are_the_top_task_and_provider_pairs(seeded: UsageTrackingService) -> None:
    answer = seeded.get_top_operations(date(2025, 6, 1), date(2025, 6, 7), 3)
    assert len(answer.operations) == 3
    assert printed_json("operations", "--start", "2025-06-01", "--limit", "3") == as_json(answer)
    lines = run("operations", "--start", "2025-06-01", "--limit", "3").stdout.splitlines()
    rows = [line.split() for line in lines[-3:]]
    assert [(r[0], r[1], r[6]) for r in rows] == [
        (o.task_type, o.provider, tables.exact(o.cost_usd)) for o in answer.operations
    ]


def test_errors_print_each_providers_rate(seeded: UsageTrackingService) -> None:
    rates = seeded.get_error_rates(date(2025, 6, 1), date(2025, 6, 7))
    printed = printed_json("errors")
    assert printed == {
        "start": "2025-06-01",
        "end": "2025-06-07",
        "by_provider": {name: as_json(rate) for name, rate in rates.items()},
    }
    assert any(rate.failed_requests for rate in rates.values())
    lines = run("errors").stdout.splitlines()
    for name, rate in rates.items():
        row = next(line for line in lines if line.startswith(f"{name} "))
        assert row.split()[1:] == [str(rate.requests), str(rate.failed_requests), f"{rate.error_rate:.2f}%"]


def test_latency_prints_percentiles_and_states_the_histograms_error(seeded: UsageTrackingService) -> None:
    answer = seeded.get_latency_report(date(2025, 6, 1), date(2025, 6, 7))
    assert printed_json("latency") == as_json(answer)
    narrowed = seeded.get_latency_report(date(2025, 6, 1), date(2025, 6, 7), "t1", "openai")
    assert printed_json("latency", "--provider", "openai", "--tenant-id", "t1") == as_json(narrowed)
    result = run("latency")
    assert f"within {answer.relative_error:.1%} of the exact percentile" in result.stdout
    for name, p in {**answer.by_provider, **answer.by_model}.items():
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"{name} "))
        assert row.split()[1:] == [
            str(p.requests),
            f"{p.p50:,.1f}",
            f"{p.p95:,.1f}",
            f"{p.p99:,.1f}",
            f"{p.success_rate:.2f}%",
        ]


def test_players_rank_a_day_or_a_range_per_tenant_or_overall(seeded: UsageTrackingService) -> None:
    day = seeded.get_top_players(date(2025, 6, 3))
    assert day.players and printed_json("players", "--date", "2025-06-03") == as_json(day)
    assert printed_json("players") == as_json(seeded.get_top_players(date(2025, 6, 7)))  # today, pinned
    ranged = seeded.get_top_players(date(2025, 6, 1), date(2025, 6, 6), 2, "t2")
    assert [p.tenant_id for p in ranged.players] == ["t2", "t2"]
    printed = printed_json(
        "players", "--start", "2025-06-01", "--end", "2025-06-06", "--limit", "2", "--tenant-id", "t2"
    )
    assert printed == as_json(ranged)
    default_tenant = seeded.get_top_players(date(2025, 6, 1), date(2025, 6, 6), 10, "")
    assert printed_json("players", "--start", "2025-06-01", "--end", "2025-06-06", "--tenant-id", "") == as_json(
        default_tenant
    )
    lines = run("players", "--start", "2025-06-01", "--end", "2025-06-06").stdout.splitlines()
    overall = seeded.get_top_players(date(2025, 6, 1), date(2025, 6, 6))
    for rank, player in enumerate(overall.players, 1):
        row = next(cells for cells in map(str.split, lines) if cells[:1] == [str(rank)])
        assert row[1:3] == [player.tenant_id or "(default)", player.user_id] and row[-1] == tables.exact(
            player.cost_usd
        )


# -- bad input --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("series", "--interval", "week"), "--interval"),
        (("series", "--interval", "hour", "--model", "openai/gpt-4o"), "--interval"),
        (("series", "--task-type", "crafting"), "--task-type"),
        (("series", "--start", "2025-06-01T10:00:00"), "--start"),
        (("series", "--start", "2025-06-05", "--end", "2025-06-01"), "--end"),
        (("series", "--interval", "hour", "--start", "2025-01-01"), "--end"),
        (("providers", "--start", "2025-06-07", "--end", "2025-06-01"), "--end"),
        (("models", "--start", "2024-01-01", "--end", "2025-06-01"), "--end"),
        (("latency", "--start", "06/01/2025"), "--start"),
        (("operations", "--limit", "0"), "--limit"),
        (("players", "--limit", "1001"), "--limit"),
        (("players", "--date", "2025-06-01", "--start", "2025-06-01"), "--date"),
    ],
)
def test_bad_options_are_refused_naming_the_option(ledger: UsageTrackingService, args: tuple, option: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.stderr


# Days and instants run from 1970-01-01 to 9998-12-31 (services.time_ranges): an --end near year 1 or 9999 overflowed
# the calendar into a traceback, and a default start counted back from --end was refused as the --start nobody gave.
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("series", "--end", "9999-12-31"), "--end"),
        (("series", "--end", "9998-12-31"), "--end"),  # its day is included: the series would end in 9999
        (("series", "--end", "0001-01-01"), "--end"),
        (("series", "--end", "0001-01-01T00:00:00Z"), "--end"),
        (("series", "--end", "9999-12-31T23:00:00Z", "--interval", "month"), "--end"),
        (("series", "--end", "1970-01-01T00:00:00Z"), "--end"),
        (("series", "--start", "0001-01-01"), "--start"),
        *(((command, "--end", "0001-01-03"), "--end") for command in ("providers", "models", "tasks", "features")),
        *(((command, "--end", "0001-01-03"), "--end") for command in ("operations", "errors", "latency", "players")),
        (("providers", "--end", "9999-12-31"), "--end"),
        (("errors", "--start", "1969-12-31"), "--start"),
        (("players", "--date", "0001-01-01"), "--date"),
        (("players", "--date", "9999-12-31"), "--date"),
    ],
)
def test_days_outside_the_ledgers_name_the_option_given(ledger: UsageTrackingService, args: tuple, option: str) -> None:
    result = run(*args)

    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.stderr, result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["providers", "models", "tasks", "features", "operations", "errors", "latency"])
def test_a_default_start_before_1970_is_clamped_to_1970_01_01(ledger: UsageTrackingService, command: str) -> None:
    printed = printed_json(command, "--end", "1970-01-03")

    assert (printed["start"], printed["end"]) == ("1970-01-01", "1970-01-03")


@pytest.mark.parametrize("interval", ["hour", "day", "month"])
def test_a_series_default_start_before_1970_is_clamped_to_its_first_instant(
    ledger: UsageTrackingService, interval: str
) -> None:
    printed = printed_json("series", "--interval", interval, "--end", "1970-01-01T05:00:00Z")

    assert datetime.fromisoformat(printed["start"]) == datetime(1970, 1, 1, tzinfo=UTC)


def test_a_series_may_end_with_the_last_day_but_one(ledger: UsageTrackingService) -> None:
    printed = printed_json("series", "--start", "9998-12-01", "--end", "9998-12-30")

    assert datetime.fromisoformat(printed["end"]) == datetime(9998, 12, 31, tzinfo=UTC)


# -- stored text never reaches the terminal raw -----------------------------------------------------------------------
def test_stored_names_with_control_characters_are_shown_escaped(ledger: UsageTrackingService) -> None:
    at = datetime(2025, 6, 7, 10, tzinfo=UTC)
    ledger.store.record([
        make_log(model=f"evil{RLO}model{ESC}[2J", provider=f"acme{ESC}]0;x\x07", feature=f"quest{ESC}[31m\r",
                 user_id=f"p{ESC}[1A", tenant_id="t\x9b2J", request_duration_ms=250, timestamp=at),
    ])  # fmt: skip
    outputs = [
        run(command, "--start", "2025-06-07").stdout
        for command in ("providers", "models", "features", "operations", "latency", "errors", "players")
    ]
    outputs.append(run("realtime").stdout)
    outputs.append(
        run("series", "--interval", "hour", "--provider", f"acme{ESC}]0;x\x07", "--end", "2025-06-07").stdout
    )
    for text in outputs:
        assert not [char for char in ODD if char in text], text
    joined = "\n".join(outputs)
    for shown in ("evil\\u202emodel\\x1b[2J", "acme\\x1b]0;x\\x07", "quest\\x1b[31m\\r", "p\\x1b[1A", "t\\x9b2J"):
        assert shown in joined
    assert "\\x1b" in outputs[-1].splitlines()[0]  # the series title repeats the filter, escaped
    assert not [char for char in ODD if char in run("models", "--start", "2025-06-07", "--json").stdout]
