"""The one interface every backend implements; the service depends on nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

from models.ai_usage import AIUsageLog, EventPage
from models.counters import Counters
from services.store.rollups import RollupKind

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class EventFilter:
    """Which raw events to list; every field narrows the result. ``start`` inclusive, ``end`` exclusive."""

    user_id: str | None = None
    session_id: str | None = None
    model: str | None = None
    start: datetime | None = None
    end: datetime | None = None


class RollupRow(NamedTuple):
    scope: str
    dim: str
    counters: Counters


@runtime_checkable
class UsageStore(Protocol):
    def record(self, logs: Sequence[AIUsageLog]) -> list[bool]:
        """Store events and add them to their rollups, all in one transaction.

        Returns one flag per log, in order: True when stored, False when its idempotency key ``log_id``
        (derived from ``tenant_id`` and ``request_id``) was already stored (earlier, or earlier in this call).
        Either everything is applied or nothing is, so a retry after any failure is safe. Raises ``StoreError``
        when the store cannot answer.
        """
        ...

    def get_event(self, request_id: str, tenant_id: str | None = None) -> AIUsageLog | None:
        """The stored event with this (tenant_id, request_id), or None; None is the default tenant."""
        ...

    def get_events(self, request_ids: Sequence[str], tenant_id: str | None = None) -> dict[str, AIUsageLog]:
        """One tenant's stored events among these request ids, keyed by request id (missing ids are absent)."""
        ...

    def get_rollups(self, kind: RollupKind, scope: str, bucket: str) -> dict[str, Counters]:
        """Every rollup row of one (kind, scope, bucket), keyed by dim ("" for a kind without one)."""
        ...

    def get_rollup_kinds(
        self, kinds: Sequence[RollupKind], scope: str, bucket: str
    ) -> dict[RollupKind, dict[str, Counters]]:
        """``get_rollups`` for several kinds of one (scope, bucket) at once: one round trip for a summary."""
        ...

    def get_rollup_range(
        self, kind: RollupKind, scope: str, first_bucket: str, last_bucket: str
    ) -> dict[tuple[str, str], Counters]:
        """Rollup rows of one kind and scope with ``first_bucket <= bucket <= last_bucket``, by (bucket, dim)."""
        ...

    def sum_rollups(
        self,
        kind: RollupKind,
        scope: str | None,
        first_bucket: str,
        last_bucket: str,
        counters: Sequence[str],
        *,
        by_bucket: bool = True,
        by_dim: bool = True,
    ) -> dict[tuple[str, str, str], tuple[int, ...]]:
        """Rows of one kind with ``first_bucket <= bucket <= last_bucket`` (of one scope; None: every scope),
        keyed by (scope, bucket, dim), holding only these counters (in that order), summed over any shards.
        ``by_bucket=False`` sums each (scope, dim) over the range too, keyed (scope, "", dim): a breakdown over 30
        days then returns one row per dim, not one per day and dim. ``by_dim=False`` sums over the dims, keyed
        (scope, bucket, ""): a series returns one row per bucket, not one per bucket and provider."""
        ...

    def top_rollups(self, kind: RollupKind, scope: str | None, bucket: str, limit: int) -> list[RollupRow]:
        """The ``limit`` rows of one (kind, bucket) with the highest ``cost_nano`` (within one scope; None: every
        scope), highest first, ties by scope and dim. For kinds written unsharded (not ``GLOBAL_KINDS``)."""
        ...

    def list_events(self, where: EventFilter, limit: int = 100, cursor: str | None = None) -> EventPage:
        """One page of raw events in insertion order; ``limit`` is 1..MAX_PAGE_SIZE."""
        ...

    def ping(self) -> None:
        """Raise ``StoreError`` unless the store can answer right now."""
        ...

    def close(self) -> None: ...
