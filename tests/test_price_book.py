"""The price book: shipped data, model-id matching, the time rule, contracts, defaults and override files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from services.pricing import (
    SHIPPED_PRICES,
    PriceBook,
    PriceBookError,
    PriceEntry,
    infer_provider_from_name,
    normalise_model_id,
    read_price_file,
)

D = Decimal
BOOK = PriceBook.load()
NOW = datetime.now(UTC)
MOMENTS = [datetime(2020, 1, 1, tzinfo=UTC), NOW, datetime(2035, 6, 30, 23, 59, tzinfo=UTC)]

# The contracted rate card: id -> (input per 1K, output per 1K, names that must find it).
CONTRACTED = {
    "meta/meta-llama-3-8b-instruct": (
        "0.0001",
        "0.0001",
        ["meta-llama-3-8b-instruct", "llama3-8b", "llama-3-8b", "meta-llama/Meta-Llama-3-8B-Instruct"],
    ),
    "meta/meta-llama-3-70b-instruct": (
        "0.0006",
        "0.0006",
        ["meta-llama-3-70b-instruct", "llama3-70b", "llama3-70b-8192"],
    ),
    "anthropic/claude-3.5-haiku": (
        "0.001",
        "0.005",
        ["claude-3-5-haiku", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"],
    ),
    "anthropic/claude-3-haiku": ("0.00025", "0.00125", ["claude-3-haiku", "claude-3-haiku-20240307"]),
    "anthropic/claude-3.5-sonnet": (
        "0.003",
        "0.015",
        ["claude-3-5-sonnet", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20240620", "claude-3-5-sonnet@20241022"],
    ),
    "anthropic/claude-4.5-sonnet": (
        "0.003",
        "0.015",
        ["claude-sonnet-4-5", "claude-sonnet-4.5", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4.5"],
    ),
    "anthropic/claude-3-opus": ("0.015", "0.075", ["claude-3-opus", "claude-3-opus-20240229"]),
}
CONTRACTED_CASES = [
    pytest.param(model_id, name, at, id=f"{name}@{at.year}")
    for model_id, (_, _, names) in CONTRACTED.items()
    for name in [model_id, *names]
    for at in MOMENTS
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def entry(model_id: str, input_per_1k: str = "0.001", output_per_1k: str = "0.002", **extra: object) -> PriceEntry:
    return PriceEntry(
        model_id=model_id,
        provider=model_id.split("/")[0],
        unit="tokens",
        input_per_1k=D(input_per_1k),
        output_per_1k=D(output_per_1k),
        source="test",
        **extra,
    )  # type: ignore[arg-type]


GLOBAL = {"*": entry("*", "0.001", "0.005")}


# --- shipped data -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "name", "moment"), CONTRACTED_CASES)
def test_contracted_rates_apply_to_every_name_at_every_timestamp(model_id: str, name: str, moment: datetime) -> None:
    expected_in, expected_out, _ = CONTRACTED[model_id]
    match = BOOK.lookup(name, at=moment)
    assert match.entry.model_id == model_id
    assert (match.entry.input_per_1k, match.entry.output_per_1k) == (D(expected_in), D(expected_out))
    assert match.entry.contracted and not match.is_fallback and match.rule == "book"


def test_contracted_models_have_exactly_one_entry_in_the_shipped_book() -> None:
    for model_id in CONTRACTED:
        assert [e.model_id for e in BOOK.entries()].count(model_id) == 1


@pytest.mark.parametrize(
    "model_id",
    [
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-4.1",
        "openai/gpt-4.1-mini",
        "openai/gpt-4.1-nano",
        "openai/o3",
        "openai/o4-mini",
        "openai/gpt-5",
        "openai/gpt-5-mini",
        "openai/gpt-5-nano",
        "anthropic/claude-sonnet-4",
        "anthropic/claude-opus-4.1",
        "anthropic/claude-haiku-4.5",
        "google/gemini-2.5-pro",
        "google/gemini-2.5-flash",
        "google/gemini-2.0-flash",
        "google/gemini-2.5-flash-lite",
        "deepseek/deepseek-chat",
        "deepseek/deepseek-reasoner",
        "meta/llama-3.3-70b-instruct",
        "mistral/mistral-large",
        "mistral/mistral-medium",
        "mistral/mistral-small",
        "mistral/codestral",
        "cerebras/llama3.1-8b",
        "firecrawl/scrape",
    ],
)
def test_shipped_book_prices_the_major_models(model_id: str) -> None:
    assert BOOK.find(model_id, at=NOW) is not None


def test_every_shipped_entry_cites_a_source_and_date() -> None:
    for item in [*BOOK.entries(), *BOOK.defaults().values()]:
        assert item.source and item.source_date is not None, item.model_id


def test_every_list_price_with_a_cache_discount_is_cheaper_when_cached() -> None:
    for item in BOOK.entries():
        if item.cached_input_per_1k is not None:
            assert item.cached_input_per_1k < item.input_per_1k, item.model_id


def test_anthropic_list_prices_use_the_documented_cache_multipliers() -> None:
    for item in BOOK.entries():
        if item.provider == "anthropic" and not item.contracted:
            assert item.cached_input_per_1k == item.input_per_1k * D("0.1"), item.model_id
            assert item.cache_write_per_1k == item.input_per_1k * D("1.25"), item.model_id


def test_deepseek_prices_from_the_brief_are_in_force_between_february_and_september_2025() -> None:
    chat = BOOK.lookup("deepseek-chat", at=at("2025-06-01T00:00:00")).entry
    assert (chat.input_per_1k, chat.cached_input_per_1k, chat.output_per_1k) == (
        D("0.00027"),
        D("0.00007"),
        D("0.0011"),
    )
    reasoner = BOOK.lookup("deepseek-reasoner", at=at("2025-06-01T00:00:00")).entry
    assert (reasoner.input_per_1k, reasoner.cached_input_per_1k, reasoner.output_per_1k) == (
        D("0.00055"),
        D("0.00014"),
        D("0.00219"),
    )


def test_sonnet_4_carries_the_long_context_tier() -> None:
    sonnet = BOOK.lookup("claude-sonnet-4-20250514", at=NOW).entry
    assert sonnet.long_context_threshold == 200_000
    assert sonnet.long_context is not None
    assert (sonnet.long_context.input_per_1k, sonnet.long_context.output_per_1k) == (D("0.006"), D("0.0225"))


# --- normalisation and provider inference --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "anthropic/claude-3.5-sonnet",
        "claude-3-5-sonnet-20241022",
        "claude-3-5-sonnet-latest",
        "Claude-3.5-Sonnet",
        "claude-3.5-sonnet",
        "  claude-3-5-sonnet@20241022 ",
        "openrouter/anthropic/claude-3.5-sonnet",
    ],
)
def test_spellings_of_one_model_find_the_same_entry(name: str) -> None:
    assert normalise_model_id(name) == "claude-3.5-sonnet"
    assert BOOK.lookup(name, at=NOW).entry.model_id == "anthropic/claude-3.5-sonnet"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("llama-3-8b", "llama-3-8b"),  # "8b" is not a single-digit version group
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4.1"),
        ("mistral-large-latest", "mistral-large"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash-001"),
        ("meta-llama/Llama-3.3-70B-Instruct:free", "llama-3.3-70b-instruct"),
    ],
)
def test_normalisation_rules(raw: str, key: str) -> None:
    assert normalise_model_id(raw) == key


def test_a_dated_snapshot_with_its_own_price_is_matched_before_date_stripping() -> None:
    assert BOOK.lookup("gpt-4o-2024-05-13", at=NOW).entry.input_per_1k == D("0.005")
    assert BOOK.lookup("gpt-4o-2024-08-06", at=NOW).entry.model_id == "openai/gpt-4o"


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o", "openai"),
        ("o1-mini", "openai"),
        ("o3", "openai"),
        ("o4-mini-2025-04-16", "openai"),
        ("chatgpt-4o-latest", "openai"),
        ("claude-3-7-sonnet-20250219", "anthropic"),
        ("gemini-1.5-pro", "google"),
        ("deepseek-r1-distill-llama-70b", "deepseek"),
        ("llama-3.2-3b", "meta"),
        ("mistral-tiny", "mistral"),
        ("mixtral-8x7b", "mistral"),
        ("codestral-mamba", "mistral"),
        ("ministral-8b", "mistral"),
        ("omni-moderation", None),
        ("qwen-2.5-72b", None),
    ],
)
def test_provider_is_inferred_from_the_name(model: str, provider: str | None) -> None:
    assert infer_provider_from_name(model) == provider
    assert BOOK.infer_provider(model) == provider


def test_infer_provider_prefers_the_prefix_then_the_known_entry() -> None:
    assert BOOK.infer_provider("mistralai/some-new-model") == "mistral"
    assert BOOK.infer_provider("cerebras/llama-3.3-70b") == "cerebras"
    assert BOOK.infer_provider("llama3.1-8b") == "cerebras"  # known only as a Cerebras model


def test_provider_hint_chooses_between_models_sharing_a_name() -> None:
    book = PriceBook.from_entries([entry("groq/llama-x", "0.001"), entry("together/llama-x", "0.002")], GLOBAL)
    assert book.lookup("llama-x", provider="groq").entry.model_id == "groq/llama-x"
    assert book.lookup("llama-x", provider="Together").entry.model_id == "together/llama-x"
    assert book.lookup("together/llama-x").entry.model_id == "together/llama-x"


def test_a_known_model_keeps_its_price_whatever_the_provider_argument() -> None:
    # Claude on a reseller (Vertex, Bedrock, OpenRouter) bills like Claude.
    match = BOOK.lookup("claude-3-5-sonnet@20241022", at=NOW, provider="vertex")
    assert match.entry.model_id == "anthropic/claude-3.5-sonnet" and not match.is_fallback


# --- free models -------------------------------------------------------------------------------------------------


def test_openrouter_free_variant_of_a_known_model_is_free() -> None:
    match = BOOK.lookup("meta-llama/llama-3.3-70b-instruct:free", at=NOW)
    assert match.entry.unit == "free" and not match.is_fallback and match.rule == "free_variant"
    assert match.entry.model_id == "meta/llama-3.3-70b-instruct:free"


def test_openrouter_free_variant_of_an_unknown_model_is_free_not_fallback() -> None:
    match = BOOK.lookup("qwen/qwen3-235b:free", at=NOW)
    assert match.entry.unit == "free" and not match.is_fallback and match.rule == "free_variant"
    assert match.entry.provider == "qwen"


# The id carries the runtime; a bare "llama3" with provider "ollama" is no longer free (see test_free_pricing.py).
@pytest.mark.parametrize("model", ["ollama/llama3:8b", "ollama/claude-3-5-sonnet", "Ollama/llama3"])
def test_an_ollama_id_is_free_for_any_model(model: str) -> None:
    match = BOOK.lookup(model, at=NOW)
    assert match.entry.unit == "free" and match.entry.provider == "ollama"
    assert match.rule == "free_local" and not match.is_fallback


# --- defaults ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "default"),
    [
        ("gpt-9-turbo", None, "openai"),
        ("claude-7-sonnet", None, "anthropic"),
        ("gemini-9-pro", None, "google"),
        ("deepseek/deepseek-v9", None, "deepseek"),
        ("some-model", "mistral", "mistral"),
        ("mistralai/some-model", None, "mistral"),
        ("gpt-9", "deepseek", "deepseek"),  # the provider argument outranks the name
        ("firecrawl/deep-research", None, "firecrawl"),
    ],
)
def test_unknown_model_is_priced_by_its_providers_default_and_flagged(
    model: str, provider: str | None, default: str
) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert match.is_fallback and match.entry.is_default and match.rule == "default"
    assert match.entry is BOOK.defaults()[default]
    assert BOOK.find(model, at=NOW) is None


@pytest.mark.parametrize(
    ("model", "provider"), [("totally-unknown", None), ("x", "some-new-lab"), ("models/whatever", None)]
)
def test_unknown_model_of_unknown_provider_gets_the_global_default(model: str, provider: str | None) -> None:
    match = BOOK.lookup(model, at=NOW, provider=provider)
    assert match.is_fallback and match.rule == "default" and match.entry.model_id == "*"
    assert (match.entry.input_per_1k, match.entry.output_per_1k) == (D("0.001"), D("0.005"))


def test_a_book_without_a_global_default_is_refused() -> None:
    with pytest.raises(PriceBookError, match=r"'\*'"):
        PriceBook.from_entries([entry("a/b")], {})


# --- time rule ---------------------------------------------------------------------------------------------------


def test_price_change_applies_only_from_its_effective_time() -> None:
    before = BOOK.lookup("o3", at=at("2025-06-09T23:59:59")).entry
    after = BOOK.lookup("o3-2025-04-16", at=at("2025-06-10T00:00:00")).entry
    assert (before.input_per_1k, before.output_per_1k) == (D("0.01"), D("0.04"))
    assert (after.input_per_1k, after.output_per_1k) == (D("0.002"), D("0.008"))


def test_aware_timestamps_in_other_zones_are_compared_in_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    # 20:00 on the 9th in UTC-5 is 01:00 on the 10th in UTC: after the cut.
    assert BOOK.lookup("o3", at=datetime(2025, 6, 9, 20, 0, tzinfo=new_york)).entry.input_per_1k == D("0.002")


def test_before_the_first_dated_price_the_launch_price_applies() -> None:
    assert BOOK.lookup("o3", at=datetime(2020, 1, 1, tzinfo=UTC)).entry.input_per_1k == D("0.01")


def test_no_timestamp_means_now() -> None:
    assert BOOK.lookup("o3").entry == BOOK.lookup("o3", at=datetime.now(UTC)).entry


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        BOOK.lookup("o3", at=datetime(2025, 6, 10))
    with pytest.raises(ValueError, match="timezone"):
        BOOK.current_entries(datetime(2025, 6, 10))


def test_current_entries_lists_each_model_once_with_the_price_in_force() -> None:
    current = BOOK.current_entries(at("2025-05-01T00:00:00"))
    ids = [e.model_id for e in current]
    assert ids == sorted(set(ids)) == sorted({e.model_id for e in BOOK.entries()})
    o3 = next(e for e in current if e.model_id == "openai/o3")
    assert o3.input_per_1k == D("0.01")


def test_entries_are_sorted_by_model_then_effective_time() -> None:
    keys = [(e.model_id, e.effective_from or datetime.min.replace(tzinfo=UTC)) for e in BOOK.entries()]
    assert keys == sorted(keys)
    assert sum(e.model_id == "openai/o3" for e in BOOK.entries()) == 2


# --- override files ----------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my-prices.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_override_replaces_an_entry_with_the_same_id_and_time(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[models]]
id = "openai/gpt-4o"
input_per_1k = "0.002"
output_per_1k = "0.008"
source = "our invoice"
source_date = 2026-01-01
""",
    )
    book = PriceBook.load(path)
    assert book.lookup("gpt-4o", at=NOW).entry.input_per_1k == D("0.002")
    assert [e.model_id for e in book.entries()].count("openai/gpt-4o") == 1


