"""Repricing (issue 9.7): what stored events would cost under another price file, beside what they did cost.

Events are logged through the service into SQLite; the override doubles gpt-4o-mini's prices and leaves
claude-3.5-sonnet alone. Every figure is hand-computed in nano-USD from the shipped and overriding rates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from services.cli import cli
from services.cli.demo_data import sample_events
from services.errors import ValidationFailed
from services.pricing import PriceBook
from services.reprice import UNSPLIT, reprice, window
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService
from tests.factories import make_log

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
MINI, SONNET = "openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"
# Shipped gpt-4o-mini: 150 nano-USD per input token, 75 per cached one, 600 per output one; doubled below.
DOUBLED_MINI = """
[[models]]
id = "openai/gpt-4o-mini"
input_per_1k = "0.0003"
cached_input_per_1k = "0.00015"
output_per_1k = "0.0012"
source = "what-if: twice the list price"
source_date = 2026-11-24
"""
# Before / after, nano-USD. e1: 8,000 uncached + 2,000 cached input, 3,000 output; e2: 1,000 in, 1,000 out;
# e3 (Sonnet, contracted $3 / $15 per 1M, not in the override): 4,000 in, 500 out.
E1 = {
    "tokens_input": (1_200_000, 2_400_000),
    "tokens_cached": (150_000, 300_000),
    "tokens_output": (1_800_000, 3_600_000),
}
E2 = {"tokens_input": (150_000, 300_000), "tokens_output": (600_000, 1_200_000)}
E3 = {"tokens_input": (12_000_000, 12_000_000), "tokens_output": (7_500_000, 7_500_000)}


@pytest.fixture
def ledger(db_path: Path, price_book: PriceBook) -> Iterator[UsageTrackingService]:
    service = UsageTrackingService(SQLiteUsageStore(db_path), price_book, clock=lambda: NOW)
    log = service.log_usage
    log(
        request_id="e1",
        user_id="p1",
        model=MINI,
        tokens_input=10_000,
        tokens_cached=2_000,
        tokens_output=3_000,
        timestamp=datetime(2026, 11, 10, 10, tzinfo=UTC),
    )
    log(
        request_id="e2",
        user_id="p2",
        tenant_id="t1",
        model=MINI,
        tokens_input=1_000,
        tokens_output=1_000,
        timestamp=datetime(2026, 11, 11, 10, tzinfo=UTC),
    )
    log(
        request_id="e3",
        user_id="p1",
        model=SONNET,
        tokens_input=4_000,
        tokens_output=500,
        timestamp=datetime(2026, 11, 12, 10, tzinfo=UTC),
    )
    # Just outside a November 1-20 window on either side: the end is exclusive.
    log(
        request_id="early",
        user_id="p1",
        model=MINI,
        tokens_input=1_000,
        timestamp=datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC),
    )
    log(request_id="at-end", user_id="p1", model=MINI, tokens_input=1_000,
        timestamp=datetime(2026, 11, 20, tzinfo=UTC))  # fmt: skip
    yield service
    service.close()


@pytest.fixture
def doubled(tmp_path: Path) -> Path:
    path = tmp_path / "what-if.toml"
    path.write_text(DOUBLED_MINI, encoding="utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["prices", "reprice", *args])


def summed(*events: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    parts: dict[str, tuple[int, int]] = {}
    for event in events:
        for part, (before, after) in event.items():
            old = parts.get(part, (0, 0))
            parts[part] = (old[0] + before, old[1] + after)
    return parts


def test_totals_by_model_and_part_are_exact(ledger: UsageTrackingService, doubled: Path) -> None:
    report = ledger.reprice(doubled, date(2026, 11, 1), date(2026, 11, 20))

    assert (report.events, report.repriced_events) == (3, 2)
    assert (report.cost_nano_before, report.cost_nano_after) == (23_400_000, 27_300_000)
    assert report.change_nano == 3_900_000
    assert {p: (c.cost_nano_before, c.cost_nano_after) for p, c in report.by_part.items()} == summed(E1, E2, E3)
    assert list(report.by_part) == ["tokens_input", "tokens_output", "tokens_cached"]  # COST_PARTS order
    mini = report.by_model[MINI]
    assert (mini.events, mini.repriced_events, mini.cost_nano_before, mini.cost_nano_after) == (
        2, 2, 3_900_000, 7_800_000
    )  # fmt: skip
    assert mini.price_versions_before == mini.price_versions_after == [MINI]
    assert report.cost_after == Decimal("0.0273")  # exact USD, derived from the nano-USD


def test_a_model_not_in_the_override_keeps_its_cost(ledger: UsageTrackingService, doubled: Path) -> None:
    sonnet = ledger.reprice(doubled, date(2026, 11, 1), date(2026, 11, 20)).by_model[SONNET]

    assert (sonnet.events, sonnet.repriced_events) == (1, 0)
    assert sonnet.cost_nano_before == sonnet.cost_nano_after == 19_500_000
    assert sonnet.price_versions_before == sonnet.price_versions_after == [SONNET]


def test_nothing_stored_changes(ledger: UsageTrackingService, doubled: Path) -> None:
    def stored() -> list[dict]:
        return [log.model_dump() for log in ledger.iter_events()]

    before = stored()
    daily = ledger.get_global_daily_usage(date(2026, 11, 10))
    ledger.reprice(doubled, date(2026, 11, 1), date(2026, 11, 20))
    assert run("--prices", str(doubled), "--start", "2026-11-01", "--end", "2026-11-20").exit_code == 0

    assert stored() == before and len(before) == 5
    assert ledger.get_global_daily_usage(date(2026, 11, 10)) == daily


def test_each_event_is_priced_at_its_own_timestamp(ledger: UsageTrackingService, tmp_path: Path) -> None:
    """A dated price in the file reprices only the events on or after its date, and names its version."""
    dated = tmp_path / "dated.toml"
    dated.write_text(DOUBLED_MINI.replace("source_date", "effective_from = 2026-11-11T00:00:00Z\nsource_date"))
    mini = ledger.reprice(dated, date(2026, 11, 1), date(2026, 11, 20)).by_model[MINI]

    assert (mini.repriced_events, mini.cost_nano_before, mini.cost_nano_after) == (1, 3_900_000, 4_650_000)
    assert mini.price_versions_after == [MINI, f"{MINI}@2026-11-11T00:00:00+00:00"]


def test_user_and_tenant_narrow_the_events(ledger: UsageTrackingService, doubled: Path) -> None:
    p1 = ledger.reprice(doubled, date(2026, 11, 1), date(2026, 11, 20), user_id="p1")
    t1 = ledger.reprice(doubled, date(2026, 11, 1), date(2026, 11, 20), tenant_id="t1")

    assert (p1.events, p1.cost_nano_before, p1.cost_nano_after) == (2, 22_650_000, 25_800_000)
    assert (t1.events, t1.cost_nano_before, t1.cost_nano_after) == (1, 750_000, 1_500_000)
    # A blank tenant is the default tenant alone (as a blank one is stored), None every tenant.
    everyone = ledger.reprice(doubled, date(2026, 11, 1), date(2026, 11, 20))
    default = ledger.reprice(doubled, date(2026, 11, 1), date(2026, 11, 20), tenant_id="")
    assert default.events == everyone.events - t1.events > 0
    assert default.cost_nano_before == everyone.cost_nano_before - t1.cost_nano_before


@pytest.mark.parametrize(
    ("start", "end", "events"),
    [
        ("2026-11-01", "2026-11-20", 3),
        ("2026-11-01", "2026-11-20T00:00:00.001Z", 4),  # the event at 00:00 on the 20th
        ("2026-10-31T23:59:59Z", "2026-11-20", 4),  # start is inclusive
        ("2026-11-01T00:59:59+01:00", "2026-11-20", 4),  # an offset is converted to UTC: 23:59:59 on the 31st
        ("2026-11-11", "2026-11-12", 1),
    ],
)
def test_start_and_end_bound_the_window(ledger: UsageTrackingService, doubled: Path, start, end, events) -> None:
    result = run("--prices", str(doubled), "--start", start, "--end", end, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] == events


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--start", "yesterday", "--end", "2026-11-20"), "'--start'"),
        (("--start", "2026-11-01", "--end", "2026-11-20T10:00"), "'--end'"),  # no timezone
        (("--start", "2026-11-01", "--end", "2026-13-01"), "'--end'"),
        (("--start", "2026-11-20", "--end", "2026-11-20"), "--end: must be after --start"),
        (("--end", "2026-11-20"), "'--start'"),  # required
    ],
)
def test_bad_dates_exit_2_naming_the_option(db_path: Path, doubled: Path, args, option) -> None:
    result = run("--prices", str(doubled), *args)

    assert result.exit_code == 2
    assert option in result.output


def test_a_missing_price_file_exits_2(db_path: Path, tmp_path: Path) -> None:
    result = run("--prices", str(tmp_path / "nope.toml"), "--start", "2026-11-01", "--end", "2026-11-20")

    assert result.exit_code == 2 and "'--prices'" in result.output


def test_a_bad_price_file_exits_2_naming_it(db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[models]]\nid = "openai/gpt-4o-mini"\ninput_per_1k = "cheap"\n', encoding="utf-8")
    result = run("--prices", str(bad), "--start", "2026-11-01", "--end", "2026-11-20")

    assert result.exit_code == 2 and "bad.toml" in result.output


def test_the_python_api_names_the_bad_bound(ledger: UsageTrackingService, doubled: Path) -> None:
    with pytest.raises(ValidationFailed) as naive:
        ledger.reprice(doubled, datetime(2026, 11, 1), date(2026, 11, 20))
    with pytest.raises(ValidationFailed) as empty:
        window(date(2026, 11, 20), date(2026, 11, 1))

    assert [f.field for f in naive.value.fields] == ["start"]
    assert [f.field for f in empty.value.fields] == ["end"]


def test_table_and_json_show_the_same_report(ledger: UsageTrackingService, doubled: Path) -> None:
    args = ("--prices", str(doubled), "--start", "2026-11-01", "--end", "2026-11-20")
    table, as_json = run(*args), run(*args, "--json")

    assert table.exit_code == 0, table.output
    assert "+$0.0039" in table.output and MINI in table.output and "tokens_cached" in table.output
    data = json.loads(as_json.output)
    assert (
        data["cost_before"] == "0.023400000" and data["cost_after"] == "0.027300000" and data["change"] == "0.003900000"
    )
    assert data["by_model"][SONNET]["change_nano"] == 0
    assert data["by_part"]["tokens_cached"] == {
        "cost_nano_before": 150_000, "cost_nano_after": 300_000, "change_nano": 150_000,
        "cost_before": "0.000150000", "cost_after": "0.000300000", "change": "0.000150000",
    }  # fmt: skip
    assert (data["start"], data["end"], data["user_id"]) == (
        "2026-11-01T00:00:00+00:00",
        "2026-11-20T00:00:00+00:00",
        None,
    )


def test_a_row_logged_before_costs_were_split_reports_its_cost_as_unsplit(price_book: PriceBook) -> None:
    """Its stored cost has no parts, so "before" keeps it whole; "after" splits it. Totals still add up."""
    old = make_log(model=SONNET, tokens_input=1_000, tokens_output=0, cost_nano=3_000_000, cost_nano_by_kind={})
    report = reprice([old], price_book)

    assert {p: (c.cost_nano_before, c.cost_nano_after) for p, c in report.by_part.items()} == {
        "tokens_input": (0, 3_000_000),
        UNSPLIT: (3_000_000, 0),
    }
    assert (report.cost_nano_before, report.cost_nano_after, report.repriced_events) == (3_000_000, 3_000_000, 0)


def test_a_file_that_changes_no_price_reproduces_every_stored_cost(
    sqlite_store: SQLiteUsageStore, price_book: PriceBook, tmp_path: Path
) -> None:
    """Repricing mirrors how events were priced when logged (model, provider, timestamp, tier, every kind)."""
    service = UsageTrackingService(sqlite_store, price_book, clock=lambda: NOW)
    service.log_usage_batch(sample_events(300, "same", NOW))
    unrelated = tmp_path / "unrelated.toml"
    unrelated.write_text(DOUBLED_MINI.replace("openai/gpt-4o-mini", "acme/not-logged"), encoding="utf-8")
    report = service.reprice(unrelated, date(2025, 1, 1), date(2026, 12, 1))

    assert report.events == 300 and report.cost_nano_before > 0
    assert report.repriced_events == 0
    assert all(part.change_nano == 0 for part in report.by_part.values())
