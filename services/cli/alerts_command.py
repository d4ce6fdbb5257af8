"""``ai-usage alerts check`` and ``ai-usage alerts history``: the alert rules run now, and what was sent."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from services.alerts import Status, WebhookSender, check_alerts, open_alert_log
from services.alerts.configured import config_from_settings, report_json
from services.cli import tables
from services.cli.common import EXIT_FAILED, echo_json, json_option, load_settings, open_service, translate_errors

# Without --rules the settings' ``alerts_file`` (AI_USAGE_ALERTS_FILE) applies, else the default rules.
rules_option = click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The alert rules (TOML). Default: AI_USAGE_ALERTS_FILE, else the default rules.",
)


@click.group("alerts")
def alerts() -> None:
    """Alert rules on cost, players, provider errors, unpriced models and budgets, sent to webhooks."""


@alerts.command("check")
@rules_option
@click.option("--dry-run", is_flag=True, help="Print what would fire; send and record nothing.")
@json_option
@translate_errors
def check(rules_file: Path | None, dry_run: bool, as_json: bool) -> None:
    """Evaluate every rule now and send each alert not sent before for its rule, scope and period.

    Exit code 1 when a rule could not be read or an alert could not be delivered to any webhook.
    """
    settings = load_settings()
    config = config_from_settings(settings, rules_file)
    with open_service(settings) as service:
        report = check_alerts(service, config, WebhookSender(config.webhooks), dry_run=dry_run)
    if as_json:
        echo_json(report_json(report))
    else:
        rows = [(o.status.value, o.alert.rule, o.alert.scope, o.alert.period, o.alert.title) for o in report.outcomes]
        hosts = ", ".join(w.host for w in config.webhooks) or "none"
        click.echo(f"{len(config.rules)} rule(s), webhooks: {tables.terminal_safe(hosts)}")
        click.echo(tables.table(["status", "rule", "scope", "period", "alert"], rows) if rows else "Nothing fires.")
        for rule, error in report.errors.items():
            click.echo(f"rule {tables.terminal_safe(rule)} could not be read: {tables.terminal_safe(error)}")
    if report.errors or report.count(Status.FAILED):
        sys.exit(EXIT_FAILED)


@alerts.command("history")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor of a previous page.")
@json_option
@translate_errors
def history(limit: int, cursor: str | None, as_json: bool) -> None:
    """The alerts sent (or being sent), most recent first."""
    settings = load_settings()
    with open_service(settings) as service:
        records = open_alert_log(service.store)
        try:
            page = records.history(limit, cursor)
        finally:
            records.close()
    if as_json:
        echo_json(
            {
                "alerts": [
                    {
                        "rule": a.rule,
                        "scope": a.scope,
                        "period": a.period,
                        "status": a.status,
                        "claimed_at": a.claimed_at.isoformat(),
                        "sent_at": a.sent_at and a.sent_at.isoformat(),
                        "title": a.title,
                        "delivered": a.delivered,
                        "failed": a.failed,
                    }
                    for a in page.alerts
                ],
                "next_cursor": page.next_cursor,
            }
        )
        return
    if not page.alerts:
        click.echo("No alert has been sent.")
        return
    rows = [
        ((a.sent_at or a.claimed_at).strftime("%Y-%m-%d %H:%M:%S"), a.status, a.rule, a.scope, a.period, a.title)
        for a in page.alerts
    ]
    click.echo(tables.table(["at (UTC)", "status", "rule", "scope", "period", "alert"], rows))
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


commands: list[click.Command] = [alerts]