def test_override_adds_a_dated_price_without_repricing_earlier_events(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[models]]
id = "openai/o3"
input_per_1k = "0.001"
output_per_1k = "0.004"
effective_from = 2030-01-01T00:00:00Z
source = "future cut"
source_date = 2029-12-01
""",
    )
    book = PriceBook.load(path)
    assert book.lookup("o3", at=at("2029-12-31T23:59:59")).entry.input_per_1k == D("0.002")
    assert book.lookup("o3", at=at("2030-01-01T00:00:00")).entry.input_per_1k == D("0.001")
    assert book.lookup("o3", at=at("2025-05-01T00:00:00")).entry.input_per_1k == D("0.01")


def test_override_adds_models_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[models]]
id = "xai/grok-4"
input_per_1k = "0.003"
output_per_1k = "0.015"
aliases = ["grok-4-latest-build"]
source = "https://x.ai/api"
source_date = 2025-07-10

[defaults."*"]
input_per_1k = "0.002"
output_per_1k = "0.01"
source = "our fallback"
source_date = 2026-01-01

[defaults.xai]
input_per_1k = "0.005"
output_per_1k = "0.02"
source = "https://x.ai/api"
source_date = 2026-01-01
""",
    )
    book = PriceBook.load(path)
    assert book.lookup("grok-4-latest-build", at=NOW).entry.model_id == "xai/grok-4"
    assert book.lookup("grok-9", provider="xai").entry.input_per_1k == D("0.005")
    assert book.lookup("unknown-thing").entry.input_per_1k == D("0.002")
    assert book.lookup("gpt-9").entry.input_per_1k == D("0.0025")  # shipped defaults still apply


