"""The Appwrite entry points, driven through a ``context`` shaped like open-runtimes v5 (no Appwrite server).

Each test loads ``functions/<name>/main.py`` from its file, as the runtime does, so every test is a cold start.
Appwrite injects ``x-appwrite-user-id`` for a signed-in executor and leaves it empty for an API key. The deployment
under test here is the one ``appwrite.json`` declares, whose execute permissions admit no guests, so it sets
``AI_USAGE_APPWRITE_NO_USER_IS_SERVER``: an execution without a user id is the game backend. What happens without
that setting, and to headers Appwrite could not have sent, is in ``tests/test_appwrite_fail_closed.py``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.http_harness import event

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("usage_ingest", "usage_reports", "usage_admin")


class FakeRequest:
    """``context.req`` as open-runtimes v5 builds it: raw body bytes, lower-cased headers, a query dict."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes, query: dict[str, str]) -> None:
        self.body_binary = body
        self.method = method
        self.path = path
        self.headers = {name.lower(): value for name, value in headers.items()}
        self.query = dict(query)
        self.query_string = "&".join(f"{k}={v}" for k, v in query.items())

    @property
    def body_text(self) -> str:
        return self.body_binary.decode("utf-8")

    @property
    def body_raw(self) -> str:
        return self.body_text

    @property
    def body_json(self) -> Any:
        return json.loads(self.body_text)


