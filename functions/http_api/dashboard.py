"""The admin dashboard: ``GET /dashboard`` (one self-contained HTML page) and ``GET /v1/admin/alerts`` (the sent alerts
the page lists, as JSON).

The page holds no data: it is served to anyone. Its CSS and script are inlined from ``dashboard/`` and pinned by hash
in a Content-Security-Policy that names the one place the page may call, so the browser itself refuses any asset or
call elsewhere. It reads the documented JSON routes in one of two ways:

- served by ``ai-usage serve`` (``dashboard_page``): from this origin, with the admin key the user types in (kept in
  ``sessionStorage``, sent as ``Authorization: Bearer``);
- served by the public ``usage-dashboard`` Appwrite function (``appwrite_page``): the admin signs in with their
  Appwrite account, and each route is an execution of the admin function through Appwrite's API, which runs it only
  for users its execute permission admits (``label:admin``). The page then calls that Appwrite endpoint only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from services.alerts import open_alert_log
from services.alerts.sent import MAX_HISTORY

from .handlers import Call
from .responses import ApiResponse

HTML_TYPE = "text/html; charset=utf-8"
ASSETS = Path(__file__).with_name("dashboard")
_STYLE_SLOT = "/*STYLE*/"
_SCRIPT_SLOT = "/*SCRIPT*/"
_APPWRITE_SLOT = "<!--APPWRITE-->"
SELF = "'self'"
# Appwrite ids (projects, functions): up to 36 of [A-Za-z0-9._-], not starting with a symbol (appwrite-facts 3.4).
_APPWRITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,35}")
# An endpoint's path goes into the CSP and a meta tag as is: plain path characters only.
_ENDPOINT_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)*/?")


@dataclass(frozen=True)
class AppwriteSignIn:
    """Where the page served by ``usage-dashboard`` signs admins in and runs the admin function.

    ``endpoint`` is Appwrite's API root as functions receive it (``APPWRITE_FUNCTION_API_ENDPOINT``,
    ``https://<host>/v1``). Each field is checked here because it is written into the page and its CSP.
    """

    endpoint: str
    project_id: str
    admin_function_id: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.query
            or parts.fragment
            or not _ENDPOINT_PATH.fullmatch(parts.path)
            or not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", parts.netloc)
        ):
            raise ValueError(
                f"endpoint: must be an http(s) URL such as https://cloud.appwrite.io/v1, not {self.endpoint!r}"
            )
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))
        for name in ("project_id", "admin_function_id"):
            value = getattr(self, name)
            if not _APPWRITE_ID.fullmatch(value):
                raise ValueError(
                    f"{name}: must be an Appwrite id (1-36 of A-Z a-z 0-9 . _ -, not starting with a symbol), "
                    f"not {value!r}"
                )

    def meta_tags(self) -> str:
        tags = (("appwrite-endpoint", self.endpoint), ("appwrite-project", self.project_id),
                ("appwrite-function", self.admin_function_id))  # fmt: skip
        return "".join(f'<meta name="{name}" content="{html.escape(value, quote=True)}">' for name, value in tags)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def page(appwrite: AppwriteSignIn | None = None) -> tuple[bytes, str]:
    """The page's bytes and its Content-Security-Policy, built once per process (and configuration).

    Without ``appwrite`` the page calls this origin only (``'self'``); with it, the Appwrite API under its
    endpoint only (every route it uses is below ``/v1/``), and nothing of this origin but the page itself.
    """
    template = (ASSETS / "index.html").read_text(encoding="utf-8")
    style = (ASSETS / "dashboard.css").read_text(encoding="utf-8")
    script = (ASSETS / "dashboard.js").read_text(encoding="utf-8")
    if any(template.count(slot) != 1 for slot in (_STYLE_SLOT, _SCRIPT_SLOT, _APPWRITE_SLOT)):
        raise RuntimeError("dashboard/index.html must hold one style, one script and one Appwrite slot")
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_sha256(script)}",
            f"style-src {_sha256(style)}",
            f"connect-src {appwrite.endpoint + '/' if appwrite else SELF}",
            "img-src data:",  # the empty favicon, so the browser asks for no /favicon.ico
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    # The configuration goes in before the style and script, so no text of theirs is ever taken for a slot.
    body = template.replace(_APPWRITE_SLOT, appwrite.meta_tags() if appwrite else "")
    body = body.replace(_STYLE_SLOT, style).replace(_SCRIPT_SLOT, script)
    return body.encode("utf-8"), policy


def _page_response(appwrite: AppwriteSignIn | None) -> ApiResponse:
    body, policy = page(appwrite)
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return ApiResponse(200, None, headers, body=body, content_type=HTML_TYPE)


def dashboard_page(call: Call) -> ApiResponse:
    """The route's handler (``ai-usage serve``): the page reading this origin's routes with the admin key."""
    return _page_response(None)


def appwrite_page(appwrite: AppwriteSignIn) -> ApiResponse:
    """The same page as ``usage-dashboard`` serves it: signing in with Appwrite, reading through the admin function."""
    return _page_response(appwrite)


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
