"""End to end: a seeded ledger crossing every rule, checked again and again, by two "processes" at once (two
services on one SQLite file; two stores on one local TablesDB server), sends each alert exactly once to a local
receiver. A dry run sends and records nothing; a failed delivery is released and sent by a later check."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from services.alerts import AlertConfig, Status, WebhookSender, check_alerts, open_alert_log, parse_config
from services.cli import cli
from services.errors import ValidationFailed
from services.pricing import PriceBook
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService
from tests.test_alerts_delivery import Receiver

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
DAY = NOW.date().isoformat()

RULES = {
    "rule": [
        {"name": "spend-24h", "kind": "global_cost", "threshold_usd": 8},
        {"name": "studio-a-day", "kind": "global_cost", "window": "day", "tenant": "studio-a", "threshold_usd": 5},
        {"name": "whale", "kind": "player_cost", "threshold_usd": 5},
        {"name": "spammer", "kind": "player_requests", "threshold": 8},
        {"name": "errors", "kind": "provider_errors", "threshold_percent": 50, "min_requests": 4},
        {"name": "unpriced", "kind": "unpriced_models"},
        {"name": "budget", "kind": "tenant_budget", "tenant": "studio-a", "monthly_budget_usd": 20, "shares": [0.5, 1]},
    ]
}
EXPECTED = {
    ("spend-24h", "global", DAY),
    ("studio-a-day", "tenant:studio-a", DAY),
    ("whale", "player:studio-a/whale", DAY),
    ("spammer", "player:/spammer", DAY),
    ("errors", "provider:anthropic", "2026-11-24T15"),
    ("unpriced", "model:acme/dragon-lore-7b", DAY),
    ("budget", "tenant:studio-a@50%", "2026-11"),
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _events() -> list[dict[str, Any]]:
    at = lambda minutes: (NOW - timedelta(minutes=minutes)).isoformat()  # noqa: E731
    events = [  # the whale: 5 x 1M input tokens of gpt-4o, in studio-a (about $12.50)
        {"user_id": "whale", "tenant_id": "studio-a", "model": "gpt-4o", "tokens_input": 1_000_000,
         "tokens_output": 100, "timestamp": at(10 + i)} for i in range(5)
    ]  # fmt: skip
    events += [  # the spammer: 10 cheap requests in the default tenant
        {"user_id": "spammer", "model": "gpt-4o-mini", "tokens_input": 50, "tokens_output": 5, "timestamp": at(i)}
        for i in range(10)
    ]
    events += [  # anthropic fails 4 of 5 in the last hour
        {"user_id": f"p{i}", "model": "claude-sonnet-4-5", "provider": "anthropic", "tokens_input": 100,
         "tokens_output": 10, "success": i == 0, "timestamp": at(20 + i)} for i in range(5)
    ]  # fmt: skip
    events.append({"user_id": "p9", "model": "acme/dragon-lore-7b", "tokens_input": 100, "timestamp": at(3)})
    return [{"request_id": f"r{i}", **event} for i, event in enumerate(events)]


def _seed(ledger: UsageTrackingService) -> None:
    results = ledger.log_usage_batch(_events())
    assert all(r.status.value == "stored" for r in results)
    whale = ledger.get_top_players(NOW.date(), limit=1).players[0]
    assert whale.user_id == "whale" and 10 < whale.cost_usd < 15  # the thresholds above assume the price book's


def _config(receiver: Receiver) -> AlertConfig:
    return parse_config({**RULES, "webhook": [{"url": receiver.url(), "format": "generic"}]})


def _received(receiver: Receiver) -> Counter[tuple[str, str, str]]:
    return Counter((b["alert"]["rule"], b["alert"]["scope"], b["alert"]["period"]) for _path, b in receiver.bodies)


@pytest.fixture(params=["sqlite", pytest.param("appwrite", marks=pytest.mark.appwrite)])
def two_ledgers(
    request: pytest.FixtureRequest, tmp_path: Path, price_book: PriceBook
) -> Iterator[tuple[UsageTrackingService, UsageTrackingService]]:
    """Two services on one store, as two processes would have: their own connections, nothing shared in memory."""
    if request.param == "sqlite":
        first, second = SQLiteUsageStore(tmp_path / "usage.db"), SQLiteUsageStore(tmp_path / "usage.db")
        yield (
            UsageTrackingService(first, price_book, clock=lambda: NOW),
            UsageTrackingService(second, price_book, clock=lambda: NOW),
        )
        first.close()
        second.close()
        return
    from services.store.appwrite_store import AppwriteUsageStore
    from tests.appwrite_support import DATABASE_ID, make_appwrite_store, tables_db_for
    from tests.tablesdb_double import TablesDBDouble

    double = TablesDBDouble(project_id="test-project", api_key="test-key", server_version="1.9.6")
    double.start()
    try:
        one = make_appwrite_store(double)
        two = AppwriteUsageStore(tables_db_for(double), DATABASE_ID, retry=one.retry)
        yield (
            UsageTrackingService(one, price_book, clock=lambda: NOW),
            UsageTrackingService(two, price_book, clock=lambda: NOW),
        )
        one.close()
        two.close()
    finally:
        double.stop()


def test_each_rule_fires_exactly_once_across_repeated_and_concurrent_checks(two_ledgers, receiver: Receiver) -> None:
    first, second = two_ledgers
    _seed(first)
    config = _config(receiver)

    dry = check_alerts(first, config, WebhookSender(config.webhooks), dry_run=True)
    assert {o.alert.key for o in dry.outcomes} == EXPECTED and dry.errors == {}
    assert {o.status for o in dry.outcomes} == {Status.WOULD_SEND} and receiver.bodies == []

    reports: list[Any] = []
    barrier = threading.Barrier(2)

    def run(ledger: UsageTrackingService) -> None:
        barrier.wait()
        for _ in range(3):
            reports.append(check_alerts(ledger, config, WebhookSender(config.webhooks)))

    threads = [threading.Thread(target=run, args=(ledger,)) for ledger in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert _received(receiver) == Counter(dict.fromkeys(EXPECTED, 1))
    sent = [o.alert.key for report in reports for o in report.outcomes if o.status is Status.SENT]
    assert sorted(sent) == sorted(EXPECTED)  # every alert sent by exactly one of the six checks
    assert all(o.status in (Status.SENT, Status.ALREADY_SENT) for r in reports for o in r.outcomes)

    later = check_alerts(second, config, WebhookSender(config.webhooks), dry_run=True)
    assert {o.status for o in later.outcomes} == {Status.ALREADY_SENT}
    records = open_alert_log(second.store)
    history = records.history(limit=5)
    rest = records.history(limit=5, cursor=history.next_cursor)
    for cursor in ("zzz", "\u00b2", "9" * 40):  # not a cursor a page returned: refused by name on both stores
        with pytest.raises(ValidationFailed) as refused:
            records.history(limit=5, cursor=cursor)
        assert [error.field for error in refused.value.fields] == ["cursor"]
    records.close()
    assert {(a.rule, a.scope, a.period) for a in history.alerts + rest.alerts} == EXPECTED
    assert rest.next_cursor is None and all(a.status == "sent" and a.delivered == 1 for a in history.alerts)


def test_a_failed_delivery_is_released_and_sent_by_the_next_check(two_ledgers, receiver: Receiver) -> None:
    first, second = two_ledgers
    first.log_usage(request_id="u1", user_id="p1", model="acme/dragon-lore-7b", tokens_input=10)
    config = parse_config(
        {"rule": [{"name": "unpriced", "kind": "unpriced_models"}], "webhook": [{"url": receiver.url(), "attempts": 1}]}
    )
    receiver.script = [503]

    failed = check_alerts(first, config, WebhookSender(config.webhooks))
    retried = check_alerts(second, config, WebhookSender(config.webhooks))

    assert [o.status for o in failed.outcomes] == [Status.FAILED]
    assert [o.status for o in retried.outcomes] == [Status.SENT] and len(receiver.bodies) == 1


def test_without_webhooks_nothing_is_recorded(two_ledgers) -> None:
    first, _second = two_ledgers
    first.log_usage(request_id="u1", user_id="p1", model="acme/dragon-lore-7b", tokens_input=10)
    config = parse_config({"rule": [{"name": "unpriced", "kind": "unpriced_models"}]})

    report = check_alerts(first, config, WebhookSender(()))

    assert [o.status for o in report.outcomes] == [Status.NO_WEBHOOK]
    records = open_alert_log(first.store)
    assert records.history().alerts == []
    records.close()


def test_a_stale_claim_of_a_dead_sender_is_taken_over_after_the_lease(tmp_path: Path) -> None:
    from services.alerts import Alert, RuleKind, SQLiteAlertLog

    alert = Alert("r", RuleKind.UNPRICED_MODELS, "model:m", DAY, "t", "s")
    dead, alive = SQLiteAlertLog(str(tmp_path / "a.db")), SQLiteAlertLog(str(tmp_path / "a.db"))

    assert dead.claim(alert, NOW)
    assert not alive.claim(alert, NOW + timedelta(minutes=9))
    assert alive.claim(alert, NOW + timedelta(minutes=11))
    dead.release(alert)  # the old claimant's release no longer removes the new claim
    assert alive.status(alert) == "claimed"
    dead.close()
    alive.close()


@pytest.mark.appwrite
def test_two_appwrite_checks_taking_over_one_stale_claim_at_once_one_wins() -> None:
    from services.alerts import Alert, RuleKind
    from services.alerts.sent_appwrite import AppwriteAlertLog, alert_row_id
    from tests.appwrite_support import DATABASE_ID, make_appwrite_store, tables_db_for
    from tests.tablesdb_double import TablesDBDouble

    alert = Alert("r", RuleKind.UNPRICED_MODELS, "model:m", DAY, "t", "s")
    with TablesDBDouble(project_id="test-project", api_key="test-key", server_version="1.9.6") as double:
        make_appwrite_store(double).close()  # provisions the tables, the alerts table among them
        dead, first, second = (AppwriteAlertLog(tables_db_for(double), DATABASE_ID) for _ in range(3))
        assert dead.claim(alert, NOW)
        later = NOW + timedelta(minutes=11)  # past the lease: the dead sender's claim is stale
        stale = second._get(alert_row_id(*alert.key))  # the second check has read the stale claim...
        assert first.claim(alert, later)  # ...when the first takes it over

        reads = iter([stale])  # the second decides on what it read before the first's takeover
        read = second._get
        second._get = lambda row_id: next(reads, None) or read(row_id)  # type: ignore[method-assign]
        assert not second.claim(alert, later)
        second.release(alert)  # and cannot remove the first's claim
        assert (
            first.status(alert) == "claimed"
            and first._get(alert_row_id(*alert.key))["claim_token"] == (first._tokens[alert.key])
        )


def test_cli_check_dry_run_prints_what_would_fire_and_sends_nothing(
    db_path: Path, tmp_path: Path, receiver: Receiver, price_book: PriceBook
) -> None:
    store = SQLiteUsageStore(db_path)
    UsageTrackingService(store, price_book).log_usage(
        request_id="u1", user_id="p1", model="acme/dragon-lore-7b", tokens_input=10
    )
    store.close()
    rules = tmp_path / "alerts.toml"
    rules.write_text(
        f'[[webhook]]\nurl = "{receiver.url()}"\n\n[[rule]]\nname = "unpriced"\nkind = "unpriced_models"\n'
    )
    runner = CliRunner()

    dry = runner.invoke(cli, ["alerts", "check", "--dry-run", "--rules", str(rules)])
    assert dry.exit_code == 0, dry.output
    assert "would_send" in dry.output and "model:acme/dragon-lore-7b" in dry.output and receiver.bodies == []
    assert "s3cr3t" not in dry.output  # the webhook is shown by host

    sent = runner.invoke(cli, ["alerts", "check", "--rules", str(rules)])
    again = runner.invoke(cli, ["alerts", "check", "--rules", str(rules), "--json"])
    history = runner.invoke(cli, ["alerts", "history"])

    assert sent.exit_code == 0 and "\nsent " in sent.output and len(receiver.bodies) == 1
    assert '"status": "already_sent"' in again.output and len(receiver.bodies) == 1
    assert history.exit_code == 0 and "unpriced" in history.output and "model:acme/dragon-lore-7b" in history.output


def test_the_scheduled_function_runs_the_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, receiver: Receiver, price_book: PriceBook
) -> None:
    from tests.test_appwrite_functions import FakeContext, FakeRequest, load_function

    for name in ("APPWRITE_FUNCTION_API_ENDPOINT", "APPWRITE_FUNCTION_PROJECT_ID", "APPWRITE_ENDPOINT",
                 "APPWRITE_PROJECT_ID", "APPWRITE_API_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(tmp_path / "usage.db"))
    store = SQLiteUsageStore(tmp_path / "usage.db")
    UsageTrackingService(store, price_book).log_usage(request_id="u1", user_id="p1", model="acme/x-1", tokens_input=9)
    store.close()
    module = load_function("usage_alerts")
    headers = {"x-appwrite-trigger": "schedule", "x-appwrite-key": "", "x-appwrite-execution-id": "e1"}

    output = module.main(FakeContext(FakeRequest("POST", "/", headers, b"", {})))

    assert output["statusCode"] == 200
    body = __import__("json").loads(output["body"])
    assert [(a["rule"], a["scope"], a["status"]) for a in body["alerts"]] == [
        ("unpriced-models", "model:acme/x-1", "no_webhook")  # the default rules, no webhook configured
    ]


@pytest.mark.appwrite
def test_the_scheduled_check_reads_appwrite_with_the_executions_key(price_book: PriceBook) -> None:
    from services.alerts.runner import ScheduledCheck
    from services.settings import Settings
    from tests.appwrite_support import make_appwrite_store
    from tests.tablesdb_double import TablesDBDouble

    double = TablesDBDouble(project_id="test-project", api_key="test-key", server_version="1.9.6")
    double.start()
    try:
        store = make_appwrite_store(double)
        UsageTrackingService(store, price_book).log_usage(request_id="u", user_id="p", model="acme/y-2", tokens_input=9)
        store.close()
        settings = Settings.model_construct(appwrite_endpoint=double.endpoint, appwrite_project_id=double.project_id)
        check = ScheduledCheck(lambda: settings)

        status, body = check({"x-appwrite-trigger": "schedule", "x-appwrite-key": double.api_key})
    finally:
        double.stop()

    assert status == 200 and [(a["scope"], a["status"]) for a in body["alerts"]] == [("model:acme/y-2", "no_webhook")]


def test_appwrite_json_schedules_the_alerts_function_and_declares_its_table() -> None:
    import json

    config = json.loads((Path(__file__).resolve().parents[1] / "appwrite.json").read_text())
    [function] = [f for f in config["functions"] if f["$id"] == "usage-alerts"]
    [table] = [t for t in config["tables"] if t["$id"] == "alerts"]

    assert function["entrypoint"] == "functions/usage_alerts/main.py" and function["execute"] == []
    assert len(function["schedule"].split()) == 5 and function["timeout"] <= 30
    assert {"rows.read", "rows.write"} <= set(function["scopes"])
    assert {"rule", "scope", "period", "status", "claim_token", "claimed_at"} <= {c["key"] for c in table["columns"]}
