"""``ai-usage tenant …`` and ``--tenant-id`` on the per-player and per-session commands, on a seeded SQLite ledger.

Two tenants hold the same player, session and request ids at different costs, beside the default tenant, so a
command that drops the tenant prints the wrong figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import BaseModel

from services.cli import cli, ledger_commands, tables, tenant_commands
from services.usage_tracking_service import UsageTrackingService
from tests.factories import make_log, pinned_commands

NOW = datetime(2025, 6, 7, 15, 30, tzinfo=UTC)
DAY = date(2025, 6, 5)
ESC, RLO = "\x1b", "\u202e"
TENANTS = (None, "studio-a", "studio-b")


@pytest.fixture
def ledger(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UsageTrackingService]:
    """The ledger, and the commands' service on the same file with the same pinned clock ("today" is 2025-06-07)."""
    yield from pinned_commands(db_path, NOW, monkeypatch, tenant_commands, ledger_commands)


@pytest.fixture
def seeded(ledger: UsageTrackingService) -> UsageTrackingService:
    """In every tenant the same 24 request ids, players p0..p2 and sessions s0..s1; each tenant its own volume."""
    models = ("openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet", "openai/gpt-4o")
    events = [
        {
            "request_id": f"req-{n}", "tenant_id": tenant, "user_id": f"p{n % 3}", "session_id": f"s{n % 2}",
            "model": models[n % 3], "task_type": ("npc_dialogue", "general", "quest_selection")[n % 3],
            "feature": ("quest_board", None, "innkeeper")[n % 3 - 1],
            "tokens_input": (1 + t) * (300 + 50 * n), "tokens_output": (1 + t) * 80, "success": n % 7 != 3,
            "timestamp": datetime(2025, 6, 1, tzinfo=UTC) + timedelta(hours=6 * n),
        }
        for t, tenant in enumerate(TENANTS)
        for n in range(24)
    ]  # fmt: skip
    assert [r.status.value for r in ledger.log_usage_batch(events)] == ["stored"] * len(events)
    return ledger


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, color=True)


def as_json(model: BaseModel) -> Any:
    return json.loads(json.dumps(model.model_dump(mode="json")))


def printed_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def row_of(text: str, first: str) -> list[str]:
    """The cells after ``first`` of the table row that begins with it."""
    return next(cells[1:] for cells in map(str.split, text.splitlines()) if cells[:1] == [first])


# -- ai-usage tenant ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tenant", ["studio-a", "studio-b", ""])
def test_tenant_daily_prints_the_tenants_day(seeded: UsageTrackingService, tenant: str) -> None:
    expected = seeded.get_tenant_daily_usage(tenant or None, DAY)
    assert expected.total_requests > 0
    assert printed_json("tenant", "daily", tenant, "--date", DAY.isoformat()) == as_json(expected)
    result = run("tenant", "daily", tenant, "--date", DAY.isoformat())
    assert result.stdout.startswith(f"Usage of {'tenant ' + tenant if tenant else 'the default tenant'} on 2025-06-05")
    assert tables.cost(expected.estimated_cost_exact) in result.stdout
    for provider, requests in expected.requests_by_provider.items():
        cost = expected.cost_by_provider[provider]
        assert row_of(result.stdout, provider) == [str(requests), tables.usd(cost), tables.exact(cost)]


def test_tenant_daily_defaults_to_today(seeded: UsageTrackingService) -> None:
    assert printed_json("tenant", "daily", "studio-a") == as_json(seeded.get_tenant_daily_usage("studio-a"))
    assert printed_json("tenant", "daily", "studio-a")["date"] == "2025-06-07"


def test_tenant_monthly_prints_the_tenants_month(seeded: UsageTrackingService) -> None:
    expected = seeded.get_tenant_monthly_usage("studio-b", 2025, 6)
    assert expected.total_requests == 24
    assert printed_json("tenant", "monthly", "studio-b", "--year", "2025", "--month", "6") == as_json(expected)
    assert printed_json("tenant", "monthly", "studio-b") == as_json(expected)  # this month, by the pinned clock
    result = run("tenant", "monthly", "studio-b", "--year", "2025", "--month", "6")
    assert result.stdout.startswith("Usage of tenant studio-b in 2025-06 (UTC)")
    for provider, requests in expected.requests_by_provider.items():
        assert row_of(result.stdout, provider)[0] == str(requests)


