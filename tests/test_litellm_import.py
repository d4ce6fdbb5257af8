"""LiteLLM's price JSON imported as a price file: exact decimals, every rate kind, tiers, and a report of the rest.

The data is real: tests/data/litellm_sample.json holds entries copied from LiteLLM 1.110.2 (see its SOURCE.md).
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import cli
from services.pricing import SHIPPED_PRICES, PriceBook, PriceEntry, read_price_file
from services.pricing.litellm_import import LiteLLMFormatError, convert

SAMPLE = Path(__file__).parent / "data" / "litellm_sample.json"
DAY = date(2026, 11, 24)


def _models(text: str, **kwargs) -> dict[str, dict]:
    result = convert(text, source_date=DAY, **kwargs)
    return {m["id"]: m for m in tomllib.loads(result.toml)["models"]}


@pytest.fixture(scope="module")
def sample() -> str:
    return SAMPLE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def imported(sample: str) -> dict[str, dict]:
    return _models(sample)


@pytest.fixture(scope="module")
def report(sample: str) -> dict[tuple[str, str | None], str]:
    return {(u.entry, u.key): u.reason for u in convert(sample, source_date=DAY).unmapped}


def test_per_token_prices_become_exact_per_1k_strings(imported):
    gpt4o = imported["openai/gpt-4o"]
    # 2.5e-06, 1e-05, 1.25e-06 per token in the JSON: exact per-1K strings, no exponent, no float digits.
    assert (gpt4o["input_per_1k"], gpt4o["output_per_1k"], gpt4o["cached_input_per_1k"]) == (
        "0.0025",
        "0.01",
        "0.00125",
    )
    assert imported["openai/gpt-5"]["tiers"]["batch"]["cached_input_per_1k"] == "0.0000625"  # 6.25e-08
    assert imported["openai/text-embedding-3-small"]["input_per_1k"] == "0.00002"  # 2e-08


def test_a_number_a_float_would_round_stays_exact():
    text = json.dumps({"m": {"litellm_provider": "openai", "input_cost_per_token": 1, "output_cost_per_token": 2}})
    text = text.replace(": 1,", ": 1.0000000000000000000000001e-06,")  # 26 significant digits: floats keep 17
    assert _models(text)["openai/m"]["input_per_1k"] == "0.0010000000000000000000000001"


def test_cache_writes_five_minute_and_one_hour_and_long_context(imported):
    claude = imported["vertex_ai/claude-sonnet-4-5"]
    assert (claude["cache_write_per_1k"], claude["cache_write_1h_per_1k"]) == ("0.00375", "0.006")
    assert claude["long_context_threshold"] == 200000
    assert claude["long_context"]["cache_write_1h_per_1k"] == "0.012"
    assert claude["long_context"]["input_per_1k"] == "0.006"
    gpt54 = imported["openai/gpt-5.4"]
    assert (gpt54["long_context_threshold"], gpt54["long_context"]["output_per_1k"]) == (272000, "0.0225")


def test_batch_flex_priority_become_tiers(imported):
    tiers = imported["openai/gpt-5"]["tiers"]
    assert set(tiers) == {"batch", "flex", "priority"}
    assert tiers["priority"] == {"input_per_1k": "0.0025", "output_per_1k": "0.02", "cached_input_per_1k": "0.00025"}
    assert imported["gemini/gemini-2.5-flash"]["tiers"]["batch"]["audio_input_per_1k"] == "0.0005"


def test_other_kinds_audio_characters_seconds_images_searches(imported):
    assert imported["gemini/gemini-2.5-flash"]["audio_input_per_1k"] == "0.001"
    audio = imported["openai/gpt-4o-audio-preview-2024-12-17"]
    assert (audio["audio_input_per_1k"], audio["audio_output_per_1k"]) == ("0.04", "0.08")
    assert imported["openai/tts-1"]["per_1k_characters"] == "0.015"  # 1.5e-05 per character
    assert imported["openai/whisper-1"]["per_audio_second"] == "0.0001"
    assert imported["bedrock/us-east-1/1-month-commitment/anthropic.claude-v2:1"]["per_compute_second"] == "0.0175"
    assert imported["openai/gpt-image-1"]["image_input_per_1k"] == "0.01"
    # Priced per pixel for the size in its key: 4.19617e-08 x 1024 x 1024, exactly.
    assert imported["azure/standard/1024-x-1024/dall-e-3"]["per_image"] == str(Decimal("4.19617e-08") * 1024 * 1024)
    assert imported["openai/gpt-4o-search-preview"]["per_1k_searches"] == "25"  # $0.025 per query
    assert imported["perplexity/search"]["per_1k_searches"] == "5"
    assert imported["deepseek/deepseek-chat"]["cached_input_per_1k"] == "0.000028"


def test_ids_are_provider_slash_name_keeping_a_host_prefix(imported):
    assert {"openai/gpt-4o", "vertex_ai/gemini-2.5-pro", "gemini/gemini-2.5-flash", "bedrock/cohere.rerank-v3-5:0",
            "replicate/meta/llama-3-70b-instruct", "vertex_ai/claude-sonnet-4-5"} <= set(imported)  # fmt: skip
    assert imported["vertex_ai/gemini-2.5-pro"]["provider"] == "vertex_ai"
    assert imported["bedrock/global.anthropic.claude-opus-5-5"]["aliases"] == ["bedrock/claude-opus-latest"]


def test_every_entry_and_key_left_out_is_reported(report):
    assert "documentation" in report[("sample_spec", None)]
    assert "no price" in report[("azure_ai/mistral-ocr-4-0", None)]
    assert ("azure_ai/mistral-ocr-4-0", "ocr_cost_per_page") in report
    assert ("dashscope/qwen-flash", "tiered_pricing") in report
    assert ("gpt-4o", "fedramp_uplift_multiplier") in report
    assert ("gpt-image-1", "output_cost_per_image_token") in report
    assert ("cohere.rerank-v3-5:0", "input_cost_per_query") in report  # a rerank query is not a web search
    assert "tiers have no long-context" in report[("gpt-5.4", "input_cost_per_token_above_272k_tokens_batches")]
    assert "same model name as 'gpt-image-1'" in report[("low/1024-x-1024/gpt-image-1", None)]
    # Informational keys are never reported.
    assert not [k for k in report if k[1] and (k[1].startswith("supports_") or k[1] in ("max_tokens", "mode"))]


def test_duplicates_and_contracted_models_are_skipped_so_the_result_loads(sample, tmp_path):
    shipped, _ = read_price_file(SHIPPED_PRICES)
    result = convert(sample, source_date=DAY, existing=shipped)
    skipped = {u.entry: u.reason for u in result.skipped}
    assert "contracted" in skipped["claude-sonnet-4-5-20250929"]  # the shipped book holds a contract for it
    path = tmp_path / "prices.toml"
    path.write_text(result.toml, encoding="utf-8")
    read_price_file(path)  # the reader accepts every key written
    PriceBook.load(path)  # and the book loads it over the shipped file (names never clash)


def test_a_name_of_an_existing_model_prices_that_model():
    existing = PriceEntry("openai/gpt-4o", "openai", "tokens", Decimal(1), Decimal(1), aliases=("gpt-4o-2024-08-06",))
    text = json.dumps({"gpt-4o-2024-08-06": {"litellm_provider": "openai", "input_cost_per_token": 2.5e-06}})
    assert list(_models(text, existing=[existing])) == ["openai/gpt-4o"]


def test_effective_from_dates_every_entry_so_the_import_sits_over_the_shipped_book(sample, tmp_path):
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    result = convert(
        sample, source_date=moment.date(), effective_from=moment, existing=read_price_file(SHIPPED_PRICES)[0]
    )
    models = tomllib.loads(result.toml)["models"]
    assert {m["effective_from"] for m in models} == {date(2026, 12, 1)}
    assert {m["source"] for m in models} == {"LiteLLM model_prices_and_context_window.json (imported 2026-12-01)"}
    path = tmp_path / "prices.toml"
    path.write_text(result.toml, encoding="utf-8")
    book = PriceBook.load(path)
    whisper = book.lookup("whisper-1", at=datetime(2026, 12, 2, tzinfo=UTC)).entry
    assert whisper.effective_from == moment and whisper.source_date == date(2026, 12, 1)


@pytest.mark.parametrize("text", ["", "[1, 2]", "{}", '{"a": 1}', '{"m": {"input_cost_per_token": NaN}}', "not json"])
def test_text_that_is_not_litellm_json_is_refused(text):
    with pytest.raises(LiteLLMFormatError):
        convert(text, source_date=DAY)


def test_cli_writes_the_file_and_reports_on_stderr(tmp_path):
    out = tmp_path / "litellm.toml"
    args = ["prices", "import-litellm", str(SAMPLE), "--effective-from", "2026-12-01", "--output", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "imported 19 of 27 LiteLLM entries" in result.stderr
    assert "not imported: 'sample_spec': skipped" in result.stderr
    assert tomllib.loads(out.read_text())["models"][0]["effective_from"] == date(2026, 12, 1)


def test_cli_exit_2_for_a_file_that_is_not_litellm_json(tmp_path):
    bad = tmp_path / "prices.json"
    bad.write_text('{"models": []}', encoding="utf-8")
    result = CliRunner().invoke(cli, ["prices", "import-litellm", str(bad)])
    assert result.exit_code == 2
    assert "is not LiteLLM's model price JSON" in result.stderr
