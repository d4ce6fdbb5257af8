"""Issue 8.3: the rate limiter's count stays exact and answered while ``ai-usage serve`` takes ingest flat out.

Four threads post batches continuously for about 3 s while another thread keeps asking for one player's count.
Every count must be answered (200) and never degraded, must never go down, and must end equal to the events the
batches stored: the count is read from the rollups each write commits with its events, so it is exact under
load, not only fast. How fast it answers under load is measured by ``benchmarks/http_bench.py`` (its
count-under-ingest phase), never asserted here.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.test_serve_command import serve

API_KEY = "count-under-ingest-key-0123456789"
PLAYER = "player-under-load"
POSTERS = 4
BATCH_EVENTS = 200
LOAD_SECONDS = 3.0
TIMEOUT = 60  # generous: a count may queue behind batches on a busy machine; the benchmark times it


def _batch(poster: int, n: int) -> dict[str, Any]:
    return {
        "events": [
            {
                "request_id": f"load-{poster}-{n}-{i}",
                "user_id": PLAYER,
                "model": "gpt-4o-mini",
                "tokens_input": 100 + i,
                "tokens_output": 10,
            }
            for i in range(BATCH_EVENTS)
        ]
    }


def test_the_count_is_answered_exact_and_never_degraded_while_batches_are_posted(tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    stop = threading.Event()
    stored = [0] * POSTERS
    batch_failures: list[str] = []

    with serve(tmp_path, "--port", "0", AI_USAGE_API_KEY=API_KEY) as served:
        count_url = f"{served.url}/v1/users/{PLAYER}/requests/today"

        def post_batches(poster: int) -> None:
            with requests.Session() as session:
                n = 0
                while not stop.is_set():
                    answer = session.post(f"{served.url}/v1/usage/batch", json=_batch(poster, n), headers=auth,
                                          timeout=TIMEOUT)  # fmt: skip
                    n += 1
                    body = answer.json()
                    if answer.status_code != 200 or body["stored"] != BATCH_EVENTS:
                        batch_failures.append(f"{answer.status_code}: {str(body)[:300]}")
                        return
                    stored[poster] += body["stored"]

        posters = [threading.Thread(target=post_batches, args=(p,)) for p in range(POSTERS)]
        answers: list[tuple[int, dict[str, Any]]] = []
        with requests.Session() as session:
            for poster in posters:
                poster.start()
            try:
                ends = time.monotonic() + LOAD_SECONDS
                while time.monotonic() < ends:
                    answer = session.get(count_url, headers=auth, timeout=TIMEOUT)
                    answers.append((answer.status_code, answer.json()))
            finally:
                stop.set()
                for poster in posters:
                    poster.join()
            final = session.get(count_url, headers=auth, timeout=TIMEOUT)

    assert not batch_failures, batch_failures
    if len({body.get("date") for _, body in answers} | {final.json()["date"]}) > 1:
        pytest.skip("the UTC day changed during the test; the count starts again at midnight")
    assert answers, "no count was answered during the load"
    assert [status for status, _ in answers] == [200] * len(answers)
    assert [body for _, body in answers if body["degraded"]] == []
    counts = [body["count"] for _, body in answers]
    assert counts == sorted(counts), f"the count went down under load: {counts}"
    assert sum(stored) >= POSTERS * BATCH_EVENTS, "the posters stored less than one batch each"
    assert (final.status_code, final.json()["degraded"]) == (200, False)
    assert final.json()["count"] == sum(stored)
    assert counts[-1] <= sum(stored)
