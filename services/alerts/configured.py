"""The alert set-up a deployment configures: the rules file and secret webhook URLs from the settings.

Until ``Settings`` has the alert settings (``alerts_file``, ``alert_webhook_urls``), they are read if present
and otherwise default to none: the default rules and no webhooks. An explicit ``rules_file`` always wins.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from models.ai_usage import FieldError
from services.alerts.check import CheckReport
from services.alerts.rules import AlertConfig, load_config
from services.errors import ValidationFailed

# The variable as the deployment sets it: errors name it, never its value (the URLs are secrets).
WEBHOOK_URLS_VARIABLE = "AI_USAGE_ALERT_WEBHOOK_URLS"


def webhook_urls(value: str | None) -> list[str]:
    """A JSON list of URLs, or URLs separated by commas, spaces or newlines (Appwrite variables are strings)."""
    text = (value or "").strip()
    if text.startswith("["):
        try:
            return [str(url) for url in json.loads(text)]
        except (ValueError, RecursionError):  # not JSON, or nested past what json.loads recurses into
            raise ValidationFailed(
                [
                    FieldError(
                        field=WEBHOOK_URLS_VARIABLE,
                        message="starts with '[' but is not a JSON list of URLs (the value is not shown: a secret)",
                    )
                ]
            ) from None
    return [part for part in re.split(r"[\s,]+", text) if part]


def config_from_settings(settings: Any, rules_file: Path | str | None = None) -> AlertConfig:
    path = rules_file if rules_file is not None else settings.alerts_file
    secret = settings.alert_webhook_urls
    urls = webhook_urls(secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret)
    return load_config(path, urls)


def report_json(report: CheckReport) -> dict[str, Any]:
    """The check's outcome as JSON: what fired and where it went (webhook hosts only, never their URLs)."""
    return {
        "checked_at": report.checked_at.isoformat(),
        "alerts": [
            {
                "rule": o.alert.rule,
                "kind": o.alert.kind.value,
                "scope": o.alert.scope,
                "period": o.alert.period,
                "status": o.status.value,
                "title": o.alert.title,
                "summary": o.alert.summary,
                "delivered_to": list(o.delivered),
                "failed_at": list(o.failed),
            }
            for o in report.outcomes
        ],
        "errors": report.errors,
    }
