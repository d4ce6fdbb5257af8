"""The ledger's front: log AI usage events and answer the summaries the game and its admins ask for.

Existing callers keep their names: ``log_usage``, ``get_daily_usage``, ``get_monthly_cost``,
``get_total_daily_cost`` and ``get_user_request_count_today``. Every summary reads rollups, never raw events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import structlog

from models.ai_usage import AIUsageLog, EventPage, FieldError, LogResult, LogStatus, UsageEvent
from models.counters import Counters
from models.summaries import (
    DailyUsageSummary,
    DateRangeUsage,
    GlobalDailyUsage,
    ModelUsage,
    MonthlyUsageSummary,
    SessionUsage,
    UsageSummary,
)
from services import deadlines, summaries
from services.analytics import Analytics
from services.errors import IdempotencyConflict, NotFound, ValidationFailed
from services.pricing import PriceBook, TokenCounts, cost_usd, model_cost_info, nano_to_usd
from services.reprice import RepriceReport, of_tenant, reprice, window
from services.settings import Settings
from services.store import EventFilter, UsageStore, iter_events, open_store
from services.store.rollups import (
    BREAKDOWN_COUNTERS,
    TOTAL_COUNTERS,
    RollupKind,
    detail_breakdowns,
    player_key,
    total_of,
)
from services.tenant_usage import TenantUsage
from services.time_ranges import MAX_RANGE_DAYS, as_day, day_range
from services.usage_events import EventPricer, differing_fields, parse_event

MAX_BATCH_EVENTS = 1000

log = structlog.get_logger("ai_usage")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RequestCount:
    """The rate limiter's answer; ``degraded`` is True when the store failed and 0 was returned."""

    user_id: str
    date: date
    count: int
    degraded: bool


