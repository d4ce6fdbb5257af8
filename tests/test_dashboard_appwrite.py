"""The admin dashboard on Appwrite, end to end in headless Chromium, without an Appwrite server.

The page comes from the ``usage-dashboard`` function's answer (served as a function domain serves it: no user id).
A local fake of the Appwrite API answers exactly the routes the page uses, as Appwrite 1.9.6 does (the file and
line of each rule is cited): email sessions, JWTs, ending a session, and synchronous executions, which run the real
``usage-admin`` function (``functions/usage_admin/main.py``) with the headers Appwrite injects, only for users its
execute permission in appwrite.json admits. Every other ``/v1`` request (the admin function's store) goes on to the
local TablesDB double holding a seeded ledger. The page's figures are checked against the same function's answers;
a user without the ``admin`` label sees Appwrite's refusal and no data.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from services.alerts import Alert, RuleKind, open_alert_log
from services.pricing import PriceBook
from services.usage_tracking_service import UsageTrackingService
from tests.appwrite_support import make_appwrite_store
from tests.http_harness import event
from tests.test_appwrite_functions import FakeContext, FakeRequest, load_function
from tests.test_dashboard_browser import CHROMIUM, DRIVER, WAIT, _screenshot, _text, _then_settled, _value

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra: scripts/bootstrap")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "test-project"
COOKIE = f"a_session_{PROJECT}"  # S app/init/resources/request.php 'user': a_session_<project>
ADMIN = ("admin@studio.test", "admin-password-1", ["admin"])
PLAYER = ("player@studio.test", "player-password-1", [])
# S app/config/cors.php: what a browser may send and read.
ALLOWED_HEADERS = "Accept, Origin, Cookie, Content-Type, X-Appwrite-Project, X-Appwrite-JWT, X-Fallback-Cookies"
EXPOSED_HEADERS = "X-Appwrite-Session, X-Fallback-Cookies"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromium-driver: scripts/bootstrap"),
]


class Refused(Exception):
    """An Appwrite error answer: ``{"message", "code", "type", "version"}`` (appwrite-facts 2.1)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _runtime_query(query_string: str) -> dict[str, str]:
    """``context.req.query`` as open-runtimes builds it (R server.py): split on & and the first =, decoded as yarl
    decodes a query (appwrite-facts 4.1): + is a space, and %26 %2B %3D %23 stay encoded."""
    query: dict[str, str] = {}
    for pair in query_string.split("&"):
        name, _, value = pair.partition("=")
        if name:
            parts = re.split(r"(%(?:26|2[bB]|3[dD]|23))", value.replace("+", " "))
            query[name] = "".join(p if i % 2 else unquote(p) for i, p in enumerate(parts))
    return query


