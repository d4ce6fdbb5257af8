"""Tenants and analytics on every store: each answer equals the same sums over the raw events.

A seeded ledger of two tenants that share user ids and request ids, several providers, models, task types and
features, failures and latencies; every analytics call is checked against a computation over the events
themselves (exact money), and percentiles against the exact nearest-rank percentile within the stated error.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from models.ai_usage import AIUsageLog
from models.latency import LATENCY_RELATIVE_ERROR, OVERFLOW_MS
from services.pricing import PriceBook, nano_to_usd
from services.usage_tracking_service import UsageTrackingService
from tests.conftest import BACKENDS, ledger_on

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
TODAY = NOW.date()
MODELS = [("gpt-4o", "openai"), ("claude-sonnet-4-5", "anthropic"), ("gemini-2.5-flash", "google")]
TASKS = ["npc_dialogue", "combat_narration", "general"]
TENANTS = [None, "studio-a", "studio-b"]


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, price_book: PriceBook
) -> Iterator[tuple[UsageTrackingService, list[AIUsageLog]]]:
    # Seeded once per store (the answers are reads): 400 events on the local TablesDB server take seconds.
    backend = ledger_on(request.param, tmp_path_factory.mktemp("analytics"), price_book, lambda: NOW)
    ledger = next(backend)
    rng = random.Random(7)
    events = []
    for i in range(400):
        model, provider = rng.choice(MODELS)
        events.append(
            {
                # Both tenants use the same request ids and user ids: they must never meet.
                "request_id": f"r{i // 3}",
                "tenant_id": TENANTS[i % 3],
                "user_id": f"p{rng.randrange(12)}",
                "model": model,
                "provider": provider,
                "task_type": rng.choice(TASKS),
                "feature": rng.choice([None, "quest_board", "npc_bark"]),
                "tokens_input": rng.randrange(100, 5000),
                "tokens_output": rng.randrange(10, 800),
                "request_duration_ms": rng.choice([None, rng.randrange(0, 9000), rng.randrange(0, 40)]),
                "success": rng.random() > 0.15,
                "timestamp": (NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 5))).isoformat(),
            }
        )
    results = ledger.log_usage_batch(events[:250])
    results += [ledger.log_event(event) for event in events[250:]]
    stored = [r.log for r in results if r.status.value == "stored"]
    assert len(stored) == 400
    yield ledger, stored
    next(backend, None)


def _in(log: AIUsageLog, first: date, last: date, tenant: str | None = "*") -> bool:
    return first <= log.timestamp.date() <= last and (tenant == "*" or log.tenant_id == tenant)


def _exact_percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def test_two_tenants_with_the_same_ids_never_see_each_others_usage(seeded) -> None:
    ledger, logs = seeded
    for tenant in TENANTS:
        for user in {log.user_id for log in logs}:
            mine = [log for log in logs if log.tenant_id == tenant and log.user_id == user and log.day == TODAY]
            day = ledger.get_daily_usage(user, TODAY, tenant_id=tenant)
            assert day.total_requests == len(mine)
            assert day.estimated_cost_exact == nano_to_usd(sum(log.cost_nano for log in mine))
            assert ledger.get_user_request_count_today(user, tenant) == len(mine)


def test_tenant_day_month_and_summary_equal_the_events(seeded) -> None:
    ledger, logs = seeded
    for tenant in TENANTS:
        today = [log for log in logs if log.tenant_id == tenant and log.day == TODAY]
        daily = ledger.get_tenant_daily_usage(tenant, TODAY)
        assert daily.total_requests == len(today)
        assert daily.total_tokens == sum(log.tokens_total for log in today)
        by_provider: dict[str, int] = defaultdict(int)
        for log in today:
            by_provider[log.provider] += log.cost_nano
        assert daily.cost_by_provider == {p: nano_to_usd(n) for p, n in by_provider.items()}
        month = [log for log in logs if log.tenant_id == tenant and log.timestamp.month == 11]
        monthly = ledger.get_tenant_monthly_usage(tenant, 2026, 11)
        assert monthly.estimated_cost_exact == nano_to_usd(sum(log.cost_nano for log in month))
        summary = ledger.get_tenant_usage_summary(tenant, days=3)
        window = [log for log in logs if log.tenant_id == tenant and _in(log, TODAY - timedelta(days=2), TODAY)]
        assert summary.total_requests == len(window)
        for feature in ("", "quest_board", "npc_bark"):
            of_feature = [log for log in window if (log.feature or "") == feature]
            got = summary.by_feature.get(feature)
            assert (got.requests if got else 0) == len(of_feature)
            assert (got.estimated_cost_exact if got else 0) == nano_to_usd(sum(log.cost_nano for log in of_feature))
        assert sum(b.requests for b in summary.by_task.values()) == len(window)


def test_daily_and_hourly_series_add_up_to_the_events_with_filters(seeded) -> None:
    ledger, logs = seeded
    start = NOW - timedelta(days=4)
    series = ledger.get_time_series(start, NOW + timedelta(hours=1), "hour", provider="openai", tenant_id="studio-a")
    assert len(series.points) == 4 * 24 + 2
    for point in series.points:
        mine = [
            log
            for log in logs
            if log.provider == "openai" and log.tenant_id == "studio-a"
            and point.start <= log.timestamp < point.start + timedelta(hours=1)
        ]  # fmt: skip
        assert (point.requests, point.cost_usd) == (len(mine), nano_to_usd(sum(log.cost_nano for log in mine)))
        assert point.failed_requests == sum(not log.success for log in mine)
        timed = [log.request_duration_ms for log in mine if log.request_duration_ms is not None]
        assert point.mean_latency_ms == (sum(timed) / len(timed) if timed else None)
    daily = ledger.get_time_series(TODAY - timedelta(days=5), TODAY + timedelta(days=1), "day", model="gpt-4o",
                                   task_type="npc_dialogue")  # fmt: skip
    for point in daily.points:
        mine = [
            log for log in logs
            if log.model == "gpt-4o" and log.task_type == "npc_dialogue" and log.day == point.start.date()
        ]  # fmt: skip
        assert point.cost_usd == nano_to_usd(sum(log.cost_nano for log in mine))
    monthly = ledger.get_time_series(date(2026, 10, 1), date(2026, 12, 1), "month")
    assert [p.start.month for p in monthly.points] == [10, 11]
    assert monthly.total.requests == len(logs) and monthly.points[1].requests == len(logs)
    # A bucket holding start or end counts whole, the month too: a range ending on the 21st holds all November.
    assert min(log.day for log in logs) < date(2026, 11, 21) < max(log.day for log in logs)
    clipped = ledger.get_time_series(datetime(2026, 10, 15, tzinfo=UTC), date(2026, 11, 21), "month")
    assert [p.requests for p in clipped.points] == [0, len(logs)]


def test_breakdowns_top_operations_and_error_rates_equal_the_events(seeded) -> None:
    ledger, logs = seeded
    first, last = TODAY - timedelta(days=2), TODAY
    window = [log for log in logs if _in(log, first, last)]
    reads = {
        "provider": ledger.get_cost_by_provider,
        "model": ledger.get_cost_by_model,
        "task_type": ledger.get_cost_by_task_type,
        "feature": ledger.get_cost_by_feature,
    }
    for (part, read), tenant in itertools.product(reads.items(), (None, "studio-a")):
        got = read(first, last, tenant_id=tenant)
        expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for log in window:
            if tenant is None or log.tenant_id == tenant:
                value = getattr(log, part)
                totals = expected[getattr(value, "value", value) or ""]  # a task type's value; no feature is ""
                totals[0] += 1
                totals[1] += not log.success
                totals[2] += log.cost_nano
        assert {k: (v.requests, v.failed_requests, v.cost_usd) for k, v in got.items.items()} == {
            k: (requests, failed, nano_to_usd(nano)) for k, (requests, failed, nano) in expected.items()
        }, part
        costs = [v.cost_usd for v in got.items.values()]
        assert costs == sorted(costs, reverse=True)
    operations = ledger.get_top_operations(first, last, limit=3).operations
    by_op: dict[tuple[str, str], int] = defaultdict(int)
    for log in window:
        by_op[(log.task_type.value, log.provider)] += log.cost_nano
    best = sorted(by_op.items(), key=lambda item: -item[1])[:3]
    assert [((o.task_type, o.provider), o.cost_usd) for o in operations] == [(k, nano_to_usd(v)) for k, v in best]
    rates = ledger.get_error_rates(first, last)
    for provider, rate in rates.items():
        mine = [log for log in window if log.provider == provider]
        assert (rate.requests, rate.failed_requests) == (len(mine), sum(not log.success for log in mine))


def test_latency_percentiles_are_within_the_stated_error_of_the_exact_ones(seeded) -> None:
    ledger, logs = seeded
    first, last = TODAY - timedelta(days=4), TODAY
    report = ledger.get_latency_report(first, last)
    assert report.relative_error == pytest.approx(LATENCY_RELATIVE_ERROR)
    for name, stats in [*report.by_provider.items(), *report.by_model.items(), ("*", report.total)]:
        mine = [log for log in logs if _in(log, first, last) and name in (log.provider, log.model, "*")]
        durations = [log.request_duration_ms for log in mine if log.request_duration_ms is not None]
        assert stats.requests == len(durations)
        assert stats.success_rate == pytest.approx(100 * sum(log.success for log in mine) / len(mine))
        for q, got in ((50, stats.p50), (95, stats.p95), (99, stats.p99)):
            exact = _exact_percentile(durations, q)
            assert exact < OVERFLOW_MS
            assert abs(got - exact) <= LATENCY_RELATIVE_ERROR * exact + 1e-9, (name, q, got, exact)


def test_top_players_of_a_day_and_of_a_range_per_tenant_and_overall(seeded) -> None:
    ledger, logs = seeded
    for tenant, first in (("*", TODAY), ("studio-a", TODAY - timedelta(days=3))):
        totals: dict[tuple[str | None, str], int] = defaultdict(int)
        for log in logs:
            if _in(log, first, TODAY, tenant):
                totals[(log.tenant_id, log.user_id)] += log.cost_nano
        expected = sorted(totals.items(), key=lambda item: (-item[1], item[0][0] or "", item[0][1]))[:5]
        top = ledger.get_top_players(first, TODAY, limit=5, tenant_id=None if tenant == "*" else tenant).players
        assert [((p.tenant_id, p.user_id), p.cost_usd) for p in top] == [(k, nano_to_usd(v)) for k, v in expected]


def test_realtime_is_the_last_24_hours_by_hour(seeded) -> None:
    ledger, logs = seeded
    metrics = ledger.get_realtime_metrics()
    assert len(metrics.hours) == 24 and metrics.hours[-1].start == NOW.replace(minute=0)
    recent = [log for log in logs if log.timestamp >= metrics.start]
    assert metrics.total.requests == len(recent)
    assert metrics.total.cost_usd == nano_to_usd(sum(log.cost_nano for log in recent))
    assert sum(e.failed_requests for e in metrics.errors_by_provider.values()) == sum(not x.success for x in recent)


def test_the_global_day_reads_every_tenant(seeded) -> None:
    ledger, logs = seeded
    today = [log for log in logs if log.day == TODAY]
    usage = ledger.get_global_daily_usage(TODAY)
    assert usage.total_requests == len(today)
    assert Decimal(str(ledger.get_total_daily_cost(TODAY))) == pytest.approx(
        nano_to_usd(sum(log.cost_nano for log in today))
    )
    assert sum(b.requests for b in usage.cost_by_model.values()) == len(today)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.get_time_series(NOW, NOW - timedelta(hours=1), "hour"), "end"),
        (lambda s: s.get_time_series(NOW - timedelta(days=1), NOW, "hour", model="gpt-4o"), "interval"),
        (lambda s: s.get_time_series(NOW - timedelta(days=1), NOW, "week"), "interval"),
        (lambda s: s.get_time_series(NOW - timedelta(days=1), NOW, "day", task_type="dance"), "task_type"),
        (lambda s: s.get_cost_by_provider(TODAY, TODAY - timedelta(days=1)), "end"),
        (lambda s: s.get_top_players(TODAY, limit=0), "limit"),
        (lambda s: s.get_tenant_usage_summary("t", days=0), "days"),
        (lambda s: s.get_time_series(datetime(2026, 11, 1), NOW, "day"), "start"),
        # Outside 1970..9998: named, never stepped past the calendar's ends (OverflowError before).
        (lambda s: s.get_time_series(datetime(9999, 12, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)), "start"),
        (lambda s: s.get_cost_by_model(date(1, 1, 1), date(1, 1, 3)), "start"),
        (lambda s: s.get_daily_usage("p1", date(1969, 12, 31)), "date"),
    ],
)
def test_bad_analytics_arguments_name_the_field(seeded, call, field) -> None:
    from services.errors import ValidationFailed

    ledger, _ = seeded
    with pytest.raises(ValidationFailed) as raised:
        call(ledger)
    assert [error.field for error in raised.value.fields] == [field]


def test_the_longest_keys_are_stored_and_read_back_exactly(store, price_book: PriceBook) -> None:
    # A tenant's player past the 128 characters of Appwrite's scope column, a model id of 200 characters that JSON
    # escapes, and a day's provider × model (× task type) past the 200 of its dim column.
    ledger = UsageTrackingService(store, price_book, clock=lambda: NOW)
    tenant, user, model = "t" * 128, "玩" * 128, ('"\\' + "模" * 198)
    feature = "f" * 100
    event = {"tenant_id": tenant, "user_id": user, "model": model, "provider": "p" * 64, "feature": feature,
             "tokens_input": 1000, "request_duration_ms": 5, "session_id": "s" * 128}  # fmt: skip
    stored = ledger.log_usage(**event).log
    assert ledger.get_daily_usage(user, TODAY, tenant).estimated_cost_exact == stored.estimated_cost_exact
    assert ledger.get_usage_by_model(user, model, tenant).total_requests == 1
    assert ledger.get_session_usage("s" * 128, tenant).total_requests == 1
    summary = ledger.get_tenant_usage_summary(tenant, days=1)
    assert list(summary.by_feature) == [feature] and list(summary.by_provider) == ["p" * 64]
    assert ledger.get_cost_by_model(TODAY, TODAY, tenant).items[model].requests == 1
    assert ledger.get_top_players(TODAY, limit=1, tenant_id=tenant).players[0].user_id == user


def test_only_the_kinds_percentiles_are_read_from_keep_a_histogram(store, price_book: PriceBook) -> None:
    from services.store.rollups import HISTOGRAM_KINDS, RollupKind, hour_bucket

    ledger = UsageTrackingService(store, price_book, clock=lambda: NOW)
    ledger.log_usage(user_id="p", model="gpt-4o", tokens_input=10, request_duration_ms=300)
    # Percentiles read the hour by provider and the day by provider and model, never the finer day kinds.
    assert {RollupKind.TENANT_HOUR, RollupKind.TENANT_DAY} == HISTOGRAM_KINDS
    player = store.get_rollups(RollupKind.USER_DAY, "p", TODAY.isoformat())["general"]
    hour = store.get_rollups(RollupKind.TENANT_HOUR, "", hour_bucket(NOW))["openai"]
    (day,) = store.get_rollups(RollupKind.TENANT_DAY, "", TODAY.isoformat()).values()
    (by_task,) = store.get_rollups(RollupKind.TENANT_DAY_TASK, "", TODAY.isoformat()).values()
    # Every row keeps the mean's counters; only the histogram kinds count the duration into its bucket.
    assert (player.timed_requests, player.latency_ms_total, sum(player.latency_counts)) == (1, 300, 0)
    assert (by_task.timed_requests, by_task.latency_ms_total, sum(by_task.latency_counts)) == (1, 300, 0)
    assert (hour.timed_requests, hour.latency_ms_total, sum(hour.latency_counts)) == (1, 300, 1)
    assert (day.timed_requests, day.latency_ms_total, sum(day.latency_counts)) == (1, 300, 1)


def test_a_players_month_and_all_time_credits_add_up_their_events_across_month_ends(store, price_book) -> None:
    # The month sums the player's day rows of that month in the store; the credits, the player's rows by model.
    now = datetime(2026, 12, 1, 0, 2, tzinfo=UTC)
    ledger = UsageTrackingService(store, price_book, clock=lambda: now)
    stamps = ["2026-10-31T23:59:59+00:00", "2026-11-01T00:00:00+00:00", "2026-11-30T23:59:59+00:00",
              "2026-12-01T00:00:00+00:00"]  # fmt: skip
    models = ["gpt-4o", "gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"]
    logs = []
    for i, (stamp, model) in enumerate(zip(stamps, models, strict=True)):
        for tenant in (None, "t"):
            event = {"request_id": f"m{i}", "user_id": "p", "tenant_id": tenant, "model": model, "timestamp": stamp}
            logs.append(ledger.log_usage(**event, tokens_input=400_000 * (i + 1)).log)  # whole credits
    for tenant in (None, "t"):
        mine = [log for log in logs if log.tenant_id == tenant]
        for month in (10, 11, 12):
            of_month = [log for log in mine if log.timestamp.month == month]
            got = ledger.get_monthly_cost("p", 2026, month, tenant_id=tenant)
            assert got.total_requests == len(of_month)
            assert got.estimated_cost_exact == nano_to_usd(sum(log.cost_nano for log in of_month))
        assert ledger.get_user_total_credits("p", tenant) == sum(log.platform_credits for log in mine) > 0
    assert ledger.get_monthly_cost("nobody", 2026, 11).total_requests == 0
