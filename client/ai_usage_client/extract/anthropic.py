"""Anthropic Messages: the one provider whose ``input_tokens`` excludes cache reads and writes.

Field names are those of the ``anthropic`` SDK 2.13.0: ``types/usage.py`` (``input_tokens``,
``cache_read_input_tokens``, ``cache_creation_input_tokens``, ``cache_creation``, ``output_tokens``,
``output_tokens_details``, ``server_tool_use``), ``types/cache_creation.py`` (``ephemeral_5m_input_tokens``,
``ephemeral_1h_input_tokens``), ``types/server_tool_usage.py`` (``web_search_requests``),
``types/output_tokens_details.py`` (``thinking_tokens``, "always ≤ output_tokens") and
``types/message_delta_usage.py`` (a ``message_delta``'s counts are "cumulative"; the SDK's own accumulator,
``lib/streaming/_messages.py``, overwrites with each non-null one rather than adding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._common import base, count, fit, get, put

PROVIDER = "anthropic"


@dataclass(slots=True)
class AnthropicUsage:
    """The raw counts of one message, as reported; :meth:`fields` converts them once, at the end."""

    input: int = 0  # uncached input only: Anthropic's input_tokens excludes cache reads and writes
    cache_read: int = 0
    cache_creation: int | None = None  # all cache writes, 5-minute and 1-hour
    cache_1h: int | None = None  # from cache_creation.ephemeral_1h_input_tokens, when broken down
    output: int = 0
    thinking: int = 0
    web_searches: int = 0

    @classmethod
    def read(cls, usage: Any) -> AnthropicUsage:
        """The counts of a ``Usage`` (a ``Message``'s, or ``message_start``'s) or its dict form."""
        kept = cls()
        kept.update(usage)
        breakdown = get(usage, "cache_creation")
        if breakdown is not None:
            kept.cache_1h = count(get(breakdown, "ephemeral_1h_input_tokens"))
            if kept.cache_creation is None:
                kept.cache_creation = count(get(breakdown, "ephemeral_5m_input_tokens")) + kept.cache_1h
        return kept

    def update(self, usage: Any) -> None:
        """Take every count ``usage`` reports: a ``message_delta``'s counts are totals so far, never increments."""
        if usage is None:
            return
        value = get(usage, "input_tokens")
        if value is not None:
            self.input = count(value)
        value = get(usage, "cache_read_input_tokens")
        if value is not None:
            self.cache_read = count(value)
        value = get(usage, "cache_creation_input_tokens")
        if value is not None:
            self.cache_creation = count(value)
        value = get(usage, "output_tokens")
        if value is not None:
            self.output = count(value)
        details = get(usage, "output_tokens_details")
        if details is not None:
            self.thinking = count(get(details, "thinking_tokens"))
        tools = get(usage, "server_tool_use")
        if tools is not None:
            self.web_searches = count(get(tools, "web_search_requests"))

    def fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The ledger's convention: ``tokens_input`` is the whole prompt, so add the cache reads and writes."""
        written = self.cache_creation or 0
        # The 1-hour share comes from the breakdown; the rest of the writes are 5-minute ones (all of them when
        # the answer has no breakdown, README's table). Taking the rest, not ephemeral_5m, keeps the sum equal to
        # cache_creation_input_tokens even if a later message_delta raised that total.
        one_hour = min(self.cache_1h or 0, written)
        prompt = self.input + self.cache_read + written
        (thinking,) = fit(self.output, self.thinking)
        fields["tokens_input"] = prompt
        fields["tokens_output"] = self.output
        return put(
            fields,
            tokens_cached=self.cache_read,
            tokens_cache_write=written - one_hour,
            tokens_cache_write_1h=one_hour,
            tokens_reasoning=thinking,
            web_searches=self.web_searches,
        )


def message_fields(message: Any, provider: str | None) -> dict[str, Any]:
    """A ``Message`` (``messages.create``), or a stream's final message (``get_final_message()``)."""
    fields = base(get(message, "model"), provider or PROVIDER)
    usage = get(message, "usage")
    return AnthropicUsage.read(usage).fields(fields) if usage is not None else fields
