"""Alerts on the ledger: rules read from rollups, sent once per (rule, scope, period) to webhooks.

A game server's scheduler can run the same check as ``ai-usage alerts check``::

    from services.alerts import WebhookSender, check_alerts, load_config

    config = load_config("alerts.toml")          # None: the default rules
    report = check_alerts(tracker, config, WebhookSender(config.webhooks))
"""

from services.alerts.check import CheckReport, Outcome, Status, check_alerts
from services.alerts.delivery import Delivery, WebhookSender
from services.alerts.evaluate import Alert, evaluate
from services.alerts.rules import (
    DEFAULT_RULES,
    AlertConfig,
    Rule,
    RuleKind,
    Webhook,
    WebhookFormat,
    load_config,
    parse_config,
)
from services.alerts.sent import AlertLog, HistoryPage, SentAlert, SQLiteAlertLog, open_alert_log

__all__ = [
    "DEFAULT_RULES",
    "Alert",
    "AlertConfig",
    "AlertLog",
    "CheckReport",
    "Delivery",
    "HistoryPage",
    "Outcome",
    "Rule",
    "RuleKind",
    "SQLiteAlertLog",
    "SentAlert",
    "Status",
    "Webhook",
    "WebhookFormat",
    "WebhookSender",
    "check_alerts",
    "evaluate",
    "load_config",
    "open_alert_log",
    "parse_config",
]
