"""The behaviour every ``UsageStore`` must have. Runs unchanged against each backend (see conftest)."""

from __future__ import annotations

import threading
from dataclasses import asdict, astuple
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.ai_usage import TaskType
from models.counters import COUNTER_FIELDS, Counters, moved_counters
from models.usage_kinds import COST_PARTS, KIND_NAMES
from services.store.protocol import EventFilter, UsageStore
from services.store.rollups import RollupKind, total_of
from tests.factories import BASE_TIME, event_counters, expected_rollups, make_log


def assert_rollups_match_events(store: UsageStore, logs) -> None:  # type: ignore[no-untyped-def]
    expected = expected_rollups(logs)
    groups: dict[tuple, dict[str, Counters]] = {}
    for key, counters in expected.items():
        groups.setdefault((key.kind, key.scope, key.bucket), {})[key.dim] = counters
    for (kind, scope, bucket), by_dim in groups.items():
        assert store.get_rollups(kind, scope, bucket) == by_dim, (kind, scope, bucket)


def test_record_stores_the_event_and_reads_it_back(store: UsageStore) -> None:
    log = make_log(metadata={"scene": "tavern", "turn": 3}, session_id="s-1", character_id="c-9", tenant_id="t-1")
    assert store.record([log]) == [True]
    assert store.get_event(log.request_id, "t-1") == log


def test_optional_fields_round_trip_as_none(store: UsageStore) -> None:
    log = make_log(provider=None, request_duration_ms=None, error_message=None, success=False)
    store.record([log])
    assert store.get_event(log.request_id) == log


def test_unknown_request_id_reads_as_none(store: UsageStore) -> None:
    assert store.get_event("never-logged") is None


def test_get_events_returns_the_stored_ones_among_many_ids(store: UsageStore) -> None:
    logs = [make_log() for _ in range(620)]
    for start in range(0, len(logs), 100):
        store.record(logs[start : start + 100])
    wanted = [log.request_id for log in logs[::2]] + ["never-logged"]
    found = store.get_events(wanted)
    assert set(found) == set(wanted) - {"never-logged"}
    assert found[logs[4].request_id] == logs[4]


def test_same_request_id_twice_is_a_duplicate_and_changes_no_total(store: UsageStore) -> None:
    log = make_log()
    store.record([log])
    before = store.get_rollups(RollupKind.USER_DAY, log.user_id, "2026-11-23")
    assert store.record([log]) == [False]
    assert store.record([make_log(request_id=log.request_id, cost_nano=999)]) == [False]
    assert store.get_rollups(RollupKind.USER_DAY, log.user_id, "2026-11-23") == before
    assert total_of(before).requests == 1


def test_batch_flags_duplicates_already_stored_and_repeated_within_the_batch(store: UsageStore) -> None:
    first = make_log()
    store.record([first])
    fresh = make_log()
    assert store.record([first, fresh, fresh, make_log(request_id=fresh.request_id)]) == [False, True, False, False]
    assert_rollups_match_events(store, [first, fresh])


def test_empty_record_is_a_no_op(store: UsageStore) -> None:
    assert store.record([]) == []


def test_rollups_feed_every_kind_with_the_right_keys(store: UsageStore) -> None:
    logs = [
        make_log(user_id="alice", task_type=TaskType.COMBAT_NARRATION, session_id="s1", cost_nano=10),
        make_log(user_id="alice", task_type=TaskType.NPC_DIALOGUE, session_id="s1", cost_nano=20, success=False),
        make_log(user_id="bob", model="openai/gpt-4o", provider="openai", cost_nano=40, price_is_fallback=True),
        make_log(user_id="alice", timestamp=BASE_TIME + timedelta(days=1), cost_nano=80),
    ]
    store.record(logs)
    assert_rollups_match_events(store, logs)
    alice_day = store.get_rollups(RollupKind.USER_DAY, "alice", "2026-11-23")
    assert set(alice_day) == {"combat_narration", "npc_dialogue"}
    alice_total = total_of(alice_day)
    assert (alice_total.requests, alice_total.cost_nano, alice_total.failed_requests) == (2, 30, 1)
    assert store.sum_rollups(RollupKind.USER_DAY, "alice", "2026-11-01", "2026-11-30", ("cost_nano",),
                             by_bucket=False, by_dim=False) == {("alice", "", ""): (110,)}  # fmt: skip
    assert total_of(store.get_rollups(RollupKind.TENANT_DAY, "", "2026-11-23")).unpriced_requests == 1
    assert set(store.get_rollups(RollupKind.TENANT_DAY, "", "2026-11-23")) == {
        "anthropic\x1fanthropic/claude-3.5-sonnet",
        "openai\x1fopenai/gpt-4o",
    }
    assert total_of(store.get_rollups(RollupKind.SESSION, "s1", "")).requests == 2


