"""Who may call what over HTTP: 401 for a missing or wrong key, 403 for a known caller in the wrong role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.http_api import ApiApp, AuthConfig
from tests.http_harness import (
    ADAPTERS,
    ADMIN,
    ADMIN_KEY,
    SERVER,
    SERVER_KEY,
    LiveServer,
    all_logs,
    event,
    live_server,
    make_app,
)

NO_KEY: dict[str, str] = {}
WRONG_KEY = {"Authorization": "Bearer not-the-key"}
NOT_BEARER = {"Authorization": f"Basic {SERVER_KEY}"}

# (method, path, json body) for every route; the session is unknown, so an authorised caller gets 404 there.
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/usage", event(user_id="u-auth")),
    ("POST", "/v1/usage/batch", {"events": [event(user_id="u-auth")]}),
    ("POST", "/v1/traces", {"resourceSpans": []}),
    ("GET", "/v1/users/u-auth/usage/daily", None),
    ("GET", "/v1/users/u-auth/cost/monthly", None),
    ("GET", "/v1/users/u-auth/requests/today", None),
    ("GET", "/v1/sessions/unknown-session/usage", None),
    ("GET", "/v1/admin/cost/daily", None),
    ("GET", "/v1/prices", None),
    ("GET", "/v1/prices/gpt-4o", None),
    ("GET", "/v1/tenants/studio-a/usage/daily", None),
    ("GET", "/v1/tenants/studio-a/usage/monthly", None),
    ("GET", "/v1/tenants/studio-a/usage/summary", None),
    ("GET", "/v1/admin/metrics/realtime", None),
    ("GET", "/v1/admin/metrics/aggregates", None),
    ("GET", "/v1/admin/costs/by-provider", None),
    ("GET", "/v1/admin/costs/by-model", None),
    ("GET", "/v1/admin/performance/latency", None),
    ("GET", "/v1/admin/top/players", None),
    ("GET", "/v1/admin/top/operations", None),
    ("GET", "/v1/admin/errors/by-provider", None),
    ("GET", "/v1/admin/export", None),
    ("GET", "/v1/admin/alerts", None),
]
PUBLIC = [("GET", "/healthz", None), ("GET", "/openapi.json", None), ("GET", "/dashboard", None)]
LOGGING_ROUTES = ROUTES[:3]
READ_ROUTES = ROUTES[3:]


def test_every_route_of_the_table_is_checked_here() -> None:
    from functions.http_api.routes import ROUTES as TABLE

    checked = {(method, path) for method, path, _ in ROUTES + PUBLIC}
    for route in TABLE:
        assert any(method == route.method and route.regex.fullmatch(path) for method, path in checked), route.name


def _ids(routes: list[tuple[str, str, Any]]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in routes]


@pytest.fixture(scope="module", params=ADAPTERS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    app = make_app(Path(tmp_path_factory.mktemp("auth")) / "usage.db")
    with live_server(app, request.param) as server:
        yield server
    app.close()


def _call(api: LiveServer, route: tuple[str, str, Any], headers: dict[str, str]) -> Any:
    method, path, body = route
    return api.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
@pytest.mark.parametrize("headers", [NO_KEY, WRONG_KEY, NOT_BEARER], ids=["no key", "wrong key", "not bearer"])
def test_a_protected_route_answers_401_without_a_valid_key(
    api: LiveServer, route: tuple[str, str, Any], headers: dict[str, str]
) -> None:
    response = _call(api, route, headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_the_server_key_may_use_every_route(api: LiveServer, route: tuple[str, str, Any]) -> None:
    response = _call(api, route, SERVER)

    expected = 404 if "/sessions/" in route[1] else (201 if route[1] == "/v1/usage" else 200)
    assert response.status_code == expected


@pytest.mark.parametrize("route", LOGGING_ROUTES, ids=_ids(LOGGING_ROUTES))
def test_the_admin_key_may_not_log_usage(api: LiveServer, route: tuple[str, str, Any]) -> None:
    response = _call(api, route, ADMIN)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("route", READ_ROUTES, ids=_ids(READ_ROUTES))
def test_the_admin_key_may_read_everything(api: LiveServer, route: tuple[str, str, Any]) -> None:
    response = _call(api, route, ADMIN)

    assert response.status_code == (404 if "/sessions/" in route[1] else 200)


@pytest.mark.parametrize("route", PUBLIC, ids=_ids(PUBLIC))
def test_health_and_openapi_are_open_to_anyone_but_a_wrong_key_is_still_refused(
    api: LiveServer, route: tuple[str, str, Any]
) -> None:
    assert _call(api, route, NO_KEY).status_code == 200
    assert _call(api, route, SERVER).status_code == 200
    assert _call(api, route, WRONG_KEY).status_code == 401


def test_without_any_key_configured_every_protected_route_is_closed(tmp_path: Path) -> None:
    app = make_app(tmp_path / "usage.db")
    closed = ApiApp(service=app.service, auth=AuthConfig())
    with live_server(closed) as api:
        assert api.post("/v1/usage", json=event(), headers={"Authorization": "Bearer "}).status_code == 401
        assert api.post("/v1/usage", json=event(), headers=NO_KEY).status_code == 401
        assert api.get("/v1/prices", headers=WRONG_KEY).status_code == 401
        assert api.get("/healthz").status_code == 200
    app.close()


def test_keys_never_reach_the_logs_or_the_answers(api: LiveServer) -> None:
    with all_logs() as logs:
        answers = [
            api.post("/v1/usage", json=event(user_id="u-secret"), headers=SERVER).text,
            api.get("/v1/admin/cost/daily", headers=ADMIN).text,
            api.get("/v1/prices", headers={"Authorization": f"Bearer {SERVER_KEY}x"}).text,
            api.get("/v1/prices", headers={"Authorization": f"Bearer {ADMIN_KEY}-wrong"}).text,
        ]

    assert any(entry["event"] == "http.request" for entry in logs)
    logged = repr(logs)
    for key in (SERVER_KEY, ADMIN_KEY):
        assert key not in logged
        assert all(key not in answer for answer in answers)
