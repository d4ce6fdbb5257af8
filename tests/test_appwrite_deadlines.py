"""Every Appwrite call ends within its time: the retry budget counts the attempts' own time, a request is cut off
when it runs out even while the server is still sending, and a caller's tighter ``deadline`` is obeyed.

The bounds are deliberately generous (budget + 2 s): the old transport waited for the whole trickled or delayed
answer (10-20 s here), so the assertions separate the two without timing anything finely.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from appwrite.exception import AppwriteException

from services.deadlines import check, deadline, remaining, within
from services.errors import StoreError
from services.pricing import PriceBook
from services.settings import Settings
from services.store.appwrite_client import TimeoutClient, get_json
from services.store.appwrite_retry import DEADLINE_EXCEEDED, RetryPolicy
from services.store.appwrite_store import AppwriteUsageStore
from services.store.rollups import RollupKind
from services.usage_tracking_service import UsageTrackingService
from tests.appwrite_support import DATABASE_ID, make_appwrite_store, provision, tables_db_for
from tests.factories import make_log
from tests.tablesdb_double import Fault, TablesDBDouble
from tests.tablesdb_double.faults import TrickleProxy

BUDGET = 0.5
SLACK = 2.0
DAY = "2026-11-23"


@pytest.fixture
def double() -> Iterator[TablesDBDouble]:
    with TablesDBDouble() as running:
        yield running


@pytest.fixture
def trickle(double: TablesDBDouble) -> Iterator[TrickleProxy]:
    # 50 ms a byte: an empty rollup read (about 400 bytes with headers) would take some 20 s to arrive.
    with TrickleProxy(double, byte_delay=0.05) as proxy:
        yield proxy


def store_behind(proxy: TrickleProxy, double: TablesDBDouble, budget: float, timeout: float) -> AppwriteUsageStore:
    provision(double)
    policy = RetryPolicy(budget_seconds=budget, base_delay=0.005, max_delay=0.05)
    return AppwriteUsageStore(tables_db_for(proxy, timeout), DATABASE_ID, retry=policy)


def timed(action: Callable[[], Any]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        action()
    except Exception as exc:  # the test inspects what was raised
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def read_rollups(store: AppwriteUsageStore, user: str = "p0") -> Any:
    return store.get_rollups(RollupKind.USER_DAY, user, DAY)


# -- the budget bounds each attempt, whatever the server does ------------------------------------------------------
@pytest.mark.appwrite
def test_a_read_from_a_trickling_server_ends_as_store_error_within_the_budget(
    double: TablesDBDouble, trickle: TrickleProxy
) -> None:
    store = store_behind(trickle, double, budget=BUDGET, timeout=10.0)  # every read succeeds within 10 s
    failure, took = timed(lambda: read_rollups(store))
    assert isinstance(failure, StoreError), failure
    assert took < BUDGET + SLACK
    cause = failure.__cause__
    assert isinstance(cause, AppwriteException) and cause.type == DEADLINE_EXCEEDED and "cut off" in cause.message
    assert failure.retry_after is not None
    store.close()


@pytest.mark.appwrite
def test_a_write_to_a_trickling_server_is_cut_off_at_the_request_timeout(
    double: TablesDBDouble, trickle: TrickleProxy
) -> None:
    # The per-request timeout is a total one now: 0.5 s for the whole answer, not for each socket read.
    store = store_behind(trickle, double, budget=BUDGET, timeout=0.5)
    failure, took = timed(lambda: store.record([make_log()]))
    assert isinstance(failure, StoreError), failure
    assert isinstance(failure.__cause__, AppwriteException) and failure.__cause__.code == 0
    assert took < BUDGET + SLACK
    store.close()


@pytest.mark.appwrite
def test_the_request_timeout_bounds_the_whole_answer_without_any_budget(
    double: TablesDBDouble, trickle: TrickleProxy
) -> None:
    client = TimeoutClient(0.3)
    client.set_endpoint(trickle.endpoint).set_project(double.project_id).set_key(double.api_key)
    provision(double)
    failure, took = timed(lambda: get_json(client, f"/tablesdb/{DATABASE_ID}/tables/events/rows"))
    # A timeout, not the caller's deadline: a plain network error the retry loop may try again.
    assert isinstance(failure, AppwriteException) and failure.code == 0 and failure.type is None
    assert took < 0.3 + SLACK
    client.close()


@pytest.mark.appwrite
def test_a_slow_answer_ends_as_store_error_within_the_budget(double: TablesDBDouble) -> None:
    store = make_appwrite_store(double, retry=RetryPolicy(budget_seconds=BUDGET), timeout_seconds=10.0)
    double.inject(Fault(method="GET", kind="slow", delay=5.0))  # answers after 5 s, within the 10 s timeout
    failure, took = timed(lambda: read_rollups(store))
    assert isinstance(failure, StoreError), failure
    assert took < BUDGET + SLACK
    store.close()


# -- a caller's deadline ---------------------------------------------------------------------------------------------
@pytest.mark.appwrite
def test_a_callers_deadline_tighter_than_the_budget_is_obeyed_and_then_lifted(double: TablesDBDouble) -> None:
    store = make_appwrite_store(double)  # a 20 s budget and a 10 s request timeout
    store.record([make_log(user_id="p0")])
    double.inject(Fault(method="GET", kind="slow", delay=5.0))
    with deadline(0.3):
        failure, took = timed(lambda: read_rollups(store))
    assert isinstance(failure, StoreError) and "in 0.3s" in failure.message, failure
    assert took < 0.3 + SLACK
    # Outside the block the budget is the configured one again, and the connection cut off is not reused.
    assert read_rollups(store)["npc_dialogue"].requests == 1
    store.close()


@pytest.mark.appwrite
def test_a_deadline_that_has_passed_sends_nothing(double: TablesDBDouble) -> None:
    store = make_appwrite_store(double)
    double.reset_counts()
    with deadline(0), pytest.raises(StoreError) as failure:
        read_rollups(store)
    assert double.request_count == 0
    assert isinstance(failure.value.__cause__, AppwriteException)
    assert failure.value.__cause__.type == DEADLINE_EXCEEDED
    store.close()


@pytest.mark.appwrite
def test_calls_within_a_deadline_behave_as_without_one(double: TablesDBDouble) -> None:
    store = make_appwrite_store(double)

    def write_and_read(user: str) -> int:
        logs = [make_log(user_id=user) for _ in range(2)]
        double.reset_counts()
        assert store.record(logs) == [True, True]
        assert read_rollups(store, user)["npc_dialogue"].requests == 2
        assert store.get_event(logs[0].request_id) == logs[0]
        return double.request_count

    without = write_and_read("p0")
    with deadline(30.0):
        assert write_and_read("p1") == without  # same answers, same requests: nothing retried or cut
    store.close()


@pytest.mark.appwrite
def test_a_deadline_in_one_thread_does_not_reach_another_sharing_the_store(double: TablesDBDouble) -> None:
    store = make_appwrite_store(double)
    store.record([make_log(user_id="p0")])
    inside, done = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def under_a_passed_deadline() -> None:
        with deadline(0):
            inside.set()
            outcome.append(timed(lambda: read_rollups(store))[0])
            done.wait(10)

    worker = threading.Thread(target=under_a_passed_deadline)
    worker.start()
    assert inside.wait(10)
    assert read_rollups(store)["npc_dialogue"].requests == 1  # this thread has no deadline
    done.set()
    worker.join(10)
    assert isinstance(outcome[0], StoreError)
    store.close()


# -- services.deadlines --------------------------------------------------------------------------------------------
def test_there_is_no_deadline_outside_a_block() -> None:
    assert remaining() is None
    assert within(8.0) == 8.0
    check("anything")  # nothing to pass


def test_nested_deadlines_keep_the_tighter_and_restore_the_outer() -> None:
    with deadline(100.0):
        outer = remaining()
        assert outer is not None and 99.0 < outer <= 100.0
        with deadline(1000.0):  # an inner block cannot extend the time left
            inner = remaining()
            assert inner is not None and inner <= 100.0
        with deadline(0.0):
            assert remaining() == 0.0 and within(8.0) == 0.0
            with pytest.raises(StoreError, match="rate limit count did not finish within"):
                check("rate limit count")
        again = remaining()
        assert again is not None and again > 99.0
    assert remaining() is None


def test_a_deadline_is_lifted_when_its_block_raises() -> None:
    with pytest.raises(RuntimeError), deadline(0.0):
        raise RuntimeError("boom")
    assert remaining() is None


@pytest.mark.parametrize("seconds", [-1, float("nan"), True, "0.25", None])
def test_a_deadline_must_be_a_number_of_seconds_not_below_zero(seconds: Any) -> None:
    with pytest.raises(ValueError, match="deadline seconds must be a number ≥ 0"), deadline(seconds):
        pass


@pytest.mark.appwrite
def test_a_write_to_a_trickling_server_ends_within_the_budget(double: TablesDBDouble, trickle: TrickleProxy) -> None:
    store = store_behind(trickle, double, budget=BUDGET, timeout=10.0)
    failure, took = timed(lambda: store.record([make_log()]))
    assert isinstance(failure, StoreError), failure
    assert isinstance(failure.__cause__, AppwriteException) and failure.__cause__.type == DEADLINE_EXCEEDED
    assert took < BUDGET + SLACK
    store.close()


@pytest.mark.appwrite
def test_the_rate_limiters_count_on_a_trickling_appwrite_is_degraded_within_its_deadline(
    double: TablesDBDouble, trickle: TrickleProxy, price_book: PriceBook
) -> None:
    store = store_behind(trickle, double, budget=8.0, timeout=10.0)  # the deployed defaults
    settings = Settings.model_construct(count_deadline_ms=250, max_future_skew_seconds=300)
    ledger = UsageTrackingService(store, price_book, settings=settings)
    started = time.monotonic()
    answer = ledger.request_count_today("player-1")
    took = time.monotonic() - started
    assert (answer.count, answer.degraded) == (0, True)
    assert took < 0.25 + SLACK  # before: 19 s against this server, then an answer
    store.close()