def test_tenant_summary_breaks_down_by_feature_task_and_provider(seeded: UsageTrackingService) -> None:
    expected = seeded.get_tenant_usage_summary("studio-a", 10)
    assert set(expected.by_feature) == {"", "quest_board", "innkeeper"}
    assert printed_json("tenant", "summary", "studio-a", "--days", "10") == as_json(expected)
    assert printed_json("tenant", "summary", "studio-a") == as_json(seeded.get_tenant_usage_summary("studio-a"))
    result = run("tenant", "summary", "studio-a", "--days", "10")
    for name, part in [*expected.by_feature.items(), *expected.by_task.items(), *expected.by_provider.items()]:
        assert row_of(result.stdout, name or "(none)") == [
            str(part.requests), f"{part.tokens:,}", tables.usd(part.estimated_cost_exact),
            tables.exact(part.estimated_cost_exact),
        ]  # fmt: skip
    assert tables.cost(expected.estimated_cost_exact) in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("daily", "studio-a", "--date", "2025-13-01"), "--date"),
        (("monthly", "studio-a", "--month", "13"), "--month"),
        (("monthly", "studio-a", "--year", "1969"), "--year"),
        (("summary", "studio-a", "--days", "0"), "--days"),
        (("summary", "studio-a", "--days", "367"), "--days"),
    ],
)
def test_bad_tenant_options_are_refused_naming_the_option(
    ledger: UsageTrackingService, args: tuple, option: str
) -> None:
    result = run("tenant", *args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.stderr


# -- --tenant-id on the player and session commands --------------------------------------------------------------------
@pytest.mark.parametrize("tenant", TENANTS)
def test_player_and_session_commands_read_the_tenant_given(seeded: UsageTrackingService, tenant: str | None) -> None:
    option = () if tenant is None else ("--tenant-id", tenant)
    calls = {
        ("daily", "p1", "--date", DAY.isoformat()): seeded.get_daily_usage("p1", DAY, tenant_id=tenant),
        ("monthly", "p1", "--year", "2025", "--month", "6"): seeded.get_monthly_cost("p1", 2025, 6, tenant_id=tenant),
        ("summary", "p1", "--days", "10"): seeded.get_usage_summary("p1", 10, tenant_id=tenant),
        ("session", "s1"): seeded.get_session_usage("s1", tenant_id=tenant),
    }
    for args, expected in calls.items():
        assert expected.total_requests > 0
        assert printed_json(*args, *option) == as_json(expected), args
        text = run(*args, *option).stdout
        assert tables.cost(expected.estimated_cost_exact) in text
        assert (f" in tenant {tenant}" in text.splitlines()[0]) == (tenant is not None)


def test_tenants_with_the_same_ids_never_share_figures(seeded: UsageTrackingService) -> None:
    costs = {tenant: printed_json("monthly", "p0", "--year", "2025", "--month", "6", "--tenant-id", tenant)
             for tenant in ("studio-a", "studio-b")}  # fmt: skip
    assert costs["studio-a"]["estimated_cost_exact"] != costs["studio-b"]["estimated_cost_exact"]
    # A blank tenant id is the default tenant, as no --tenant-id at all.
    assert printed_json("session", "s0", "--tenant-id", "") == printed_json("session", "s0")


def test_log_stores_the_tenant_and_the_feature(ledger: UsageTrackingService) -> None:
    result = run("log", "--user-id", "p9", "--model", "openai/gpt-4o-mini", "--tokens-input", "100",
                 "--tenant-id", "studio-a", "--feature", "quest_board", "--request-id", "r-9")  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = ledger.get_event("r-9", "studio-a")
    assert stored is not None and stored.feature == "quest_board" and stored.tenant_id == "studio-a"
    assert "feature           quest_board" in result.stdout
    refused = run("log", "--user-id", "p9", "--model", "m", "--feature", "bad\x1b[2J")
    assert refused.exit_code == 2 and "feature" in refused.stderr


# -- stored text never reaches the terminal raw ------------------------------------------------------------------------
def test_tenant_ids_and_features_with_control_characters_are_shown_escaped(ledger: UsageTrackingService) -> None:
    tenant = f"t{ESC}]0;x\x07"
    ledger.store.record([
        make_log(tenant_id=tenant, feature=f"quest{RLO}{ESC}[31m", provider=f"acme{ESC}[2J", user_id="p1",
                 session_id="s1", timestamp=datetime(2025, 6, 7, 10, tzinfo=UTC)),
    ])  # fmt: skip
    outputs = [
        run("tenant", "daily", tenant, "--date", "2025-06-07").stdout,
        run("tenant", "monthly", tenant, "--year", "2025", "--month", "6").stdout,
        run("tenant", "summary", tenant, "--days", "3").stdout,
        run("daily", "p1", "--date", "2025-06-07", "--tenant-id", tenant).stdout,
        run("session", "s1", "--tenant-id", tenant).stdout,
    ]
    for text in outputs:
        assert not [char for char in (ESC, "\x07", RLO) if char in text], text
        assert "t\\x1b]0;x\\x07" in text.splitlines()[0]
    assert "quest\\u202e\\x1b[31m" in outputs[2] and "acme\\x1b[2J" in outputs[0]
