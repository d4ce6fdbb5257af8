"""Every route through real HTTP: what the game backend and its admins read back after logging usage."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.http_harness import ADAPTERS, ADMIN, NOW, SERVER, TODAY, LiveServer, event, live_server, make_app


@pytest.fixture(scope="module", params=ADAPTERS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    app = make_app(Path(tmp_path_factory.mktemp("routes")) / "usage.db")
    with live_server(app, request.param) as server:
        yield server
    app.close()


def test_logging_an_event_answers_201_with_the_stored_row_and_exact_money(api: LiveServer) -> None:
    response = api.post("/v1/usage", json=event(user_id="u-log", request_id="req-log-1"), headers=SERVER)

    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    row = response.json()
    assert row["request_id"] == "req-log-1"
    assert row["duplicate"] is False
    assert row["tokens_total"] == 1500
    # gpt-4o: $0.0025 per 1K input, $0.01 per 1K output.
    assert Decimal(row["estimated_cost_exact"]) == Decimal("0.0075")
    assert row["estimated_cost"] == pytest.approx(0.0075)
    assert row["timestamp"].startswith(TODAY)


def test_a_retried_request_id_answers_200_duplicate_and_is_counted_once(api: LiveServer) -> None:
    first = api.post("/v1/usage", json=event(user_id="u-dup", request_id="req-dup"), headers=SERVER)
    again = api.post("/v1/usage", json=event(user_id="u-dup", request_id="req-dup"), headers=SERVER)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["log_id"] == first.json()["log_id"]
    count = api.get("/v1/users/u-dup/requests/today", headers=SERVER).json()
    assert count == {"user_id": "u-dup", "date": TODAY, "count": 1, "degraded": False}


def test_a_batch_stores_the_valid_events_and_names_the_bad_field_of_each_rejected_one(api: LiveServer) -> None:
    events = [
        event(user_id="u-batch", request_id="b-1"),
        event(user_id="u-batch", tokens_input="many"),
        event(user_id="u-batch", request_id="b-1"),
        event(user_id="u-batch", task_type="poetry"),
        event(user_id="u-batch", request_id="b-2", tokens_output=0),
    ]
    response = api.post("/v1/usage/batch", json={"events": events}, headers=SERVER)

    assert response.status_code == 200
    body = response.json()
    assert [item["status"] for item in body["results"]] == ["stored", "rejected", "duplicate", "rejected", "stored"]
    assert [item["index"] for item in body["results"]] == [0, 1, 2, 3, 4]
    assert (body["stored"], body["duplicates"], body["rejected"]) == (2, 1, 2)
    assert [e["field"] for e in body["results"][1]["errors"]] == ["tokens_input"]
    assert body["results"][3]["errors"][0]["field"] == "task_type"
    assert "npc_dialogue" in body["results"][3]["errors"][0]["message"]
    daily = api.get("/v1/users/u-batch/usage/daily", headers=SERVER).json()
    assert daily["total_requests"] == 2


def test_daily_usage_sums_one_users_day_by_task(api: LiveServer) -> None:
    for _ in range(3):
        api.post("/v1/usage", json=event(user_id="u-day", task_type="combat_narration"), headers=SERVER)
    earlier = NOW.replace(day=20).isoformat()
    api.post("/v1/usage", json=event(user_id="u-day", timestamp=earlier), headers=SERVER)

    today = api.get("/v1/users/u-day/usage/daily", headers=SERVER).json()
    that_day = api.get("/v1/users/u-day/usage/daily", params={"date": "2026-11-20"}, headers=SERVER).json()

    assert (today["date"], today["total_requests"], today["total_tokens"]) == (TODAY, 3, 4500)
    assert today["requests_by_task"]["combat_narration"] == sum(today["requests_by_task"].values()) == 3
    assert Decimal(today["estimated_cost_exact"]) == Decimal("0.0225")
    assert (that_day["date"], that_day["total_requests"]) == ("2026-11-20", 1)


def test_monthly_cost_defaults_to_this_month_and_takes_year_and_month(api: LiveServer) -> None:
    api.post("/v1/usage", json=event(user_id="u-month"), headers=SERVER)
    api.post("/v1/usage", json=event(user_id="u-month", timestamp="2026-10-05T08:00:00Z"), headers=SERVER)

    this_month = api.get("/v1/users/u-month/cost/monthly", headers=SERVER).json()
    october = api.get("/v1/users/u-month/cost/monthly", params={"year": 2026, "month": 10}, headers=ADMIN).json()

    assert (this_month["year"], this_month["month"], this_month["total_requests"]) == (2026, 11, 1)
    assert (october["month"], october["total_requests"]) == (10, 1)
    assert Decimal(october["estimated_cost_exact"]) == Decimal("0.0075")


def test_session_usage_totals_one_play_session_and_an_unknown_session_is_404(api: LiveServer) -> None:
    for task in ("npc_dialogue", "npc_dialogue", "quest_selection"):
        api.post("/v1/usage", json=event(user_id="u-s", session_id="sess-9", task_type=task), headers=SERVER)

    session = api.get("/v1/sessions/sess-9/usage", headers=SERVER)
    missing = api.get("/v1/sessions/no-such-session/usage", headers=SERVER)

    assert session.status_code == 200
    assert session.json()["total_requests"] == 3
    assert session.json()["by_task"]["npc_dialogue"]["requests"] == 2
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_admin_daily_cost_breaks_everyones_cost_down_by_model_provider_and_task(api: LiveServer) -> None:
    api.post("/v1/usage", json=event(user_id="u-admin-a", timestamp="2026-11-01T10:00:00Z"), headers=SERVER)
    api.post(
        "/v1/usage",
        json=event(user_id="u-admin-b", model="mystery-model-x", provider=None, timestamp="2026-11-01T11:00:00Z"),
        headers=SERVER,
    )

    response = api.get("/v1/admin/cost/daily", params={"date": "2026-11-01"}, headers=ADMIN)

    assert response.status_code == 200
    body = response.json()
    assert (body["date"], body["total_requests"], body["unpriced_requests"]) == ("2026-11-01", 2, 1)
    assert set(body["cost_by_model"]) == {"gpt-4o", "mystery-model-x"}
    assert body["cost_by_task"]["npc_dialogue"]["requests"] == 2
    exact_total = sum(Decimal(b["estimated_cost_exact"]) for b in body["cost_by_model"].values())
    assert exact_total == Decimal(body["estimated_cost_exact"])


def test_prices_list_the_book_per_1k_tokens(api: LiveServer) -> None:
    response = api.get("/v1/prices", headers=SERVER)

    assert response.status_code == 200
    prices = {p["model_id"]: p for p in response.json()["prices"]}
    assert prices["openai/gpt-4o"]["input"] == pytest.approx(0.0025)
    assert prices["openai/gpt-4o"]["output"] == pytest.approx(0.01)


def test_one_models_price_takes_a_provider_prefixed_name_and_flags_an_unknown_model(api: LiveServer) -> None:
    known = api.get("/v1/prices/openai/gpt-4o", headers=ADMIN)
    unknown = api.get("/v1/prices/nobody-knows-this-model", headers=SERVER)

    assert known.status_code == 200
    assert (known.json()["model_id"], known.json()["is_default"]) == ("openai/gpt-4o", False)
    assert unknown.status_code == 200
    assert unknown.json()["is_default"] is True


def test_health_and_the_openapi_document_need_no_key(api: LiveServer) -> None:
    health = api.get("/healthz")
    document = api.get("/openapi.json")

    assert (health.status_code, health.json()) == (200, {"status": "ok", "store": "reachable"})
    assert document.status_code == 200
    assert document.json()["openapi"] == "3.1.0"
    assert "/v1/users/{user_id}/requests/today" in document.json()["paths"]


def test_every_answer_carries_a_correlation_id(api: LiveServer) -> None:
    ok = api.get("/healthz")
    error = api.get("/v1/nothing-here")

    assert len(ok.headers["X-Correlation-Id"]) == 32
    assert error.json()["error"]["correlation_id"] == error.headers["X-Correlation-Id"]
