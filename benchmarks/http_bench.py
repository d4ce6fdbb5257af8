"""HTTP benchmark: ``ai-usage serve`` on loopback against a store seeded with N events.

    .venv/bin/python benchmarks/http_bench.py               # 1,000,000 events (a few minutes to seed)
    .venv/bin/python benchmarks/http_bench.py --events 100000 --duration 5

Prints POST /v1/usage requests/s with p50/p99, GET /v1/users/{id}/requests/today p50/p99, the same calls
made in-process (service only, and through ``dispatch`` without a socket) for the ratio, the GET's latency
while 50 slow clients trickle their headers, and the GET's latency while ingest runs flat out on other
connections (1,000-event batches and single events). Targets: POST >= 1,500 req/s with p99 < 10 ms; GET
p99 < 5 ms (issue 3); with 50 slow clients open, a request is still answered in under 1 s (issue 8); under
ingest load every count is answered within 1 s and not degraded (issue 8.3). Figures are printed, never
asserted. ``--only-count-under-ingest --duration 5`` runs the last phase alone.

The load generator is a small keep-alive HTTP/1.1 client on raw sockets, one thread per connection, in
separate processes so its own CPU use stays off the server's interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

API_KEY = "bench-key-0123456789abcdef"
USERS = 10_000
SESSIONS = 100_000
MODELS = ("gpt-4o", "gpt-4o-mini", "anthropic/claude-3.5-sonnet", "gemini-1.5-pro")
TASKS = ("story_progression", "combat_narration", "quest_selection", "npc_dialogue", "general")
SEED_BATCH = 1000


# -- seeding ---------------------------------------------------------------------------------------------------
def random_event(request_id: str, rnd: random.Random) -> dict[str, Any]:
    """One game AI request as the backend would log it: the same shape for seeding, HTTP and in-process calls."""
    return {
        "request_id": request_id,
        "user_id": f"player-{rnd.randrange(USERS):05d}",
        "model": rnd.choice(MODELS),
        "task_type": rnd.choice(TASKS),
        "tokens_input": rnd.randrange(100, 4000),
        "tokens_output": rnd.randrange(10, 1000),
        "session_id": f"session-{rnd.randrange(SESSIONS)}",
    }


def seed(db_path: Path, events: int) -> float:
    """Store ``events`` events over the last 30 days through ``log_usage_batch``; returns seconds taken."""
    from services.pricing import PriceBook
    from services.settings import Settings
    from services.store.sqlite_store import SQLiteUsageStore
    from services.usage_tracking_service import UsageTrackingService

    service = UsageTrackingService(SQLiteUsageStore(db_path), PriceBook.load(), settings=Settings(db_path=db_path))
    rnd = random.Random(7)
    now = datetime.now(UTC) - timedelta(minutes=1)
    started = time.perf_counter()
    for first in range(0, events, SEED_BATCH):
        batch = [
            {
                **random_event(f"seed-{n}", rnd),
                "timestamp": (now - timedelta(seconds=rnd.randrange(30 * 86400))).isoformat(),
            }
            for n in range(first, min(first + SEED_BATCH, events))
        ]
        service.log_usage_batch(batch)
        done = first + len(batch)
        if done % 100_000 == 0 or done == events:
            print(f"  seeded {done:>9,} events ({time.perf_counter() - started:6.1f} s)", flush=True)
    service.close()
    return time.perf_counter() - started


# -- the load generator ------------------------------------------------------------------------------------------
class Connection:
    """A keep-alive HTTP/1.1 connection that sends prepared requests and reads Content-Length answers."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock = self._connect()
        self.buffer = b""
        self.body = b""  # the last answer's body

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _fill(self) -> None:
        chunk = self.sock.recv(262_144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def request(self, data: bytes) -> int:
        try:
            return self._exchange(data)
        except TimeoutError:  # the caller's limit, not a dropped connection: a resend would time the wrong thing
            raise
        except (ConnectionError, OSError):  # the server dropped an idle keep-alive connection: reconnect once
            self.sock.close()
            self.sock, self.buffer = self._connect(), b""
            return self._exchange(data)

    def _exchange(self, data: bytes) -> int:
        self.sock.sendall(data)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = self.buffer[:end].decode("latin-1")
        length = int(re.search(r"(?im)^content-length:\s*(\d+)", head)[1])  # type: ignore[index]
        while len(self.buffer) < end + 4 + length:
            self._fill()
        self.body, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
        return int(head[9:12])


def _post_request(host: str, tag: str, n: int, rnd: random.Random) -> bytes:
    body = json.dumps(random_event(f"bench-{tag}-{n}", rnd)).encode()
    return (
        f"POST /v1/usage HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _get_request(host: str, tag: str, n: int, rnd: random.Random) -> bytes:
    user = f"player-{rnd.randrange(USERS):05d}"
    return (
        f"GET /v1/users/{user}/requests/today HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}\r\n\r\n"
    ).encode()


BATCH_EVENTS = 1000


def _batch_request(host: str, tag: str, n: int, rnd: random.Random) -> bytes:
    events = [random_event(f"bench-{tag}-{n}-{i}", rnd) for i in range(BATCH_EVENTS)]
    body = json.dumps({"events": events}).encode()
    return (
        f"POST /v1/usage/batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


REQUESTS: dict[str, Callable[[str, str, int, random.Random], bytes]] = {
    "post": _post_request,
    "get": _get_request,
    "batch": _batch_request,
}
# A GET not answered within this is given up on (and counted as unanswered) so a phase always ends.
GIVE_UP_SECONDS = 5.0


def _client_process(
    kind: str, host: str, port: int, threads: int, seconds: float, tag: str, out: Any, start_at: float = 0.0
) -> None:
    """Closed loop: each thread sends its next request as soon as the last answer arrived.

    Puts (kind, latencies in ns, answers >= 300, answers saying ``degraded: true``, requests given up) on ``out``.
    ``start_at`` is a ``time.monotonic()`` instant (one clock for every process on Linux), so processes of
    several kinds can time the same window; by default the clients start 0.2 s from now.
    """
    latencies: list[list[int]] = [[] for _ in range(threads)]
    errors, degraded, given_up = [0] * threads, [0] * threads, [0] * threads
    start_at = start_at or time.monotonic() + 0.2
    stop_at = start_at + seconds

    def run(index: int) -> None:
        rnd = random.Random(f"{tag}-{index}")
        connection = Connection(host, port)
        connection.sock.settimeout(GIVE_UP_SECONDS)
        build = REQUESTS[kind]
        n = 0
        while time.monotonic() < start_at:
            time.sleep(0.001)
        while time.monotonic() < stop_at:
            data = build(f"{host}:{port}", f"{tag}-{index}", n, rnd)
            n += 1
            began = time.perf_counter_ns()
            try:
                status = connection.request(data)
            except TimeoutError:  # the answer may still come: start again on a new connection
                given_up[index] += 1
                connection.sock.close()
                connection = Connection(host, port)
                connection.sock.settimeout(GIVE_UP_SECONDS)
                continue
            latencies[index].append(time.perf_counter_ns() - began)
            errors[index] += status >= 300
            degraded[index] += b'"degraded":true' in connection.body
        connection.sock.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put((kind, [x for per_thread in latencies for x in per_thread], sum(errors), sum(degraded), sum(given_up)))


@dataclass
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self, label: str) -> str:
        return (f"{label:<44} {self.rate:>9,.0f} req/s   p50 {self.p50_ms:7.3f} ms   p99 {self.p99_ms:7.3f} ms"
                + (f"   errors {self.errors}" if self.errors else ""))  # fmt: skip


def _figures(latencies_ns: list[int], seconds: float, errors: int = 0) -> Figures:
    ordered = sorted(latencies_ns)
    quantiles = statistics.quantiles(ordered, n=100, method="inclusive")
    return Figures(len(ordered), seconds, quantiles[49] / 1e6, quantiles[98] / 1e6, errors)


def load(kind: str, url: str, processes: int, threads: int, seconds: float, tag: str) -> Figures:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    clients = [
        context.Process(target=_client_process, args=(kind, host, int(port), threads, seconds, f"{tag}{p}", out))
        for p in range(processes)
    ]
    for client in clients:
        client.start()
    results = [out.get() for _ in clients]
    for client in clients:
        client.join()
    latencies = [x for _, lat, *_ in results for x in lat]
    return _figures(latencies, seconds, sum(errors for _, _, errors, *_ in results))


# -- slow clients ----------------------------------------------------------------------------------------------------
def slow_clients(url: str, slow: int, requests: int, timeout: float = 5.0) -> tuple[list[float], int]:
    """Latencies (ms) of ``requests`` GETs, each on a new connection, while ``slow`` connections trickle headers.

    Each slow connection sends part of a request's headers, then one byte every 2 s (slowloris), and stays
    open for the whole phase. A GET not answered within ``timeout`` seconds counts as failed.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stop = threading.Event()
    held = [socket.create_connection((host, int(port)), timeout=timeout) for _ in range(slow)]
    for n, sock in enumerate(held):
        sock.sendall(f"GET /v1/users/slow-{n}/requests/today HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())

    def trickle() -> None:
        while not stop.wait(2.0):
            for sock in held:
                with contextlib.suppress(OSError):  # the server may close a client that is too slow
                    sock.send(b"a")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    rnd, latencies, failed = random.Random(5), [], 0
    try:
        time.sleep(0.5)  # let the server take the slow connections first, as it would in an attack
        for n in range(requests):
            data = _get_request(f"{host}:{port}", "slow", n, rnd)
            began = time.perf_counter()
            connection = None
            try:
                connection = Connection(host, int(port))
                connection.sock.settimeout(timeout)
                if connection._exchange(data) == 200:
                    latencies.append((time.perf_counter() - began) * 1000)
                else:
                    failed += 1
            except OSError:  # includes the timeout
                failed += 1
            finally:
                if connection is not None:
                    connection.sock.close()
    finally:
        stop.set()
        trickler.join()
        for sock in held:
            sock.close()
    return latencies, failed


# -- the count under ingest load (issue 8.3) ----------------------------------------------------------------------
@dataclass
class CountFigures:
    """The count GET's latencies, how many said ``degraded: true``, how many were given up on."""

    latencies_ns: list[int]
    degraded: int
    given_up: int

    def line(self, label: str) -> str:
        answered = sorted(self.latencies_ns)
        total = len(answered) + self.given_up
        if not answered:
            return f"{label:<58} no answer of {total}"
        p50, p99 = (statistics.quantiles(answered, n=100, method="inclusive")[q] / 1e6 for q in (49, 98))
        late = sum(x > 1e9 for x in answered) + self.given_up
        worst = answered[-1] / 1e6
        return (f"{label:<58} {total:>6,} GETs   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max {worst:7.1f} ms"
                f"   degraded {self.degraded / total:6.2%}   over 1 s {late / total:6.2%}")  # fmt: skip


def count_under_ingest(
    url: str, seconds: float, batch_connections: int, single_connections: int, count_connections: int
) -> tuple[CountFigures, CountFigures, dict[str, tuple[int, int]]]:
    """The count GET alone, then while batches of 1,000 and single events are posted flat out on other connections.

    Each kind of client is its own process; ingest starts 1 s before the GETs are timed and runs 0.5 s past them,
    so every timed GET meets full ingest load. Returns the GET alone, the GET under load, and per ingest kind
    (answers, answers >= 300).
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    context = multiprocessing.get_context("spawn")

    def run(kinds: list[tuple[str, int, float, float]]) -> list[tuple[Any, ...]]:
        out, now = context.Queue(), time.monotonic() + 1.0  # spawning a process takes a few hundred ms
        clients = [
            context.Process(target=_client_process, args=(kind, host, int(port), n, secs, f"ci-{kind}", out, now + at))
            for kind, n, at, secs in kinds
            if n
        ]
        for client in clients:
            client.start()
        results = [out.get() for _ in clients]
        for client in clients:
            client.join()
        return results

    def counted(results: list[tuple[Any, ...]]) -> CountFigures:
        _, latencies, _, degraded, given_up = next(r for r in results if r[0] == "get")
        return CountFigures(latencies, degraded, given_up)

    alone = counted(run([("get", count_connections, 0.0, seconds / 2)]))
    loaded = run([
        ("batch", batch_connections, 0.0, seconds + 1.5),
        ("post", single_connections, 0.0, seconds + 1.5),
        ("get", count_connections, 1.0, seconds),
    ])  # fmt: skip
    ingest = {kind: (len(latencies), errors) for kind, latencies, errors, *_ in loaded if kind != "get"}
    return alone, counted(loaded), ingest


def print_count_under_ingest(
    figures: tuple[CountFigures, CountFigures, dict[str, tuple[int, int]]], seconds: float, connections: tuple[int, ...]
) -> None:
    alone, loaded, ingest = figures
    batches, singles, gets = connections
    print(alone.line(f"HTTP   GET  .../requests/today ({gets} conns), no load"))
    print(loaded.line(f"HTTP   GET  .../requests/today ({gets} conns), under ingest"))
    window = seconds + 1.5
    done = {kind: f"{n / window:,.1f} req/s" + (f" ({errors} answered >= 300)" if errors else "")
            for kind, (n, errors) in ingest.items()}  # fmt: skip
    print(f"       ingest meanwhile: {batches} conns of {BATCH_EVENTS:,}-event batches {done.get('batch', '-')}, "
          f"{singles} conns of single POSTs {done.get('post', '-')}")  # fmt: skip
    late = sum(x > 1e9 for x in loaded.latencies_ns) + loaded.given_up
    met = "met" if not late and not loaded.degraded and loaded.latencies_ns else "NOT met"
    print(f"Target (issue 8.3): under ingest load every count answered within 1 s and not degraded: {met}")


# -- the server ------------------------------------------------------------------------------------------------------
def start_server(
    data: Path, workers: int | None, threads: int | None, log_level: str
) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_USAGE_", "APPWRITE_"))}
    env.update(AI_USAGE_DB_PATH=str(data / "usage.db"), AI_USAGE_API_KEY=API_KEY, AI_USAGE_LOG_FORMAT="json",
               AI_USAGE_LOG_LEVEL=log_level)  # fmt: skip
    command = [str(Path(sys.executable).with_name("ai-usage")), "serve", "--port", "0"]
    command += ["--workers", str(workers)] if workers else []
    command += ["--threads", str(threads)] if threads else []
    log = (data / "server.log").open("w")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the server exited; see {data / 'server.log'}")
            if match := re.search(r"Listening on (http://\S+)", line):
                return process, match[1]
    raise RuntimeError("the server printed no URL within 60 s")


# -- in-process ----------------------------------------------------------------------------------------------------
def in_process(db_path: Path, seconds: float, log_path: Path) -> dict[str, Figures]:
    """The same two calls without HTTP: the service alone, then the HTTP core (``dispatch``) without a socket."""
    import structlog

    from functions.http_api import ApiApp, ApiRequest, dispatch
    from services.log_config import configure_logging
    from services.settings import Settings

    log_file = log_path.open("a")
    configure_logging("json", "INFO", force=True)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=log_file))
    app = ApiApp.from_settings(Settings(db_path=db_path, api_key=API_KEY))
    service = app.service
    rnd = random.Random(11)
    counter = iter(range(10**9))

    def event() -> dict[str, Any]:
        return random_event(f"inproc-{next(counter)}", rnd)

    def user() -> str:
        return f"player-{rnd.randrange(USERS):05d}"

    headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    calls: dict[str, Callable[[], object]] = {
        "service.log_usage": lambda: service.log_usage(**event()),
        "dispatch POST /v1/usage": lambda: dispatch(
            ApiRequest("POST", "/v1/usage", {}, headers, json.dumps(event()).encode()), app
        ),
        "service.request_count_today": lambda: service.request_count_today(user()),
        "dispatch GET requests/today": lambda: dispatch(
            ApiRequest("GET", f"/v1/users/{user()}/requests/today", {}, headers), app
        ),
    }
    results = {}
    for label, call in calls.items():
        latencies = []
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            t0 = time.perf_counter_ns()
            call()
            latencies.append(time.perf_counter_ns() - t0)
        results[label] = _figures(latencies, time.perf_counter() - began)
    app.close()
    log_file.close()
    return results


SLOW_PHASE_REQUESTS = 10


def print_slow_clients(latencies: list[float], failed: int, slow: int) -> None:
    answered = f"{len(latencies)} of {len(latencies) + failed} answered within 5 s"
    worst = f"; p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms" if latencies else ""
    met = "met" if not failed and max(latencies) < 1000 else "NOT met"
    print(f"HTTP   GET  .../requests/today, new connection each, {slow} slow clients open: {answered}{worst} "
          f"(target: under 1 s: {met})")  # fmt: skip


# -- main -------------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to seed (default 1,000,000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per client process")
    parser.add_argument("--client-processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--workers", type=int, default=None, help="server worker processes (default: serve's)")
    parser.add_argument("--threads", type=int, default=None, help="threads per server worker (default: serve's)")
    parser.add_argument("--log-level", default="INFO", help="server log level (its log goes to a file)")
    parser.add_argument("--data", type=Path, default=None, help="reuse (or keep) a seeded data directory")
    parser.add_argument("--slow-clients", type=int, default=50, help="slowloris connections in the last phase")
    parser.add_argument("--only-slow-clients", action="store_true", help="run only the slow-client phase")
    parser.add_argument(
        "--ingest",
        type=int,
        nargs=3,
        default=(4, 4, 2),
        metavar=("BATCH", "SINGLE", "COUNT"),
        help="count-under-ingest phase: batch, single-POST and count GET connections (default 4 4 2)",
    )
    parser.add_argument("--only-count-under-ingest", action="store_true", help="run only the count-under-ingest phase")
    args = parser.parse_args()

    data = args.data or Path(tempfile.mkdtemp(prefix="ai-usage-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    db_path = data / "usage.db"
    from services.log_config import configure_logging

    configure_logging("json", "WARNING")
    if not db_path.exists():
        print(f"Seeding {args.events:,} events into {db_path} ...", flush=True)
        seconds = seed(db_path, args.events)
        print(f"Seeded in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)")
    from services.cli.serve_command import DEFAULT_WORKERS

    shown = f"--workers {args.workers or DEFAULT_WORKERS} --threads {args.threads or 2}"
    print(f"Server: ai-usage serve {shown}; load: "
          f"{args.client_processes} process(es) x {args.connections} keep-alive connections, "
          f"{args.duration:.0f} s per phase; {os.cpu_count()} CPUs")  # fmt: skip
    server, url = start_server(data, args.workers, args.threads, args.log_level)
    if args.only_slow_clients or args.only_count_under_ingest:
        try:
            if args.only_slow_clients:
                print_slow_clients(*slow_clients(url, args.slow_clients, SLOW_PHASE_REQUESTS), args.slow_clients)
            if args.only_count_under_ingest:
                counts = count_under_ingest(url, args.duration, *args.ingest)
                print_count_under_ingest(counts, args.duration, args.ingest)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        return
    try:
        load("post", url, 1, 1, 1.0, "warm")  # first requests open connections and warm the caches
        post = load("post", url, args.client_processes, args.connections, args.duration, "post")
        get = load("get", url, args.client_processes, args.connections, args.duration, "get")
        # One connection, one request at a time: the cost of a request without queueing behind others.
        post_alone = load("post", url, 1, 1, args.duration / 2, "post-alone")
        get_alone = load("get", url, 1, 1, args.duration / 2, "get-alone")
        slow = slow_clients(url, args.slow_clients, SLOW_PHASE_REQUESTS)
        counts = count_under_ingest(url, args.duration, *args.ingest)  # last: it adds many events
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    local = in_process(db_path, min(args.duration, 5.0), data / "in-process.log")

    print()
    connections = args.connections * args.client_processes
    print(post.line(f"HTTP   POST /v1/usage ({connections} conns)"))
    print(get.line(f"HTTP   GET  .../requests/today ({connections} conns)"))
    print(post_alone.line("HTTP   POST /v1/usage (1 conn)"))
    print(get_alone.line("HTTP   GET  .../requests/today (1 conn)"))
    for label, figures in local.items():
        print(figures.line(f"local  {label}"))
    print_slow_clients(*slow, args.slow_clients)
    print_count_under_ingest(counts, args.duration, args.ingest)
    service_post, service_get = local["service.log_usage"], local["service.request_count_today"]
    print()
    pairs = (("POST", post, post_alone, service_post), ("GET ", get, get_alone, service_get))
    for name, loaded, alone, service in pairs:
        print(f"{name}: one HTTP request costs {alone.p50_ms / service.p50_ms:.1f}x the in-process call (p50, "
              f"{alone.p50_ms * 1000:.0f} vs {service.p50_ms * 1000:.0f} us); HTTP throughput with {connections} "
              f"connections is {loaded.rate / service.rate:.2f}x one in-process caller's")  # fmt: skip
    post_ok = post.rate >= 1500 and post.p99_ms < 10
    print(f"Targets: POST >= 1,500 req/s and p99 < 10 ms: {'met' if post_ok else 'NOT met'}; "
          f"GET p99 < 5 ms: {'met' if get.p99_ms < 5 else 'NOT met'}")  # fmt: skip
    if args.data is None:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
