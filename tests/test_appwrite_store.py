"""The Appwrite store through the strict local TablesDB server: round-trip budgets, paging past 5,000 rows,
sharded global rollups, exact string keys, and writers in several threads and processes at once."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from models.ai_usage import TaskType
from services.errors import ConfigurationError
from services.settings import Settings
from services.store import appwrite_store
from services.store.appwrite_store import EVENTS_TABLE, ROLLUPS_TABLE, AppwriteUsageStore
from services.store.protocol import EventFilter
from services.store.rollups import GLOBAL_KINDS, RollupKind, total_of
from services.usage_tracking_service import UsageTrackingService
from tests.appwrite_support import DATABASE_ID, make_appwrite_store, provision, record_in_process
from tests.conftest import APPWRITE_VERSIONS
from tests.factories import BASE_TIME, expected_rollups, make_log
from tests.tablesdb_double import TablesDBDouble

pytestmark = pytest.mark.appwrite
DAY = BASE_TIME.date().isoformat()


@pytest.fixture(params=APPWRITE_VERSIONS)
def double(request: pytest.FixtureRequest) -> Iterator[TablesDBDouble]:
    with TablesDBDouble(server_version=request.param) as running:
        yield running


@pytest.fixture
def store(double: TablesDBDouble) -> Iterator[AppwriteUsageStore]:
    opened = make_appwrite_store(double)
    yield opened
    opened.close()


def assert_rollups_equal_the_events(store: AppwriteUsageStore, logs, scopes=None) -> None:  # type: ignore[no-untyped-def]
    """Every rollup row read back equals the sum of ``logs``; only of ``scopes`` (and global ones) when given."""
    groups: dict[tuple, dict] = {}
    for key, counters in expected_rollups(logs).items():
        if scopes is None or key.scope in scopes or key.kind in GLOBAL_KINDS:
            groups.setdefault((key.kind, key.scope, key.bucket), {})[key.dim] = counters
    for (kind, scope, bucket), by_dim in groups.items():
        assert store.get_rollups(kind, scope, bucket) == by_dim, (kind, scope, bucket)


def players_batch(count: int, tag: str, **fields) -> list:  # type: ignore[no-untyped-def]
    return [make_log(request_id=f"{tag}-{i}", user_id=f"player-{i}", session_id=f"{tag}-s{i}", **fields)
            for i in range(count)]  # fmt: skip


def test_logging_one_event_costs_three_requests(store: AppwriteUsageStore, double: TablesDBDouble) -> None:
    double.reset_counts()
    assert store.record([make_log(session_id="s-1")]) == [True]
    methods = [method for method, _ in double.requests]
    assert methods == ["POST", "POST", "PATCH"]  # create transaction, stage operations, commit


def test_a_duplicate_costs_one_read_more_and_adds_nothing(store: AppwriteUsageStore, double: TablesDBDouble) -> None:
    log = make_log()
    store.record([log])
    double.reset_counts()
    assert store.record([log]) == [False]
    assert double.request_count <= 4
    assert total_of(store.get_rollups(RollupKind.USER_DAY, log.user_id, DAY)).requests == 1


def test_the_service_logs_in_three_requests_and_reports_a_retry_in_one_more(
    store: AppwriteUsageStore, double: TablesDBDouble
) -> None:
    service = UsageTrackingService(store=store, clock=lambda: BASE_TIME + timedelta(hours=1))
    event = {"user_id": "p", "model": "gpt-4o", "tokens_input": 10, "request_id": "svc-1", "timestamp": BASE_TIME}
    double.reset_counts()
    first = service.log_usage(**event)
    assert double.request_count == 3
    double.reset_counts()
    again = service.log_usage(**event)
    # create transaction, stage, a refused commit, and the read that tells a duplicate from a conflict
    assert double.request_count == 4
    assert again.duplicate and again.log == first.log


def test_a_batch_of_1000_events_for_1000_players_costs_at_most_40_requests(
    store: AppwriteUsageStore, double: TablesDBDouble
) -> None:
    logs = players_batch(1000, "b")
    double.reset_counts()
    assert store.record(logs) == [True] * 1000
    assert double.request_count <= 40
    assert len(double.rows(DATABASE_ID, EVENTS_TABLE)) == 1000
    double.reset_counts()
    assert store.record(logs[:10] + players_batch(5, "c")) == [False] * 10 + [True] * 5  # a retried batch
    assert double.request_count <= 40
    sample = {"player-0", "player-4", "player-5", "player-999", "b-s0", "c-s0", "b-s500"}
    assert_rollups_equal_the_events(store, [*logs, *players_batch(5, "c")], sample)
    assert total_of(store.get_rollups(RollupKind.TENANT_DAY, "", DAY)).requests == 1005


def test_every_summary_costs_at_most_two_requests_with_more_than_5000_rollup_rows(
    store: AppwriteUsageStore, double: TablesDBDouble
) -> None:
    logs = players_batch(1000, "x") + players_batch(1000, "y", model="openai/gpt-4o", provider="openai")
    store.record(logs[:1000])
    store.record(logs[1000:])
    assert len(double.rows(DATABASE_ID, ROLLUPS_TABLE)) > 5000
    service = UsageTrackingService(store=store, clock=lambda: BASE_TIME + timedelta(hours=1))
    summaries = {
        "daily": lambda: service.get_daily_usage("player-7"),
        "monthly": lambda: service.get_monthly_cost("player-7"),
        "global daily cost": lambda: service.get_total_daily_cost(),
        "global daily usage": lambda: service.get_global_daily_usage(),
        "request count": lambda: service.get_user_request_count_today("player-7"),
        "session": lambda: service.get_session_usage("x-s7"),
        "by model": lambda: service.get_usage_by_model("player-7", "openai/gpt-4o"),
        "date range": lambda: service.get_usage_by_date_range("player-7", BASE_TIME.date(), BASE_TIME.date()),
        "credits": lambda: service.get_user_total_credits("player-7"),
    }
    for name, read in summaries.items():
        double.reset_counts()
        read()
        assert double.request_count <= 2, name
    assert service.get_user_request_count_today("player-7") == 2
    assert service.get_total_daily_cost() == pytest.approx(sum(log.cost_nano for log in logs) / 1e9)
    double.reset_counts()
    kinds = store.get_rollup_kinds(sorted(GLOBAL_KINDS), "", DAY)  # the whole global day in one request
    assert double.request_count == 1
    assert total_of(kinds[RollupKind.TENANT_DAY]).requests == 2000


def test_a_rollup_read_pages_past_5000_rows_and_sums_every_one(
    store: AppwriteUsageStore, double: TablesDBDouble
) -> None:
    logs = [make_log(request_id=f"m-{i}", user_id="collector", model=f"lab/model-{i}") for i in range(5100)]
    for start in range(0, len(logs), 1000):
        store.record(logs[start : start + 1000])
    double.reset_counts()
    by_model = store.get_rollups(RollupKind.USER_MODEL, "collector", "")
    assert double.request_count == 2  # 5,000 rows, then the last 100: never Appwrite's default 25, never `total`
    assert len(by_model) == 5100
    assert total_of(by_model).cost_nano == sum(log.cost_nano for log in logs)


def test_global_rollups_are_sharded_by_player_and_summed_on_read(
    store: AppwriteUsageStore, double: TablesDBDouble
) -> None:
    logs = players_batch(200, "g", task_type=TaskType.COMBAT_NARRATION)
    store.record(logs)
    shards = {row["shard"] for row in double.rows(DATABASE_ID, ROLLUPS_TABLE) if row["kind"] == "tenant_day"}
    assert len(shards) == 16
    day = store.get_rollups(RollupKind.TENANT_DAY, "", DAY)
    (dim,) = day
    assert dim == f"{logs[0].provider}\x1f{logs[0].model}"
    assert day[dim].cost_nano == sum(log.cost_nano for log in logs)
    user_shards = {row["shard"] for row in double.rows(DATABASE_ID, ROLLUPS_TABLE) if row["kind"] == "user_day"}
    assert user_shards == {0}


def test_a_large_batch_splits_into_transactions_that_each_carry_their_rollups(
    store: AppwriteUsageStore, double: TablesDBDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(appwrite_store, "OPS_PER_TRANSACTION", 12)
    logs = players_batch(600, "split")
    double.reset_counts()
    assert store.record(logs) == [True] * 600
    commits = [path for method, path in double.requests if method == "PATCH"]
    assert len(commits) > 1 and double.request_count == 3 * len(commits)
    assert_rollups_equal_the_events(store, logs, {"player-0", "player-299", "player-599", "split-s42"})


def test_players_whose_ids_differ_only_in_case_keep_their_own_totals(store: AppwriteUsageStore) -> None:
    # MariaDB compares strings case-insensitively (appwrite-facts §3.2); the store keeps exact matches only.
    upper, lower = make_log(user_id="Alice", cost_nano=5), make_log(user_id="alice", cost_nano=7)
    store.record([upper, lower])
    assert total_of(store.get_rollups(RollupKind.USER_DAY, "Alice", DAY)).cost_nano == 5
    assert total_of(store.get_rollups(RollupKind.USER_DAY, "alice", DAY)).cost_nano == 7
    assert [log.user_id for log in store.list_events(EventFilter(user_id="alice")).items] == ["alice"]
    assert store.get_event(upper.request_id.upper()) is None


def test_metadata_that_reads_as_an_operator_is_stored_as_data(store: AppwriteUsageStore) -> None:
    log = make_log(metadata={"method": "increment", "values": [1]})
    store.record([log])
    assert store.get_event(log.request_id) == log


def test_text_that_reads_as_an_operator_is_refused_before_anything_is_sent(
    store: AppwriteUsageStore, double: TablesDBDouble
) -> None:
    double.reset_counts()
    with pytest.raises(ValueError, match="error_message"):
        store.record([make_log(error_message='{"method":"stringConcat","values":["x"]}')])
    assert double.request_count == 0


def test_list_events_rejects_a_cursor_it_did_not_hand_out(store: AppwriteUsageStore) -> None:
    store.record([make_log()])
    with pytest.raises(ValueError, match="cursor"):
        store.list_events(EventFilter(), cursor="not a cursor!")
    with pytest.raises(ValueError, match="cursor"):
        store.list_events(EventFilter(), cursor="0" * 32)


def test_list_events_time_window_is_exact_at_sub_millisecond_bounds(store: AppwriteUsageStore) -> None:
    at = datetime(2026, 11, 23, 12, 0, 0, 5000, tzinfo=UTC)
    log = make_log(timestamp=at)
    store.record([log])

    def ids(start: datetime, end: datetime) -> list[str]:
        return [e.request_id for e in store.list_events(EventFilter(start=start, end=end)).items]

    assert ids(at - timedelta(microseconds=500), at + timedelta(microseconds=1)) == [log.request_id]
    assert ids(at + timedelta(microseconds=1), at + timedelta(seconds=1)) == []
    assert ids(at - timedelta(seconds=1), at) == []


def test_from_settings_uses_the_settings_or_the_functions_key(double: TablesDBDouble) -> None:
    provision(double)
    settings = Settings.model_construct(
        appwrite_endpoint=double.endpoint,
        appwrite_project_id=double.project_id,
        appwrite_api_key=SecretStr("wrong-key"),
        appwrite_database_id=DATABASE_ID,
        appwrite_timeout_seconds=5.0,
        appwrite_retry_budget_seconds=0.5,
    )
    with_key = AppwriteUsageStore.from_settings(settings, api_key=double.api_key)
    with_key.ping()
    assert with_key.retry.budget_seconds == 0.5
    with pytest.raises(ConfigurationError):
        AppwriteUsageStore.from_settings(Settings.model_construct(appwrite_endpoint=None, appwrite_api_key=None))


def test_threads_and_processes_logging_for_the_same_players_keep_totals_exact(
    store: AppwriteUsageStore, double: TablesDBDouble
) -> None:
    def logs_for(writer: str, count: int) -> list:  # type: ignore[no-untyped-def]
        return [make_log(request_id=f"{writer}-{i}", user_id=f"p{i % 3}", cost_nano=1000 + i, session_id=f"s{i % 2}",
                         task_type=list(TaskType)[i % 5]) for i in range(count)]  # fmt: skip

    thread_logs = [logs_for(f"t{n}", 30) for n in range(4)]
    process_logs = [logs_for(f"proc{n}", 30) for n in range(2)]
    errors: list[BaseException] = []

    def write(logs) -> None:  # type: ignore[no-untyped-def]
        try:
            store.record(logs[:10])  # a batch, then singles, then the batch again (a client retry)
            for log in logs[10:]:
                store.record([log])
            assert store.record(logs[:10]) == [False] * 10
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=record_in_process, args=(double.endpoint, double.project_id, double.api_key, logs))
        for logs in process_logs
    ]
    threads = [threading.Thread(target=write, args=(logs,)) for logs in thread_logs]
    for worker in (*processes, *threads):
        worker.start()
    for worker in (*threads, *processes):
        worker.join(timeout=60)
    assert errors == []
    assert [process.exitcode for process in processes] == [0, 0]
    everything = [log for logs in (*thread_logs, *process_logs) for log in logs]
    assert len(double.rows(DATABASE_ID, EVENTS_TABLE)) == len(everything)
    assert_rollups_equal_the_events(store, everything)


@pytest.mark.parametrize("recorded", [None, "the-definition-of-an-older-version"])
def test_a_store_refuses_to_write_rollups_built_by_another_definition_until_setup(
    store: AppwriteUsageStore, double: TablesDBDouble, recorded: str | None
) -> None:
    # An upgraded server before `ai-usage appwrite setup`: its new rollups would start at zero beside stale ones.
    from services.errors import StoreError
    from services.store.appwrite_rebuild import record_definition
    from services.store.appwrite_rows import META_ROW_ID

    if recorded is None:
        store.db.delete_row(DATABASE_ID, ROLLUPS_TABLE, META_ROW_ID)
    else:
        # Through the client, not the SDK's row model, which refuses 1.8's integer $sequence.
        path = f"/tablesdb/{DATABASE_ID}/tables/{ROLLUPS_TABLE}/rows/{META_ROW_ID}"
        headers = {"X-Appwrite-Project": store.db.client.get_config("project"), "content-type": "application/json"}
        store.db.client.call("patch", path, headers, {"data": {"dim": recorded}})
    rows = double.rows(DATABASE_ID, ROLLUPS_TABLE)
    fresh = AppwriteUsageStore(store.db, DATABASE_ID)
    with pytest.raises(StoreError, match="ai-usage appwrite setup"):
        fresh.record([make_log()])
    assert double.rows(DATABASE_ID, EVENTS_TABLE) == [] and len(double.rows(DATABASE_ID, ROLLUPS_TABLE)) == len(rows)
    record_definition(fresh)  # what setup does once the rollups are rebuilt
    assert fresh.record([make_log()]) == [True]
