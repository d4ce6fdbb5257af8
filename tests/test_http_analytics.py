"""Tenant, analytics and export routes through real HTTP, on both adapters: figures equal the service's, a
tenant is a scope, bad queries answer 422 naming the parameter, and an export streams every event."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.http_harness import ADAPTERS, ADMIN, NOW, SERVER, TODAY, LiveServer, event, live_server, make_app


@pytest.fixture(scope="module", params=ADAPTERS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    app = make_app(Path(tmp_path_factory.mktemp("analytics")) / "usage.db")
    events = [
        event(user_id="p1", request_id=f"a-{i}", tenant_id="studio-a", feature="quest_board",
              request_duration_ms=100 + i, success=i % 5 != 0)
        for i in range(20)
    ] + [
        # The same request ids and user id in another tenant: counted apart.
        event(user_id="p1", request_id=f"a-{i}", tenant_id="studio-b", model="claude-sonnet-4-5",
              provider="anthropic", tokens_input=3000)
        for i in range(5)
    ] + [event(user_id="p2", request_id="formula", model="=HYPERLINK(\"x\")", tenant_id="studio-a")]  # fmt: skip
    with live_server(app, request.param) as server:
        answer = server.post("/v1/usage/batch", json={"events": events}, headers=SERVER)
        assert answer.json()["stored"] == len(events)
        yield server
    app.close()


def test_tenant_routes_answer_each_tenants_own_usage(api: LiveServer) -> None:
    a = api.get("/v1/tenants/studio-a/usage/daily", params={"date": TODAY}, headers=ADMIN).json()
    b = api.get("/v1/tenants/studio-b/usage/daily", params={"date": TODAY}, headers=SERVER).json()
    assert (a["total_requests"], b["total_requests"]) == (21, 5)
    assert set(b["requests_by_provider"]) == {"anthropic"}
    month = api.get("/v1/tenants/studio-b/usage/monthly", params={"year": NOW.year, "month": NOW.month},
                    headers=ADMIN).json()  # fmt: skip
    assert month["cost_by_provider"] == b["cost_by_provider"]
    summary = api.get("/v1/tenants/studio-a/usage/summary", params={"days": 7}, headers=ADMIN).json()
    assert summary["by_feature"]["quest_board"]["requests"] == 20
    assert summary["by_feature"][""]["requests"] == 1


def test_per_player_routes_take_a_tenant_and_players_may_not_name_one(api: LiveServer) -> None:
    a = api.get("/v1/users/p1/usage/daily", params={"date": TODAY, "tenant_id": "studio-a"}, headers=SERVER)
    b = api.get("/v1/users/p1/requests/today", params={"tenant_id": "studio-b"}, headers=SERVER)
    default = api.get("/v1/users/p1/usage/daily", params={"date": TODAY}, headers=SERVER)
    assert (a.json()["total_requests"], b.json()["count"], default.json()["total_requests"]) == (20, 5, 0)
    bad = api.get("/v1/users/p1/usage/daily", params={"tenant_id": "a\nb"}, headers=SERVER)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "tenant_id"


def test_analytics_routes_agree_with_each_other(api: LiveServer) -> None:
    params = {"start": TODAY, "end": TODAY}
    providers = api.get("/v1/admin/costs/by-provider", params=params, headers=ADMIN).json()
    models = api.get("/v1/admin/costs/by-model", params=params, headers=SERVER).json()
    total = sum(Decimal(item["cost_usd"]) for item in providers["items"].values())
    assert total == sum(Decimal(item["cost_usd"]) for item in models["items"].values()) > 0
    series = api.get("/v1/admin/metrics/aggregates", params={"interval": "hour"}, headers=ADMIN).json()
    assert len(series["points"]) == 24 and Decimal(series["total"]["cost_usd"]) == total
    realtime = api.get("/v1/admin/metrics/realtime", headers=ADMIN).json()
    assert realtime["total"]["requests"] == 26
    errors = api.get("/v1/admin/errors/by-provider", params=params, headers=ADMIN).json()["by_provider"]
    assert errors["openai"]["failed_requests"] == 4
    latency = api.get("/v1/admin/performance/latency", params={**params, "provider": "openai"}, headers=ADMIN).json()
    assert latency["by_provider"]["openai"]["requests"] == 20 and 100 <= latency["by_provider"]["openai"]["p50"] <= 125
    top = api.get("/v1/admin/top/players", params={"limit": 2}, headers=ADMIN).json()["players"]
    assert [(p["tenant_id"], p["user_id"]) for p in top] == [("studio-a", "p1"), ("studio-b", "p1")]
    operations = api.get("/v1/admin/top/operations", params=params, headers=ADMIN).json()["operations"]
    assert {(o["task_type"], o["provider"]) for o in operations} == {
        ("npc_dialogue", "openai"),
        ("npc_dialogue", "anthropic"),
    }


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/admin/metrics/aggregates", {"interval": "week"}, "interval"),
        ("/v1/admin/metrics/aggregates", {"end": "0.5"}, "end"),
        ("/v1/admin/metrics/aggregates", {"interval": "hour", "model": "gpt-4o"}, "interval"),
        ("/v1/admin/costs/by-provider", {"start": "2026-11-24", "end": "2026-11-01"}, "end"),
        ("/v1/admin/top/players", {"limit": "0"}, "limit"),
        ("/v1/admin/export", {"format": "xlsx"}, "format"),
    ],
)
def test_bad_analytics_queries_answer_422_naming_the_parameter(api: LiveServer, path, params, field) -> None:
    response = api.get(path, params=params, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]


def test_analytics_are_for_the_server_and_admin_keys_only(api: LiveServer) -> None:
    assert api.get("/v1/admin/top/players").status_code == 401
    assert api.get("/v1/tenants/studio-a/usage/daily").status_code == 401


def test_export_streams_every_event_as_csv_or_jsonl_with_formulas_neutralised(api: LiveServer) -> None:
    lines = api.get("/v1/admin/export", params={"format": "jsonl"}, headers=ADMIN, stream=True)
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert "content-length" not in lines.headers  # streamed page by page on both adapters, never joined first
    rows = [json.loads(line) for line in lines.text.splitlines()]
    assert len(rows) == 26 and {row["tenant_id"] for row in rows} == {"studio-a", "studio-b"}
    table = api.get("/v1/admin/export", params={"format": "csv", "user_id": "p2"}, headers=ADMIN)
    assert table.headers["content-type"].startswith("text/csv")
    assert "attachment" in table.headers["content-disposition"]
    records = list(csv.DictReader(io.StringIO(table.text)))
    assert len(records) == 1 and records[0]["model"].startswith("'=")  # never a live spreadsheet formula


def test_a_signed_in_player_cannot_read_another_tenants_player_of_the_same_id(tmp_path: Path) -> None:
    from functions.http_api import ApiRequest, Caller, Role, dispatch

    app = make_app(tmp_path / "usage.db")
    app.service.log_usage(**event(user_id="p1", tenant_id="studio-a", request_id="secret"))
    player = Caller(Role.USER, "p1")
    own = dispatch(ApiRequest("GET", "/v1/users/p1/usage/daily", caller=player), app, "reports")
    other = dispatch(
        ApiRequest("GET", "/v1/users/p1/usage/daily", query={"tenant_id": "studio-a"}, caller=player), app, "reports"
    )
    assert own.status == 200 and own.json_data()["total_requests"] == 0
    assert other.status == 403 and "studio-a" not in other.render().decode()
    app.close()