class FakeAppwrite:
    """The account and executions routes of one project, the rest of ``/v1`` handed to the TablesDB double."""

    def __init__(self, double: Any, functions: dict[str, tuple[Any, list[str]]]) -> None:
        self.double, self.functions = double, functions  # id -> (loaded main.py, execute permission)
        self.users = {
            email: (f"user-{i}", password, labels) for i, (email, password, labels) in enumerate([ADMIN, PLAYER])
        }
        self.sessions: dict[str, str] = {}  # session secret -> user id
        self.jwts: dict[str, str] = {}  # jwt -> session secret
        self.calls: list[tuple[str, str]] = []
        self.allowed_origin = ""  # the dashboard function's domain, a rule of this project (request.php 'rule')
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def expire_jwts(self) -> None:
        self.jwts.clear()  # what 15 minutes do (account.php POST /v1/account/jwts, duration 900)

    # -- who is calling: S app/init/resources/request.php 'user' -----------------------------------------------
    def _session(self, headers: Any) -> str | None:
        raw = SimpleCookie(headers.get("Cookie") or "").get(COOKIE)
        value = raw.value if raw else json.loads(headers.get("X-Fallback-Cookies") or "{}").get(COOKIE, "")
        try:
            secret = json.loads(base64.b64decode(value))["secret"] if value else ""
        except ValueError:
            secret = ""
        return secret if secret in self.sessions else None

    def _user(self, headers: Any) -> str | None:
        session, jwt = self._session(headers), headers.get("X-Appwrite-JWT")
        if jwt:
            if session:
                raise Refused(403, "user_jwt_and_cookie_set", "JWT and cookie used in the same request.")
            if jwt not in self.jwts:  # expired or forged
                raise Refused(401, "user_jwt_invalid", "Failed to verify JWT. Expired token")
            return self.sessions.get(self.jwts[jwt])
        return self.sessions.get(session) if session else None

    # -- routes ------------------------------------------------------------------------------------------------
    def create_session(self, headers: Any, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if self._user(headers):  # S app/controllers/shared/api.php, init of the 'session' group
            raise Refused(
                401, "user_session_already_exists", "Creation of a session is prohibited when a session is active."
            )
        found = self.users.get(str(body.get("email", "")).lower())
        if found is None or found[1] != body.get("password"):
            raise Refused(401, "user_invalid_credentials", "Invalid credentials. Please check the email and password.")
        secret = secrets.token_hex(16)
        self.sessions[secret] = found[0]
        encoded = base64.b64encode(json.dumps({"id": found[0], "secret": secret}).encode()).decode()
        # account.php POST /v1/account/sessions/email: the cookie, and the fallback when the page's registrable
        # domain is not the API's (an IP address has none). Appwrite's cookie is SameSite=None, which Chromium drops
        # over plain http; Lax keeps it here (same site), so the page's cookie discipline is tested too.
        return 201, {"$id": uuid.uuid4().hex, "userId": found[0], "secret": "", "current": True}, {
            "Set-Cookie": f"{COOKIE}={encoded}; Path=/; HttpOnly; SameSite=Lax",
            "X-Fallback-Cookies": json.dumps({COOKIE: encoded}),
        }  # fmt: skip

    def create_jwt(self, headers: Any) -> tuple[int, Any, dict[str, str]]:
        if headers.get("X-Appwrite-JWT"):
            raise Refused(401, "user_jwt_creation_denied", "Cannot create a JWT while authenticated by a JWT.")
        session = self._session(headers)
        if session is None:  # a guest lacks the route's scope
            raise Refused(401, "general_unauthorized_scope", 'User (role: guests) missing scopes (["account"])')
        jwt = secrets.token_urlsafe(24)
        self.jwts[jwt] = session
        return 201, {"jwt": jwt}, {}

    def delete_session(self, headers: Any) -> tuple[int, Any, dict[str, str]]:
        session = self._session(headers)
        if session is None:
            raise Refused(401, "general_unauthorized_scope", 'User (role: guests) missing scopes (["account"])')
        del self.sessions[session]
        return 204, None, {"Set-Cookie": f"{COOKIE}=; Path=/; Max-Age=0", "X-Fallback-Cookies": "[]"}

    def execute_route(self, function_id: str, user_id: str, path: str) -> tuple[int, str]:
        """Run a function as Appwrite's executor does: the path and query as the runtime splits them, the headers
        it injects (S Executions/Create.php L243-257). The key is the double's (Appwrite's is an ephemeral one)."""
        module, _ = self.functions[function_id]
        path, _, query = path.partition("?")
        headers = {"x-appwrite-trigger": "http", "x-appwrite-user-id": user_id, "x-appwrite-user-jwt": "",
                   "x-appwrite-key": self.double.api_key, "x-appwrite-execution-id": uuid.uuid4().hex}  # fmt: skip
        output = module.main(FakeContext(FakeRequest("GET", unquote(path), headers, b"", _runtime_query(query))))
        return output["statusCode"], output["body"].decode("utf-8")

    def create_execution(self, function_id: str, headers: Any, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        user_id = self._user(headers) or ""
        if function_id not in self.functions:
            raise Refused(404, "function_not_found", "Function with the requested ID could not be found.")
        assert body.get("async") is False and body.get("method") == "GET", body  # what the page sends
        roles = ["any", *([f"user:{user_id}", "users"] if user_id else ["guests"])]
        roles += [f"label:{label}" for u, _, labels in self.users.values() if u == user_id for label in labels]
        execute = self.functions[function_id][1]
        if not set(roles) & set(execute):  # Executions/Create.php L206, message of U Validator/Authorization.php
            message = (f'Missing "execute" permission for role "{execute[-1]}". Only "{json.dumps(roles)}" scopes '
                       f'are allowed and "{json.dumps(execute)}" was given.')  # fmt: skip
            raise Refused(401, "user_unauthorized", message)
        status, text = self.execute_route(function_id, user_id, str(body["path"]))
        return 201, {
            "$id": uuid.uuid4().hex, "resourceId": function_id, "resourceType": "functions", "trigger": "http",
            "status": "failed" if status >= 500 else "completed", "requestMethod": "GET", "requestPath": body["path"],
            "responseStatusCode": status, "responseBody": text, "responseHeaders": [], "logs": "", "errors": "",
        }, {}  # fmt: skip


def _handler(fake: FakeAppwrite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            origin = self.headers.get("Origin")
            if origin and origin == fake.allowed_origin:  # S app/init/resources/request.php 'cors'
                headers = {**headers, "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                           "Access-Control-Expose-Headers": EXPOSED_HEADERS}  # fmt: skip
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path
            fake.calls.append((self.command, path))
            if not path.startswith(("/v1/account/", "/v1/functions/")):
                return self._proxy(body)
            if self.command == "OPTIONS":
                return self._send(204, b"", {"Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
                                             "Access-Control-Allow-Headers": ALLOWED_HEADERS})  # fmt: skip
            try:
                if self.headers.get("Origin") and self.headers["Origin"] != fake.allowed_origin:
                    raise Refused(403, "general_unknown_origin", "Invalid Origin.")  # general.php L1046
                if self.headers.get("X-Appwrite-Project") != PROJECT:
                    raise Refused(404, "project_not_found", "Project with the requested ID could not be found.")
                data = json.loads(body or b"{}")
                executions = re.fullmatch(r"/v1/functions/([^/]+)/executions", path)
                if (self.command, path) == ("POST", "/v1/account/sessions/email"):
                    status, answer, headers = fake.create_session(self.headers, data)
                elif (self.command, path) in (("POST", "/v1/account/jwts"), ("POST", "/v1/account/jwt")):
                    status, answer, headers = fake.create_jwt(self.headers)
                elif (self.command, path) == ("DELETE", "/v1/account/sessions/current"):
                    status, answer, headers = fake.delete_session(self.headers)
                elif self.command == "POST" and executions:
                    status, answer, headers = fake.create_execution(executions[1], self.headers, data)
                else:
                    raise Refused(404, "general_route_not_found", "The requested route was not found.")
            except Refused as exc:
                status, headers = exc.status, {}
                answer = {"message": exc.message, "code": exc.status, "type": exc.kind, "version": "1.9.6"}
            if status == 204:
                return self._send(204, b"", {**headers, "Content-Type": "text/plain"})
            self._send(status, json.dumps(answer).encode(), {**headers, "Content-Type": "application/json"})

        def _proxy(self, body: bytes) -> None:
            target = urlsplit(fake.double.endpoint)
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            reply = connection.getresponse()
            data = reply.read()
            keep = {k: v for k, v in reply.getheaders() if k.lower() not in ("content-length", "transfer-encoding",
                                                                               "connection")}  # fmt: skip
            connection.close()
            self._send(reply.status, data, keep)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _answer

    return Handler


class FunctionDomain:
    """The usage-dashboard function behind its domain: each request is an execution without a user (4.2)."""

    def __init__(self, module: Any) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                headers = {**{k.lower(): v for k, v in self.headers.items()}, "x-appwrite-trigger": "http",
                           "x-appwrite-user-id": "", "x-appwrite-execution-id": uuid.uuid4().hex}  # fmt: skip
                output = module.main(FakeContext(FakeRequest("GET", path, headers, b"", _runtime_query(query))))
                self.send_response(output["statusCode"])
                for name, value in output["headers"].items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(output["body"])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _seed(store: Any, now: datetime) -> None:
    """Ten days of two tenants and three providers, a model with no price, failures; one alert sent."""
    ledger = UsageTrackingService(store=store, price_book=PriceBook.load())
    mixes = [("studio-a", "whale", "claude-sonnet-4-5", "anthropic", "story_progression", 40_000),
             ("studio-a", "minnow", "gpt-4o", "openai", "npc_dialogue", 2_000),
             ("studio-b", "bard", "mystery-model-x", "openai", "quest_selection", 5_000)]  # fmt: skip
    events = [
        event(request_id=f"aw-{days}-{n}-{i}", tenant_id=tenant, user_id=user, model=model, provider=provider,
              task_type=task, tokens_input=tokens + 100 * days, request_duration_ms=200 + 150 * n + 7 * i,
              timestamp=(now - timedelta(days=days, minutes=5)).isoformat(), success=(i + days) % 4 != 3)
        for days in range(10) for n, (tenant, user, model, provider, task, tokens) in enumerate(mixes)
        for i in range(1 + (days + n) % 3)
    ]  # fmt: skip
    assert all(result.log is not None for result in ledger.log_usage_batch(events))
    alerts = open_alert_log(store)
    alert = Alert("daily-cost", RuleKind.GLOBAL_COST, "global", now.date().isoformat(), "AI cost today is over $1", "")
    assert alerts.claim(alert, now)
    alerts.mark_sent(alert, now, delivered=1, failed=0)
    alerts.close()


@pytest.fixture(scope="module")
def appwrite() -> Iterator[tuple[FakeAppwrite, FunctionDomain]]:
    from tests.tablesdb_double import TablesDBDouble

    config = json.loads((ROOT / "appwrite.json").read_text(encoding="utf-8"))
    execute = {f["$id"]: f["execute"] for f in config["functions"]}
    double = TablesDBDouble(project_id=PROJECT, api_key="test-key").start()
    store = make_appwrite_store(double)
    _seed(store, datetime.now(UTC))
    store.close()
    with pytest.MonkeyPatch.context() as env:
        for name in (
            "APPWRITE_ENDPOINT",
            "APPWRITE_PROJECT_ID",
            "APPWRITE_API_KEY",
            "AI_USAGE_API_KEY",
            "AI_USAGE_ADMIN_KEY",
            "AI_USAGE_APPWRITE_NO_USER_IS_SERVER",
            "AI_USAGE_DASHBOARD_ADMIN_FUNCTION_ID",
        ):
            env.delenv(name, raising=False)  # fmt: skip
        env.setenv("APPWRITE_DATABASE_ID", "ai_usage")
        env.setenv("AI_USAGE_ADMIN_USER_IDS", "[]")
        fake = FakeAppwrite(double, {"usage-admin": (load_function("usage_admin"), execute["usage-admin"])})
        env.setenv("APPWRITE_FUNCTION_API_ENDPOINT", fake.endpoint)  # what Appwrite gives every function
        env.setenv("APPWRITE_FUNCTION_PROJECT_ID", PROJECT)
        domain = FunctionDomain(load_function("usage_dashboard"))
        fake.allowed_origin = domain.url
        try:
            yield fake, domain
        finally:
            domain.close()
            fake.close()
            double.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1000", "--lang=en-US"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _console(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def _sign_in(driver: Any, email: str, password: str) -> None:
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()


def _api(fake: FakeAppwrite, path: str) -> Any:
    status, text = fake.execute_route("usage-admin", fake.users[ADMIN[0]][0], path)
    assert status == 200, text
    return json.loads(text)


def test_an_appwrite_admin_reads_the_ledger_through_the_admin_function(appwrite: Any, browser: Any) -> None:
    fake, domain = appwrite
    browser.get(domain.url + "/dashboard")
    assert browser.find_element(By.ID, "appwrite-host").text == urlsplit(fake.endpoint).netloc
    assert not browser.find_element(By.ID, "admin-key").is_displayed()

    # A user without the admin label: Appwrite refuses the execution; the page shows why and no figure.
    _sign_in(browser, *PLAYER[:2])
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "login-message").is_displayed())
    assert "only users with the admin label" in _text(browser, "login-message")
    assert 'Missing "execute" permission for role "label:admin"' in _text(browser, "login-message")
    assert browser.execute_script("return document.body.dataset.state") == "signed-out"
    assert not browser.find_element(By.ID, "dashboard").is_displayed()
    assert _text(browser, "login") and browser.find_element(By.ID, "kpi-cost-today").get_attribute("textContent") == "–"
    assert all("401" in line for line in _console(browser))  # the refused execution, nothing else
    WebDriverWait(browser, WAIT).until(lambda d: not fake.sessions)  # the player's session ended on Appwrite

    # The admin: every figure is the admin function's answer, read through executions.
    browser.find_element(By.ID, "email").clear()
    _then_settled(browser, lambda: _sign_in(browser, *ADMIN[:2]))
    today = browser.find_element(By.ID, "end").get_attribute("value")
    start = browser.find_element(By.ID, "start").get_attribute("value")
    week = _api(fake, "/v1/admin/metrics/aggregates?interval=day")["points"]
    assert today == week[-1]["start"][:10]
    assert _value(browser, "#kpi-cost-today") == week[-1]["cost_usd"]
    assert _text(browser, "kpi-requests-today") == str(week[-1]["requests"])
    top = _api(fake, f"/v1/admin/top/players?start={start}&end={today}&limit=10")["players"]
    first = browser.find_elements(By.CSS_SELECTOR, "#top-players tbody tr")[0].find_elements(By.TAG_NAME, "td")
    assert [first[0].text, first[3].get_attribute("data-value")] == [top[0]["user_id"], top[0]["cost_usd"]]
    latency = _api(fake, f"/v1/admin/performance/latency?start={start}&end={today}")["by_provider"]
    p95 = browser.find_element(By.CSS_SELECTOR, '#latency td[data-provider="anthropic"][data-stat="p95"]')
    assert float(p95.get_attribute("data-value")) == latency["anthropic"]["p95"]
    points = _api(fake, f"/v1/admin/metrics/aggregates?interval=day&start={start}T00:00:00Z&end="
                  f"{(datetime.fromisoformat(today) + timedelta(days=1)).date()}T00:00:00Z")["points"]  # fmt: skip
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart g.bar")
    assert [b.get_attribute("data-total") for b in bars] == [p["cost_usd"] for p in points] and len(bars) == 30
    assert [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#unpriced td[data-model]")] == ["mystery-model-x"]
    assert "AI cost today is over $1" in _text(browser, "alerts")
    assert _console(browser) == []  # no CSP violation, no refused call
    _screenshot(browser, "appwrite")

    # Fifteen minutes on, the JWT has expired: the page mints another from the session and carries on.
    minted = fake.calls.count(("POST", "/v1/account/jwts"))
    fake.expire_jwts()
    _then_settled(browser, browser.find_element(By.ID, "apply").click)
    assert fake.calls.count(("POST", "/v1/account/jwts")) == minted + 1

    # A tab closed without signing out leaves Appwrite's session in the browser: signing in again ends it first.
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    _then_settled(browser, lambda: _sign_in(browser, *ADMIN[:2]))
    assert ("DELETE", "/v1/account/sessions/current") in fake.calls and len(fake.sessions) == 1
    browser.find_element(By.ID, "sign-out").click()
    WebDriverWait(browser, WAIT).until(lambda d: not fake.sessions)
    assert browser.execute_script("return sessionStorage.length") == 0
