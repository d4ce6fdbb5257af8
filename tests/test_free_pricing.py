"""Issue 8, point 7: pricing cannot be switched off by a hint.

Only the model id makes a request free: a local runtime's prefix (``ollama/``...) or an OpenRouter ``:free`` id.
A ``provider`` argument never zeroes a priced id, a contracted model is never free, and every match names the
rule that chose its price so free-by-rule requests can be counted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest

from services.pricing import FREE_RULES, PriceBook, PriceEntry, PriceMatch, PriceRule, TokenCounts, cost_nano

BOOK = PriceBook.load()
NOW = datetime(2026, 11, 24, tzinfo=UTC)
RULES: tuple[PriceRule, ...] = ("book", "default", "free_local", "free_variant", "other_host")
MILLION = TokenCounts(tokens_input=10**6, tokens_output=10**6)
SONNET_CONTRACT = (Decimal("0.003"), Decimal("0.015"))
LLAMA_8B_CONTRACT = (Decimal("0.0001"), Decimal("0.0001"))


def rates(match: PriceMatch) -> tuple[Decimal, Decimal]:
    return match.entry.input_per_1k, match.entry.output_per_1k


# --- a provider argument is a hint, never a switch ---------------------------------------------------------------


@pytest.mark.parametrize("provider", ["ollama", "Ollama", "ollama_chat", "lm_studio", "openrouter"])
def test_a_provider_argument_does_not_make_a_contracted_model_free(provider: str) -> None:
    match = BOOK.lookup("claude-3-5-sonnet", at=NOW, provider=provider)
    assert match.rule == "book" and match.entry.contracted and rates(match) == SONNET_CONTRACT
    assert cost_nano(match.entry, MILLION) == 18_000_000_000


def test_a_provider_argument_does_not_make_a_book_model_free() -> None:
    match = BOOK.lookup("gpt-4o", at=NOW, provider="ollama")
    # Ollama has no price of its own for gpt-4o: the maker's price applies, and the row says it was another host's.
    assert (match.rule, match.entry.model_id, match.entry.unit) == ("other_host", "openai/gpt-4o", "tokens")
    assert cost_nano(match.entry, MILLION) > 0


@pytest.mark.parametrize(
    ("model", "default"),
    [("llama3", "meta"), ("my-finetune", "*")],
)
def test_an_unknown_model_with_provider_ollama_is_priced_by_a_default_and_flagged(model: str, default: str) -> None:
    match = BOOK.lookup(model, at=NOW, provider="ollama")
    assert match.rule == "default" and match.is_fallback and not match.is_free_by_rule
    assert match.entry is BOOK.defaults()[default]


# --- local runtimes: the id's own prefix -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "runtime"),
    [
        ("ollama/llama3", "ollama"),
        ("ollama_chat/llama3.1", "ollama"),
        ("ollama/hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "ollama"),
        ("lm_studio/qwen2.5-7b-instruct", "lm_studio"),
        ("lmstudio/qwen2.5-7b-instruct", "lm_studio"),
        ("llamafile/mistral-7b-instruct", "llamafile"),
        ("llama.cpp/gemma-2-2b", "llama.cpp"),
        ("llamacpp/gemma-2-2b", "llama.cpp"),
        ("llama_cpp/gemma-2-2b", "llama.cpp"),
        ("docker_model_runner/ai/smollm2", "docker_model_runner"),
        ("lemonade/qwen3-8b", "lemonade"),
        ("jan/llama3.2-3b-instruct", "jan"),
        ("gpt4all/orca-mini-3b", "gpt4all"),
        ("localai/phi-2", "localai"),
    ],
)
def test_a_local_runtime_prefix_on_the_id_is_free_and_says_so(model: str, runtime: str) -> None:
    match = BOOK.lookup(model, at=NOW)
    assert match.rule == "free_local" and match.is_free_by_rule and not match.is_fallback
    assert (match.entry.unit, match.entry.provider) == ("free", runtime)
    assert match.entry.model_id.startswith(f"{runtime}/") and runtime in match.entry.source
    assert cost_nano(match.entry, MILLION) == 0
    assert BOOK.infer_provider(model) == runtime


def test_a_contracted_model_run_locally_is_free_because_no_one_bills_it() -> None:
    # The id itself says the model ran on the player's machine; the rule is on the row for anyone to count.
    match = BOOK.lookup("ollama/llama-3-8b", at=NOW, provider="meta")
    assert match.rule == "free_local" and match.entry.unit == "free"


@pytest.mark.parametrize(
    ("model", "rule", "model_id"),
    [
        ("hosted_vllm/meta-llama/Llama-3.3-70B-Instruct", "book", "meta/llama-3.3-70b-instruct"),
        ("vllm/my-model", "default", "*"),
        ("xinference/my-model", "default", "*"),
        ("together/ollama/llama3", "default", "meta/*"),  # the runtime must be the id's first segment
    ],
)
def test_servers_and_inner_segments_are_not_local_runtimes(model: str, rule: str, model_id: str) -> None:
    match = BOOK.lookup(model, at=NOW)
    assert (match.rule, match.entry.model_id) == (rule, model_id)
    assert cost_nano(match.entry, MILLION) > 0


def test_an_operator_can_declare_a_self_hosted_server_free_in_the_price_file(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    ours = 'unit = "free"\nsource = "our own GPUs, paid by the month"\nsource_date = 2026-11-24\n'
    prices.write_text(f'[defaults.hosted_vllm]\n{ours}\n[[models]]\nid = "hosted_vllm/npc-dialogue-7b"\n{ours}')
    book = PriceBook.load(prices)
    known, unknown = book.lookup("hosted_vllm/npc-dialogue-7b", at=NOW), book.lookup("hosted_vllm/other", at=NOW)
    assert (known.rule, known.entry.unit) == ("book", "free")
    assert (unknown.rule, unknown.entry.unit, unknown.is_fallback) == ("default", "free", True)


# --- OpenRouter :free --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", [None, "openrouter", "OpenRouter"])
@pytest.mark.parametrize(
    "model",
    [
        "meta-llama/llama-3.3-70b-instruct:free",
        "openrouter/meta-llama/llama-3.3-70b-instruct:free",
        "deepseek/deepseek-r1:free",
        "openrouter/free",  # OpenRouter's Free Models Router
    ],
)
def test_an_openrouter_free_id_is_free_and_says_so(model: str, provider: str | None) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert match.rule == "free_variant" and match.is_free_by_rule and not match.is_fallback
    assert match.entry.unit == "free" and cost_nano(match.entry, MILLION) == 0


@pytest.mark.parametrize("provider", [None, "openrouter"])
@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("meta-llama/llama-3-8b-instruct:free", LLAMA_8B_CONTRACT),
        ("openrouter/meta-llama/llama-3-8b-instruct:free", LLAMA_8B_CONTRACT),
        ("anthropic/claude-3.5-sonnet:free", SONNET_CONTRACT),
        ("claude-3-5-sonnet:free", SONNET_CONTRACT),
    ],
)
def test_a_free_suffix_never_zeroes_a_contracted_model(
    model: str, expected: tuple[Decimal, Decimal], provider: str | None
) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert match.rule == "book" and match.entry.contracted and rates(match) == expected


@pytest.mark.parametrize(
    ("model", "provider", "model_id", "rule"),
    [
        ("gpt-4o:free", None, "openai/gpt-4o", "book"),  # OpenRouter ids always have an author segment
        # Served by a host without a price of its own for it (OpenRouter, Azure): the maker's price, flagged.
        ("gpt-4o:free", "openrouter", "openai/gpt-4o", "other_host"),
        ("fireworks/openai/gpt-4o:free", None, "openai/gpt-4o", "other_host"),
        ("anthropic/claude-3.7-sonnet:free", "anthropic", "anthropic/claude-3.7-sonnet", "book"),
        ("openai/gpt-4o:free", "openai", "openai/gpt-4o", "book"),
    ],
)
def test_a_free_suffix_outside_openrouter_prices_the_id_without_it(
    model: str, provider: str | None, model_id: str, rule: str
) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert (match.rule, match.entry.model_id) == (rule, model_id)
    assert match.entry == BOOK.lookup(model_id, at=NOW).entry


@pytest.mark.parametrize(
    ("model", "provider"),
    [("qwen/qwen3-235b:free", "qwen"), ("free", None), ("openrouter/meta/free", None), ("x/y/z:free", None)],
)
def test_an_unknown_id_that_is_not_openrouter_free_is_priced_by_a_default(model: str, provider: str | None) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert match.rule == "default" and match.is_fallback and cost_nano(match.entry, MILLION) > 0


def test_the_provider_argument_is_part_of_the_cached_answer() -> None:
    book = PriceBook.load()
    model = "meta-llama/llama-3.3-70b-instruct:free"
    for _ in range(2):  # the second round is served from the name-resolution cache
        assert book.lookup(model, at=NOW).rule == "free_variant"
        assert book.lookup(model, at=NOW, provider="meta").rule == "book"
        assert book.lookup(model, at=NOW, provider="openrouter").rule == "free_variant"


def test_a_free_variant_of_a_repriced_model_is_free_at_every_moment() -> None:
    # o3's price changed on 2025-06-10; its :free id is $0 on both sides and the rule says why.
    for moment in (datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)):
        match = BOOK.lookup("openai/o3:free", at=moment)
        assert (match.rule, match.entry.unit, match.entry.model_id) == ("free_variant", "free", "openai/o3:free")


# --- the PriceMatch API ------------------------------------------------------------------------------------------


def test_price_match_names_its_rule_and_keeps_is_fallback() -> None:
    entry = PriceEntry(
        model_id="a/b", provider="a", unit="tokens", input_per_1k=Decimal(1), output_per_1k=Decimal(1), source="t"
    )
    flags = {rule: (PriceMatch(entry, rule).is_fallback, PriceMatch(entry, rule).is_free_by_rule) for rule in RULES}
    assert flags == {
        "book": (False, False),
        "default": (True, False),
        "free_local": (False, True),
        "free_variant": (False, True),
        "other_host": (False, False),
    }
    assert get_args(PriceRule) == RULES and {"free_local", "free_variant"} == FREE_RULES


def test_the_rules_match_the_ones_stored_on_each_row() -> None:
    from models.ai_usage import FREE_PRICE_RULES
    from models.ai_usage import PriceRule as RowPriceRule

    assert get_args(RowPriceRule) == get_args(PriceRule) and FREE_PRICE_RULES == FREE_RULES
