"""usage_from_response on Anthropic Messages, through the real ``anthropic`` SDK: its input_tokens excludes
cache reads and writes, so the ledger's tokens_input adds them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2  # anthropic 2.x runs on httpx2, the maintained fork of httpx
from ai_usage_client.extract import usage_from_response
from anthropic.types import Message

from models.usage_kinds import KINDS_BY_NAME, parts_overflow

DATA = Path(__file__).parent / "data" / "provider_responses"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def accepted_by_ledger(fields: dict[str, Any]) -> None:
    """The fields are ledger event fields within the usage kinds table's bounds and part-of rules."""
    kinds = {name: value for name, value in fields.items() if name not in ("model", "provider")}
    assert set(kinds) <= set(KINDS_BY_NAME), set(kinds) - set(KINDS_BY_NAME)
    assert all(isinstance(v, int) and 0 <= v <= KINDS_BY_NAME[k].bound for k, v in kinds.items()), kinds
    assert parts_overflow(kinds) == []


def test_message_from_the_sdk_adds_cache_reads_and_writes_to_the_input() -> None:
    body = recorded("anthropic_message_cache.json")
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=body))
    sdk = anthropic.Anthropic(
        api_key="x", base_url="http://ledger.test", http_client=httpx2.Client(transport=transport)
    )
    message = sdk.messages.create(model="claude-opus-4-6", max_tokens=512, messages=[{"role": "user", "content": "hi"}])
    assert isinstance(message, Message)
    fields = usage_from_response(message)
    assert fields == {
        "model": "claude-sonnet-4-5-20250929",
        "provider": "anthropic",
        "tokens_input": 21 + 12000 + 2600,
        "tokens_cached": 12000,
        "tokens_cache_write": 600,  # cache_creation.ephemeral_5m_input_tokens
        "tokens_cache_write_1h": 2000,  # cache_creation.ephemeral_1h_input_tokens
        "tokens_output": 393,
        "tokens_reasoning": 250,  # output_tokens_details.thinking_tokens, inside output_tokens
        "web_searches": 3,
    }
    accepted_by_ledger(fields)


def test_without_a_breakdown_every_cache_write_is_a_five_minute_one() -> None:
    message = Message.model_validate(recorded("anthropic_message_no_breakdown.json"))
    assert usage_from_response(message) == {
        "model": "claude-3-5-haiku-20241022",
        "provider": "anthropic",
        "tokens_input": 50 + 1500,
        "tokens_cache_write": 1500,
        "tokens_output": 7,
    }


def test_dict_form_reads_like_the_sdk_object() -> None:
    for name in ("anthropic_message_cache.json", "anthropic_message_no_breakdown.json"):
        body = recorded(name)
        message = Message.model_validate(body)
        assert usage_from_response(body) == usage_from_response(message) == usage_from_response(message.model_dump())


def test_a_resold_claude_names_the_host_given() -> None:
    message = Message.model_validate(recorded("anthropic_message_no_breakdown.json"))
    assert usage_from_response(message, provider="bedrock")["provider"] == "bedrock"
