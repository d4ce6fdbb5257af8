"""usage_from_response on OpenAI answers (and the OpenAI-shaped DeepSeek and OpenRouter ones), read through the
real ``openai`` SDK: recorded JSON answered to the SDK over an httpx transport, or validated into its types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2 as httpx  # openai 3.x and the others run on httpx2, the maintained fork of httpx
import openai
import pytest
from ai_usage_client.extract import UnrecognisedResponse, speech_usage, usage_from_response
from openai.types import ImagesResponse
from openai.types.audio import Transcription, TranslationVerbose
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from models.usage_kinds import KINDS_BY_NAME, parts_overflow

DATA = Path(__file__).parent / "data" / "provider_responses"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def sdk_answering(body: dict[str, Any]) -> openai.OpenAI:
    """The real SDK, whose every request is answered with ``body`` (so its own parsing builds the object)."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    return openai.OpenAI(api_key="x", base_url="http://ledger.test/v1", http_client=httpx.Client(transport=transport))


def accepted_by_ledger(fields: dict[str, Any]) -> None:
    """The fields are ledger event fields within the usage kinds table's bounds and part-of rules."""
    kinds = {name: value for name, value in fields.items() if name not in ("model", "provider")}
    assert set(kinds) <= set(KINDS_BY_NAME), set(kinds) - set(KINDS_BY_NAME)
    assert all(isinstance(v, int) and 0 <= v <= KINDS_BY_NAME[k].bound for k, v in kinds.items()), kinds
    assert parts_overflow(kinds) == []


def test_chat_completion_from_the_sdk_counts_cached_tokens_inside_the_prompt() -> None:
    completion = sdk_answering(recorded("openai_chat_completion.json")).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert isinstance(completion, ChatCompletion)
    fields = usage_from_response(completion)
    assert fields == {
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "tokens_input": 1117,
        "tokens_output": 46,
        "tokens_cached": 1024,
    }
    accepted_by_ledger(fields)


def test_chat_completion_audio_image_and_reasoning_parts() -> None:
    completion = ChatCompletion.model_validate(recorded("openai_chat_audio_reasoning.json"))
    assert usage_from_response(completion) == {
        "model": "gpt-4o-audio-preview-2025-06-03",
        "provider": "openai",
        "tokens_input": 900,
        "tokens_cached": 128,
        "tokens_audio_input": 600,
        "tokens_image_input": 100,
        "tokens_output": 500,
        "tokens_reasoning": 120,
        "tokens_audio_output": 300,
    }


@pytest.mark.parametrize(
    "name",
    [
        "openai_chat_completion.json",
        "openai_chat_audio_reasoning.json",
        "deepseek_chat_completion.json",
        "openrouter_chat_completion.json",
    ],
)
def test_dict_form_reads_like_the_sdk_object(name: str) -> None:
    body = recorded(name)
    completion = ChatCompletion.model_validate(body)
    assert usage_from_response(body) == usage_from_response(completion)
    assert usage_from_response(completion.model_dump()) == usage_from_response(completion)


def test_responses_api_reasoning_cache_and_web_searches() -> None:
    response = sdk_answering(recorded("openai_responses.json")).responses.create(model="o4-mini", input="hi")
    assert isinstance(response, Response)
    fields = usage_from_response(response)
    assert fields == {
        "model": "o4-mini-2025-04-16",
        "provider": "openai",
        "tokens_input": 2328,
        "tokens_cached": 1920,
        "tokens_output": 1203,
        "tokens_reasoning": 1024,
        "web_searches": 2,
    }
    assert usage_from_response(recorded("openai_responses.json")) == fields
    accepted_by_ledger(fields)


