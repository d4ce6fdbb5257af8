"""``ai-usage serve`` keeps answering while slow clients hold connections open (issue 8, point 4).

Each slow client sends part of a request's headers and then a byte every couple of seconds, as a slowloris
attack does. Under gunicorn's gthread workers (2 workers x 2 threads) a dozen of them stopped the server until
they gave up; the server must keep answering everyone else. The latency itself is printed by
``benchmarks/http_bench.py``; here the normal requests must simply be answered within a generous timeout.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.test_serve_command import serve

SLOW_CLIENTS = 50
TRICKLE_EVERY_SECONDS = 2.0
MAX_TRICKLE_ROUNDS = 30  # bounded: the trickle stops after a minute even if the test never signals it
CLIENT_TIMEOUT_SECONDS = 5.0
KEY = "slow-clients-test-key-0123456789"


@contextmanager
def slow_clients(url: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` loopback connections that each sent a partial header and then trickle one byte at a time."""
    parts = urlsplit(url)
    stop = threading.Event()
    with ExitStack() as stack:
        sockets = []
        for n in range(count):
            sock = stack.enter_context(socket.create_connection((parts.hostname, parts.port), timeout=5))
            sock.sendall(f"GET /v1/users/slow-{n}/requests/today HTTP/1.1\r\nHost: {parts.netloc}\r\nX-Slow: ".encode())
            sockets.append(sock)

        def trickle() -> None:
            for _ in range(MAX_TRICKLE_ROUNDS):
                if stop.wait(TRICKLE_EVERY_SECONDS):
                    return
                for sock in sockets:
                    with suppress(OSError):  # the server may close a client that takes too long: allowed
                        sock.send(b"a")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            yield sockets
        finally:
            stop.set()
            trickler.join(timeout=10)


def test_fifty_slow_clients_do_not_stop_the_server_answering_others(tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    with serve(tmp_path, "--port", "0", "--workers", "2", "--threads", "2", AI_USAGE_API_KEY=KEY) as served:
        assert requests.get(f"{served.url}/healthz", timeout=CLIENT_TIMEOUT_SECONDS).status_code == 200
        with slow_clients(served.url, SLOW_CLIENTS):
            # Each on a new connection, so none rides a connection a worker already holds.
            answers = [
                requests.get(f"{served.url}/v1/users/u/requests/today", headers=auth, timeout=CLIENT_TIMEOUT_SECONDS)
                for _ in range(5)
            ]
            health = requests.get(f"{served.url}/healthz", timeout=CLIENT_TIMEOUT_SECONDS)

    assert [answer.status_code for answer in answers] == [200] * 5
    assert answers[0].json()["count"] == 0
    assert health.json() == {"status": "ok", "store": "reachable"}


@pytest.mark.slow  # waits for the server's header timeout (10 s)
def test_a_slow_client_that_never_finishes_its_headers_is_disconnected_while_others_are_served(
    tmp_path: Path,
) -> None:
    """The server closes a connection whose headers never end instead of holding it forever."""
    with serve(tmp_path, "--port", "0", AI_USAGE_API_KEY=KEY) as served:
        parts = urlsplit(served.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and nothing more
            ok = requests.get(f"{served.url}/healthz", timeout=CLIENT_TIMEOUT_SECONDS)
            closed = sock.recv(4096)  # blocks until the server gives up on the headers (its header timeout)

    assert ok.status_code == 200
    assert b" 200 " not in closed  # closed (perhaps with a 408), never answered as a request
