"""Appwrite failing under load: rate limits, server errors, dropped connections, lost answers, conflicts and
slow answers. Afterwards every event is stored exactly once and the rollups equal the sum of the events."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from appwrite.exception import AppwriteException
from pydantic import SecretStr

from services import deadlines
from services.errors import StoreError
from services.settings import Settings
from services.store.appwrite_retry import DEADLINE_EXCEEDED, RetryPolicy, is_ambiguous, is_transient
from services.store.appwrite_store import EVENTS_TABLE, AppwriteUsageStore
from services.store.rollups import RollupKind
from services.usage_tracking_service import UsageTrackingService
from tests.appwrite_support import DATABASE_ID, make_appwrite_store
from tests.factories import BASE_TIME, expected_rollups, make_log
from tests.tablesdb_double import Fault, TablesDBDouble

pytestmark = pytest.mark.appwrite
COMMIT = r"/transactions/[^/]+$"
STAGE = r"/operations$"
FAST = {"base_delay": 0.005, "max_delay": 0.05}


@pytest.fixture
def double() -> Iterator[TablesDBDouble]:
    with TablesDBDouble() as running:
        yield running


def fast_store(double: TablesDBDouble, budget: float = 10.0, **options: Any) -> AppwriteUsageStore:
    return make_appwrite_store(double, retry=RetryPolicy(budget_seconds=budget, **FAST), **options)


def load(tag: str) -> list:  # type: ignore[type-arg]
    """Batches, singles and client retries for three players sharing sessions."""
    return [make_log(request_id=f"{tag}-{i}", user_id=f"p{i % 3}", session_id=f"s{i % 2}", cost_nano=10_000 + i)
            for i in range(60)]  # fmt: skip


def run_load(store: AppwriteUsageStore, logs: list) -> list[bool]:  # type: ignore[type-arg]
    flags = store.record(logs[:20]) + store.record(logs[20:40])
    for log in logs[40:]:
        flags += store.record([log])
    assert store.record(logs[:5]) == [False] * 5  # a client retrying a batch after a timeout
    assert store.record([logs[45]]) == [False]  # and a single one
    assert store.get_event(logs[50].request_id) == logs[50]
    return flags


def assert_stored_exactly_once(store: AppwriteUsageStore, double: TablesDBDouble, logs: list) -> None:  # type: ignore[type-arg]
    rows = double.rows(DATABASE_ID, EVENTS_TABLE)
    assert sorted(row["request_id"] for row in rows) == sorted(log.request_id for log in logs)
    groups: dict[tuple, dict] = {}
    for key, counters in expected_rollups(logs).items():
        groups.setdefault((key.kind, key.scope, key.bucket), {})[key.dim] = counters
    for (kind, scope, bucket), by_dim in groups.items():
        assert store.get_rollups(kind, scope, bucket) == by_dim, (kind, scope, bucket)


FAULTS = {
    "429 on commit": [Fault(method="PATCH", path=COMMIT, kind="status_429", times=3, after=1)],
    "503 on staging": [Fault(method="POST", path=STAGE, kind="status_503", times=3, after=1)],
    "500 on create transaction": [Fault(method="POST", path=r"/transactions$", kind="status_500", times=2)],
    "dropped commit": [Fault(method="PATCH", path=COMMIT, kind="drop", times=3, after=2)],
    "commit executed, answer lost": [Fault(method="PATCH", path=COMMIT, kind="lost_answer", times=4, after=1)],
    "staging executed, answer lost": [Fault(method="POST", path=STAGE, kind="lost_answer", times=3, after=1)],
    "commit conflict": [Fault(kind="conflict", times=4, after=1)],
    "slow commit past the client timeout": [Fault(method="PATCH", path=COMMIT, kind="slow", delay=0.5, after=3)],
    "reads failing": [
        Fault(method="GET", kind="status_503", times=3),
        Fault(method="GET", path=r"/rows/", kind="drop", times=2),
    ],
    "everything at once": [
        Fault(method="POST", path=STAGE, kind="lost_answer", after=1),
        Fault(method="PATCH", path=COMMIT, kind="lost_answer", after=3),
        Fault(kind="conflict", after=5, times=2),
        Fault(method="PATCH", path=COMMIT, kind="status_503", after=8),
        Fault(method="POST", path=r"/transactions$", kind="drop", after=10),
    ],
}


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
def test_no_event_is_lost_or_doubled_under_faults(double: TablesDBDouble, faults: list[Fault]) -> None:
    store = fast_store(double, timeout_seconds=0.25)
    logs = load("f")
    for fault in faults:
        double.inject(fault)
    flags = run_load(store, logs)
    assert flags == [True] * len(logs)  # a write whose answer was lost is still reported as stored, once
    assert_stored_exactly_once(store, double, logs)  # read back through the same faults
    assert [fault for fault in faults if not fault.exhausted] == []


def test_a_lost_commit_answer_after_appwrite_cleaned_the_transaction_is_read_from_the_events(
    double: TablesDBDouble,
) -> None:
    store = fast_store(double)
    store.db = _ForgetfulTransactions(store.db)  # get_transaction answers 404, as after Appwrite's cleanup
    executed, dropped = make_log(request_id="executed"), make_log(request_id="dropped")
    double.inject(Fault(method="PATCH", path=COMMIT, kind="lost_answer"))
    assert store.record([executed]) == [True]
    double.inject(Fault(method="PATCH", path=COMMIT, kind="drop"))
    assert store.record([dropped]) == [True]
    assert_stored_exactly_once(store, double, [executed, dropped])


class _ForgetfulTransactions:
    def __init__(self, tables_db: Any) -> None:
        self._tables_db = tables_db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tables_db, name)

    def get_transaction(self, transaction_id: str) -> Any:
        raise AppwriteException(f"Transaction {transaction_id} not found", 404, "transaction_not_found")


def test_a_commit_stuck_committing_with_nothing_applied_is_waited_out_and_left_to_a_retry(
    double: TablesDBDouble,
) -> None:
    # "committing" may still land (Update.php writes it before its database transaction): the store never writes
    # the events again while it shows, so a commit that died midway costs the call its budget, and the retry stores.
    store = fast_store(double, budget=0.5)
    store.db = _DiesMidCommit(store.db)
    log = make_log(request_id="stuck-once")
    with pytest.raises(StoreError):  # still "committing" when the budget ends (in a poll or a read of the events)
        store.record([log])
    assert store.db.polls_of_stuck > 2
    assert store.record([log]) == [True]
    assert_stored_exactly_once(store, double, [log])


def test_transaction_failed_at_commit_is_retried_not_final(double: TablesDBDouble) -> None:
    store = fast_store(double)
    store.db = _DiesMidCommit(store.db, failure=AppwriteException("Failed to commit", 400, "transaction_failed"))
    log = make_log(request_id="failed-once")
    assert store.record([log]) == [True]
    assert_stored_exactly_once(store, double, [log])


class _DiesMidCommit:
    """The first commit answers an error and leaves its transaction "committing", nothing applied (facts §8)."""

    def __init__(self, tables_db: Any, failure: AppwriteException | None = None) -> None:
        self._tables_db = tables_db
        self._failure = failure or AppwriteException("Server Error", 500, "general_unknown")
        self._stuck: str | None = None
        self.polls_of_stuck = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tables_db, name)

    def update_transaction(self, transaction_id: str, **flags: Any) -> Any:
        if self._stuck is None:
            self._stuck = transaction_id
            raise self._failure
        return self._tables_db.update_transaction(transaction_id, **flags)

    def get_transaction(self, transaction_id: str) -> Any:
        found = self._tables_db.get_transaction(transaction_id)
        if transaction_id == self._stuck:
            self.polls_of_stuck += 1
            status = "failed" if self._failure.type == "transaction_failed" else "committing"
            return found.model_copy(update={"status": status})
        return found


class _DuplicateNamedAsRow:
    """A commit refused as Appwrite 1.9.6 names a duplicate id: 409 row_already_exists (appwrite-facts §8)."""

    def __init__(self, tables_db: Any) -> None:
        self._tables_db = tables_db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tables_db, name)

    def update_transaction(self, transaction_id: str, **flags: Any) -> Any:
        raise AppwriteException("Row with the requested ID already exists.", 409, "row_already_exists")


def test_a_commit_refused_as_row_already_exists_is_a_duplicate_once_the_id_is_found(double: TablesDBDouble) -> None:
    store = fast_store(double, budget=0.3)
    log = make_log()
    store.record([log])
    store.db = _DuplicateNamedAsRow(store.db)
    assert store.record([log]) == [False]
    with pytest.raises(StoreError):  # not stored, yet refused every time: retried until the budget ends
        store.record([make_log()])


def test_a_write_that_keeps_failing_ends_as_store_error_with_its_cause(double: TablesDBDouble) -> None:
    store = fast_store(double, budget=0.3)
    double.inject(Fault(method="POST", path=STAGE, kind="status_503", times=10_000))
    with pytest.raises(StoreError) as failure:
        store.record([make_log()])
    cause = failure.value.__cause__
    assert isinstance(cause, AppwriteException)
    # The last 503, or the attempt the budget cut off midway (on a loaded machine the budget can end mid-request).
    assert cause.code == 503 or cause.type == DEADLINE_EXCEEDED
    assert failure.value.retry_after is not None and failure.value.retry_after >= 1
    assert double.rows(DATABASE_ID, EVENTS_TABLE) == []


def test_a_definite_refusal_is_not_retried(double: TablesDBDouble) -> None:
    store = fast_store(double)
    store.database_id = "no_such_database"
    double.reset_counts()
    with pytest.raises(StoreError, match=r"not found|not_found") as failure:
        store.get_rollups(RollupKind.USER_DAY, "p0", "2026-11-23")
    assert failure.value.__cause__.code == 404  # type: ignore[union-attr]
    assert double.request_count == 1


def test_the_rate_limit_count_stays_fail_open_when_appwrite_is_down(
    double: TablesDBDouble, captured_logs: list[dict]
) -> None:
    store = fast_store(double, budget=0.1)
    store.record([make_log(user_id="p0")])
    service = UsageTrackingService(store=store, clock=lambda: BASE_TIME)
    assert service.get_user_request_count_today("p0") == 1
    double.inject(Fault(method="GET", kind="status_503", times=10_000))
    assert service.get_user_request_count_today("p0") == 0
    assert any(entry["event"] == "rate_limit.count_degraded" for entry in captured_logs)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_is_exponential_with_full_jitter_and_bounded_by_the_budget() -> None:
    clock = _Clock()
    policy = RetryPolicy(budget_seconds=5.0, base_delay=0.1, max_delay=1.0, sleep=clock.sleep,
                         clock=lambda: clock.now, rng=random.Random(7))  # fmt: skip
    attempts = 0

    def always_busy() -> None:
        nonlocal attempts
        attempts += 1
        raise AppwriteException("Rate limit", 429, "general_rate_limit_exceeded")

    with pytest.raises(StoreError) as failure:
        policy.call("test", always_busy)
    assert clock.now <= 5.0 and attempts == len(clock.sleeps) + 1
    for n, slept in enumerate(clock.sleeps):
        assert 0 <= slept <= min(1.0, 0.1 * 2**n)
    assert len(set(clock.sleeps)) == len(clock.sleeps)  # jittered, not a fixed schedule
    assert failure.value.retry_after == 1.0


def test_a_policy_call_makes_its_budget_the_deadline_of_every_request_inside() -> None:
    clock = _Clock()
    policy = RetryPolicy(budget_seconds=5.0, sleep=clock.sleep, clock=lambda: clock.now)
    seen: list[float | None] = []
    policy.call("test", lambda: seen.append(deadlines.remaining()))
    assert seen[0] is not None and 4.0 < seen[0] <= 5.0
    assert deadlines.remaining() is None  # lifted afterwards


def test_a_callers_tighter_deadline_caps_the_budget() -> None:
    clock = _Clock()
    policy = RetryPolicy(budget_seconds=8.0, base_delay=0.1, sleep=clock.sleep, clock=lambda: clock.now)
    with deadlines.deadline(0.25):
        backoff = policy.start("count")
        assert backoff.budget <= 0.25 and backoff.deadline <= 0.25
        seen: list[float | None] = []
        policy.call("count", lambda: seen.append(deadlines.remaining()))
        assert seen[0] is not None and seen[0] <= 0.25
    assert policy.start("later").budget == 8.0


def test_a_request_cut_off_by_the_deadline_is_not_retried() -> None:
    clock = _Clock()
    policy = RetryPolicy(budget_seconds=5.0, sleep=clock.sleep, clock=lambda: clock.now)
    attempts = 0

    def cut_off() -> None:
        nonlocal attempts
        attempts += 1
        raise AppwriteException("GET /rows: no complete answer within 0.2s, cut off", 0, DEADLINE_EXCEEDED)

    with pytest.raises(StoreError, match="after 1 attempt") as failure:
        policy.call("read rollups", cut_off)
    assert attempts == 1 and clock.sleeps == []
    assert isinstance(failure.value.__cause__, AppwriteException)


@pytest.mark.parametrize(
    ("code", "kind", "transient", "ambiguous"),
    [
        (0, None, True, True),  # network failure or timeout: the request may have run
        (408, None, True, True),
        (500, "general_unknown", True, True),
        (503, "general_server_error", True, True),
        (429, "general_rate_limit_exceeded", True, False),
        (409, "transaction_conflict", True, False),
        (409, "row_already_exists", False, False),
        (400, "row_invalid_structure", False, False),
        (404, "table_not_found", False, False),
        (401, "general_unauthorized_scope", False, False),
    ],
)
def test_which_failures_are_retried(code: int, kind: str | None, transient: bool, ambiguous: bool) -> None:
    exc = AppwriteException("x", code, kind)
    assert (is_transient(exc), is_ambiguous(exc)) == (transient, ambiguous)


def test_a_proxy_answering_html_is_a_store_error_not_a_crash() -> None:
    class HtmlEverywhere(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html>maintenance</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), HtmlEverywhere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = Settings(
            appwrite_endpoint=f"http://127.0.0.1:{server.server_port}/v1",
            appwrite_project_id="p",
            appwrite_api_key=SecretStr("k"),
            appwrite_retry_budget_seconds=0.3,
        )
        store = AppwriteUsageStore.from_settings(settings)
        with pytest.raises(StoreError, match="expected JSON"):
            store.record([make_log()])
    finally:
        server.shutdown()