def test_deepseek_cache_hits_are_the_cached_part() -> None:
    completion = sdk_answering(recorded("deepseek_chat_completion.json")).chat.completions.create(
        model="deepseek-reasoner", messages=[{"role": "user", "content": "hi"}]
    )
    assert usage_from_response(completion) == {
        "model": "deepseek-reasoner",
        "provider": "deepseek",
        "tokens_input": 1600,  # = prompt_cache_hit_tokens 1536 + prompt_cache_miss_tokens 64
        "tokens_cached": 1536,
        "tokens_output": 830,
        "tokens_reasoning": 700,
    }


def test_openrouter_is_the_provider_that_billed_whatever_upstream_it_names() -> None:
    completion = sdk_answering(recorded("openrouter_chat_completion.json")).chat.completions.create(
        model="anthropic/claude-3.5-sonnet", messages=[{"role": "user", "content": "hi"}]
    )
    assert usage_from_response(completion) == {
        "model": "anthropic/claude-3.5-sonnet",
        "provider": "openrouter",
        "tokens_input": 2010,
        "tokens_cached": 1800,
        "tokens_output": 120,
    }


def test_an_unknown_openai_compatible_host_leaves_the_provider_to_the_caller_or_the_ledger() -> None:
    body = recorded("openai_chat_completion.json") | {"model": "llama-3.3-70b-versatile", "id": "chatcmpl-groq"}
    assert "provider" not in usage_from_response(ChatCompletion.model_validate(body))
    assert usage_from_response(ChatCompletion.model_validate(body), provider="groq")["provider"] == "groq"


def test_transcription_billed_by_tokens() -> None:
    transcription = Transcription.model_validate(recorded("openai_transcription_tokens.json"))
    fields = usage_from_response(transcription)
    assert fields == {"provider": "openai", "tokens_input": 14, "tokens_audio_input": 14, "tokens_output": 45}
    accepted_by_ledger(fields)


def test_transcription_billed_by_duration_rounds_seconds_up() -> None:
    transcription = Transcription.model_validate(recorded("openai_transcription_duration.json"))
    assert usage_from_response(transcription) == {"provider": "openai", "audio_seconds": 10}  # 9.2 s


def test_verbose_translation_counts_its_duration() -> None:
    translation = TranslationVerbose.model_validate(recorded("openai_translation_verbose.json"))
    assert usage_from_response(translation) == {"provider": "openai", "audio_seconds": 9}  # 8.47 s


def test_gpt_image_counts_images_and_tokens() -> None:
    images = ImagesResponse.model_validate(recorded("openai_images_gpt_image_1.json"))
    fields = usage_from_response(images)
    assert fields == {
        "provider": "openai",
        "images": 1,
        "tokens_input": 100,
        "tokens_image_input": 90,
        "tokens_output": 4160,
    }
    accepted_by_ledger(fields)


def test_dall_e_counts_images_only() -> None:
    images = sdk_answering(recorded("openai_images_dalle3.json")).images.generate(model="dall-e-3", prompt="x", n=2)
    assert usage_from_response(images) == {"provider": "openai", "images": 2}


def test_speech_is_billed_per_character_of_the_input_sent() -> None:
    assert speech_usage("Welcome, traveller!", "tts-1") == {"model": "tts-1", "provider": "openai", "characters": 19}
    with pytest.raises(UnrecognisedResponse, match="speech input must be the text"):
        speech_usage(b"audio")  # type: ignore[arg-type]


def test_parts_reported_twice_are_clipped_to_their_whole() -> None:
    # Cached audio tokens counted both as cached and as audio would make the ledger refuse the whole event.
    body = recorded("openai_chat_audio_reasoning.json")
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 800, "audio_tokens": 600}
    fields = usage_from_response(ChatCompletion.model_validate(body))
    assert (fields["tokens_cached"], fields["tokens_audio_input"]) == (800, 100)
    accepted_by_ledger(fields)


def test_a_transcription_without_usage_or_duration_is_refused() -> None:
    # A plain-text answer (response_format="text") reports nothing to bill from.
    with pytest.raises(UnrecognisedResponse):
        usage_from_response(Transcription.model_validate({"text": "hi"}))
