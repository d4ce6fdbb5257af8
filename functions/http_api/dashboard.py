"""The admin dashboard: ``GET /dashboard`` (one self-contained HTML page) and ``GET /v1/admin/alerts`` (the sent alerts
the page lists, as JSON).

The page holds no data: it is served to anyone, and its script reads the documented JSON routes with the admin key
the user types in (kept in ``sessionStorage``, sent as ``Authorization: Bearer``). Its CSS and script are inlined
from ``dashboard/`` and pinned by hash in a Content-Security-Policy that allows requests to this origin only, so
the browser itself refuses any asset or call to another host.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from services.alerts import open_alert_log
from services.alerts.sent import MAX_HISTORY

from .handlers import Call
from .responses import ApiResponse

HTML_TYPE = "text/html; charset=utf-8"
ASSETS = Path(__file__).with_name("dashboard")
_STYLE_SLOT = "/*STYLE*/"
_SCRIPT_SLOT = "/*SCRIPT*/"


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def page() -> tuple[bytes, str]:
    """The page's bytes and its Content-Security-Policy, built once per process from the shipped files."""
    html = (ASSETS / "index.html").read_text(encoding="utf-8")
    style = (ASSETS / "dashboard.css").read_text(encoding="utf-8")
    script = (ASSETS / "dashboard.js").read_text(encoding="utf-8")
    if html.count(_STYLE_SLOT) != 1 or html.count(_SCRIPT_SLOT) != 1:
        raise RuntimeError("dashboard/index.html must hold one style and one script slot")
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_sha256(script)}",
            f"style-src {_sha256(style)}",
            "connect-src 'self'",
            "img-src data:",  # the empty favicon, so the browser asks for no /favicon.ico
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    body = html.replace(_STYLE_SLOT, style).replace(_SCRIPT_SLOT, script)
    return body.encode("utf-8"), policy


def dashboard_page(call: Call) -> ApiResponse:
    body, policy = page()
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return ApiResponse(200, None, headers, body=body, content_type=HTML_TYPE)


# -- recent alerts ------------------------------------------------------------------------------------------
class AlertsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=MAX_HISTORY)
    cursor: str | None = Field(default=None, max_length=32, description="The next_cursor of a previous page")


class SentAlertItem(BaseModel):
    rule: str
    scope: str
    period: str
    status: str = Field(description='"sent", or "claimed": being sent, or its sender died')
    claimed_at: datetime
    sent_at: datetime | None
    title: str
    delivered: int = Field(description="Webhooks that took the alert")
    failed: int


class AlertHistory(BaseModel):
    alerts: list[SentAlertItem] = Field(description="Most recently claimed first")
    next_cursor: str | None


def alert_history(call: Call) -> AlertHistory:
    query: AlertsQuery = call.query
    records = open_alert_log(call.service.store)
    try:
        found = records.history(query.limit, query.cursor)
    finally:
        records.close()
    return AlertHistory(
        alerts=[
            SentAlertItem(
                rule=a.rule, scope=a.scope, period=a.period, status=a.status, claimed_at=a.claimed_at,
                sent_at=a.sent_at, title=a.title, delivered=a.delivered, failed=a.failed,
            )
            for a in found.alerts
        ],
        next_cursor=found.next_cursor,
    )  # fmt: skip
