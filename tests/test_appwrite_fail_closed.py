"""The Appwrite functions fail closed: who an execution is comes from Appwrite's headers and the deployment's word.

Appwrite leaves ``x-appwrite-user-id`` empty for an API key, for an anonymous caller and for a custom-domain request,
and on a custom domain it merges the client's headers in before overwriting its own (appwrite-facts.md 4.2). So an
execution without a user id is the server only where ``AI_USAGE_APPWRITE_NO_USER_IS_SERVER`` says so, and headers
Appwrite could not have sent (a second ``x-appwrite-*`` copy, a user id that is not an Appwrite id) are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from functions.http_api import Role
from functions.http_api.auth import caller_from_appwrite
from functions.http_api.request import ANONYMOUS, Caller
from tests.http_harness import event
from tests.test_appwrite_functions import FUNCTIONS, Deployed, Execution, FakeContext, FakeRequest, load_function

SETTING = "AI_USAGE_APPWRITE_NO_USER_IS_SERVER"
CLEARED = ("APPWRITE_FUNCTION_API_ENDPOINT", "APPWRITE_FUNCTION_PROJECT_ID", "APPWRITE_ENDPOINT", "APPWRITE_PROJECT_ID",
           "APPWRITE_API_KEY", "AI_USAGE_API_KEY", "AI_USAGE_ADMIN_KEY")  # fmt: skip
# One route per function that only an authenticated caller may use.
PROTECTED = {
    "usage_ingest": ("POST", "/v1/usage"),
    "usage_reports": ("GET", "/v1/users/p-1/requests/today"),
    "usage_admin": ("GET", "/v1/admin/cost/daily"),
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A function's environment off Appwrite with the setting left at its default."""
    for name in (*CLEARED, SETTING):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AI_USAGE_DB_PATH", str(tmp_path / "usage.db"))
    monkeypatch.setenv("AI_USAGE_ADMIN_USER_IDS", '["boss-1"]')
    return tmp_path


@pytest.fixture
def deploy(environment: Path) -> Iterator[Any]:
    """Load a function as a cold start; its shared SQLite app is closed at the end."""
    loaded: list[Deployed] = []

    def load(name: str) -> Deployed:
        loaded.append(Deployed(load_function(name)))
        return loaded[-1]

    yield load
    for function in loaded:
        shared = function.module.function._shared_app
        if shared is not None:
            shared.close()


def execute_raw(function: Deployed, method: str, path: str, headers: Any, body: bytes = b"") -> Execution:
    """An execution whose ``req.headers`` is exactly ``headers``: no lower-casing, no collapsing."""
    request = FakeRequest(method, path, {}, body, {})
    request.headers = headers
    return Execution(function.module.main(FakeContext(request)))


def requests_today(deploy: Any, monkeypatch: pytest.MonkeyPatch, user_id: str) -> int:
    """What the game backend reads as ``user_id``'s count today, through a freshly started reports function."""
    monkeypatch.setenv(SETTING, "true")
    response = deploy("usage_reports")("GET", f"/v1/users/{user_id}/requests/today")
    assert response.status == 200
    return response.json["count"]


def call_protected(function: Deployed, name: str, user: str = "") -> Execution:
    method, path = PROTECTED[name]
    return function(method, path, user=user, body=event(user_id="p-1") if method == "POST" else None)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("value", [None, "false", "0"], ids=["unset", "false", "0"])
