"""Errors over real HTTP: every one is JSON naming what is wrong; bad input never causes a 500.

The store under the server can be made to fail, to check fail-open counting, 503s and the opaque 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.http_api import PROCESS_APP, ApiApp
from functions.http_api.app import app_from_environment
from functions.http_api.routes import BATCH_BODY_LIMIT
from services.errors import StoreError
from services.store.sqlite_store import SQLiteUsageStore
from tests.http_harness import ADAPTERS, SERVER, FlakyStore, LiveServer, all_logs, event, live_server, make_app

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=ADAPTERS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, FlakyStore]]:
    db_path = Path(tmp_path_factory.mktemp("errors")) / "usage.db"
    store = FlakyStore(SQLiteUsageStore(db_path))
    app = make_app(db_path, store=store)
    with live_server(app, request.param) as server:
        yield server, store
    app.close()


@pytest.fixture
def api(served: tuple[LiveServer, FlakyStore]) -> LiveServer:
    return served[0]


@pytest.fixture
def store(served: tuple[LiveServer, FlakyStore]) -> Iterator[FlakyStore]:
    yield served[1]
    served[1].fail_reads_with = None


def _fields(response: object) -> list[str]:
    return [item["field"] for item in response.json()["error"]["fields"]]  # type: ignore[attr-defined]


# -- bodies ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"   ", b'{"user_id": NaN}', b"\xff\xfe\x00", b"[" * 50_000 + b"]" * 50_000],
    ids=["broken", "empty", "blank", "NaN", "not utf-8", "nested too deep"],
)
def test_a_body_that_is_not_json_is_400_naming_the_body(api: LiveServer, body: bytes) -> None:
    response = api.post("/v1/usage", data=body, headers={**SERVER, "Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"
    assert _fields(response) == ["body"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tokens_input": "many"}, "tokens_input"),
        ({"tokens_input": -5}, "tokens_input"),
        ({"tokens_input": 1.5}, "tokens_input"),
        ({"task_type": "poetry"}, "task_type"),
        ({"user_id": ""}, "user_id"),
        ({"timestamp": "2026-11-23T10:00:00"}, "timestamp"),
        ({"timestamp": "2030-01-01T00:00:00Z"}, "timestamp"),
        ({"colour": "red"}, "colour"),
        ({"tokens_input": 10, "tokens_cached": 20}, "tokens_cached"),
    ],
)
def test_an_invalid_event_is_422_naming_the_field_and_nothing_is_stored(
    api: LiveServer, overrides: dict[str, object], field: str
) -> None:
    user = f"u-invalid-{field}"
    response = api.post("/v1/usage", json=event(**{"user_id": user, **overrides}), headers=SERVER)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    assert field in _fields(response)
    assert api.get(f"/v1/users/{user}/requests/today", headers=SERVER).json()["count"] == 0


def test_an_unknown_task_type_lists_the_allowed_ones(api: LiveServer) -> None:
    response = api.post("/v1/usage", json=event(task_type="poetry"), headers=SERVER)

    assert "story_progression" in response.json()["error"]["fields"][0]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [([], "body"), ("text", "body"), ({}, "events"), ({"events": {}}, "events"), ({"events": [], "x": 1}, "x")],
)
def test_a_batch_body_of_the_wrong_shape_is_422_naming_the_field(api: LiveServer, body: object, field: str) -> None:
    response = api.post("/v1/usage/batch", json=body, headers=SERVER)

    assert response.status_code == 422
    assert _fields(response) == [field]


def test_a_batch_of_more_than_1000_events_is_refused_whole(api: LiveServer) -> None:
    response = api.post("/v1/usage/batch", json={"events": [event(user_id="u-big")] * 1001}, headers=SERVER)

    assert response.status_code == 422
    assert _fields(response) == ["events"]
    assert api.get("/v1/users/u-big/requests/today", headers=SERVER).json()["count"] == 0


def test_a_single_event_posted_as_a_json_array_is_422(api: LiveServer) -> None:
    response = api.post("/v1/usage", json=[event()], headers=SERVER)

    assert response.status_code == 422
    assert _fields(response) == ["body"]


# -- query strings ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/users/u/usage/daily", {"date": "23-11-2026"}, "date"),
        ("/v1/users/u/usage/daily", {"date": "2026-13-01"}, "date"),
        ("/v1/users/u/usage/daily", {"date": "1700000000"}, "date"),
        ("/v1/users/u/usage/daily", {"day": "2026-11-23"}, "day"),
        ("/v1/users/u/cost/monthly", {"month": "13"}, "month"),
        ("/v1/users/u/cost/monthly", {"month": "0"}, "month"),
        ("/v1/users/u/cost/monthly", {"month": "May"}, "month"),
        ("/v1/users/u/cost/monthly", {"year": "1969"}, "year"),
        ("/v1/admin/cost/daily", {"date": ""}, "date"),
        # Days outside 1970..9998 are refused by name, never stepped past the calendar's ends (a 500 before).
        ("/v1/admin/costs/by-provider", {"end": "0001-01-03"}, "end"),
        ("/v1/admin/top/operations", {"start": "9999-12-31"}, "start"),
        ("/v1/admin/metrics/aggregates", {"interval": "day", "end": "0001-01-03T00:00Z"}, "end"),
        ("/v1/admin/metrics/aggregates", {"interval": "month", "start": "9999-12-01T00:00Z"}, "start"),
    ],
)
def test_an_invalid_query_parameter_is_422_naming_it(api: LiveServer, path: str, params: dict, field: str) -> None:
    response = api.get(path, params=params, headers=SERVER)

    assert response.status_code == 422
    assert _fields(response) == [field]


# -- path ids ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "field"),
    [
        # The separator of tenant-scoped keys: "studio-a<US>player-1" must not read studio-a's player-1.
        ("/v1/users/studio-a%1Fplayer-1/usage/daily", "user_id"),
        ("/v1/users/studio-a%1Fplayer-1/requests/today", "user_id"),
        ("/v1/sessions/studio-a%1Fs-1/usage", "session_id"),
        ("/v1/users/%00/cost/monthly", "user_id"),
        ("/v1/users/" + "x" * 129 + "/usage/daily", "user_id"),
        ("/v1/tenants/studio%1Fa/usage/summary", "tenant_id"),
    ],
)
def test_a_path_id_no_event_can_have_is_422_naming_it(api: LiveServer, path: str, field: str) -> None:
    api.post("/v1/usage", json=event(tenant_id="studio-a", user_id="player-1", session_id="s-1"), headers=SERVER)
    response = api.get(path, headers=SERVER)

    assert response.status_code == 422
    assert _fields(response) == [field]


# -- routing -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/v1", "/v1/usage/", "/v1/users//usage/daily", "/v2/usage"])
def test_an_unknown_path_is_404(api: LiveServer, path: str) -> None:
    response = api.get(path, headers=SERVER)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("GET", "/v1/usage", "POST"), ("DELETE", "/v1/usage/batch", "POST"), ("POST", "/v1/prices", "GET")],
)
def test_a_known_path_with_the_wrong_method_is_405_with_allow(
    api: LiveServer, method: str, path: str, allow: str
) -> None:
    response = api.request(method, path, headers=SERVER)

    assert response.status_code == 405
    assert response.headers["Allow"] == allow


# -- body limits ---------------------------------------------------------------------------------------------
def test_a_body_of_exactly_1_mib_is_accepted_on_the_single_event_route(api: LiveServer) -> None:
    body = json.dumps(event(user_id="u-1mib")).encode()
    body += b" " * (MIB - len(body))

    response = api.post("/v1/usage", data=body, headers=SERVER)

    assert response.status_code == 201


@pytest.mark.parametrize(("path", "limit"), [("/v1/usage", MIB), ("/v1/usage/batch", BATCH_BODY_LIMIT)])
def test_a_body_over_the_routes_limit_is_413_and_the_connection_stays_usable(
    api: LiveServer, path: str, limit: int
) -> None:
    response = api.post(path, data=b" " * (limit + 1), headers=SERVER)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert api.get("/healthz").status_code == 200


def test_a_chunked_body_over_the_limit_is_413_too(api: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * (64 * 1024)

    response = api.post("/v1/usage", data=chunks(), headers=SERVER)

    assert response.status_code == 413


def test_an_oversized_body_from_an_unknown_caller_is_still_413_not_parsed(api: LiveServer) -> None:
    response = api.post("/v1/usage", data=b"{" * (MIB + 10))

    assert response.status_code == 413


# -- store failures ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [StoreError("store down"), RuntimeError("socket closed")], ids=["store", "bug"])
def test_the_rate_limit_count_fails_open_with_a_warning(api: LiveServer, store: FlakyStore, failure: Exception) -> None:
    store.fail_reads_with = failure
    with all_logs() as logs:
        response = api.get("/v1/users/u-open/requests/today", headers=SERVER)

    assert response.status_code == 200
    assert response.json() == {"user_id": "u-open", "date": "2026-11-23", "count": 0, "degraded": True}
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["event"] for entry in warnings] == ["rate_limit.count_degraded"]
    assert warnings[0]["user_id"] == "u-open"


def test_a_store_outage_is_503_with_retry_after(api: LiveServer, store: FlakyStore) -> None:
    store.fail_reads_with = StoreError("appwrite timed out", retry_after=2.5)

    response = api.get("/v1/users/u-503/usage/daily", headers=SERVER)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert response.json()["error"]["code"] == "store_unavailable"


def test_health_reports_an_unreachable_store_as_503(api: LiveServer, store: FlakyStore) -> None:
    store.fail_reads_with = StoreError("no route to host")

    response = api.get("/healthz")

    assert (response.status_code, response.json()) == (503, {"status": "unavailable", "store": "unreachable"})


def test_an_unexpected_failure_is_500_with_a_correlation_id_that_finds_the_logged_traceback(
    api: LiveServer, store: FlakyStore
) -> None:
    store.fail_reads_with = RuntimeError("connection pool exhausted: password=hunter2")
    with all_logs() as logs:
        response = api.get("/v1/users/u-500/usage/daily", headers=SERVER)

    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["correlation_id"] == response.headers["X-Correlation-Id"]
    assert "hunter2" not in response.text and "Traceback" not in response.text
    failures = [entry for entry in logs if entry["event"] == "http.unhandled_error"]
    assert len(failures) == 1
    assert failures[0]["correlation_id"] == error["correlation_id"]
    assert failures[0]["exc_info"] is True
    request_lines = [entry for entry in logs if entry["event"] == "http.request"]
    assert (request_lines[0]["status"], request_lines[0]["correlation_id"]) == (500, error["correlation_id"])


def test_an_app_that_cannot_start_answers_a_json_500_on_every_route(tmp_path: Path) -> None:
    def cannot_start() -> ApiApp:
        raise StoreError("database is locked by another program")

    app = make_app(tmp_path / "usage.db")
    for adapter in ADAPTERS:
        with live_server(app, adapter) as api:
            PROCESS_APP.configure(cannot_start)
            try:
                with all_logs() as logs:
                    response = api.get("/healthz")
            finally:
                PROCESS_APP.configure(app_from_environment)
        assert response.status_code == 500
        assert response.json()["error"]["correlation_id"] == response.headers["X-Correlation-Id"]
        assert [entry["event"] for entry in logs] == ["http.app_unavailable"]
    app.close()
