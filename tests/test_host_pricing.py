"""Issue 9, point 4: the same model served by different hosts is priced by the host that served it.

The host is the ``provider`` argument, else the id's host prefix (``cerebras/``, ``together_ai/``...) or shape
(Bedrock's ``us.anthropic.claude-...-v2:0``, Vertex's ``...@20241022``). The host's entry prices the request;
when it has none, the model's reference entry (its maker's own) does and the rule says ``other_host``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.pricing import PriceBook, PriceEntry, PriceMatch, canonical_provider, parse_model_id

D = Decimal
NOW = datetime(2026, 11, 24, tzinfo=UTC)
SHIPPED = PriceBook.load()


def entry(model_id: str, price: str, provider: str | None = None, **extra: object) -> PriceEntry:
    return PriceEntry(
        model_id=model_id,
        provider=provider or model_id.split("/")[0],
        unit="tokens",
        input_per_1k=D(price),
        output_per_1k=D(price),
        source="test",
        **extra,
    )  # type: ignore[arg-type]


DEFAULTS = {"*": entry("*", "0.009"), "anthropic": entry("anthropic/*", "0.008")}
LLAMA = ("llama-3.3-70b-instruct", "llama-3.3-70b")
# One Llama at its maker's reference price and on two hosts; Claude at Anthropic's and on Bedrock; a second
# Claude only Anthropic prices; a contracted Claude that Bedrock also lists.
BOOK = PriceBook.from_entries(
    [
        entry("meta/llama-3.3-70b-instruct", "0.00088", aliases=LLAMA),
        entry("together/llama-3.3-70b-instruct", "0.00088", aliases=("llama-3.3-70b-instruct-turbo",)),
        entry("cerebras/llama-3.3-70b", "0.00085", aliases=LLAMA[:1]),
        entry("anthropic/claude-sonnet-4", "0.003"),
        entry("bedrock/claude-sonnet-4", "0.0033", aliases=("claude-sonnet-4-20250514",)),
        entry("anthropic/claude-3-haiku", "0.00025", aliases=("claude-3-haiku-20240307",)),
        entry("anthropic/claude-3.5-sonnet", "0.002", contracted=True),
        entry("bedrock/claude-3.5-sonnet", "0.003"),
    ],
    DEFAULTS,
)


def priced(match: PriceMatch) -> tuple[str, str, D, str | None]:
    return match.rule, match.entry.model_id, match.entry.input_per_1k, match.host


# --- ids: hosts, Bedrock and Vertex shapes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "host", "maker"),
    [
        ("together/llama-3.3-70b", "together", None),
        ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", "meta"),
        ("TogetherAI/x", "together", None),
        ("groq/llama-3.3-70b-versatile", "groq", None),
        ("cerebras/llama-3.3-70b", "cerebras", None),
        ("fireworks_ai/llama-x", "fireworks", None),
        ("deepinfra/meta-llama/Llama-3.3-70B-Instruct", "deepinfra", "meta"),
        ("bedrock/converse/claude-x", "bedrock", None),
        ("vertex_ai/gemini-2.5-pro", "vertex_ai", None),
        ("google-vertex/gemini-2.5-pro", "vertex_ai", None),
        ("azure/openai/gpt-4o", "azure", "openai"),
        ("azure_ai/gpt-4o", "azure", None),
        ("openrouter/anthropic/claude-3.5-sonnet", "openrouter", "anthropic"),
        ("anthropic/claude-3.5-sonnet", None, "anthropic"),
        ("meta-llama/together/llama-x", None, "meta"),  # only the first segment names the host
        ("novita/llama-x", None, "novita"),  # not a known host: a hint, as before
        ("gpt-4o", None, None),
    ],
)
def test_the_host_is_the_first_segment_when_it_names_a_known_host(model: str, host: str | None, maker: str) -> None:
    parsed = parse_model_id(model)
    assert (parsed.host, parsed.maker_hint) == (host, maker)


@pytest.mark.parametrize(
    ("model", "key", "exact", "vendor"),
    [
        (
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "claude-3.5-sonnet",
            "claude-3-5-sonnet-20241022",
            "anthropic",
        ),
        ("eu.anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku", "claude-3-haiku-20240307", "anthropic"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4", "claude-sonnet-4-20250514", "anthropic"),
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-sonnet-4.5",
            "claude-sonnet-4-5-20250929",
            "anthropic",
        ),
        ("anthropic.claude-3-haiku-20240307-v1:0:200k", "claude-3-haiku", "claude-3-haiku-20240307", "anthropic"),
        ("bedrock/cohere.command-r-plus-v1:0", "command-r-plus", "command-r-plus", "cohere"),
        ("meta.llama3-3-70b-instruct-v1:0", "llama3.3-70b-instruct", "llama3-3-70b-instruct", "meta"),
        ("amazon.nova-pro-v1:0", "nova-pro", "nova-pro", "amazon"),
        ("openai.gpt-oss-120b-1:0", "gpt-oss-120b", "gpt-oss-120b", "openai"),
    ],
)
def test_a_bedrock_id_is_reduced_to_the_makers_name_and_hosted_by_bedrock(
    model: str, key: str, exact: str, vendor: str
) -> None:
    parsed = parse_model_id(model)
    assert (parsed.key, parsed.exact, parsed.host, parsed.vendor, parsed.provider_hint) == (
        key,
        exact,
        "bedrock",
        vendor,
        "bedrock" if "/" in model else vendor,
    )


@pytest.mark.parametrize("model", ["meta.llama-x", "anthropic.claude", "us.example.model-v1:0", "llama3.1-8b"])
def test_a_dotted_name_without_a_bedrock_region_or_version_is_not_bedrock(model: str) -> None:
    parsed = parse_model_id(model)
    assert parsed.host is None and parsed.vendor is None and parsed.exact == model


@pytest.mark.parametrize(
    ("model", "key", "exact", "host"),
    [
        ("claude-3-5-sonnet@20241022", "claude-3.5-sonnet", "claude-3-5-sonnet-20241022", "vertex_ai"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3.5-sonnet", "claude-3-5-sonnet-20241022", "vertex_ai"),
        ("vertex_ai/claude-sonnet-4@20250514", "claude-sonnet-4", "claude-sonnet-4-20250514", "vertex_ai"),
        ("mistral-large@2407", "mistral-large-2407", "mistral-large-2407", "vertex_ai"),
        ("openrouter/x@20250101", "x", "x-20250101", "openrouter"),  # a host prefix outranks the shape
    ],
)
def test_a_vertex_version_suffix_names_vertex_as_the_host(model: str, key: str, exact: str, host: str) -> None:
    parsed = parse_model_id(model)
    assert (parsed.key, parsed.exact, parsed.host) == (key, exact, host)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("Together_AI", "together"), ("vertex_ai", "vertex_ai"), ("vertex", "vertex_ai"), ("Azure_OpenAI", "azure")],
)
def test_host_spellings_have_one_canonical_name(spelling: str, canonical: str) -> None:
    assert canonical_provider(spelling) == canonical


# --- the host's entry prices the request ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "expected"),
    [
        ("cerebras/llama-3.3-70b", None, ("book", "cerebras/llama-3.3-70b", D("0.00085"), "cerebras")),
        (
            "together/llama-3.3-70b-instruct",
            None,
            ("book", "together/llama-3.3-70b-instruct", D("0.00088"), "together"),
        ),
        ("llama-3.3-70b-instruct", "Cerebras", ("book", "cerebras/llama-3.3-70b", D("0.00085"), "cerebras")),
        # the event's provider outranks the id's prefix
        ("together/llama-3.3-70b-instruct", "cerebras", ("book", "cerebras/llama-3.3-70b", D("0.00085"), "cerebras")),
        (
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            None,
            ("book", "bedrock/claude-sonnet-4", D("0.0033"), "bedrock"),
        ),
        ("claude-sonnet-4", "bedrock", ("book", "bedrock/claude-sonnet-4", D("0.0033"), "bedrock")),
        ("claude-sonnet-4", "anthropic", ("book", "anthropic/claude-sonnet-4", D("0.003"), "anthropic")),
    ],
)
def test_the_host_named_by_the_event_or_the_id_prices_it(
    model: str, provider: str | None, expected: tuple[str, str, D, str]
) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert priced(match) == expected and not match.is_fallback and not match.is_other_host


@pytest.mark.parametrize(
    ("model", "provider", "expected"),
    [
        ("groq/llama-3.3-70b", None, ("other_host", "meta/llama-3.3-70b-instruct", D("0.00088"), "groq")),
        ("llama-3.3-70b", "deepinfra", ("other_host", "meta/llama-3.3-70b-instruct", D("0.00088"), "deepinfra")),
        (
            "openrouter/meta-llama/llama-3.3-70b-instruct",
            None,
            ("other_host", "meta/llama-3.3-70b-instruct", D("0.00088"), "openrouter"),
        ),
        (
            "eu.anthropic.claude-3-haiku-20240307-v1:0",
            None,
            ("other_host", "anthropic/claude-3-haiku", D("0.00025"), "bedrock"),
        ),
        ("claude-3-haiku@20240307", None, ("other_host", "anthropic/claude-3-haiku", D("0.00025"), "vertex_ai")),
        (
            "vertex_ai/claude-sonnet-4@20250514",
            None,
            ("other_host", "anthropic/claude-sonnet-4", D("0.003"), "vertex_ai"),
        ),
        ("azure/claude-sonnet-4", None, ("other_host", "anthropic/claude-sonnet-4", D("0.003"), "azure")),
    ],
)
def test_a_host_without_an_entry_gets_the_makers_price_and_the_row_says_so(
    model: str, provider: str | None, expected: tuple[str, str, D, str]
) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert priced(match) == expected
    assert match.is_other_host and not match.is_fallback and not match.is_free_by_rule


@pytest.mark.parametrize("model", ["llama-3.3-70b", "meta-llama/Llama-3.3-70B-Instruct", "novita/llama-3.3-70b"])
def test_without_a_named_host_the_makers_entry_prices_it_as_before(model: str) -> None:
    # Cerebras spells the model "llama-3.3-70b" exactly, but no host was named: the reference (maker's) entry wins.
    match = BOOK.lookup(model, at=NOW)
    assert priced(match) == ("book", "meta/llama-3.3-70b-instruct", D("0.00088"), None)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", None),
        ("claude-3-5-sonnet", "bedrock"),
        ("claude-3-5-sonnet-v2@20241022", None),
        ("groq/claude-3.5-sonnet", None),
    ],
)
def test_a_contract_holds_whatever_the_host(model: str, provider: str | None) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert (match.rule, match.entry.model_id, match.entry.contracted) == ("book", "anthropic/claude-3.5-sonnet", True)


def test_an_entry_whose_provider_is_spelled_otherwise_still_serves_its_host() -> None:
    book = PriceBook.from_entries(
        [entry("meta/llama-x", "0.001"), entry("together_ai/llama-x", "0.002", provider="Together_AI")], DEFAULTS
    )
    assert priced(book.lookup("together/llama-x")) == ("book", "together_ai/llama-x", D("0.002"), "together")
    assert priced(book.lookup("llama-x", provider="togetherai")) == (
        "book",
        "together_ai/llama-x",
        D("0.002"),
        "together",
    )


def test_a_borrowed_price_still_follows_the_reference_entrys_price_history() -> None:
    changed = datetime(2026, 1, 1, tzinfo=UTC)
    book = PriceBook.from_entries(
        [entry("meta/llama-x", "0.002"), entry("meta/llama-x", "0.001", effective_from=changed)], DEFAULTS
    )
    before, after = (book.lookup("groq/llama-x", at=moment) for moment in (datetime(2025, 6, 1, tzinfo=UTC), NOW))
    assert (before.rule, before.entry.input_per_1k) == ("other_host", D("0.002"))
    assert (after.rule, after.entry.input_per_1k) == ("other_host", D("0.001"))


def test_the_host_is_part_of_the_cached_answer() -> None:
    book = PriceBook.from_entries(BOOK.entries(), DEFAULTS)
    for _ in range(2):  # the second round is served from the name-resolution cache
        assert book.lookup("llama-3.3-70b").entry.model_id == "meta/llama-3.3-70b-instruct"
        assert book.lookup("llama-3.3-70b", provider="cerebras").entry.model_id == "cerebras/llama-3.3-70b"
        assert book.lookup("llama-3.3-70b", provider="groq").rule == "other_host"


# --- unknown models, free rules and the provider column -----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "default"),
    [
        ("us.anthropic.claude-9-opus-v1:0", None, "anthropic/*"),  # once the global default
        ("bedrock/anthropic.claude-9-v1:0", None, "anthropic/*"),
        ("groq/some-model", None, "*"),
        ("some-model", "cerebras", "*"),
    ],
)
def test_an_unknown_model_on_a_host_is_priced_by_a_default_and_flagged(
    model: str, provider: str | None, default: str
) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert (match.rule, match.entry.model_id) == ("default", default) and match.is_fallback


@pytest.mark.parametrize(
    ("model", "rule"),
    [
        ("openrouter/meta-llama/llama-3.3-70b-instruct:free", "free_variant"),
        ("meta-llama/llama-3.3-70b-instruct:free", "free_variant"),
        ("ollama/llama-3.3-70b", "free_local"),
    ],
)
def test_the_free_rules_are_unchanged_by_hosts(model: str, rule: str) -> None:
    match = BOOK.lookup(model, at=NOW)
    assert match.rule == rule and match.entry.unit == "free"


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock"),
        ("claude-3-5-sonnet@20241022", "vertex_ai"),
        ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together"),
        ("openrouter/anthropic/claude-3.5-sonnet", "openrouter"),
        ("anthropic/claude-3.5-sonnet", "anthropic"),
        ("claude-3-5-sonnet", "anthropic"),
    ],
)
def test_the_inferred_provider_is_who_served_the_request(model: str, provider: str) -> None:
    assert BOOK.infer_provider(model) == provider


# --- the shipped book -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    ["us.anthropic.claude-sonnet-4-20250514-v1:0", "bedrock/converse/anthropic.claude-sonnet-4-20250514-v1:0"],
)
def test_a_bedrock_claude_id_no_longer_falls_to_the_generic_default(model: str) -> None:
    match = SHIPPED.lookup(model, at=NOW)
    assert not match.is_fallback and match.rule in ("book", "other_host") and match.host == "bedrock"
    assert match.entry.input_per_1k == D("0.003")  # Claude Sonnet 4 on demand: $3 per 1M, Bedrock or Anthropic


def test_a_cerebras_prefix_is_not_charged_another_hosts_rate_silently() -> None:
    match = SHIPPED.lookup("cerebras/llama-3.3-70b", at=NOW)
    assert match.host == "cerebras" and not match.is_fallback
    assert match.rule == "book" if match.entry.provider == "cerebras" else match.rule == "other_host"
