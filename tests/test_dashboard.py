"""``GET /dashboard`` and ``GET /v1/admin/alerts`` without a browser: the page is self-contained (no URL at all, its
inline CSS and script pinned by the CSP it is served with), reads only documented admin routes, is served by
``ai-usage serve`` and by the public ``usage-dashboard`` Appwrite function (set up for its Appwrite project, calling
that endpoint only); the alerts route pages the sent alerts behind a key."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from functions.http_api import Role
from functions.http_api.dashboard import ASSETS, AppwriteSignIn
from functions.http_api.openapi import openapi_document
from functions.http_api.routes import match, routes_for
from functions.usage_dashboard.page_function import DashboardFunction
from services.alerts import Alert, RuleKind, SQLiteAlertLog
from tests.http_harness import ADMIN, NOW, SERVER, LiveServer, live_server, make_app

SCRIPT = (ASSETS / "dashboard.js").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = Path(tmp_path_factory.mktemp("dashboard")) / "usage.db"
    alerts = SQLiteAlertLog(str(path))
    for hours in range(3):  # three alerts, an hour apart, the newest sent at NOW
        alert = Alert(f"rule-{hours}", RuleKind.PLAYER_COST, "player:studio-a/p1", "2026-11-23", f"alert {hours}", "")
        assert alerts.claim(alert, NOW - timedelta(hours=hours))
        alerts.mark_sent(alert, NOW - timedelta(hours=hours), delivered=2, failed=1)
    alerts.close()
    app = make_app(path)
    with live_server(app, "wsgi") as server:
        yield server
    app.close()


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_is_served_to_anyone_and_fetches_nothing_from_anywhere(api: LiveServer) -> None:
    page = api.get("/dashboard")

    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.text
    assert "://" not in html  # no URL at all: nothing to fetch, from this host or another
    assert re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html) == ["data:,"]  # the empty favicon only
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    # The browser runs the inline script and style only because their hashes are the policy's.
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    [script] = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert (policy["style-src"], policy["script-src"]) == (_sha256(style), _sha256(script))
    assert script == SCRIPT
    assert 'type="password"' in html and "sessionStorage" in script  # the key is typed in, never served


def test_a_wrong_key_is_refused_even_for_the_page(api: LiveServer) -> None:
    assert api.get("/dashboard", headers=ADMIN).status_code == 200
    assert api.get("/dashboard", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_every_route_the_script_reads_is_a_documented_admin_get_route() -> None:
    paths = re.findall(r"""["'`](v1/[^"'`]*)["'`]""", SCRIPT)  # every path literal, called directly or not
    # A template's ${...} and a path built on by concatenation ("v1/prices/" + model) stand for one value.
    paths = [re.sub(r"\$\{[^}]*\}", "x", path) + ("x" if path.endswith("/") else "") for path in paths]
    assert len(paths) >= 10
    documented = openapi_document("admin")["paths"]
    for path in paths:
        route, _ = match("GET", "/" + path, "admin")
        assert route.openapi_path in documented, path
        assert Role.ADMIN in route.roles, path


def test_the_page_is_served_by_ai_usage_serve_and_the_dashboard_function_only() -> None:
    assert [route.pattern for route in routes_for("dashboard")] == ["/dashboard"]
    assert any(route.pattern == "/dashboard" for route in routes_for(None))
    for group in ("ingest", "reports", "admin"):  # none can be reached through a domain: they admit no guests
        assert not any(route.pattern == "/dashboard" for route in routes_for(group)), group
    document = openapi_document()["paths"]["/dashboard"]["get"]
    assert list(document["responses"]["200"]["content"]) == ["text/html; charset=utf-8"]


class _Response:
    """``context.res``: what the runtime sends back."""

    def binary(self, data: bytes, statusCode: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return {"body": data, "status": statusCode, "headers": headers or {}}

    def json(self, obj: Any, statusCode: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return {"json": obj, "status": statusCode, "headers": {**(headers or {}), "content-type": "application/json"}}


def _execute(function: Any, method: str, path: str) -> dict[str, Any]:
    # A domain request: Appwrite leaves the user id empty (appwrite-facts 4.2).
    headers = {"x-appwrite-trigger": "http", "x-appwrite-user-id": "", "x-appwrite-execution-id": "exec-1"}
    request = SimpleNamespace(method=method, path=path, query={}, headers=headers, body_binary=b"")
    return function(SimpleNamespace(req=request, res=_Response()))


@pytest.fixture
def appwrite_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "APPWRITE_ENDPOINT",
        "APPWRITE_PROJECT_ID",
        "APPWRITE_API_KEY",
        "AI_USAGE_DASHBOARD_ADMIN_FUNCTION_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APPWRITE_FUNCTION_API_ENDPOINT", "https://fra.cloud.appwrite.io/v1")
    monkeypatch.setenv("APPWRITE_FUNCTION_PROJECT_ID", "game-prod")


def test_the_dashboard_function_serves_the_page_set_up_for_its_appwrite_project(appwrite_env: None) -> None:
    sent = _execute(DashboardFunction(), "GET", "/dashboard")

    assert sent["status"] == 200 and sent["headers"]["content-type"] == "text/html; charset=utf-8"
    html = sent["body"].decode()
    assert '<meta name="appwrite-endpoint" content="https://fra.cloud.appwrite.io/v1">' in html
    assert '<meta name="appwrite-project" content="game-prod">' in html
    assert '<meta name="appwrite-function" content="usage-admin">' in html
    policy = dict(part.strip().split(" ", 1) for part in sent["headers"]["Content-Security-Policy"].split(";"))
    assert policy["connect-src"] == "https://fra.cloud.appwrite.io/v1/"  # Appwrite's API only, not even this origin
    [script] = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert script == SCRIPT and policy["script-src"] == _sha256(SCRIPT)  # the same script as ai-usage serve's
    assert sent["headers"]["X-Correlation-Id"] == "exec-1"


def test_the_dashboard_function_answers_nothing_but_the_page(appwrite_env: None) -> None:
    function = DashboardFunction()

    missing = _execute(function, "GET", "/v1/admin/cost/daily")
    wrong_method = _execute(function, "POST", "/dashboard")

    assert (missing["status"], missing["json"]["error"]["code"]) == (404, "not_found")
    assert (wrong_method["status"], wrong_method["headers"]["Allow"]) == (405, "GET")


def test_a_malformed_admin_function_id_is_named_in_the_log_not_served(
    appwrite_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_USAGE_DASHBOARD_ADMIN_FUNCTION_ID", 'usage-admin"><script>')
    with structlog.testing.capture_logs() as logs:
        sent = _execute(DashboardFunction(), "GET", "/dashboard")

    assert sent["status"] == 500 and "exec-1" in sent["json"]["error"]["message"]
    [failure] = [entry for entry in logs if entry["event"] == "http.app_unavailable"]
    assert "AI_USAGE_DASHBOARD_ADMIN_FUNCTION_ID: must be an Appwrite id" in failure["error"]


@pytest.mark.parametrize(
    "endpoint",
    ["ftp://host/v1", "https://host/v1?x=1", "https://user@host/v1", "https://host/v1; script-src *", "https:///v1"],
)
def test_an_endpoint_that_could_bend_the_csp_is_refused_naming_the_field(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"^endpoint: must be an http"):
        AppwriteSignIn(endpoint, "game-prod", "usage-admin")


def test_the_alerts_route_pages_the_sent_alerts_newest_first(api: LiveServer) -> None:
    first = api.get("/v1/admin/alerts", params={"limit": 2}, headers=ADMIN).json()
    assert [a["rule"] for a in first["alerts"]] == ["rule-0", "rule-1"]
    assert first["alerts"][0] | {"claimed_at": None, "sent_at": None} == {
        "rule": "rule-0", "scope": "player:studio-a/p1", "period": "2026-11-23", "status": "sent",
        "claimed_at": None, "sent_at": None, "title": "alert 0", "delivered": 2, "failed": 1,
    }  # fmt: skip
    assert first["alerts"][0]["sent_at"].startswith("2026-11-23T12:00:00")
    rest = api.get("/v1/admin/alerts", params={"limit": 2, "cursor": first["next_cursor"]}, headers=SERVER).json()
    assert [a["rule"] for a in rest["alerts"]] == ["rule-2"] and rest["next_cursor"] is None


def test_the_alerts_route_needs_a_key_and_names_a_bad_limit(api: LiveServer) -> None:
    assert api.get("/v1/admin/alerts").status_code == 401
    bad = api.get("/v1/admin/alerts", params={"limit": 0}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "limit"
    # A cursor no page returned is refused by name (it used to answer 500, or page one again: a loop).
    for cursor in ("\u00b2", "9" * 20, "zzz", "-1"):
        bad = api.get("/v1/admin/alerts", params={"cursor": cursor}, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "cursor", cursor