def test_override_may_renegotiate_a_contract_by_replacing_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[models]]
id = "anthropic/claude-3.5-sonnet"
input_per_1k = "0.0025"
output_per_1k = "0.0125"
contracted = true
aliases = ["claude-3-5-sonnet"]
source = "contract v2"
source_date = 2026-06-01
""",
    )
    book = PriceBook.load(path)
    for moment in MOMENTS:
        assert book.lookup("claude-3-5-sonnet-20241022", at=moment).entry.input_per_1k == D("0.0025")


def test_override_may_not_add_a_dated_price_to_a_contracted_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[models]]
id = "anthropic/claude-3.5-sonnet"
input_per_1k = "0.006"
output_per_1k = "0.03"
effective_from = 2027-01-01T00:00:00Z
source = "list price"
source_date = 2026-12-01
""",
    )
    with pytest.raises(PriceBookError, match=r"my-prices\.toml: models\[0\].*'effective_from'.*contracted"):
        PriceBook.load(path)


def test_override_may_not_steal_a_contracted_models_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[models]]
id = "anthropic/claude-3-5-sonnet-20241022"
input_per_1k = "0.006"
output_per_1k = "0.03"
source = "list price"
source_date = 2026-12-01
""",
    )
    with pytest.raises(PriceBookError, match="'aliases'"):
        PriceBook.load(path)


def test_missing_override_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PriceBookError, match="not found"):
        PriceBook.load(tmp_path / "absent.toml")


GOOD = {
    "id": '"acme/model-1"',
    "input_per_1k": '"0.001"',
    "output_per_1k": '"0.002"',
    "source": '"https://acme.example/pricing"',
    "source_date": "2025-01-01",
}


def model_table(**changes: str | None) -> str:
    fields = {**GOOD, **changes}
    return "[[models]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (model_table(output_per_1k=None), "'output_per_1k' is missing"),
        (model_table(input_per_1k='"-0.001"'), "'input_per_1k' must be a finite, non-negative"),
        (model_table(input_per_1k='"cheap"'), "'input_per_1k' is not a decimal"),
        (model_table(input_per_1k="0.001"), "'input_per_1k' must be a decimal string"),
        (model_table(cached_input_per_1k='"NaN"'), "'cached_input_per_1k' must be a finite"),
        (model_table(source_date='"2025-13-01"'), "'source_date'"),
        (model_table(source_date=None), "'source_date'"),
        (model_table(source=None), "'source'"),
        (model_table(effective_from="2025-01-01T00:00:00"), "'effective_from' has no timezone"),
        (model_table(effective_from='"yesterday"'), "'effective_from' is not an ISO"),
        (model_table(inptu_per_1k='"0.001"'), "unknown field 'inptu_per_1k'"),
        (model_table(unit='"tokenz"'), "'unit' must be one of"),
        (model_table(unit='"request"'), "'per_request' is required"),
        (model_table(unit='"credit"'), "'per_credit' is required"),
        (model_table(id='"no-provider"'), "'id' must be a 'provider/model'"),
        (model_table(aliases='"one"'), "'aliases' must be a list"),
        (model_table(contracted='"yes"'), "'contracted' must be true or false"),
        (model_table(long_context='{ input_per_1k = "0.002" }'), "'long_context_threshold'"),
        (model_table(long_context_threshold="1000"), "'long_context' must be a table"),
        (model_table(long_context_threshold="1000", long_context='{ input = "0.002" }'), "'long_context.input'"),
        (model_table(contracted="true", effective_from="2025-01-01T00:00:00Z"), "'effective_from' must be absent"),
        (model_table() + model_table(), "duplicates models[0]"),
        (model_table(contracted="true") + model_table(effective_from="2025-02-01T00:00:00Z"), "'contracted'"),
    ],
)
def test_bad_override_file_names_file_entry_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(path)
    message = str(caught.value)
    assert "my-prices.toml" in message and "models[" in message and field in message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[defaults.acme]\ninput_per_1k = "0.001"\nsource = "x"\nsource_date = 2025-01-01\n', "'output_per_1k'"),
        (
            '[defaults.acme]\ninput_per_1k = "0.001"\noutput_per_1k = "0.001"\naliases = []\nsource = "x"\n'
            "source_date = 2025-01-01\n",
            "unknown field 'aliases'",
        ),
        ("prices = []\n", "unknown top-level key 'prices'"),
        ("[[models]\n", "cannot read price file"),
    ],
)
def test_bad_defaults_and_syntax_are_reported_with_the_file(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(path)
    assert "my-prices.toml" in str(caught.value) and field in str(caught.value)


def test_shipped_file_reads_the_same_through_the_file_reader() -> None:
    entries, defaults = read_price_file(SHIPPED_PRICES)
    earliest = datetime.min.replace(tzinfo=UTC)
    assert sorted(entries, key=lambda e: (e.model_id, e.effective_from or earliest)) == BOOK.entries()
    assert set(defaults) == set(BOOK.defaults())