class FakeResponse:
    """``context.res``: each method returns the dict the runtime turns into the HTTP answer."""

    def binary(self, data: bytes, statusCode: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return {"body": data, "statusCode": statusCode, "headers": dict(headers or {})}

    def text(self, body: str, statusCode: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return self.binary(body.encode(), statusCode, headers)

    def json(self, obj: Any, statusCode: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
        headers = {**(headers or {}), "content-type": "application/json"}
        return self.text(json.dumps(obj, separators=(",", ":")), statusCode, headers)


class FakeContext:
    def __init__(self, req: FakeRequest) -> None:
        self.req = req
        self.res = FakeResponse()
        self.logs: list[str] = []
        self.errors: list[str] = []

    def log(self, *messages: Any) -> None:
        self.logs.append(" ".join(map(str, messages)))

    def error(self, *messages: Any) -> None:
        self.errors.append(" ".join(map(str, messages)))


class Execution:
    """What the caller of an execution gets back."""

    def __init__(self, output: dict[str, Any]) -> None:
        self.status = output["statusCode"]
        self.headers = output["headers"]
        self.json = json.loads(output["body"])


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/main.py`` from its path under a fresh module name: a cold start."""
    path = ROOT / "functions" / name / "main.py"
    spec = importlib.util.spec_from_file_location(f"function_{name}_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A function's environment off Appwrite: the SQLite store in tmp_path, one admin listed by id, and executions
    without a user id acting as the server (the deployment's execute permissions admit no guests)."""
    for name in ("APPWRITE_FUNCTION_API_ENDPOINT", "APPWRITE_FUNCTION_PROJECT_ID", "APPWRITE_ENDPOINT",
                 "APPWRITE_PROJECT_ID", "APPWRITE_API_KEY", "AI_USAGE_API_KEY", "AI_USAGE_ADMIN_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(tmp_path / "usage.db"))
    monkeypatch.setenv("AI_USAGE_ADMIN_USER_IDS", '["boss-1"]')
    monkeypatch.setenv("AI_USAGE_APPWRITE_NO_USER_IS_SERVER", "true")
    return tmp_path


class Deployed:
    """One loaded function; calling it runs an execution with the headers Appwrite injects."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def __call__(
        self,
        method: str,
        path: str,
        *,
        user: str = "",
        body: Any = None,
        raw: bytes | None = None,
        query: dict[str, str] | None = None,
        execution_id: str | None = None,
    ) -> Execution:
        headers = {
            "x-appwrite-trigger": "http",
            "x-appwrite-key": "ephemeral_test-key",
            "x-appwrite-user-id": user,
            "x-appwrite-execution-id": execution_id or uuid.uuid4().hex,
        }
        if body is not None:
            headers["content-type"] = "application/json"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        context = FakeContext(FakeRequest(method, path, headers, data, query or {}))
        return Execution(self.module.main(context))


@pytest.fixture
def functions(environment: Path) -> Iterator[dict[str, Deployed]]:
    deployed = {name.removeprefix("usage_"): Deployed(load_function(name)) for name in FUNCTIONS}
    yield deployed
    for function in deployed.values():
        shared = function.module.function._shared_app
        if shared is not None:
            shared.close()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_entry_point_exposes_main_and_answers_health(environment: Path, name: str) -> None:
    execute = Deployed(load_function(name))

    response = execute("GET", "/healthz")

    assert (response.status, response.json) == (200, {"status": "ok", "store": "reachable"})
    assert response.headers["content-type"] == "application/json"


def test_ingest_logs_an_event_for_an_api_key_and_a_retry_is_a_duplicate(functions: dict[str, Deployed]) -> None:
    first = functions["ingest"]("POST", "/v1/usage", body=event(request_id="aw-1"))
    again = functions["ingest"]("POST", "/v1/usage", body=event(request_id="aw-1"))

    assert (first.status, again.status) == (201, 200)
    assert (first.json["duplicate"], again.json["duplicate"]) == (False, True)
    assert first.json["estimated_cost_exact"] == "0.007500000"


def test_ingest_takes_a_batch_and_reports_each_event(functions: dict[str, Deployed]) -> None:
    response = functions["ingest"](
        "POST", "/v1/usage/batch", body={"events": [event(user_id="aw-b"), event(user_id="aw-b", tokens_output=-1)]}
    )

    assert response.status == 200
    assert [r["status"] for r in response.json["results"]] == ["stored", "rejected"]
    assert response.json["results"][1]["errors"][0]["field"] == "tokens_output"


def test_ingest_refuses_a_signed_in_user_and_serves_no_read_routes(functions: dict[str, Deployed]) -> None:
    as_user = functions["ingest"]("POST", "/v1/usage", user="player-1", body=event(user_id="player-1"))
    read = functions["ingest"]("GET", "/v1/users/player-1/usage/daily")

    assert as_user.status == 403
    assert read.status == 404


def test_reports_let_a_signed_in_user_read_only_their_own_usage(functions: dict[str, Deployed]) -> None:
    functions["ingest"]("POST", "/v1/usage", body=event(user_id="player-1"))

    own_day = functions["reports"]("GET", "/v1/users/player-1/usage/daily", user="player-1")
    own_month = functions["reports"]("GET", "/v1/users/player-1/cost/monthly", user="player-1")
    other = functions["reports"]("GET", "/v1/users/player-2/usage/daily", user="player-1")
    count = functions["reports"]("GET", "/v1/users/player-1/requests/today", user="player-1")
    prices = functions["reports"]("GET", "/v1/prices", user="player-1")

    assert (own_day.status, own_day.json["total_requests"]) == (200, 1)
    assert own_month.status == 200
    assert other.status == 403
    assert other.json["error"]["code"] == "forbidden"
    assert count.status == 403  # the rate limiter's count is for the game backend and admins
    assert prices.status == 200


def test_reports_treat_an_api_key_as_the_server_and_listed_ids_as_admins(functions: dict[str, Deployed]) -> None:
    functions["ingest"]("POST", "/v1/usage", body=event(user_id="player-3"))

    server = functions["reports"]("GET", "/v1/users/player-3/requests/today")
    listed_admin = functions["reports"]("GET", "/v1/users/player-3/usage/daily", user="boss-1")
    global_cost_for_listed_admin = functions["reports"]("GET", "/v1/admin/cost/daily", user="boss-1")
    global_cost_for_a_player = functions["reports"]("GET", "/v1/admin/cost/daily", user="player-3")

    assert (server.status, server.json["count"]) == (200, 1)
    assert listed_admin.status == 200
    assert global_cost_for_listed_admin.status == 200
    assert global_cost_for_a_player.status == 403


def test_admin_function_serves_global_cost_and_any_users_usage_to_admins(functions: dict[str, Deployed]) -> None:
    functions["ingest"]("POST", "/v1/usage", body=event(user_id="player-4"))

    total = functions["admin"]("GET", "/v1/admin/cost/daily", user="labelled-admin", query={"date": "2026-11-23"})
    someone = functions["admin"]("GET", "/v1/users/player-4/usage/daily", user="labelled-admin")
    logging_route = functions["admin"]("POST", "/v1/usage", user="labelled-admin", body=event())

    assert total.status == 200
    assert someone.status == 200
    assert logging_route.status == 404


def test_bad_input_is_a_json_error_not_a_crashed_execution(functions: dict[str, Deployed]) -> None:
    broken = functions["ingest"]("POST", "/v1/usage", raw=b"{oops")
    too_big = functions["ingest"]("POST", "/v1/usage", raw=b" " * (1024 * 1024 + 1))
    bad_month = functions["reports"]("GET", "/v1/users/p/cost/monthly", query={"month": "13"})

    assert (broken.status, broken.json["error"]["fields"][0]["field"]) == (400, "body")
    assert too_big.status == 413
    assert (bad_month.status, bad_month.json["error"]["fields"][0]["field"]) == (422, "month")


def test_an_unexpected_failure_answers_500_and_logs_it_into_this_executions_output(
    functions: dict[str, Deployed], monkeypatch: pytest.MonkeyPatch
) -> None:
    functions["reports"]("GET", "/healthz")  # cold start done; now make the store fail like a bug would
    store = functions["reports"].module.function._shared_app.service.store

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(store, "get_rollups", broken)
    # open-runtimes replaces sys.stderr with a fresh buffer for every execution.
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)

    response = functions["reports"]("GET", "/v1/users/p/usage/daily", execution_id="exec-42")

    assert response.status == 500
    assert response.json["error"]["correlation_id"] == "exec-42"
    assert "Traceback" not in json.dumps(response.json)
    assert "exec-42" in captured.getvalue() and "RuntimeError" in captured.getvalue()


def test_a_store_that_cannot_be_opened_is_a_json_500_not_a_crashed_execution(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (environment / "not-a-directory").write_text("")
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(environment / "not-a-directory" / "usage.db"))
    execute = Deployed(load_function("usage_ingest"))

    response = execute("POST", "/v1/usage", body=event(), execution_id="exec-cannot-open")

    assert response.status == 500
    assert response.json["error"]["correlation_id"] == "exec-cannot-open"


def test_settings_are_read_once_per_cold_start(environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    execute = Deployed(load_function("usage_ingest"))
    execute("POST", "/v1/usage", body=event(user_id="cold"))
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(environment / "elsewhere.db"))

    response = execute("POST", "/v1/usage", body=event(user_id="cold"))

    assert response.status == 201
    assert not (environment / "elsewhere.db").exists()


@pytest.mark.appwrite
def test_on_appwrite_each_execution_opens_the_store_with_its_own_key(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.appwrite_support import provision
    from tests.tablesdb_double import TablesDBDouble

    double = TablesDBDouble(project_id="test-project", api_key="ephemeral_test-key")
    double.start()
    try:
        provision(double)
        monkeypatch.setenv("APPWRITE_FUNCTION_API_ENDPOINT", double.endpoint)
        monkeypatch.setenv("APPWRITE_FUNCTION_PROJECT_ID", double.project_id)
        ingest = Deployed(load_function("usage_ingest"))
        reports = Deployed(load_function("usage_reports"))

        logged = ingest("POST", "/v1/usage", body=event(user_id="on-appwrite", request_id="aw-remote"))
        count = reports("GET", "/v1/users/on-appwrite/requests/today")
    finally:
        double.stop()

    assert logged.status == 201
    assert (count.status, count.json["count"], count.json["degraded"]) == (200, 1, False)
    assert not (environment / "usage.db").exists()  # nothing went to SQLite