class UsageTrackingService(TenantUsage, Analytics):
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
            raise _invalid("events", f"at most {MAX_BATCH_EVENTS} events per batch")
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

    # -- summaries -------------------------------------------------------------------------------------
    def _utc_day(self, value: object) -> date:
        """The UTC day a summary is for: today by default; a datetime counts by its UTC date."""
        return self.today() if value is None else as_day(value, "date")  # type: ignore[arg-type]

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    def get_daily_usage(
        self, user_id: str, date: date | None = None, tenant_id: str | None = None
    ) -> DailyUsageSummary:
        day = self._utc_day(date)
        by_task = self.store.get_rollups(RollupKind.USER_DAY, player_key(user_id, tenant_id), day.isoformat())
        return summaries.daily_summary(user_id, day, total_of(by_task), by_task)

    def get_monthly_cost(
        self, user_id: str, year: int | None = None, month: int | None = None, tenant_id: str | None = None
    ) -> MonthlyUsageSummary:
        year, month = self._month(year, month)
        rows = self.store.get_rollups(RollupKind.USER_MONTH, player_key(user_id, tenant_id), f"{year:04d}-{month:02d}")
        return summaries.monthly_summary(user_id, year, month, rows.get("", Counters()))

    def _month(self, year: int | None, month: int | None) -> tuple[int, int]:
        today = self.today()
        year = today.year if year is None else year
        month = today.month if month is None else month
        if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12:
            raise _invalid("month", "must be an integer from 1 to 12")
        if not isinstance(year, int) or isinstance(year, bool) or not 1970 <= year <= 9999:
            raise _invalid("year", "must be an integer from 1970 to 9999")
        return year, month

    def get_global_daily_usage(self, date: date | None = None) -> GlobalDailyUsage:
        """Everyone's usage on a UTC day (every tenant), by model, provider and task type."""
        day = self._utc_day(date).isoformat()
        # Totals and providers from every tenant's day rows; models and task types from the detail rows, summing
        # only what a breakdown shows (as the tenant summary does).
        by_provider: dict[str, Counters] = {}
        for (_tenant, _day, provider), values in self.store.sum_rollups(
            RollupKind.TENANT_DAY, None, day, day, TOTAL_COUNTERS
        ).items():
            by_provider[provider] = by_provider.get(provider, Counters()) + Counters(*values)
        detail = self.store.sum_rollups(RollupKind.TENANT_DAY_DETAIL, None, day, day, BREAKDOWN_COUNTERS)
        by = detail_breakdowns(detail, ("model", "task_type"), BREAKDOWN_COUNTERS)
        return summaries.global_daily(
            self._utc_day(date), total_of(by_provider), by["model"], by_provider, by["task_type"]
        )

    def get_total_daily_cost(self, date: date | None = None) -> float:
        """Everyone's cost on a UTC day, in USD (a float, as the replaced service returned)."""
        day = self._utc_day(date).isoformat()
        rows = self.store.sum_rollups(RollupKind.TENANT_DAY, None, day, day, ("cost_nano",))
        return float(nano_to_usd(sum(values[0] for values in rows.values())))

    def request_count_today(self, user_id: str, tenant_id: str | None = None) -> RequestCount:
        """The rate limiter's count. Fail-open and fast: if the store cannot answer within the count deadline
        (``AI_USAGE_COUNT_DEADLINE_MS``), 0 and ``degraded=True``."""
        day = self.today()
        try:
            with deadlines.deadline(self.settings.count_deadline_ms / 1000):
                by_task = self.store.get_rollups(RollupKind.USER_DAY, player_key(user_id, tenant_id), day.isoformat())
        except Exception as exc:  # the game must not stop, or wait, because the ledger is down or slow
            log.warning("rate_limit.count_degraded", user_id=user_id, error=repr(exc))
            return RequestCount(user_id, day, 0, True)
        return RequestCount(user_id, day, sum(c.requests for c in by_task.values()), False)

    def get_user_request_count_today(self, user_id: str, tenant_id: str | None = None) -> int:
        return self.request_count_today(user_id, tenant_id).count

    def get_usage_by_date_range(
        self, user_id: str, start: date, end: date, tenant_id: str | None = None
    ) -> DateRangeUsage:
        """Usage of ``user_id`` from ``start`` to ``end``, both UTC days and both included."""
        start, end = day_range(start, end)
        scope = player_key(user_id, tenant_id)
        rows = self.store.get_rollup_range(RollupKind.USER_DAY, scope, start.isoformat(), end.isoformat())
        by_day: dict[str, Counters] = {}
        by_task: dict[str, Counters] = {}
        for (bucket, task), counters in rows.items():
            by_day[bucket] = by_day.get(bucket, Counters()) + counters
            by_task[task] = by_task.get(task, Counters()) + counters
        total = total_of(by_day)
        return DateRangeUsage(
            user_id=user_id,
            start=start,
            end=end,
            by_day={date.fromisoformat(k): v for k, v in summaries.breakdowns(by_day).items()},
            by_task=summaries.breakdowns(by_task),
            **summaries.totals_fields(total),
        )

    def get_usage_summary(self, user_id: str, days: int = 30, tenant_id: str | None = None) -> UsageSummary:
        """The last ``days`` UTC days, today included, with a per-task breakdown."""
        if not isinstance(days, int) or not 1 <= days <= MAX_RANGE_DAYS:
            raise _invalid("days", f"must be an integer from 1 to {MAX_RANGE_DAYS}")
        end = self.today()
        usage = self.get_usage_by_date_range(user_id, end - timedelta(days=days - 1), end, tenant_id)
        return UsageSummary(days=days, **usage.model_dump())

    def get_usage_by_model(self, user_id: str, model: str, tenant_id: str | None = None) -> ModelUsage:
        by_model = self.store.get_rollups(RollupKind.USER_MODEL, player_key(user_id, tenant_id), "")
        counters = by_model.get(model, Counters())
        return ModelUsage(user_id=user_id, model=model, **summaries.totals_fields(counters))

    def get_user_total_credits(self, user_id: str, tenant_id: str | None = None) -> int:
        """Platform credits this user has been charged over all time (the sum of each event's).

        Sums the user's monthly rollups: one row per month of activity, never the raw events.
        """
        scope = player_key(user_id, tenant_id)
        months = self.store.get_rollup_range(RollupKind.USER_MONTH, scope, "0000-00", "9999-99")
        return total_of(months).platform_credits

    def get_session_usage(self, session_id: str, tenant_id: str | None = None) -> SessionUsage:
        by_task = self.store.get_rollups(RollupKind.SESSION, player_key(session_id, tenant_id), "")
        if not by_task:
            raise NotFound(f"no usage recorded for session {session_id!r}")
        return SessionUsage(
            session_id=session_id, by_task=summaries.breakdowns(by_task), **summaries.totals_fields(total_of(by_task))
        )

    # -- raw events --------------------------------------------------------------------------------------
    def get_event(self, request_id: str, tenant_id: str | None = None) -> AIUsageLog | None:
        return self.store.get_event(request_id, tenant_id)

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


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field=field, message=message)])


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
