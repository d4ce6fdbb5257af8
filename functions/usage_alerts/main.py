"""Appwrite function ``usage-alerts``: the alert check, run by its cron ``schedule`` (every 5 minutes).

``execute`` is empty: no end user can run it, only the schedule and API keys. Each execution opens the store
with the execution's own key (``x-appwrite-key``, scopes ``rows.read`` and ``rows.write``: the check records
what it sent in the ``alerts`` table), runs ``check_alerts`` and answers what fired. The rules come from the
alert settings (the default rules without a rules file); webhook URLs are secrets, set as a function variable
in the console, never in ``appwrite.json``.
"""

from typing import Any

from functions.appwrite_adapter import settings_from_appwrite_environment
from services.alerts.runner import ScheduledCheck

check = ScheduledCheck(settings_from_appwrite_environment)


def main(context: Any) -> Any:
    """The open-runtimes entry point."""
    status, body = check(context.req.headers)
    return context.res.json(body, statusCode=status)
