"""The ledger's front: log AI usage events and answer the summaries the game and its admins ask for.

Existing callers keep their names: ``log_usage``, ``get_daily_usage``, ``get_monthly_cost``,
``get_total_daily_cost`` and ``get_user_request_count_today``. Every summary reads rollups, never raw events:
a player's and everyone's in ``usage_summaries``, a tenant's in ``tenant_usage``, the admins' in ``analytics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import structlog

from models.ai_usage import AIUsageLog, EventPage, FieldError, LogResult, LogStatus, UsageEvent
from services.analytics import Analytics
from services.errors import IdempotencyConflict, ValidationFailed
from services.pricing import PriceBook, TokenCounts, cost_usd, model_cost_info
from services.reprice import RepriceReport, of_tenant, reprice, window
from services.settings import Settings
from services.store import EventFilter, UsageStore, iter_events, open_store
from services.tenant_usage import TenantUsage
from services.time_ranges import invalid
from services.usage_events import EventPricer, differing_fields, parse_event
from services.usage_summaries import UsageSummaries

MAX_BATCH_EVENTS = 1000

log = structlog.get_logger("ai_usage")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class UsageTrackingService(UsageSummaries, TenantUsage, Analytics):
    """Records usage through a ``UsageStore`` and prices it with a ``PriceBook``.

    ``UsageTrackingService()`` builds everything from ``Settings()`` (the environment), as the service it
    replaces did; tests and adapters pass ``store``, ``price_book`` and ``clock`` explicitly.
    """

    def __init__(
        self,
        store: UsageStore | None = None,
        price_book: PriceBook | None = None,
        *,
        clock: Clock = utc_now,
        settings: Settings | None = None,
    ) -> None:
        if settings is None:
            # Read the environment only when something must be built from it; explicit parts need no env.
            needs_env = store is None or price_book is None
            settings = Settings() if needs_env else Settings.model_construct()
        self.settings = settings
        self.store = store if store is not None else open_store(settings)
        self.price_book = price_book if price_book is not None else PriceBook.load(settings.prices_file)
        self.clock = clock
        self._pricer = EventPricer(self.price_book, clock, timedelta(seconds=settings.max_future_skew_seconds))

    # -- logging ---------------------------------------------------------------------------------------
    def log_usage(self, **fields: Any) -> LogResult:
        """Log one AI request. Keyword arguments are the fields of ``UsageEvent``.

        Returns ``LogResult`` with status ``stored``, or ``duplicate`` (and the stored row) when this
        (``tenant_id``, ``request_id``) was logged before with the same billed content; raises
        ``IdempotencyConflict`` when it was logged with other content, ``ValidationFailed`` naming each bad field.
        """
        return self.log_event(parse_event(fields))

    def log_event(self, event: UsageEvent | Mapping[str, Any]) -> LogResult:
        parsed = parse_event(event)
        usage = self._pricer.build(parsed)
        stored = self.store.record([usage])[0]
        line = log.bind(
            request_id=usage.request_id, user_id=usage.user_id, model=usage.model, task_type=usage.task_type.value
        )
        if stored:
            line.info("usage.logged", cost_nano=usage.cost_nano, price_rule=usage.price_rule)
            return LogResult(status=LogStatus.STORED, log=usage)
        result = self._replay(parsed, usage, self.store.get_event(usage.request_id, usage.tenant_id))
        if result.status is LogStatus.CONFLICT:
            line.warning("usage.idempotency_conflict", fields=[error.field for error in result.errors])
            raise IdempotencyConflict(result.errors)
        line.info("usage.duplicate")
        return result

    def log_usage_batch(self, events: Sequence[UsageEvent | Mapping[str, Any]]) -> list[LogResult]:
        """Log many events in one store transaction; one result per event, in order.

        An event that cannot be logged (invalid, or failing in any other way) is rejected on its own and the
        others are stored regardless; a replay with other content is a ``conflict`` and changes nothing.
        """
        if len(events) > MAX_BATCH_EVENTS:
            raise invalid("events", f"at most {MAX_BATCH_EVENTS} events per batch")
        results: list[LogResult | None] = []
        valid: list[tuple[int, UsageEvent, AIUsageLog]] = []
        for index, raw in enumerate(events):
            try:
                event = parse_event(raw)
                valid.append((index, event, self._pricer.build(event)))
                results.append(None)
            except ValidationFailed as exc:
                results.append(LogResult(status=LogStatus.REJECTED, errors=exc.fields))
            except Exception:  # a bug met by one event is that event's rejection, never the whole batch's
                log.exception("usage.event_failed", index=index)
                results.append(LogResult(status=LogStatus.REJECTED, errors=[_UNPROCESSABLE]))
        flags = self.store.record([usage for _, _, usage in valid])
        originals = self._originals([usage for (_, _, usage), stored in zip(valid, flags, strict=True) if not stored])
        for (index, event, usage), stored in zip(valid, flags, strict=True):
            if stored:
                results[index] = LogResult(status=LogStatus.STORED, log=usage)
            else:
                original = originals.get((usage.tenant_id, usage.request_id))
                results[index] = self._replay(event, usage, original)
        done = [r for r in results if r is not None]
        log.info(
            "usage.batch_logged",
            events=len(events),
            **{status.value: sum(r.status is status for r in done) for status in LogStatus},
        )
        return done

    def _originals(self, replays: Sequence[AIUsageLog]) -> dict[tuple[str | None, str], AIUsageLog]:
        """The stored events the replays repeat: one read per tenant, so a retried batch costs what a fresh one does."""
        by_tenant: dict[str | None, list[str]] = {}
        for usage in replays:
            by_tenant.setdefault(usage.tenant_id, []).append(usage.request_id)
        found: dict[tuple[str | None, str], AIUsageLog] = {}
        for tenant_id, request_ids in by_tenant.items():
            for request_id, stored in self.store.get_events(request_ids, tenant_id).items():
                found[(tenant_id, request_id)] = stored
        return found

    @staticmethod
    def _replay(event: UsageEvent, usage: AIUsageLog, stored: AIUsageLog | None) -> LogResult:
        """A duplicate (with the stored row) when the replay bills the same, else a conflict naming the fields.

        The stored row goes back only on a duplicate, whose tenant and user are the replay's own by then.
        """
        if stored is None:  # the store saw the key but cannot read the row back: answer with what was sent
            return LogResult(status=LogStatus.DUPLICATE, log=usage)
        differing = differing_fields(event, usage, stored)
        if differing:
            return LogResult(status=LogStatus.CONFLICT, errors=differing)
        return LogResult(status=LogStatus.DUPLICATE, log=stored)

    # -- raw events --------------------------------------------------------------------------------------
    def get_event(self, request_id: str, tenant_id: str | None = None) -> AIUsageLog | None:
        # A blank tenant_id is the default tenant, as an event logged with one is stored.
        return self.store.get_event(request_id, tenant_id or None)

    def list_events(self, where: EventFilter | None = None, limit: int = 100, cursor: str | None = None) -> EventPage:
        return self.store.list_events(where or EventFilter(), limit=limit, cursor=cursor)

    def iter_events(self, where: EventFilter | None = None, page_size: int = 1000) -> Iterator[AIUsageLog]:
        """Every matching event, page by page, so an export of any size runs in constant memory."""
        return iter_events(self.store, where or EventFilter(), page_size)

    # -- prices (no store needed) --------------------------------------------------------------------------
    def estimate_cost_for_model(self, model: str, tokens_input: int, tokens_output: int) -> float:
        return float(estimate_cost_exact(model, tokens_input, tokens_output, self.price_book, self.clock()))

    def get_model_cost_info(self, model: str) -> dict[str, Any]:
        return model_cost_info(self.price_book.lookup(model, at=self.clock()).entry)

    def close(self) -> None:
        self.store.close()

    # -- repricing (services/reprice.py) --------------------------------------------------------------------
    def reprice(
        self,
        prices_file: str | Path,
        start: datetime | date,
        end: datetime | date,
        user_id: str | None = None,
        tenant_id: str | None = None,
    ) -> RepriceReport:
        """What the events from ``start`` (inclusive) to ``end`` (exclusive, UTC) cost as stored and would cost
        with ``prices_file`` on top of the shipped price book, by model and usage kind. Nothing stored changes."""
        events = of_tenant(self.iter_events(window(start, end, user_id)), tenant_id)
        return reprice(events, PriceBook.load(Path(prices_file)))


_UNPROCESSABLE = FieldError(field="__root__", message="could not be processed; the server log has the details")


@cache
def default_price_book() -> PriceBook:
    return PriceBook.load()


def estimate_cost_exact(
    model: str,
    tokens_input: int,
    tokens_output: int,
    price_book: PriceBook | None = None,
    at: datetime | None = None,
) -> Decimal:
    """Exact USD for a request of this size at the price in force at ``at`` (default: now)."""
    book = price_book or default_price_book()
    entry = book.lookup(model, at=at or utc_now()).entry
    return cost_usd(entry, TokenCounts(tokens_input=tokens_input, tokens_output=tokens_output))


def estimate_cost_for_model(model: str, tokens_input: int, tokens_output: int) -> float:
    """USD for a request of this size with the shipped price book; no store needed."""
    return float(estimate_cost_exact(model, tokens_input, tokens_output))


def get_model_cost_info(model: str) -> dict[str, Any]:
    """``{"input", "output", ...}`` in USD per 1K tokens for a model, with the shipped price book."""
    return model_cost_info(default_price_book().lookup(model, at=utc_now()).entry)