def test_several_kinds_of_one_key_read_together(store: UsageStore) -> None:
    logs = [make_log(user_id="a", cost_nano=3), make_log(user_id="b", model="m2", provider=None, cost_nano=4)]
    store.record(logs)
    kinds = [RollupKind.TENANT_DAY, RollupKind.TENANT_HOUR, RollupKind.TENANT_DAY_TASK, RollupKind.TENANT_DAY_FEATURE]
    together = store.get_rollup_kinds(kinds, "", "2026-11-23")
    assert together == {kind: store.get_rollups(kind, "", "2026-11-23") for kind in kinds}
    assert set(together[RollupKind.TENANT_DAY]) == {"anthropic\x1fanthropic/claude-3.5-sonnet", "unknown\x1fm2"}
    assert store.get_rollup_kinds([RollupKind.USER_DAY], "nobody", "2026-11-23") == {RollupKind.USER_DAY: {}}


def test_ids_longer_than_any_stored_read_as_empty_not_as_an_error(store: UsageStore) -> None:
    huge = "玩" * 5000  # escaped in a JSON query, this alone would pass Appwrite's 4,096 characters
    assert store.get_rollups(RollupKind.USER_DAY, huge, "2026-11-23") == {}
    assert store.get_rollup_range(RollupKind.USER_DAY, huge, "2026-11-01", "2026-11-30") == {}
    assert store.list_events(EventFilter(user_id=huge, model="m" * 5000)).items == []


def test_missing_rollup_reads_as_empty(store: UsageStore) -> None:
    assert store.get_rollups(RollupKind.USER_DAY, "nobody", "2026-11-23") == {}


def test_event_without_provider_counts_under_unknown(store: UsageStore) -> None:
    store.record([make_log(provider=None, model="m")])
    assert set(store.get_rollups(RollupKind.TENANT_DAY, "", "2026-11-23")) == {"unknown\x1fm"}
    assert set(store.get_rollups(RollupKind.TENANT_HOUR, "", "2026112312")) == {"unknown"}


def test_rollup_range_includes_both_ends_only(store: UsageStore) -> None:
    logs = [make_log(user_id="u", timestamp=BASE_TIME + timedelta(days=d)) for d in range(-2, 3)]
    store.record(logs)
    rows = store.get_rollup_range(RollupKind.USER_DAY, "u", "2026-11-22", "2026-11-24")
    assert sorted(bucket for bucket, _ in rows) == ["2026-11-22", "2026-11-23", "2026-11-24"]


def test_sum_rollups_keeps_or_sums_buckets_and_dims_for_one_tenant_or_all(store: UsageStore) -> None:
    logs = [
        make_log(tenant_id=tenant, provider=provider, model=f"{provider}/m", cost_nano=cost, timestamp=BASE_TIME + day)
        for tenant, provider, cost, day in [
            (None, "openai", 1, timedelta(0)),
            (None, "anthropic", 2, timedelta(0)),
            ("t2", "openai", 4, timedelta(0)),
            (None, "openai", 8, timedelta(days=1)),
            ("t2", "anthropic", 16, timedelta(days=1)),
            (None, "openai", 32, timedelta(days=2)),  # past the range
        ]
    ]
    store.record(logs)

    def read(scope: str | None, **by: bool) -> dict[tuple[str, str, str], tuple[int, ...]]:
        return store.sum_rollups(RollupKind.TENANT_HOUR, scope, "2026112300", "2026112423", ("cost_nano",), **by)

    assert read(None) == {
        ("", "2026112312", "openai"): (1,),
        ("", "2026112312", "anthropic"): (2,),
        ("t2", "2026112312", "openai"): (4,),
        ("", "2026112412", "openai"): (8,),
        ("t2", "2026112412", "anthropic"): (16,),
    }
    assert read(None, by_dim=False) == {
        ("", "2026112312", ""): (3,),
        ("t2", "2026112312", ""): (4,),
        ("", "2026112412", ""): (8,),
        ("t2", "2026112412", ""): (16,),
    }
    assert read(None, by_bucket=False) == {
        ("", "", "openai"): (9,),
        ("", "", "anthropic"): (2,),
        ("t2", "", "openai"): (4,),
        ("t2", "", "anthropic"): (16,),
    }
    assert read(None, by_bucket=False, by_dim=False) == {("", "", ""): (11,), ("t2", "", ""): (20,)}
    assert read("t2", by_dim=False) == {("t2", "2026112312", ""): (4,), ("t2", "2026112412", ""): (16,)}
    assert read("", by_bucket=False, by_dim=False) == {("", "", ""): (11,)}
    assert read("nobody") == {}