def test_an_execution_without_a_user_id_is_anonymous_unless_the_deployment_says_otherwise(
    deploy: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv(SETTING, value)
    function = deploy(name)

    refused = call_protected(function, name)
    health = function("GET", "/healthz")

    assert refused.status == 401
    assert refused.json["error"]["code"] == "unauthorized"
    assert refused.json["error"]["correlation_id"] == refused.headers["X-Correlation-Id"]
    assert health.status == 200  # health and the OpenAPI document stay open to anyone
    assert requests_today(deploy, monkeypatch, "p-1") == 0


@pytest.mark.parametrize("name", FUNCTIONS)
def test_with_the_setting_an_execution_without_a_user_id_is_the_server(
    deploy: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(SETTING, "true")

    response = call_protected(deploy(name), name)

    assert response.status in (200, 201)
    assert requests_today(deploy, monkeypatch, "p-1") == (1 if name == "usage_ingest" else 0)


def test_ingest_refuses_anonymous_usage_and_says_which_setting_would_make_it_the_server(
    deploy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest = deploy("usage_ingest")
    ingest("GET", "/healthz")  # cold start (it configures logging) before capturing
    with structlog.testing.capture_logs() as logs:
        single = ingest("POST", "/v1/usage", body=event(user_id="anon"))
        batch = ingest("POST", "/v1/usage/batch", body={"events": [event(user_id="anon")]})

    assert (single.status, batch.status) == (401, 401)
    assert requests_today(deploy, monkeypatch, "anon") == 0
    hints = [line for line in logs if line["event"] == "appwrite.anonymous_execution_refused"]
    assert len(hints) == 2 and SETTING in hints[0]["hint"]


def test_signed_in_users_do_not_depend_on_the_setting(deploy: Any) -> None:
    reports = deploy("usage_reports")

    own = reports("GET", "/v1/users/player-1/usage/daily", user="player-1")
    other = reports("GET", "/v1/users/player-2/usage/daily", user="player-1")
    listed_admin = reports("GET", "/v1/admin/cost/daily", user="boss-1")

    assert (own.status, other.status, listed_admin.status) == (200, 403, 200)


@pytest.mark.parametrize("setting", ["true", "false"])
@pytest.mark.parametrize(
    "headers",
    [
        {"x-appwrite-user-id": "", "X-Appwrite-User-Id": "boss-1"},  # last wins: a client-chosen admin
        {"X-Appwrite-User-Id": "boss-1", "x-appwrite-user-id": ""},  # last wins: the server
        {"x-appwrite-user-id": "player-1", "X-APPWRITE-USER-ID": "player-1"},  # even when both agree
        {"x-appwrite-user-id": ["", "boss-1"]},  # a runtime that keeps repeated values as a list
    ],
    ids=["empty-then-admin", "admin-then-empty", "same-value", "list"],
)
def test_a_repeated_user_id_header_is_refused_whatever_the_setting(
    deploy: Any, monkeypatch: pytest.MonkeyPatch, headers: dict[str, Any], setting: str
) -> None:
    monkeypatch.setenv(SETTING, setting)
    reports = deploy("usage_reports")

    response = execute_raw(reports, "GET", "/v1/admin/cost/daily", {"x-appwrite-execution-id": "exec-dup", **headers})

    assert response.status == 400
    assert response.json["error"]["code"] == "bad_request"
    assert "x-appwrite-user-id" in response.json["error"]["message"]
    assert response.json["error"]["correlation_id"] == "exec-dup" == response.headers["X-Correlation-Id"]


def test_a_repeated_key_header_is_refused_before_any_store_is_opened(
    deploy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPWRITE_FUNCTION_API_ENDPOINT", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("APPWRITE_FUNCTION_PROJECT_ID", "project")
    opened: list[str] = []
    monkeypatch.setattr("functions.appwrite_adapter.open_store", lambda *a, **k: opened.append("store"))
    ingest = deploy("usage_ingest")
    headers = {"x-appwrite-key": "ephemeral_a", "X-Appwrite-Key": "ephemeral_b", "x-appwrite-user-id": ""}

    response = execute_raw(ingest, "POST", "/v1/usage", headers, b"{}")

    assert response.status == 400
    assert "x-appwrite-key" in response.json["error"]["message"]
    assert opened == []


def test_a_repeated_execution_id_is_not_used_as_the_correlation_id(deploy: Any) -> None:
    reports = deploy("usage_reports")
    headers = {"x-appwrite-execution-id": "exec-1", "X-Appwrite-Execution-Id": "forged"}

    response = execute_raw(reports, "GET", "/healthz", headers)

    assert response.status == 400
    correlation_id = response.json["error"]["correlation_id"]
    assert correlation_id not in ("exec-1", "forged") and uuid.UUID(hex=correlation_id)


def test_other_repeated_headers_are_not_appwrites_concern(deploy: Any) -> None:
    reports = deploy("usage_reports")

    response = execute_raw(reports, "GET", "/healthz", {"Accept": "a", "accept": "b", "x-appwrite-user-id": ""})

    assert response.status == 200


def test_a_refusal_is_logged_with_header_names_never_values(deploy: Any) -> None:
    reports = deploy("usage_reports")
    reports("GET", "/healthz")  # cold start before capturing
    headers = {"x-appwrite-key": "ephemeral_secret-one", "X-Appwrite-Key": "ephemeral_secret-two"}
    with structlog.testing.capture_logs() as logs:
        execute_raw(reports, "GET", "/healthz", headers)

    refused = [line for line in logs if line["event"] == "appwrite.execution_refused"]
    assert len(refused) == 1 and refused[0]["headers"] == ["x-appwrite-key"]
    assert "secret" not in repr(logs)


@pytest.mark.parametrize(
    "user_id",
    ["player 1", "-player", "_player", ".player", "a" * 37, "player\n1", "\nplayer", "pl@yer", "player,boss-1"],
)
def test_a_user_id_appwrite_could_not_have_sent_is_refused_naming_the_header_and_rule(
    deploy: Any, user_id: str
) -> None:
    reports = deploy("usage_reports")

    response = reports("GET", "/v1/users/player/usage/daily", user=user_id)

    assert response.status == 400
    message = response.json["error"]["message"]
    assert "x-appwrite-user-id" in message and "36 characters" in message


@pytest.mark.parametrize("setting", ["true", "false"])
def test_a_user_id_of_spaces_is_no_user_id_and_padding_is_dropped(
    deploy: Any, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv(SETTING, setting)
    reports = deploy("usage_reports")

    blank = reports("GET", "/v1/users/p-1/requests/today", user=" \t ")
    padded = reports("GET", "/v1/users/player-1/usage/daily", user=" player-1\t")

    assert blank.status == (200 if setting == "true" else 401)
    assert padded.status == 200  # player-1 reading their own usage


def test_caller_from_appwrite_defaults_closed() -> None:
    assert caller_from_appwrite(None, signed_in_role=Role.USER) == ANONYMOUS
    assert caller_from_appwrite("", signed_in_role=Role.USER, no_user_is_server=True) == Caller(Role.SERVER)
    assert caller_from_appwrite("a" * 36, signed_in_role=Role.USER) == Caller(Role.USER, "a" * 36)
    assert caller_from_appwrite("boss-1", signed_in_role=Role.USER, admin_user_ids=["boss-1"]) == Caller(
        Role.ADMIN, "boss-1"
    )
