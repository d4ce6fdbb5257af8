"""``track()`` and ``@tracked``: every way a tracked call ends is recorded once, in a real ledger, and the game's
own exception goes on unchanged — cancellations and interrupts included, and awaitables behind sync callables."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ai_usage_client import UsageClient

from services.usage_tracking_service import UsageTrackingService
from tests.test_client_delivery import service, stored

CHAT = {"object": "chat.completion", "model": "gpt-4o-2024-08-06", "choices": [],
        "usage": {"prompt_tokens": 700, "completion_tokens": 300}}  # fmt: skip


@pytest.fixture
def usage(tmp_path: Path) -> Iterator[tuple[UsageClient, UsageTrackingService]]:
    ledger = service(tmp_path / "ledger.db")
    client = UsageClient.in_process(ledger, spool_path=tmp_path / "spool.db", linger=0.005)
    yield client, ledger
    client.close()


def recorded(client: UsageClient, ledger: UsageTrackingService) -> dict[str, Any]:
    assert client.flush(10)
    assert client.spool.dead_count() == 0
    return stored(ledger)


def test_a_tracked_coroutine_cancelled_by_a_timeout_records_a_failed_call(
    usage: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, ledger = usage

    @client.tracked(user_id="p1", model="gpt-4o", request_id="timed-out")
    async def narrate() -> dict[str, Any]:
        await asyncio.sleep(5)  # the provider call, which may be billed however it ends
        return CHAT

    async def game() -> None:
        await asyncio.wait_for(narrate(), timeout=0.05)

    with pytest.raises(TimeoutError):  # wait_for's own, from the CancelledError that went through unchanged
        asyncio.run(game())
    event = recorded(client, ledger)["timed-out"]
    assert (event.success, event.model, event.tokens_input, event.tokens_output) == (False, "gpt-4o", 0, 0)
    assert (event.error_message or "").startswith("CancelledError") and (event.request_duration_ms or 0) >= 40


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt("ctrl-c"), SystemExit(3)])
def test_an_interrupt_in_a_track_block_records_a_failed_call_and_goes_on_unchanged(
    usage: tuple[UsageClient, UsageTrackingService], interrupt: BaseException
) -> None:
    client, ledger = usage
    with pytest.raises(type(interrupt)) as caught, client.track(user_id="p1", request_id="interrupted"):
        raise interrupt
    assert caught.value is interrupt
    event = recorded(client, ledger)["interrupted"]
    message = f"{type(interrupt).__name__}: {interrupt}"
    assert (event.success, event.model, event.error_message) == (False, "unknown", message)


def test_a_generator_closed_inside_a_track_block_records_nothing(
    usage: tuple[UsageClient, UsageTrackingService],
) -> None:
    # GeneratorExit is whoever reads the generator stopping, not the call failing: as leaving the block
    # without record(), nothing is recorded (a failure would count a call that never failed).
    client, ledger = usage

    def lines() -> Iterator[str]:
        with client.track(user_id="p1", model="gpt-4o", request_id="closed") as call:
            yield "thinking..."
            call.record(CHAT)

    reader = lines()
    assert next(reader) == "thinking..."
    reader.close()
    assert "closed" not in recorded(client, ledger)


class Narrator:
    """A provider client wrapper whose ``__call__`` is a coroutine function."""

    async def __call__(self, line: str) -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return CHAT


def test_tracked_awaits_an_object_with_an_async_call_and_records_its_answer(
    usage: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, ledger = usage
    narrate = client.tracked(user_id="p1", request_id="callable")(Narrator())
    assert inspect.iscoroutinefunction(narrate)  # still a coroutine function to whoever asks
    assert asyncio.run(narrate("hello")) is CHAT
    event = recorded(client, ledger)["callable"]
    assert (event.tokens_input, event.tokens_output, event.metadata) == (700, 300, {})
    assert event.request_duration_ms >= 40  # the await timed, not the instant the coroutine was made


def test_tracked_awaits_what_a_sync_callable_hands_back_and_records_it_or_its_failure(
    usage: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, ledger = usage

    async def refuse() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        raise ValueError("refused by the provider")

    answer = client.tracked(user_id="p1", request_id="answered")(lambda: Narrator()("hello"))
    refused = client.tracked(user_id="p2", model="gpt-4o", request_id="refused")(lambda: refuse())
    assert asyncio.run(answer()) is CHAT
    with pytest.raises(ValueError, match="refused"):
        asyncio.run(refused())
    events = recorded(client, ledger)
    assert (events["answered"].tokens_input, events["answered"].metadata) == (700, {})
    assert events["answered"].request_duration_ms >= 40
    assert (events["refused"].success, events["refused"].error_message) == (
        False,
        "ValueError: refused by the provider",
    )


class ProviderError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("broken __str__")  # e.g. an SDK error formatting an attribute it lacks


def test_an_exception_that_cannot_be_written_is_recorded_by_its_type_and_goes_on_unchanged(
    usage: tuple[UsageClient, UsageTrackingService],
) -> None:
    client, ledger = usage
    raised = ProviderError()
    with pytest.raises(ProviderError) as caught, client.track(user_id="p1", model="gpt-4o", request_id="track"):
        raise raised
    assert caught.value is raised

    @client.tracked(user_id="p2", model="gpt-4o", request_id="tracked")
    def narrate() -> None:
        raise ProviderError

    with pytest.raises(ProviderError):
        narrate()
    events = recorded(client, ledger)
    assert [(events[r].success, events[r].error_message) for r in ("track", "tracked")] == [
        (False, "ProviderError"), (False, "ProviderError")
    ]  # fmt: skip


def test_a_failure_that_cannot_be_recorded_as_usual_is_recorded_by_the_exceptions_type(
    usage: tuple[UsageClient, UsageTrackingService], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, ledger = usage

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the client")

    monkeypatch.setattr(client, "failure_event", broken)
    raised = TimeoutError("provider timed out")
    with pytest.raises(TimeoutError) as caught, client.track(user_id="p1", model="gpt-4o", request_id="fallback"):
        raise raised
    assert caught.value is raised
    event = recorded(client, ledger)["fallback"]
    assert (event.success, event.model, event.error_message) == (False, "gpt-4o", "TimeoutError")
