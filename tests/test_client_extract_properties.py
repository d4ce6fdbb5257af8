"""Property tests: whatever counts a provider reports, the converted parts never exceed their wholes, no kind is
negative, and each whole is the provider's total by the README's conversion table."""

from __future__ import annotations

from typing import Any

from ai_usage_client.extract import usage_from_response
from ai_usage_client.streams import UsageAccumulator
from anthropic.types import Message, RawMessageDeltaEvent, RawMessageStartEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from models.usage_kinds import parts_overflow

counts = st.integers(min_value=0, max_value=2_000_000)
maybe = st.none() | counts


def valid_kinds(fields: dict[str, Any]) -> dict[str, int]:
    kinds = {k: v for k, v in fields.items() if k not in ("model", "provider")}
    assert all(isinstance(v, int) and v >= 0 for v in kinds.values()), kinds
    assert parts_overflow(kinds) == [], kinds
    return kinds


def openai_usage(
    prompt: Any, completion: Any, cached: Any, write: Any, audio: Any, image: Any, reasoning: Any, audio_out: Any,
    hit: Any,
) -> dict[str, Any]:  # fmt: skip
    """An OpenAI-shaped ``usage`` with every part detail (DeepSeek's cache-hit count when ``hit`` is not None)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": write, "audio_tokens": audio,
                                  "image_tokens": image},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": audio_out},
    }  # fmt: skip
    if hit is not None:
        usage["prompt_cache_hit_tokens"] = hit
    return usage


@settings(max_examples=150, deadline=None)
@given(prompt=counts, completion=counts, cached=maybe, write=maybe, audio=maybe, image=maybe, reasoning=maybe,
       audio_out=maybe, hit=maybe)  # fmt: skip
def test_openai_shaped_parts_fit_their_wholes(
    prompt: int, completion: int, cached: Any, write: Any, audio: Any, image: Any, reasoning: Any, audio_out: Any,
    hit: Any,
) -> None:  # fmt: skip
    usage = openai_usage(prompt, completion, cached, write, audio, image, reasoning, audio_out, hit)
    usage["total_tokens"] = prompt + completion
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [], "usage": usage}
    kinds = valid_kinds(usage_from_response(ChatCompletion.model_validate(body)))
    assert (kinds["tokens_input"], kinds["tokens_output"]) == (prompt, completion)
    assert usage_from_response(body) == usage_from_response(ChatCompletion.model_validate(body))


@settings(max_examples=150, deadline=None)
@given(uncached=counts, read=maybe, created=maybe, split=st.none() | st.tuples(counts, counts), output=counts,
       thinking=st.none() | counts, searches=st.none() | st.integers(0, 50))  # fmt: skip
def test_anthropic_input_is_uncached_plus_cache_reads_and_writes(
    uncached: int, read: Any, created: Any, split: Any, output: int, thinking: Any, searches: Any
) -> None:
    usage: dict[str, Any] = {"input_tokens": uncached, "output_tokens": output, "cache_read_input_tokens": read,
                             "cache_creation_input_tokens": created}  # fmt: skip
    if split is not None:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": split[0], "ephemeral_1h_input_tokens": split[1]}
    if thinking is not None:
        usage["output_tokens_details"] = {"thinking_tokens": thinking}
    if searches is not None:
        usage["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
    message = Message.model_validate(
        {"id": "m", "type": "message", "role": "assistant", "model": "claude-opus-4-6", "content": [],
         "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}
    )  # fmt: skip
    kinds = valid_kinds(usage_from_response(message))
    written = created if created is not None else (sum(split) if split else 0)
    assert kinds["tokens_input"] == uncached + (read or 0) + written
    assert kinds.get("tokens_cache_write", 0) + kinds.get("tokens_cache_write_1h", 0) == written
    assert kinds["tokens_output"] == output


@settings(max_examples=100, deadline=None)
@given(start_output=counts, deltas=st.lists(counts, min_size=1, max_size=6))
def test_anthropic_stream_takes_the_last_cumulative_delta_never_a_sum(start_output: int, deltas: list[int]) -> None:
    totals = sorted(deltas)  # message_delta counts are cumulative, so they only grow
    accumulator = UsageAccumulator()
    accumulator.add(
        RawMessageStartEvent.model_validate(
            {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant",
             "model": "claude-opus-4-6", "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": 10, "output_tokens": start_output}}}
        )
    )  # fmt: skip
    for total in totals:
        accumulator.add(
            RawMessageDeltaEvent.model_validate(
                {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": total}}
            )
        )
    fields = accumulator.fields()
    assert fields["tokens_output"] == totals[-1]
    assert fields["tokens_input"] == 10


modalities = st.lists(
    st.fixed_dictionaries({"modality": st.sampled_from(["TEXT", "AUDIO", "IMAGE", "VIDEO"]), "token_count": maybe}),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(prompt=maybe, tool=maybe, cached=maybe, candidates=maybe, thoughts=maybe, prompt_details=modalities,
       cache_details=modalities, candidate_details=modalities)  # fmt: skip
def test_gemini_parts_fit_their_wholes(
    prompt: Any, tool: Any, cached: Any, candidates: Any, thoughts: Any, prompt_details: Any, cache_details: Any,
    candidate_details: Any,
) -> None:  # fmt: skip
    from google.genai import types

    response = types.GenerateContentResponse(
        model_version="gemini-2.5-pro",
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=prompt, tool_use_prompt_token_count=tool, cached_content_token_count=cached,
            candidates_token_count=candidates, thoughts_token_count=thoughts,
            prompt_tokens_details=prompt_details, cache_tokens_details=cache_details,
            candidates_tokens_details=candidate_details,
        ),
    )  # fmt: skip
    kinds = valid_kinds(usage_from_response(response))
    assert kinds["tokens_input"] == (prompt or 0) + (tool or 0)
    assert kinds["tokens_output"] == (candidates or 0) + (thoughts or 0)
