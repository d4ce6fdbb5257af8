"""Retries for Appwrite calls: exponential backoff with full jitter, bounded by a time budget.

What is worth retrying: 429 (rate limit), 408 and 5xx (the server or a proxy failed), code 0 (the SDK's
network failure: refused, reset, timed out, answer lost) and 409 ``transaction_conflict`` (another writer
touched a row this transaction updates; the whole write is redone). Everything else is a definite answer
and is raised at once. When the budget is spent the last failure is raised as ``StoreError`` with a
``retry_after`` hint, chained to the ``AppwriteException`` that caused it.

The budget bounds the attempts' own time too, not only the sleeps between them: while an operation runs
(``RetryPolicy.call``, or ``with policy.start(...) as backoff:``) its deadline is the ambient
``services.deadlines`` deadline, and ``TimeoutClient`` cuts off any request still running when it passes,
even one whose server is still trickling bytes. A caller's own tighter ``deadline(...)`` caps the budget.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

from appwrite.exception import AppwriteException

from services import deadlines
from services.errors import StoreError

T = TypeVar("T")

TRANSACTION_CONFLICT = "transaction_conflict"
# The type of the AppwriteException TimeoutClient raises when the deadline passed before or during a request.
DEADLINE_EXCEEDED = "deadline_exceeded"


def is_ambiguous(exc: AppwriteException) -> bool:
    """The request may or may not have been executed: the answer was lost or the server failed midway."""
    return exc.code == 0 or exc.code == 408 or (isinstance(exc.code, int) and exc.code >= 500)


def is_transient(exc: AppwriteException) -> bool:
    """Trying again later may succeed."""
    return is_ambiguous(exc) or exc.code == 429 or exc.type == TRANSACTION_CONFLICT


def describe(exc: AppwriteException) -> str:
    kind = f" {exc.type}" if exc.type else ""
    code = "network error" if exc.code == 0 else f"HTTP {exc.code}"
    return f"{code}{kind}: {exc.message}"


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying and how to space the attempts (delays in seconds)."""

    budget_seconds: float = 8.0
    base_delay: float = 0.05
    max_delay: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def start(self, what: str) -> Backoff:
        return Backoff(self, what)

    def call(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action``, retrying transient failures, all within the budget; any failure ends as ``StoreError``."""
        with self.start(what) as backoff:
            while True:
                try:
                    return action()
                except AppwriteException as exc:
                    backoff.after(exc)


class Backoff:
    """One operation's retry state: attempts so far and the deadline they share.

    The budget is the policy's, or less when the caller's ``deadlines.deadline`` leaves less time. Used as a
    context manager it also makes that deadline the ambient one, so every request inside is cut off by it.
    """

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy = policy
        self.what = what
        self.attempts = 0
        self.budget = deadlines.within(policy.budget_seconds)
        self.deadline = policy.clock() + self.budget
        self._scope = ExitStack()

    def __enter__(self) -> Backoff:
        self._scope.enter_context(deadlines.deadline(self.budget))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._scope.close()

    def after(self, exc: AppwriteException) -> None:
        """Sleep before the next attempt, or raise ``StoreError`` if ``exc`` is final or time is up."""
        if not is_transient(exc):
            raise self.final(exc) from exc
        self.wait(exc)

    def final(self, exc: AppwriteException) -> StoreError:
        """The ``StoreError`` for an answer that retrying cannot change (raise it ``from exc``)."""
        return StoreError(f"Appwrite {self.what} failed: {describe(exc)}")

    def wait(self, exc: AppwriteException) -> None:
        """Sleep before the next attempt of a transient failure, or raise ``StoreError`` when time is up."""
        policy = self.policy
        ceiling = min(policy.max_delay, policy.base_delay * 2**self.attempts)
        delay = policy.rng.uniform(0, ceiling)  # full jitter: writers that collided do not collide again
        self.attempts += 1
        left = deadlines.remaining()  # the ambient deadline: this operation's, or a tighter one set inside it
        out_of_time = policy.clock() + delay > self.deadline or (left is not None and delay >= left)
        if out_of_time or exc.type == DEADLINE_EXCEEDED:
            raise StoreError(
                f"Appwrite {self.what} failed after {self.attempts} attempt(s) in {self.budget:.3g}s: {describe(exc)}",
                retry_after=max(1.0, ceiling),
            ) from exc
        policy.sleep(delay)
