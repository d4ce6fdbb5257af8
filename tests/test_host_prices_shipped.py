"""Issue 9, point 4, the data: the shipped book prices a request by the host that served it.

The lookup rules are tested in ``test_host_pricing.py`` on a book of their own; these tests pin the shipped
book's host entries (``services/data/prices.toml``, section "Hosts"): Cerebras's Llama 3.3 70B at Cerebras's
rate, not Together's; Bedrock and Vertex Claude ids as the host's own prices; hosts without an entry flagged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from services.pricing import PriceBook, TokenCounts, cost_nano
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_tracking_service import UsageTrackingService

NOW = datetime(2026, 11, 24, tzinfo=UTC)
HOST_PROVIDERS = ("cerebras", "groq", "together", "fireworks", "deepinfra", "bedrock", "vertex_ai", "azure")


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


def test_the_issues_example_cerebras_llama_is_priced_by_cerebras_at_its_own_rate(book: PriceBook) -> None:
    match = book.lookup("cerebras/llama-3.3-70b", at=NOW)
    assert (match.rule, match.entry.model_id, match.host) == ("book", "cerebras/llama-3.3-70b", "cerebras")
    counts = TokenCounts(tokens_input=1234, tokens_output=567)
    # Cerebras: $0.85 in, $1.20 out per 1M: 1234 * 850 + 567 * 1200 nano-USD.
    assert cost_nano(match.entry, counts) == 1_048_900 + 680_400 == 1_729_300
    # Before, Together's $0.88 / $0.88 priced it: (1234 + 567) * 880 nano-USD.
    together = book.lookup("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", at=NOW)
    assert (together.rule, together.entry.model_id) == ("book", "together/llama-3.3-70b-instruct")
    assert cost_nano(together.entry, counts) == 1_584_880


def test_the_ledger_stores_cerebras_s_price_and_rule(tmp_path: Path, book: PriceBook) -> None:
    store = SQLiteUsageStore(tmp_path / "usage.db")
    ledger = UsageTrackingService(store, book, clock=lambda: NOW)
    logged = ledger.log_usage(user_id="p", model="cerebras/llama-3.3-70b", tokens_input=1234, tokens_output=567)
    assert (logged.log.price_rule, logged.log.price_version, logged.log.cost_nano) == (
        "book",
        "cerebras/llama-3.3-70b",
        1_729_300,
    )
    assert logged.log.provider == "cerebras"
    store.close()


@pytest.mark.parametrize(
    ("model", "provider", "model_id", "rates"),
    [
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", None, "bedrock/claude-sonnet-4", ("0.003", "0.015")),
        (
            "bedrock/converse/anthropic.claude-sonnet-4-20250514-v1:0",
            None,
            "bedrock/claude-sonnet-4",
            ("0.003", "0.015"),
        ),
        ("eu.anthropic.claude-3-7-sonnet-20250219-v1:0", None, "bedrock/claude-3.7-sonnet", ("0.003", "0.015")),
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", None, "bedrock/claude-opus-4.1", ("0.015", "0.075")),
        ("anthropic.claude-opus-4-20250514-v1:0", None, "bedrock/claude-opus-4", ("0.015", "0.075")),
        ("claude-sonnet-4", "bedrock", "bedrock/claude-sonnet-4", ("0.003", "0.015")),
        ("claude-sonnet-4@20250514", None, "vertex_ai/claude-sonnet-4", ("0.003", "0.015")),
        ("vertex_ai/claude-opus-4-1@20250805", None, "vertex_ai/claude-opus-4.1", ("0.015", "0.075")),
        ("vertex_ai/gemini-2.5-pro", None, "vertex_ai/gemini-2.5-pro", ("0.00125", "0.01")),
        ("gemini-2.5-flash-lite", "vertex_ai", "vertex_ai/gemini-2.5-flash-lite", ("0.0001", "0.0004")),
        ("groq/llama-3.3-70b-versatile", None, "groq/llama-3.3-70b-versatile", ("0.00059", "0.00079")),
        ("groq/llama-3.1-8b-instant", None, "groq/llama-3.1-8b-instant", ("0.00005", "0.00008")),
        (
            "together_ai/meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo",
            None,
            "together/llama-3.1-405b-instruct",
            ("0.0035", "0.0035"),
        ),
        (
            "fireworks_ai/accounts/fireworks/models/llama-v3p3-70b-instruct",
            None,
            "fireworks/llama-3.3-70b-instruct",
            ("0.0009", "0.0009"),
        ),
        (
            "deepinfra/meta-llama/Llama-3.3-70B-Instruct-Turbo",
            None,
            "deepinfra/llama-3.3-70b-instruct-turbo",
            ("0.0001", "0.00032"),
        ),
        ("azure/gpt-4o-2024-11-20", None, "azure/gpt-4o", ("0.0025", "0.01")),
        ("gpt-5-chat", "azure", "azure/gpt-5", ("0.00125", "0.01")),
    ],
)
def test_a_host_with_an_entry_prices_its_own_requests(
    book: PriceBook, model: str, provider: str | None, model_id: str, rates: tuple[str, str]
) -> None:
    match = book.lookup(model, at=NOW, provider=provider)
    assert (match.rule, match.entry.model_id) == ("book", model_id)
    assert (match.entry.input_per_1k, match.entry.output_per_1k) == tuple(map(D, rates))
    assert match.host == model_id.split("/")[0]


def test_bedrock_sonnet_4_keeps_its_long_context_rates(book: PriceBook) -> None:
    entry = book.lookup("us.anthropic.claude-sonnet-4-20250514-v1:0", at=NOW).entry
    long_prompt = TokenCounts(tokens_input=200_001, tokens_output=1000)
    assert cost_nano(entry, long_prompt) == 200_001 * 6000 + 1000 * 22_500  # $6 in, $22.50 out per 1M


@pytest.mark.parametrize(
    ("model", "provider", "reference"),
    [
        ("groq/llama-3.3-70b", None, "meta/llama-3.3-70b-instruct"),  # not Groq's spelling of it
        ("openrouter/meta-llama/llama-3.3-70b-instruct", None, "meta/llama-3.3-70b-instruct"),
        ("llama-3.3-70b", "novita", "meta/llama-3.3-70b-instruct"),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", None, "anthropic/claude-haiku-4.5"),  # regional premium
        ("azure/claude-sonnet-4", None, "anthropic/claude-sonnet-4"),
        ("azure/gpt-5.1", None, "openai/gpt-5.1"),
        ("vertex_ai/gemini-3-pro-preview", None, "google/gemini-3-pro-preview"),
    ],
)
def test_a_host_without_an_entry_still_borrows_the_makers_price_flagged(
    book: PriceBook, model: str, provider: str | None, reference: str
) -> None:
    match = book.lookup(model, at=NOW, provider=provider)
    assert (match.rule, match.entry.model_id) == ("other_host", reference)


@pytest.mark.parametrize(
    ("model", "reference"),
    [
        ("llama-3.3-70b", "meta/llama-3.3-70b-instruct"),
        ("claude-sonnet-4-20250514", "anthropic/claude-sonnet-4"),
        ("gemini-2.5-pro", "google/gemini-2.5-pro"),
        ("gpt-4o", "openai/gpt-4o"),
        ("gpt-5-chat", "openai/gpt-5"),
    ],
)
def test_without_a_host_the_makers_entry_still_prices_it(book: PriceBook, model: str, reference: str) -> None:
    match = book.lookup(model, at=NOW)
    assert (match.rule, match.entry.model_id, match.host) == ("book", reference, None)
    assert book.infer_provider(model) == reference.split("/")[0]


def test_contracts_hold_on_every_host(book: PriceBook) -> None:
    for model in ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet-v2@20241022"):
        match = book.lookup(model, at=NOW)
        assert (match.rule, match.entry.model_id, match.entry.contracted) == (
            "book",
            "anthropic/claude-3.5-sonnet",
            True,
        )


def test_every_host_entry_names_its_source_and_date(book: PriceBook) -> None:
    hosted = [entry for entry in book.entries() if entry.model_id.split("/")[0] in HOST_PROVIDERS]
    assert {entry.model_id.split("/")[0] for entry in hosted} == set(HOST_PROVIDERS)
    for entry in hosted:
        assert entry.source and entry.source_date is not None, entry.model_id
        assert not entry.contracted, entry.model_id