def test_counters_hold_64_bit_totals(store: UsageStore) -> None:
    big = 3 * 2**31
    store.record([make_log(cost_nano=big, tokens_input=9_000_000) for _ in range(3)])
    day = total_of(store.get_rollups(RollupKind.USER_DAY, "player-1", "2026-11-23"))
    assert day.cost_nano == 3 * big
    assert day.tokens_input == 27_000_000


def test_list_events_pages_past_any_page_size_in_insertion_order(store: UsageStore) -> None:
    logs = [make_log(user_id=f"user-{i % 3}", timestamp=BASE_TIME + timedelta(seconds=i)) for i in range(230)]
    for start in range(0, len(logs), 100):
        store.record(logs[start : start + 100])
    seen, cursor = [], None
    while True:
        page = store.list_events(EventFilter(), limit=40, cursor=cursor)
        assert len(page.items) <= 40
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [log.request_id for log in seen] == [log.request_id for log in logs]


def test_list_events_filters_by_user_session_model_and_time(store: UsageStore) -> None:
    logs = [
        make_log(user_id="a", session_id="s1", timestamp=BASE_TIME),
        make_log(user_id="a", session_id="s2", timestamp=BASE_TIME + timedelta(hours=1), model="openai/gpt-4o"),
        make_log(user_id="b", session_id="s1", timestamp=BASE_TIME + timedelta(hours=2)),
    ]
    store.record(logs)

    def ids(where: EventFilter) -> list[str]:
        return [log.request_id for log in store.list_events(where, limit=10).items]

    assert ids(EventFilter(user_id="a")) == [logs[0].request_id, logs[1].request_id]
    assert ids(EventFilter(session_id="s1")) == [logs[0].request_id, logs[2].request_id]
    assert ids(EventFilter(model="openai/gpt-4o")) == [logs[1].request_id]
    window = EventFilter(start=BASE_TIME + timedelta(minutes=30), end=BASE_TIME + timedelta(hours=2))
    assert ids(window) == [logs[1].request_id]


def test_time_windows_at_the_ends_of_the_calendar_select_normally(store: UsageStore) -> None:
    log = make_log()
    store.record([log])
    earliest = datetime(1, 1, 1, 1, tzinfo=UTC)
    latest = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert store.list_events(EventFilter(start=earliest, end=latest)).items == [log]
    assert store.list_events(EventFilter(end=earliest)).items == []


def test_timestamps_come_back_timezone_aware_utc(store: UsageStore) -> None:
    log = make_log(timestamp=datetime(2026, 3, 1, 23, 59, 59, 123000, tzinfo=UTC))
    store.record([log])
    stored = store.get_event(log.request_id)
    assert stored is not None
    assert stored.timestamp == log.timestamp
    assert stored.timestamp.utcoffset() == timedelta(0)


def test_concurrent_writers_for_the_same_players_keep_totals_exact(store: UsageStore) -> None:
    per_thread = 25
    batches = [[make_log(user_id=f"p{i % 2}", cost_nano=7) for i in range(per_thread)] for _ in range(4)]
    errors: list[BaseException] = []

    def write(batch) -> None:  # type: ignore[no-untyped-def]
        try:
            for log in batch:
                store.record([log])
                store.record([log])  # a retry of the same request
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert_rollups_match_events(store, [log for batch in batches for log in batch])


event_specs = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from(list(TaskType)),
        st.integers(min_value=0, max_value=5 * 10**9),
        st.integers(min_value=0, max_value=3),
        st.booleans(),
        st.integers(min_value=0, max_value=4),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=event_specs, retries=st.lists(st.integers(min_value=0, max_value=11), max_size=6))
