"""Never lose an event: the ledger killed while the client sends, the client itself restarted, and process exit.

The first test runs ``ai-usage serve`` as a user does (a subprocess in its own process group, so SIGKILL takes
its workers too), kills it mid-stream and starts it again on the same port: every event is stored exactly once.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ai_usage_client import Spool, UsageClient

from functions.http_api import ApiApp, AuthConfig
from tests.http_harness import SERVER_KEY, LiveServer
from tests.test_client_delivery import StubLedger, service, stored
from tests.test_client_spool import BlockingLedger

AI_USAGE = str(Path(sys.executable).with_name("ai-usage"))
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ledger(data: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_USAGE_", "APPWRITE_"))}
    env.update(AI_USAGE_DB_PATH=str(data / "usage.db"), AI_USAGE_API_KEY=SERVER_KEY, AI_USAGE_LOG_FORMAT="json")
    command = [AI_USAGE, "serve", "--port", str(port), "--workers", "1", "--threads", "2"]
    log = (data / "server.log").open("a")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT, start_new_session=True
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if selector.select(timeout=0.2):
            line = process.stdout.readline()
            assert line, f"serve exited early, see {data / 'server.log'}"
            if re.search(r"Listening on http://", line):
                return process
    raise AssertionError("serve printed no URL within 30 s")


def stop(process: subprocess.Popen[str], how: signal.Signals) -> None:
    if process.poll() is None:
        os.killpg(process.pid, how)  # the whole group: granian's worker processes too
        process.wait(timeout=20)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_ledger_killed_while_the_client_sends_and_restarted_stores_every_event_exactly_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    ledger = start_ledger(tmp_path, port)
    client = UsageClient(
        f"http://127.0.0.1:{port}", SERVER_KEY, spool_path=tmp_path / "spool.db",
        max_batch=25, linger=0.002, backoff_base=0.05, backoff_cap=0.3, timeout=5,
    )  # fmt: skip
    ids: list[str] = []
    producing = threading.Event()
    producing.set()

    def produce() -> None:
        while producing.is_set():
            ids.append(client.log(user_id="player-1", model="gpt-4o", tokens_input=100, tokens_output=10))
            time.sleep(0.0005)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_until(lambda: client.stats().sent >= 200)
        stop(ledger, signal.SIGKILL)  # mid-stream: batches in flight are cut off
        killed_at = len(ids)
        wait_until(lambda: len(ids) >= killed_at + 300)
        ledger = start_ledger(tmp_path, port)
        wait_until(lambda: client.stats().replayed > 0 and len(ids) >= killed_at + 600)
        producing.clear()
        producer.join()
        assert client.flush(60, replay=True)
    finally:
        producing.clear()
        client.close()
        stop(ledger, signal.SIGTERM)

    stats = client.stats()
    assert stats.spooled > 0 and stats.replayed > 0  # the kill did cut delivery off
    assert (stats.queued, stats.sent, stats.rejected, stats.dropped) == (len(ids), len(ids), 0, 0)
    svc = service(tmp_path / "usage.db")
    logged = [event.request_id for event in svc.iter_events()]
    assert sorted(logged) == sorted(ids)  # every event, each exactly once
    assert svc.get_user_request_count_today("player-1") == len(ids)  # and the rollups agree


def test_a_new_client_on_the_same_spool_replays_what_the_last_one_could_not_send(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the ledger is down
    first = UsageClient(nobody, SERVER_KEY, spool_path=tmp_path / "spool.db", linger=0.001)
    ids = [first.log(user_id="p1", model="gpt-4o", tokens_input=i + 1) for i in range(30)]
    first.close()
    assert first.stats().spooled == 30 and first.stats().dropped == 0

    svc = service(tmp_path / "ledger.db")
    with_ledger = LiveServer(ApiApp(service=svc, auth=AuthConfig(api_key=SERVER_KEY)), adapter="wsgi")
    second = UsageClient(with_ledger.url, SERVER_KEY, spool_path=tmp_path / "spool.db", max_batch=7)
    try:
        assert second.flush(30, replay=True)
    finally:
        second.close()
        with_ledger.close()
    events = stored(svc)
    assert list(events) == ids or sorted(events) == sorted(ids)
    assert [events[rid].tokens_input for rid in ids] == list(range(1, 31))  # the original events, ids and all
    assert second.stats().replayed == 30 and Spool(tmp_path / "spool.db").pending_count() == 0


def test_close_keeps_what_a_hanging_ledger_holds_in_the_spool(tmp_path: Path) -> None:
    ledger = BlockingLedger()  # never answers until released
    client = UsageClient(ledger.stub.url, SERVER_KEY, spool_path=tmp_path / "spool.db", linger=0.001, timeout=30)
    try:
        first = client.log(user_id="p1", model="gpt-4o")
        assert ledger.arrived.wait(10)
        later = [client.log(user_id="p1", model="gpt-4o") for _ in range(3)]
        client.close(timeout=0.2)
        pending = [row.request_id for row in Spool(tmp_path / "spool.db").oldest(10)]
        assert sorted(pending) == sorted([first, *later])  # the in-flight one too: a resend is a duplicate
    finally:
        ledger.release.set()
        ledger.stub.close()


def test_events_still_queued_at_process_exit_are_kept_in_the_spool(tmp_path: Path) -> None:
    stub = StubLedger(lambda events: (503, {"Retry-After": "60"}, {"error": {"code": "store_unavailable"}}))
    script = textwrap.dedent(f"""
        from ai_usage_client import UsageClient
        client = UsageClient({stub.url!r}, "key", spool_path={str(tmp_path / "spool.db")!r}, linger=5.0)
        for i in range(20):
            client.log(user_id="p1", model="gpt-4o")
        # no flush, no close: atexit drains the queue
    """)
    try:
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=tmp_path)
    finally:
        stub.close()
    assert Spool(tmp_path / "spool.db").pending_count() == 20
