"""``AIUsageLogger`` and ``AIPricingConfig``: the logging guide's calls (OpenAI, Anthropic with caching, Firecrawl).

Called on the class, as the guide does (``AIUsageLogger.log_usage(...)``); each method also takes a keyword-only
``service`` (the ledger), else the facades' default. The conversions, and nothing else:

- ``input_tokens`` is taken in the provider's own convention: Anthropic's excludes cache reads, so the ledger's
  ``tokens_input`` (the whole prompt) is ``input_tokens + cached_tokens`` there; every other provider's prompt
  count (OpenAI's ``prompt_tokens``) already includes its cached tokens.
- ``operation_type`` is the event's ``feature``; ``firecrawl_credits`` its ``credits`` (priced per credit);
  ``request_metadata`` / ``response_metadata`` are kept under those keys of its ``metadata``.
- Platform credits are the ledger's own: ``int(cost_usd * 100)``, from the exact cost.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from models.ai_usage import AIUsageLog
from models.summaries import DateRangeUsage, ModelUsage
from services.compat._service import caller_names, resolve, utc_day
from services.pricing import TokenCounts, canonical_provider, cost_usd
from services.usage_tracking_service import UsageTrackingService

# The price entry of a Firecrawl call when only its credits are known (the guide's calculate_firecrawl_cost).
FIRECRAWL_MODEL = "firecrawl/scrape"

_NAMES = {
    "model": "model_name",
    "feature": "operation_type",
    "tokens_output": "output_tokens",
    "tokens_cached": "cached_tokens",
    "credits": "firecrawl_credits",
    "metadata": "request_metadata / response_metadata",
}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class AIPricingConfig:
    """Prices from the ledger's price book, in USD (a float, as the guide's callers use it)."""

    @classmethod
    def calculate_cost(
        cls, model: str, input_tokens: int, output_tokens: int, *, service: UsageTrackingService | None = None
    ) -> float:
        """USD for a request of this size to ``model`` at today's price (``estimate_cost_for_model``)."""
        return resolve(service).estimate_cost_for_model(model, input_tokens, output_tokens)

    @classmethod
    def calculate_firecrawl_cost(cls, credits_used: int, *, service: UsageTrackingService | None = None) -> float:
        """USD for ``credits_used`` Firecrawl credits at the price book's per-credit rate."""
        ledger = resolve(service)
        entry = ledger.price_book.lookup(FIRECRAWL_MODEL, at=ledger.clock()).entry
        return float(cost_usd(entry, TokenCounts(credits=credits_used)))


class AIUsageLogger:
    """The guide's logger, writing to the ledger; every query answers from the ledger's rollups."""

    @classmethod
    def log_usage(
        cls,
        user_id: str,
        model_name: str,
        provider: str,
        operation_type: str,
        input_tokens: int = 0,
        output_tokens: int = 0,
        request_metadata: dict[str, Any] | None = None,
        response_metadata: dict[str, Any] | None = None,
        cached_tokens: int = 0,
        firecrawl_credits: int | None = None,
        *,
        service: UsageTrackingService | None = None,
    ) -> AIUsageLog:
        """Log one call and return the stored row (its ``estimated_cost_exact`` and ``platform_credits``).

        Bad input raises ``ValidationFailed`` naming this method's arguments; nothing is stored then.
        """
        anthropic = isinstance(provider, str) and canonical_provider(provider) == "anthropic"
        whole_prompt: object = input_tokens
        if anthropic and _is_count(input_tokens) and _is_count(cached_tokens):
            whole_prompt = input_tokens + cached_tokens
        metadata = {
            key: value
            for key, value in (("request_metadata", request_metadata), ("response_metadata", response_metadata))
            if value is not None
        }
        names = {**_NAMES, "tokens_input": "input_tokens + cached_tokens" if anthropic else "input_tokens"}
        with caller_names(names):
            result = resolve(service).log_usage(
                user_id=user_id,
                model=model_name,
                provider=provider,
                feature=operation_type,
                tokens_input=whole_prompt,
                tokens_output=output_tokens,
                tokens_cached=cached_tokens,
                credits=0 if firecrawl_credits is None else firecrawl_credits,
                metadata=metadata,
            )
        return result.log  # type: ignore[return-value]  # stored: a fresh request id is never a duplicate

    @classmethod
    def get_user_total_credits(cls, user_id: str, *, service: UsageTrackingService | None = None) -> int:
        """Platform credits charged to ``user_id`` over all time."""
        return resolve(service).get_user_total_credits(user_id)

    @classmethod
    def get_usage_by_date_range(
        cls,
        user_id: str,
        start_date: date | datetime,
        end_date: date | datetime,
        *,
        service: UsageTrackingService | None = None,
    ) -> DateRangeUsage:
        """Usage from the UTC day of ``start_date`` to that of ``end_date``, both included (a naive datetime is
        read as UTC), with totals, by day and by task type."""
        return resolve(service).get_usage_by_date_range(user_id, utc_day(start_date), utc_day(end_date))

    @classmethod
    def get_usage_by_model(
        cls, user_id: str, model_name: str, *, service: UsageTrackingService | None = None
    ) -> ModelUsage:
        """All-time usage of ``model_name`` (exactly as it was logged) by ``user_id``."""
        return resolve(service).get_usage_by_model(user_id, model_name)
