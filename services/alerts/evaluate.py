"""What fires now: each rule read against the rollups at one instant, as ``Alert`` values.

Every rule reads rollups only, a bounded number of rows whatever the volume: hour rows by provider, the day's
rows by provider × model, the month's day rows of one tenant, and the
top of the day's player index. Only ``player_requests`` reads one row per player active today (the player
index is ordered by cost, not by requests), at most ``max_players`` of them kept.

An alert's (rule, scope, period) is what is sent once: the period is the UTC day for the day rules and for
the rolling 24 hours (so a runaway day is reported once a day, not every minute), the hour for error rates
and the month for budgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from models.analytics import Interval
from services.alerts.rules import Rule, RuleKind
from services.pricing import nano_to_usd
from services.store import UsageStore
from services.store.rollups import RollupKind, dim_parts, hour_bucket, tenant_key


@dataclass(frozen=True)
class Alert:
    rule: str
    kind: RuleKind
    scope: str  # what the alert is about: "global", "player:<tenant>/<user>", "provider:<name>", …
    period: str  # "2026-11-24", "2026-11-24T15" or "2026-11"
    title: str
    summary: str
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.scope, self.period)


class Ledger(Protocol):
    """What the rules read: ``UsageTrackingService`` (or anything with its analytics and store)."""

    store: UsageStore

    def get_time_series(self, start: datetime, end: datetime, interval: Any = ..., **filters: Any) -> Any: ...
    def get_top_players(self, start: Any, end: Any = ..., limit: int = ..., tenant_id: str | None = ...) -> Any: ...
    def get_tenant_monthly_usage(
        self, tenant_id: str | None, year: int | None = ..., month: int | None = ...
    ) -> Any: ...


def usd(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01')):,}" if value >= Decimal("0.01") or value == 0 else f"${value:f}"


def _tenant_label(tenant: str | None) -> str:
    return "every tenant" if tenant is None else ("the default tenant" if tenant == "" else f"tenant {tenant}")


def evaluate(ledger: Ledger, rule: Rule, now: datetime) -> list[Alert]:
    now = now.astimezone(UTC)
    return _EVALUATORS[rule.kind](ledger, rule, now)


def _global_cost(ledger: Ledger, rule: Rule, now: datetime) -> list[Alert]:
    if rule.window == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        series = ledger.get_time_series(start, start + timedelta(days=1), Interval.DAY, tenant_id=rule.tenant)
        span = f"on {now.date().isoformat()} (UTC day so far)"
    else:  # the last 24 hours by hour, the current hour included: what get_realtime_metrics answers
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
        series = ledger.get_time_series(start, start + timedelta(hours=24), Interval.HOUR, tenant_id=rule.tenant)
        span = f"in the last 24 hours (since {start:%Y-%m-%d %H:00} UTC)"
    cost, requests = series.total.cost_usd, series.total.requests
    if cost <= rule.threshold:
        return []
    who = _tenant_label(rule.tenant)
    return [
        Alert(
            rule=rule.name,
            kind=rule.kind,
            scope="global" if rule.tenant is None else f"tenant:{rule.tenant}",
            period=now.date().isoformat(),
            title=f"AI cost {usd(cost)} {span}",
            summary=f"AI usage of {who} cost {usd(cost)} {span}, above the {usd(rule.threshold)} threshold.",
            fields=(
                ("cost", usd(cost)),
                ("threshold", usd(rule.threshold)),
                ("requests", f"{requests:,}"),
                ("window", rule.window),
                ("tenant", who),
            ),
        )
    ]


def _player_cost(ledger: Ledger, rule: Rule, now: datetime) -> list[Alert]:
    today = now.date()
    limit = min(25, rule.max_players)
    while True:  # the index is ordered by cost: read until a player at or below the threshold shows up
        players = ledger.get_top_players(today, today, limit=limit, tenant_id=rule.tenant).players
        if len(players) < limit or players[-1].cost_usd <= rule.threshold or limit >= rule.max_players:
            break
        limit = min(limit * 4, rule.max_players)
    return [
        _player_alert(rule, today.isoformat(), p.tenant_id, p.user_id, p.requests, p.cost_usd)
        for p in players
        if p.cost_usd > rule.threshold
    ]


def _player_requests(ledger: Ledger, rule: Rule, now: datetime) -> list[Alert]:
    day = now.date().isoformat()
    scope = None if rule.tenant is None else tenant_key(rule.tenant)
    rows = ledger.store.sum_rollups(RollupKind.PLAYER_DAY, scope, day, day, ("requests", "cost_nano"))
    over = [(tenant, user, values) for (tenant, _bucket, user), values in rows.items() if values[0] > rule.threshold]
    over.sort(key=lambda row: (-row[2][0], row[0], row[1]))
    return [
        _player_alert(rule, day, tenant or None, user, values[0], nano_to_usd(values[1]))
        for tenant, user, values in over[: rule.max_players]
    ]


def _player_alert(rule: Rule, day: str, tenant: str | None, user: str, requests: int, cost: Decimal) -> Alert:
    counted = "cost" if rule.kind is RuleKind.PLAYER_COST else "requests"
    shown = usd(cost) if counted == "cost" else f"{requests:,} requests"
    limit = usd(rule.threshold) if counted == "cost" else f"{rule.threshold:,} requests"
    who = f"player {user}" + ("" if tenant is None else f" of tenant {tenant}")
    return Alert(
        rule=rule.name,
        kind=rule.kind,
        scope=f"player:{tenant or ''}/{user}",  # user ids hold no '/', so the last one splits the two
        period=day,
        title=f"{who}: {shown} today",
        summary=f"{who} reached {shown} on {day} (UTC), above the {limit} threshold.",
        fields=(
            ("player", user),
            ("tenant", tenant or "(default)"),
            ("requests", f"{requests:,}"),
            ("cost", usd(cost)),
            ("threshold", limit),
        ),
    )


def _provider_errors(ledger: Ledger, rule: Rule, now: datetime) -> list[Alert]:
    # The hour rollups cannot cut at minutes: the current and the previous clock hour (60 to 120 minutes)
    # always cover the last hour, and an alert is sent at most once per provider and clock hour.
    first, last = hour_bucket(now - timedelta(hours=1)), hour_bucket(now)
    scope = None if rule.tenant is None else tenant_key(rule.tenant)
    rows = ledger.store.sum_rollups(RollupKind.TENANT_HOUR, scope, first, last, ("requests", "failed_requests"))
    by_provider: dict[str, list[int]] = {}
    for (_tenant, _bucket, provider), (requests, failed) in rows.items():
        totals = by_provider.setdefault(provider, [0, 0])
        totals[0] += requests
        totals[1] += failed
    alerts = []
    for provider, (requests, failed) in sorted(by_provider.items()):
        rate = Decimal(100 * failed) / requests if requests else Decimal(0)
        if requests < max(rule.min_requests, 1) or rate <= rule.threshold:
            continue
        alerts.append(
            Alert(
                rule=rule.name,
                kind=rule.kind,
                scope=f"provider:{provider}" if rule.tenant is None else f"provider:{provider}@{rule.tenant}",
                period=f"{now:%Y-%m-%dT%H}",
                title=f"{provider}: {rate:.1f}% of requests failed in the last hour",
                summary=f"{failed:,} of {requests:,} {provider} requests failed since {now - timedelta(hours=1):%H:00}"
                f" UTC ({_tenant_label(rule.tenant)}), above the {rule.threshold}% threshold.",
                fields=(
                    ("provider", provider),
                    ("error rate", f"{rate:.1f}%"),
                    ("failed", f"{failed:,}"),
                    ("requests", f"{requests:,}"),
                    ("threshold", f"{rule.threshold}%"),
                ),
            )
        )
    return alerts


def _unpriced_models(ledger: Ledger, rule: Rule, now: datetime) -> list[Alert]:
    day = now.date().isoformat()
    scope = None if rule.tenant is None else tenant_key(rule.tenant)
    counters = ("unpriced_requests", "other_host_requests")
    rows = ledger.store.sum_rollups(RollupKind.TENANT_DAY, scope, day, day, counters)
    by_model: dict[str, list[Any]] = {}
    for (_tenant, _bucket, dim), (unpriced, other_host) in rows.items():
        if unpriced or other_host:
            parts = dim_parts(RollupKind.TENANT_DAY, dim)
            entry = by_model.setdefault(parts["model"], [0, 0, set()])
            entry[0] += unpriced
            entry[1] += other_host
            entry[2].add(parts["provider"])
    alerts = []
    for model, (unpriced, other_host, providers) in sorted(by_model.items()):
        how = []
        if unpriced:
            how.append(f"{unpriced:,} priced by a default rate (not in the price book)")
        if other_host:
            how.append(f"{other_host:,} priced by another host's rate")
        alerts.append(
            Alert(
                rule=rule.name,
                kind=rule.kind,
                scope=f"model:{model}",
                period=day,
                title=f"Model {model} has no exact price",
                summary=f"Requests to {model} on {day} (UTC): {'; '.join(how)}. Add its price to the price book.",
                fields=(
                    ("model", model),
                    ("providers", ", ".join(sorted(providers))),
                    ("default-priced", f"{unpriced:,}"),
                    ("other host's price", f"{other_host:,}"),
                ),
            )
        )
    return alerts


def _tenant_budget(ledger: Ledger, rule: Rule, now: datetime) -> list[Alert]:
    tenant = rule.tenant or None  # the summaries name the default tenant None
    usage = ledger.get_tenant_monthly_usage(tenant, now.year, now.month)
    cost: Decimal = usage.estimated_cost_exact
    month = f"{now.year:04d}-{now.month:02d}"
    alerts = []
    for share in rule.shares:
        if cost < share * rule.monthly_budget_usd:
            continue
        percent = f"{(share * 100).normalize():f}%"
        alerts.append(
            Alert(
                rule=rule.name,
                kind=rule.kind,
                scope=f"tenant:{rule.tenant}@{percent}",
                period=month,
                title=f"{_tenant_label(rule.tenant)} reached {percent} of its monthly AI budget",
                summary=f"{_tenant_label(rule.tenant)} has cost {usd(cost)} in {month} (UTC), "
                f"{percent} or more of its {usd(rule.monthly_budget_usd)} budget.",
                fields=(
                    ("tenant", rule.tenant or "(default)"),
                    ("month to date", usd(cost)),
                    ("budget", usd(rule.monthly_budget_usd)),
                    ("share", percent),
                ),
            )
        )
    return alerts


_EVALUATORS = {
    RuleKind.GLOBAL_COST: _global_cost,
    RuleKind.PLAYER_COST: _player_cost,
    RuleKind.PLAYER_REQUESTS: _player_requests,
    RuleKind.PROVIDER_ERRORS: _provider_errors,
    RuleKind.UNPRICED_MODELS: _unpriced_models,
    RuleKind.TENANT_BUDGET: _tenant_budget,
}
