"""usage_from_response on Gemini answers, as ``google-genai`` builds them and as the REST API spells them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ai_usage_client.extract import usage_from_response
from google.genai import types

from models.usage_kinds import KINDS_BY_NAME, parts_overflow

DATA = Path(__file__).parent / "data" / "provider_responses"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


EXPECTED = {
    "model": "gemini-2.5-flash",
    "provider": "google",
    "tokens_input": 2000 + 50,  # prompt_token_count (cache included) + tool_use_prompt_token_count
    "tokens_cached": 1200,
    "tokens_audio_input": 400 - 150,  # AUDIO of the prompt, less the cached AUDIO
    "tokens_image_input": 200 - 50,
    "tokens_output": 300 + 500,  # candidates + thoughts: thoughts are outside candidates_token_count
    "tokens_reasoning": 500,
    "tokens_audio_output": 280,
    "web_searches": 1,  # Gemini 2.x: one grounded request, however many queries
}


def accepted_by_ledger(fields: dict[str, Any]) -> None:
    """The fields are ledger event fields within the usage kinds table's bounds and part-of rules."""
    kinds = {name: value for name, value in fields.items() if name not in ("model", "provider")}
    assert set(kinds) <= set(KINDS_BY_NAME), set(kinds) - set(KINDS_BY_NAME)
    assert all(isinstance(v, int) and 0 <= v <= KINDS_BY_NAME[k].bound for k, v in kinds.items()), kinds
    assert parts_overflow(kinds) == []


def test_sdk_response_counts_modalities_thoughts_and_tool_prompts() -> None:
    # The SDK's own parser (camelCase JSON to its snake_case model), as generate_content uses it.
    response = types.GenerateContentResponse._from_response(
        response=recorded("gemini_generate_content.json"), kwargs={}
    )
    assert isinstance(response.usage_metadata, types.GenerateContentResponseUsageMetadata)
    fields = usage_from_response(response)
    assert fields == EXPECTED
    accepted_by_ledger(fields)


def test_rest_json_and_model_dump_read_like_the_sdk_object() -> None:
    body = recorded("gemini_generate_content.json")
    response = types.GenerateContentResponse._from_response(response=body, kwargs={})
    assert usage_from_response(body) == EXPECTED
    assert usage_from_response(response.model_dump()) == EXPECTED


def test_gemini_3_bills_each_search_query() -> None:
    body = recorded("gemini_generate_content.json") | {"modelVersion": "gemini-3-pro-preview"}
    response = types.GenerateContentResponse._from_response(response=body, kwargs={})
    assert usage_from_response(response)["web_searches"] == 2


def test_a_plain_text_answer_has_only_text_tokens() -> None:
    response = types.GenerateContentResponse(
        model_version="gemini-2.0-flash",
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=12, candidates_token_count=30, total_token_count=42
        ),
    )
    assert usage_from_response(response) == {
        "model": "gemini-2.0-flash",
        "provider": "google",
        "tokens_input": 12,
        "tokens_output": 30,
    }
