"""The client's spool: a private file, oldest first, dead letters, the ``ai-usage-client`` command, a full queue
spilling to it, and ``dropped`` only when the spool itself cannot be written."""

from __future__ import annotations

import json
import logging
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from ai_usage_client import Spool, SpoolError, UsageClient
from ai_usage_client.cli import main

from tests.test_client_delivery import Answer, StubLedger, all_stored


def test_the_spool_file_is_private_and_keeps_events_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "data" / "spool.db")
    spool.add([("r1", '{"request_id":"r1"}'), ("r2", '{"request_id":"r2"}')], "test")
    spool.add([("r3", '{"request_id":"r3"}')], "test")
    files = sorted((tmp_path / "data").glob("spool.db*"))  # the -wal and -shm files hold events too
    assert [f.name for f in files] == ["spool.db", "spool.db-shm", "spool.db-wal"]
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    assert [row.request_id for row in spool.oldest(2)] == ["r1", "r2"]
    first, _, third = spool.oldest(10)
    spool.settle([first.seq], [(third.seq, "conflict", [{"field": "model", "message": "differs"}])])
    assert [row.request_id for row in spool.oldest(10)] == ["r2"]
    [letter] = spool.dead_letters()
    assert (letter.request_id, letter.status, letter.event) == ("r3", "conflict", {"request_id": "r3"})
    spool.close()
    reopened = Spool(tmp_path / "data" / "spool.db")  # durable: another process sees the same rows
    assert (reopened.pending_count(), reopened.dead_count()) == (1, 1)


def test_a_spool_that_cannot_be_opened_is_a_spool_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(SpoolError, match=r"dir\.db"):
        Spool(tmp_path / "dir.db")


def dead_letter_spool(path: Path) -> Spool:
    spool = Spool(path)
    body = {"request_id": "bad-1", "user_id": "p1", "model": "gpt-4o", "tokens_input": -1}
    spool.add_dead("bad-1", json.dumps(body), "rejected", [{"field": "tokens_input", "message": "must be >= 0"}])
    spool.add_dead("bad-2", json.dumps({**body, "request_id": "bad-2"}), "rejected", [])
    return spool


def test_the_command_lists_dead_letters_as_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead_letter_spool(tmp_path / "spool.db").close()
    assert main(["dead-letters", "--spool", str(tmp_path / "spool.db")]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 2 and '"bad-1"' in text[0] and "tokens_input: must be >= 0" in text[0]
    assert main(["dead-letters", "list", "--spool", str(tmp_path / "spool.db"), "--json", "--limit", "1"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["request_id"], row["status"], row["event"]["tokens_input"]) == ("bad-1", "rejected", -1)
    assert row["errors"] == [{"field": "tokens_input", "message": "must be >= 0"}]


def test_the_command_retries_or_purges_dead_letters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "spool.db")
    dead_letter_spool(tmp_path / "spool.db").close()
    assert main(["dead-letters", "retry", "--spool", path, "--request-id", "bad-2"]) == 0
    assert main(["dead-letters", "purge", "--spool", path, "--all"]) == 0
    assert main(["status", "--spool", path, "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["moved 1 dead letter(s) back to pending", "purged 1 dead letter(s)"]
    assert json.loads(out[2]) == {"pending": 1, "dead_letters": 0}
    spool = Spool(path)
    assert [row.request_id for row in spool.oldest(10)] == ["bad-2"]  # the next client sends it again


def test_the_command_refuses_a_missing_spool_or_action_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dead-letters", "--spool", str(tmp_path / "nope.db")]) == 2
    assert "--spool: no such file" in capsys.readouterr().err
    dead_letter_spool(tmp_path / "spool.db").close()
    with pytest.raises(SystemExit) as exited:
        main(["dead-letters", "purge", "--spool", str(tmp_path / "spool.db")])  # neither --request-id nor --all
    assert exited.value.code == 2


class BlockingLedger:
    """Holds every batch until ``release`` is set, then stores it; ``arrived`` is set by the first batch."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.stub = StubLedger(self.answer)

    def answer(self, events: list[dict[str, Any]]) -> Answer:
        self.arrived.set()
        self.release.wait(30)
        return all_stored(events)


def test_a_full_queue_spills_to_the_spool_without_waiting_and_everything_is_delivered_once(tmp_path: Path) -> None:
    ledger = BlockingLedger()
    client = UsageClient(ledger.stub.url, "key", spool_path=tmp_path / "spool.db", max_queue=5, linger=0.001)
    try:
        first = client.log(user_id="p", model="m")
        assert ledger.arrived.wait(10)  # the sender is now held inside its first request
        rest = [client.log(user_id="p", model="m") for _ in range(50)]
        stats = client.stats()
        assert (stats.queued, stats.spooled) == (51, 45)  # 5 wait in the queue, 45 went to the spool
        ledger.release.set()
        assert client.flush(10, replay=True)
        delivered = [event["request_id"] for batch in ledger.stub.batches for event in batch]
        assert sorted(delivered) == sorted([first, *rest])  # each once
        stats = client.stats()
        # The 5 queued ones joined the spool behind the 45 (oldest first), and all 50 were replayed.
        assert (stats.sent, stats.spooled, stats.replayed, stats.dropped) == (51, 50, 50, 0)
    finally:
        ledger.release.set()
        client.close()
        ledger.stub.close()


def test_events_are_dropped_and_logged_as_errors_only_when_the_spool_cannot_be_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = StubLedger(lambda events: (503, {}, {"error": {"code": "store_unavailable"}}))
    client = UsageClient(stub.url, "key", spool_path=tmp_path / "spool.db", linger=0.001)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise SpoolError("disk full")

    try:
        monkeypatch.setattr(client.spool, "add", broken)
        with caplog.at_level(logging.ERROR, logger="ai_usage_client"):
            request_id = client.log(user_id="p", model="m")
            assert client.flush(10)
        stats = client.stats()
        assert (stats.queued, stats.spooled, stats.dropped) == (1, 0, 1)
        assert "dropped" in caplog.text and request_id in caplog.text
    finally:
        client.close()
        stub.close()
