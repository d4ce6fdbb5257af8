"""Webhook bodies (Slack, Discord, generic JSON) and their delivery with timeouts and retries.

Delivery uses the standard library (``urllib``): the runtime has no HTTP client of its own to offer
(``requests`` is a test dependency). Redirects are not followed (a webhook that answers 3xx is misconfigured,
and following it would send the alert, and what it says about players, somewhere unnamed). Only the host of a
webhook is ever logged: its path is the secret.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from services.alerts.evaluate import Alert
from services.alerts.rules import Webhook, WebhookFormat

log = structlog.get_logger("ai_usage.alerts")

MAX_RETRY_AFTER_SECONDS = 30.0
USER_AGENT = "ai-usage-tracker-alerts/1"
_COLOURS = {"global_cost": 0xD9534F, "tenant_budget": 0xF0AD4E, "provider_errors": 0xD9534F}


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links and mentions (<!channel>): a player id must never become one.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(alert: Alert) -> dict[str, Any]:
    fields = [{"type": "mrkdwn", "text": f"*{_slack_escape(k)}*\n{_slack_escape(v)}"[:2000]} for k, v in alert.fields]
    return {
        "text": _slack_escape(f"{alert.title}: {alert.summary}")[:3000],  # the notification and fallback text
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(alert.summary)[:3000]}},
            *({"type": "section", "fields": fields[i : i + 10]} for i in range(0, len(fields), 10)),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(_footer(alert))}]},
        ],
    }


def discord_body(alert: Alert, fired_at: datetime) -> dict[str, Any]:
    return {
        "content": alert.title[:2000],
        "allowed_mentions": {"parse": []},  # "@everyone" in a model or player id pings nobody
        "embeds": [
            {
                "title": alert.title[:256],
                "description": alert.summary[:4096],
                "color": _COLOURS.get(alert.kind.value, 0x5BC0DE),
                "fields": [{"name": k[:256], "value": (v or "-")[:1024], "inline": True} for k, v in alert.fields][:25],
                "footer": {"text": _footer(alert)[:2048]},
                "timestamp": fired_at.astimezone(UTC).isoformat(),
            }
        ],
    }


def generic_body(alert: Alert, fired_at: datetime) -> dict[str, Any]:
    return {
        "alert": {
            "rule": alert.rule,
            "kind": alert.kind.value,
            "scope": alert.scope,
            "period": alert.period,
            "title": alert.title,
            "summary": alert.summary,
            "fields": dict(alert.fields),
            "fired_at": fired_at.astimezone(UTC).isoformat(),
        }
    }


def body_for(webhook: Webhook, alert: Alert, fired_at: datetime) -> dict[str, Any]:
    if webhook.format is WebhookFormat.SLACK:
        return slack_body(alert)
    if webhook.format is WebhookFormat.DISCORD:
        return discord_body(alert, fired_at)
    return generic_body(alert, fired_at)


def _footer(alert: Alert) -> str:
    return f"rule {alert.rule} · {alert.scope} · {alert.period}"


@dataclass
class Delivery:
    delivered: list[str] = field(default_factory=list)  # webhook hosts
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.delivered)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


class _Permanent(Exception):
    pass


class WebhookSender:
    """Posts an alert to every webhook; each webhook retried on network errors, 5xx and 429 with backoff."""

    def __init__(
        self,
        webhooks: Sequence[Webhook],
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.webhooks = tuple(webhooks)
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, alert: Alert, fired_at: datetime) -> Delivery:
        result = Delivery()
        for webhook in self.webhooks:
            ok = self._post(webhook, body_for(webhook, alert, fired_at), alert)
            (result.delivered if ok else result.failed).append(webhook.host)
        return result

    def _post(self, webhook: Webhook, body: dict[str, Any], alert: Alert) -> bool:
        data = json.dumps(body, ensure_ascii=False).encode()
        line = log.bind(webhook=webhook.host, rule=alert.rule, scope=alert.scope, period=alert.period)
        for attempt in range(1, webhook.attempts + 1):
            try:
                status = self._once(webhook, data)
                line.info("alerts.delivered", status=status, attempt=attempt)
                return True
            except _Permanent as exc:
                line.error("alerts.delivery_refused", reason=str(exc), attempt=attempt)
                return False
            except _Retry as exc:
                if attempt == webhook.attempts:
                    line.error("alerts.delivery_failed", reason=exc.reason, attempts=attempt)
                    return False
                pause = exc.retry_after
                if pause is None:  # full jitter: processes retrying together do not hit the receiver together
                    pause = webhook.backoff_seconds * (2 ** (attempt - 1)) * (0.5 + self.rng.random() / 2)
                line.warning("alerts.delivery_retry", reason=exc.reason, attempt=attempt, pause_seconds=round(pause, 3))
                self.sleep(pause)
        return False

    def _once(self, webhook: Webhook, data: bytes) -> int:
        request = urllib.request.Request(
            webhook.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        try:
            with self._opener.open(request, timeout=webhook.timeout_seconds) as response:
                response.read(65536)
                return int(response.status)
        except urllib.error.HTTPError as exc:
            # Never str(exc) or exc.url: only the status, which holds no secret.
            code = exc.code
            exc.close()
            if code == 429 or code >= 500:
                raise _Retry(f"HTTP {code}", _retry_after(exc.headers.get("Retry-After"))) from None
            raise _Permanent(f"HTTP {code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retry(f"network error ({type(reason).__name__})", None) from None


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS) if value else None
    except ValueError:
        return None