def test_property_totals_equal_the_exact_sum_of_stored_events_under_retries(store: UsageStore, specs, retries) -> None:  # type: ignore[no-untyped-def]
    run = make_log().request_id  # unique per example, so examples sharing the store do not collide
    logs = [
        make_log(
            request_id=f"{run}-{i}",
            user_id=user,
            task_type=task,
            cost_nano=cost,
            timestamp=BASE_TIME + timedelta(days=day),
            success=ok,
            session_id=f"{run}-s{session}",
        )
        for i, (user, task, cost, day, ok, session) in enumerate(specs)
    ]
    sent = logs + [logs[i % len(logs)] for i in retries]

    def all_time(user: str) -> Counters:
        return total_of(store.get_rollups(RollupKind.USER_MODEL, user, ""))

    before = {u: all_time(u) for u in ("u1", "u2", "u3")}
    half = len(sent) // 2
    store.record(sent[:half])
    for log in sent[half:]:
        store.record([log])
    for user in ("u1", "u2", "u3"):
        mine = [log for log in logs if log.user_id == user]
        gained = all_time(user).cost_nano
        assert gained - before[user].cost_nano == sum(log.cost_nano for log in mine)
    for session in {log.session_id for log in logs}:
        expected = sum(log.cost_nano for log in logs if log.session_id == session)
        assert total_of(store.get_rollups(RollupKind.SESSION, session, "")).cost_nano == expected


@pytest.mark.parametrize("limit", [0, 1001])
def test_list_events_rejects_a_page_size_out_of_range(store: UsageStore, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.list_events(EventFilter(), limit=limit)


def test_moved_counters_name_the_counters_an_event_moves() -> None:
    log = make_log(success=False, price_is_fallback=True, tokens_cached=5, credits=2, cost_nano=77)
    counters = event_counters(log)
    assert (counters.requests, counters.failed_requests, counters.unpriced_requests) == (1, 1, 1)
    assert (counters.tokens_input, counters.tokens_cached, counters.credits) == (1200, 5, 2)
    assert (counters.cost_nano, counters.platform_credits) == (77, log.platform_credits)
    moved = {COUNTER_FIELDS[index]: value for index, value in moved_counters(log)}
    assert moved == {name: value for name, value in asdict(counters).items() if value}


@settings(max_examples=300, deadline=None)
@given(
    success=st.booleans(),
    fallback=st.booleans(),
    rule=st.sampled_from(["book", "default", "free_local", "free_variant", "other_host"]),
    kinds=st.fixed_dictionaries({}, optional={name: st.integers(0, 10**6) for name in KIND_NAMES}),
    parts=st.dictionaries(st.sampled_from(COST_PARTS), st.integers(0, 10**9), max_size=6),
    duration=st.none() | st.integers(0, 10**7),
)
def test_moved_counters_are_what_an_event_adds_in_counter_order(  # the single-event path and verify add these
    success: bool, fallback: bool, rule: str, kinds: dict[str, int], parts: dict[str, int], duration: int | None
) -> None:
    log = make_log(
        success=success, price_is_fallback=fallback, price_rule=rule, **kinds, cost_nano=sum(parts.values()),
        cost_nano_by_kind=parts, request_duration_ms=duration,
    )  # fmt: skip
    assert moved_counters(log) == [(index, value) for index, value in enumerate(astuple(event_counters(log))) if value]


def test_every_usage_kind_tier_and_cost_part_round_trips_and_sums_exactly(store: UsageStore) -> None:
    from models.usage_kinds import COST_PARTS, KIND_NAMES, PARTS

    kinds = {name: 10 * (index + 1) for index, name in enumerate(KIND_NAMES)}
    for whole, parts in PARTS.items():
        kinds[whole] = sum(kinds[part] for part in parts) + 7
    split = {part: 1_000 * (index + 1) for index, part in enumerate(COST_PARTS) if part != "unsplit"}
    logs = [
        make_log(
            user_id="kinds",
            **kinds,
            tokens_total=kinds["tokens_input"] + kinds["tokens_output"],
            cost_nano=sum(split.values()),
            cost_nano_by_kind=split,
            service_tier="batch",
            price_tier="standard",
            price_version="openai/gpt-4o@2026-01-01T00:00:00+00:00",
            price_rule="other_host",
        )
        for _ in range(3)
    ]
    assert store.record(logs) == [True, True, True]
    assert store.get_event(logs[0].request_id) == logs[0]
    total = total_of(store.get_rollups(RollupKind.USER_DAY, "kinds", "2026-11-23"))
    assert total.usage == {name: 3 * value for name, value in kinds.items()}
    assert total.cost_nano_by_kind == {part: 3 * split.get(part, 0) for part in COST_PARTS}
    assert sum(total.cost_nano_by_kind.values()) == total.cost_nano
    assert total.other_host_requests == 3
