"""Idempotency is scoped by tenant and checked: a replay is a duplicate only when it bills the same.

Runs on every store (the ``store`` fixture), through the service, as the game backend calls it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from models.ai_usage import LogStatus
from services.errors import IdempotencyConflict, ValidationFailed
from services.pricing import PriceBook
from services.store.protocol import UsageStore
from services.usage_tracking_service import UsageTrackingService

NOW = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
DAY = NOW.date().isoformat()


@pytest.fixture
def ledger(store: UsageStore, price_book: PriceBook) -> UsageTrackingService:
    return UsageTrackingService(store, price_book, clock=lambda: NOW)


def event(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "request_id": "req-1",
        "user_id": "player-1",
        "model": "gpt-4o",
        "task_type": "npc_dialogue",
        "tokens_input": 1000,
        "tokens_output": 200,
    }
    fields.update(overrides)
    return fields


def requests_today(ledger: UsageTrackingService, user_id: str, tenant_id: str | None = None) -> int:
    return ledger.get_daily_usage(user_id, date.fromisoformat(DAY), tenant_id).total_requests


def test_two_tenants_may_use_the_same_request_id_and_each_keeps_its_own_event(ledger: UsageTrackingService) -> None:
    first = ledger.log_event(event(tenant_id="studio-a", tokens_input=1000))
    second = ledger.log_event(event(tenant_id="studio-b", tokens_input=3000))
    default = ledger.log_event(event(tokens_input=5000))
    assert [r.status for r in (first, second, default)] == [LogStatus.STORED] * 3
    assert ledger.get_event("req-1", "studio-a").tokens_input == 1000
    assert ledger.get_event("req-1", "studio-b").tokens_input == 3000
    assert ledger.get_event("req-1").tokens_input == 5000
    assert ledger.get_event("req-1", "studio-c") is None
    # Each tenant's player-1 is a player of their own: one request each, never the others'.
    assert requests_today(ledger, "player-1") == 1
    assert ledger.get_user_request_count_today("player-1", "studio-a") == 1
    assert ledger.get_daily_usage("player-1", tenant_id="studio-b").total_input_tokens == 3000
    # An id holding the separator of tenant-scoped keys is refused, never read as another tenant's player.
    for read in (
        lambda: ledger.get_daily_usage("studio-a\x1fplayer-1"),
        lambda: ledger.get_user_request_count_today("studio-a\x1fplayer-1"),
        lambda: ledger.get_session_usage("studio-a\x1fs-1"),
    ):
        with pytest.raises(ValidationFailed):
            read()


def test_a_blank_tenant_id_is_the_default_tenant_on_every_read(ledger: UsageTrackingService) -> None:
    ledger.log_event(event(tenant_id="", session_id="s-1"))  # stored as the default tenant's, as if None
    ledger.log_event(event(request_id="req-2", tenant_id="studio-a", session_id="s-1", tokens_input=3000))
    assert ledger.get_event("req-1", "").tenant_id is None
    day = date.fromisoformat(DAY)
    for blank, default in [
        (ledger.get_daily_usage("player-1", day, ""), ledger.get_daily_usage("player-1", day)),
        (ledger.get_monthly_cost("player-1", tenant_id=""), ledger.get_monthly_cost("player-1")),
        (ledger.get_user_request_count_today("player-1", ""), 1),
        (ledger.get_session_usage("s-1", "").total_input_tokens, 1000),
        (ledger.get_usage_by_model("player-1", "gpt-4o", "").total_requests, 1),
        (ledger.get_user_total_credits("player-1", ""), ledger.get_user_total_credits("player-1")),
    ]:
        assert blank == default


def test_a_replay_with_the_same_content_is_a_duplicate_with_the_stored_row(ledger: UsageTrackingService) -> None:
    stored = ledger.log_event(event(tenant_id="studio-a", metadata={"scene": 1}))
    # What the caller did not send (provider, timestamp) is not compared; metadata is not billed.
    again = ledger.log_event(event(tenant_id="studio-a", metadata={"scene": 2}))
    assert again.status is LogStatus.DUPLICATE
    assert again.log == stored.log
    assert requests_today(ledger, "player-1", "studio-a") == 1


def test_a_replay_that_bills_differently_is_a_conflict_naming_the_fields_and_changes_nothing(
    ledger: UsageTrackingService,
) -> None:
    ledger.log_event(event(tenant_id="studio-a"))
    before = ledger.get_daily_usage("player-1", date.fromisoformat(DAY), "studio-a")
    with pytest.raises(IdempotencyConflict) as raised:
        ledger.log_event(event(tenant_id="studio-a", tokens_input=999_999, task_type="general", success=False))
    conflict = raised.value
    assert conflict.status == 409 and conflict.code == "idempotency_conflict"
    assert sorted(f.field for f in conflict.fields) == ["success", "task_type", "tokens_input"]
    assert "999999" not in conflict.message and "1000" not in str(conflict.fields)
    assert ledger.get_daily_usage("player-1", date.fromisoformat(DAY), "studio-a") == before
    assert before.total_requests == 1
    assert ledger.get_event("req-1", "studio-a").tokens_input == 1000


def test_another_player_replaying_a_request_id_gets_a_conflict_not_the_owners_row(
    ledger: UsageTrackingService,
) -> None:
    ledger.log_event(event(user_id="owner", metadata={"secret": "owner's prompt id"}))
    with pytest.raises(IdempotencyConflict) as raised:
        ledger.log_event(event(user_id="intruder"))
    assert [f.field for f in raised.value.fields] == ["user_id"]
    assert "owner" not in raised.value.message
    assert requests_today(ledger, "intruder") == 0


@pytest.mark.parametrize(
    ("field", "original", "replayed"),
    [
        ("provider", "openai", "azure"),
        ("timestamp", "2026-11-23T10:00:00Z", "2026-11-23T10:00:01Z"),
        ("session_id", "s-1", "s-2"),
        ("credits", 0, 5),
        ("model", "gpt-4o", "gpt-4o-mini"),
    ],
)
def test_each_billed_field_the_caller_sent_is_compared(
    ledger: UsageTrackingService, field: str, original: object, replayed: object
) -> None:
    ledger.log_event(event(**{field: original}))
    assert ledger.log_event(event(**{field: original})).status is LogStatus.DUPLICATE
    with pytest.raises(IdempotencyConflict) as raised:
        ledger.log_event(event(**{field: replayed}))
    assert [f.field for f in raised.value.fields] == [field]


def test_a_retry_without_a_timestamp_is_a_duplicate_of_one_stamped_on_arrival(ledger: UsageTrackingService) -> None:
    ledger.log_event(event())
    assert ledger.log_event(event()).status is LogStatus.DUPLICATE


def test_a_batch_answers_conflict_per_event_and_stores_the_others(ledger: UsageTrackingService) -> None:
    ledger.log_event(event(request_id="old"))
    results = ledger.log_usage_batch(
        [
            event(request_id="old", tokens_output=7),  # conflict
            event(request_id="old"),  # duplicate
            event(request_id="new"),  # stored
            event(request_id="new", tokens_input=5),  # conflicts with the one just stored in this batch
            event(request_id="new", tenant_id="other"),  # another tenant: its own key
        ]
    )
    assert [r.status for r in results] == [
        LogStatus.CONFLICT,
        LogStatus.DUPLICATE,
        LogStatus.STORED,
        LogStatus.CONFLICT,
        LogStatus.STORED,
    ]
    assert [f.field for f in results[0].errors] == ["tokens_output"] and results[0].log is None
    assert [f.field for f in results[3].errors] == ["tokens_input"] and results[3].log is None
    assert results[1].log is not None and results[1].log.tokens_output == 200
    assert requests_today(ledger, "player-1") == 2
    assert requests_today(ledger, "player-1", "other") == 1


def test_what_pricing_derives_from_a_long_model_id_fits_every_store(ledger: UsageTrackingService) -> None:
    # A provider read off a 100-character prefix, a local runtime's id normalised or case-folded past 200
    # characters: values the event never held. One failed a whole Appwrite batch while SQLite stored it.
    events = [
        event(request_id="prefix", model="h" * 100 + "/some-model"),
        event(request_id="lm", model="lmstudio/" + "m" * 191),
        event(request_id="folded", model="ollama/" + "\u00df" * 193),
    ]
    results = ledger.log_usage_batch(events)
    assert [r.status for r in results] == [LogStatus.STORED] * 3
    logs = [ledger.get_event(e["request_id"]) for e in events]
    assert logs[0].provider is None  # no provider anyone names: unknown, not a 100-character prefix
    assert all(len(log.price_model_id) <= 200 and len(log.price_version or "") <= 256 for log in logs)
    assert [log.model for log in logs] == [e["model"] for e in events]  # the event's own model is kept whole
