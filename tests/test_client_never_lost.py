"""Every event the client was given ends with the ledger, in the spool or among the dead letters, and is counted:
the failure modes a review found (an id no spool can store, an event no JSON can hold or no ledger would take, a
client dropped without close(), a fork, a close() racing a slow ledger, events another client spooled)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ai_usage_client import UsageClient
from ai_usage_client import sender as sender_module
from ai_usage_client.spool import Spool

from tests.test_client_delivery import FAST, StubLedger, all_stored, service, stored

CLIENT_DIR = Path(__file__).resolve().parents[1] / "client"
DOWN = "http://127.0.0.1:9"  # nothing listens: every send is refused at once


def accounted(client: UsageClient) -> bool:
    stats = client.stats()
    return stats.queued == stats.sent + stats.spooled + stats.rejected + stats.dropped - stats.replayed


def test_an_id_no_spool_can_store_is_a_dead_letter_and_the_sender_goes_on(tmp_path: Path) -> None:
    svc = service(tmp_path / "ledger.db")
    client = UsageClient.in_process(svc, spool_path=tmp_path / "spool.db", **FAST)
    client.log(request_id="bad-\ud800", user_id="p1", model="gpt-4o")  # a lone surrogate: not UTF-8
    after = [client.log(user_id="p1", model="gpt-4o") for _ in range(3)]
    assert client.flush(10)
    assert set(after) <= set(stored(svc))  # the thread lived on
    letters = client.spool.dead_letters()
    assert [letter.request_id for letter in letters] == ["bad-\\ud800"]  # escaped, stored, inspectable
    assert client.stats().dropped == 0 and accounted(client)
    client.close()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"metadata": [1, 2]}, "metadata"),  # not an object: the ledger names it
        ({"latency_ms": "123"}, "request_duration_ms"),  # a header's text, not a number
        ({"latency_ms": float("nan")}, "not JSON"),
        ({"metadata": {"n": 10**5000}}, "not JSON"),  # past int()'s digit limit
        ({"metadata": {"blob": "x" * (1024 * 1024)}}, "bytes; the ledger takes at most"),
    ],
)
def test_an_event_the_ledger_cannot_take_is_a_dead_letter_never_lost(
    tmp_path: Path, fields: dict[str, Any], reason: str
) -> None:
    svc = service(tmp_path / "ledger.db")
    client = UsageClient.in_process(svc, spool_path=tmp_path / "spool.db", **FAST)
    client.log(request_id="odd", user_id="p1", model="gpt-4o", **fields)
    good = client.log(user_id="p1", model="gpt-4o")
    assert client.flush(10)
    assert good in stored(svc)
    [letter] = client.spool.dead_letters()
    assert letter.request_id == "odd" and reason in str(letter.errors)
    assert client.stats().dropped == 0 and accounted(client)
    client.close()


def test_a_circular_event_is_a_dead_letter_too(tmp_path: Path) -> None:
    client = UsageClient(DOWN, "key", spool_path=tmp_path / "spool.db", **FAST)
    metadata: dict[str, Any] = {}
    metadata["self"] = metadata
    client.log(request_id="loop", user_id="p1", model="m", metadata=metadata)
    assert [letter.request_id for letter in client.spool.dead_letters()] == ["loop"]
    client.close(1)


def run_python(code: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(CLIENT_DIR)}
    subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, check=True, timeout=60)


def test_a_client_dropped_without_close_is_drained_at_exit(tmp_path: Path) -> None:
    run_python(
        "import gc\n"
        "from ai_usage_client import UsageClient\n"
        f"client = UsageClient({DOWN!r}, 'key', spool_path='spool.db', linger=5)\n"
        "for i in range(20): client.log(user_id='p', model='m')\n"
        "del client; gc.collect()  # only its sender thread holds its sender now\n",
        tmp_path,
    )
    assert Spool(tmp_path / "spool.db").pending_count() == 20


def test_a_client_built_before_fork_records_in_the_child(tmp_path: Path) -> None:
    run_python(
        "import os\n"
        "from ai_usage_client import UsageClient\n"
        f"client = UsageClient({DOWN!r}, 'key', spool_path='spool.db', linger=5)\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    for i in range(7): client.log(user_id='child', model='m')\n"
        "    assert client.flush(10)\n"
        "    os._exit(0 if client.stats().spooled == 7 else 3)\n"
        "assert os.waitpid(child, 0)[1] == 0\n"
        "for i in range(5): client.log(user_id='parent', model='m')\n"
        "client.close(10)\n",
        tmp_path,
    )
    bodies = [row.body for row in Spool(tmp_path / "spool.db").oldest(100)]
    assert sum('"child"' in body for body in bodies) == 7 and sum('"parent"' in body for body in bodies) == 5


def test_close_against_a_slow_ledger_spools_each_event_once(tmp_path: Path) -> None:
    answered = threading.Event()

    def slow_then_503(events: list[dict[str, Any]]) -> tuple[int, dict[str, str], dict[str, Any]]:
        answered.wait(10)  # answers only once close() has given up waiting and spooled the batch
        return 503, {}, {"error": {"code": "unavailable"}}

    stub = StubLedger(slow_then_503)
    client = UsageClient(stub.url, "key", spool_path=tmp_path / "spool.db", **FAST)
    for _ in range(10):
        client.log(user_id="p", model="m")
    while not stub.batches:
        time.sleep(0.01)
    client.close(0.2)  # the batch is in flight: spooled by close()
    answered.set()
    deadline = time.monotonic() + 10
    while client._sender._thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.spool.pending_count() == 10 and client.stats().spooled == 10  # not twice
    stub.close()


def test_an_event_given_after_close_goes_to_the_spool(tmp_path: Path) -> None:
    client = UsageClient(DOWN, "key", spool_path=tmp_path / "spool.db", **FAST)
    client.close(1)
    client.log(user_id="p", model="m")
    assert client.spool.pending_count() == 1 and accounted(client)


def test_events_another_client_spooled_are_replayed_while_this_one_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_module, "SPOOL_CHECK_SECONDS", 0.2)
    other = UsageClient(DOWN, "key", spool_path=tmp_path / "spool.db", **FAST)
    left = [other.log(user_id="p", model="m") for _ in range(5)]
    other.close(1)
    stub = StubLedger(all_stored)
    busy = UsageClient(stub.url, "key", spool_path=tmp_path / "spool.db", **FAST)
    try:
        deadline = time.monotonic() + 10
        while busy.spool.pending_count() and time.monotonic() < deadline:
            busy.log(user_id="p", model="m")  # never idle for long
            time.sleep(0.05)
        delivered = {event["request_id"] for batch in stub.batches for event in batch}
        assert set(left) <= delivered and busy.spool.pending_count() == 0
    finally:
        busy.close(5)
        stub.close()


def test_flush_with_replay_waits_for_what_another_client_spooled(tmp_path: Path) -> None:
    other = UsageClient(DOWN, "key", spool_path=tmp_path / "spool.db", **FAST)
    other.log(user_id="p", model="m")
    stub = StubLedger(all_stored)
    busy = UsageClient(stub.url, "key", spool_path=tmp_path / "spool.db", **FAST)
    try:
        other.log(user_id="p", model="m")  # spooled after busy read the file
        assert other.flush(5)
        gc.collect()
        assert busy.flush(10, replay=True) and busy.spool.pending_count() == 0
    finally:
        other.close(1)
        busy.close(5)
        stub.close()
