"""One check: evaluate every rule, then send each alert that nobody has sent for its (rule, scope, period).

``check_alerts`` is what ``ai-usage alerts check``, the ``usage-alerts`` Appwrite function and a game server's
own scheduler call: a plain function over a ledger, the rules, a sender and a clock, with no settings read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import structlog

from services.alerts.delivery import Delivery
from services.alerts.evaluate import Alert, Ledger, evaluate
from services.alerts.rules import AlertConfig
from services.alerts.sent import AlertLog, open_alert_log
from services.errors import ServiceError

log = structlog.get_logger("ai_usage.alerts")


class Sender(Protocol):
    webhooks: tuple[object, ...]

    def send(self, alert: Alert, fired_at: datetime) -> Delivery: ...


class Status(StrEnum):
    SENT = "sent"  # delivered to at least one webhook, and recorded
    FAILED = "failed"  # every webhook failed: released, a later check sends it again
    ALREADY_SENT = "already_sent"  # sent earlier (or being sent by another process)
    WOULD_SEND = "would_send"  # dry run: this check would send it
    NO_WEBHOOK = "no_webhook"  # nowhere to send it: not recorded, so it goes out once a webhook is configured


@dataclass(frozen=True)
class Outcome:
    alert: Alert
    status: Status
    delivered: tuple[str, ...] = ()  # webhook hosts
    failed: tuple[str, ...] = ()


@dataclass
class CheckReport:
    checked_at: datetime
    outcomes: list[Outcome] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # rule name -> why it could not be evaluated

    def count(self, status: Status) -> int:
        return sum(outcome.status is status for outcome in self.outcomes)


def check_alerts(
    ledger: Ledger,
    config: AlertConfig,
    sender: Sender,
    *,
    alert_log: AlertLog | None = None,
    clock: Callable[[], datetime] | None = None,
    dry_run: bool = False,
) -> CheckReport:
    """Evaluate ``config.rules`` at ``clock()`` (the ledger's clock by default) and send what fires.

    Each alert is claimed in ``alert_log`` (by default the ledger's own store) before it is sent, so checks
    running at once in several processes send it once. A dry run claims and sends nothing.
    """
    now = (clock or getattr(ledger, "clock", None) or (lambda: datetime.now(UTC)))().astimezone(UTC)
    report = CheckReport(checked_at=now)
    alerts: list[Alert] = []
    for rule in config.rules:
        try:
            alerts.extend(evaluate(ledger, rule, now))
        except ServiceError as exc:  # one rule's read failing must not silence the others
            log.warning("alerts.rule_failed", rule=rule.name, error=exc.message)
            report.errors[rule.name] = exc.message
    records = alert_log if alert_log is not None else open_alert_log(ledger.store)
    try:
        for alert in alerts:
            report.outcomes.append(_handle(alert, records, sender, now, dry_run))
    finally:
        if alert_log is None:
            records.close()
    log.info(
        "alerts.checked",
        rules=len(config.rules),
        firing=len(alerts),
        dry_run=dry_run,
        **{status.value: report.count(status) for status in Status if report.count(status)},
    )
    return report


def _handle(alert: Alert, records: AlertLog, sender: Sender, now: datetime, dry_run: bool) -> Outcome:
    if dry_run:
        seen = records.status(alert)
        return Outcome(alert, Status.ALREADY_SENT if seen else Status.WOULD_SEND)
    if not sender.webhooks:
        seen = records.status(alert)
        if seen is None:
            log.warning("alerts.no_webhook", rule=alert.rule, scope=alert.scope, period=alert.period)
        return Outcome(alert, Status.ALREADY_SENT if seen else Status.NO_WEBHOOK)
    if not records.claim(alert, now):
        return Outcome(alert, Status.ALREADY_SENT)
    try:
        delivery = sender.send(alert, now)
    except BaseException:
        records.release(alert)  # a bug or an interrupt while sending: let a later check try again
        raise
    if delivery.ok:
        records.mark_sent(alert, now, len(delivery.delivered), len(delivery.failed))
        status = Status.SENT
    else:
        records.release(alert)
        status = Status.FAILED
    log.info("alerts.alert", rule=alert.rule, scope=alert.scope, period=alert.period, status=status.value)
    return Outcome(alert, status, tuple(delivery.delivered), tuple(delivery.failed))
