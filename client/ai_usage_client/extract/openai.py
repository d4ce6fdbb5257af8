"""OpenAI and OpenAI-shaped answers: Chat Completions (and DeepSeek, OpenRouter), Responses, audio, images.

Field names are those of the ``openai`` SDK 3.57.0: ``types/completion_usage.py`` (``CompletionUsage``,
``PromptTokensDetails.cached_tokens / cache_write_tokens / audio_tokens / image_tokens``,
``CompletionTokensDetails.reasoning_tokens / audio_tokens``), ``types/responses/response_usage.py``
(``input_tokens_details.cached_tokens / cache_write_tokens``, ``output_tokens_details.reasoning_tokens``),
``types/responses/response.py`` (``tool_usage.web_search.num_requests``), ``types/audio/transcription.py``
(``usage`` is ``UsageTokens`` or ``UsageDuration`` by ``type``), ``types/audio/transcription_verbose.py`` and
``translation_verbose.py`` (``duration``), ``types/images_response.py`` (``data``, ``usage.input_tokens_details.
image_tokens``). OpenAI's own convention is the ledger's: prompt totals include cached, audio and image tokens.
"""

from __future__ import annotations

import re
from typing import Any

from ._common import UnrecognisedResponse, base, count, fit, get, put, seconds_up

# Model ids only OpenAI serves (an OpenAI-shaped answer from another host names that host's model).
OPENAI_MODEL_ID = re.compile(r"^(?:gpt-|chatgpt|o\d|dall-e|whisper|tts-|text-embedding|codex|computer-use|omni-)")


def chat_provider(response: Any, usage: Any) -> str | None:
    """Who served an OpenAI-shaped chat completion, from what only that host puts in its answer.

    DeepSeek's usage has ``prompt_cache_hit_tokens`` (https://api-docs.deepseek.com/api/create-chat-completion);
    OpenRouter's answer names the upstream in a top-level ``provider`` and its ids start with ``gen-``
    (https://openrouter.ai/docs/api-reference/overview). The ledger's provider is who billed the call, so an
    OpenRouter answer is ``openrouter`` (a host the ledger prices by, README "Host-aware prices"), whatever it
    names upstream. Any other host cannot be told apart: ``openai`` only for OpenAI's own model ids, else
    nothing, and the ledger infers the provider from the model (pass ``provider=`` for Groq, Together...).
    """
    if get(response, "provider") is not None or str(get(response, "id") or "").startswith("gen-"):
        return "openrouter"
    if get(usage, "prompt_cache_hit_tokens") is not None:
        return "deepseek"
    model = get(response, "model")
    if isinstance(model, str) and OPENAI_MODEL_ID.match(model):
        return "openai"
    return None


def chat_usage(usage: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """``CompletionUsage`` (Chat Completions, DeepSeek, OpenRouter, Cerebras, Mistral...) into ledger kinds."""
    prompt = count(get(usage, "prompt_tokens"))
    completion = count(get(usage, "completion_tokens"))
    prompt_details = get(usage, "prompt_tokens_details")
    hit = get(usage, "prompt_cache_hit_tokens")  # DeepSeek: prompt = hit + miss
    cached = count(hit) if hit is not None else count(get(prompt_details, "cached_tokens"))
    # Chat does not break cached tokens down by modality, so cached ones count as text (README rule 1).
    cached, write, audio_in, image_in = fit(
        prompt,
        cached,
        count(get(prompt_details, "cache_write_tokens")),
        count(get(prompt_details, "audio_tokens")),
        count(get(prompt_details, "image_tokens")),
    )
    completion_details = get(usage, "completion_tokens_details")
    reasoning, audio_out = fit(
        completion,
        count(get(completion_details, "reasoning_tokens")),
        count(get(completion_details, "audio_tokens")),
    )
    fields["tokens_input"] = prompt
    fields["tokens_output"] = completion
    return put(
        fields,
        tokens_cached=cached,
        tokens_cache_write=write,
        tokens_audio_input=audio_in,
        tokens_image_input=image_in,
        tokens_reasoning=reasoning,
        tokens_audio_output=audio_out,
    )


def chat_fields(response: Any, provider: str | None) -> dict[str, Any]:
    """A ``ChatCompletion`` (or the last ``ChatCompletionChunk`` of a stream, which carries the usage)."""
    usage = get(response, "usage")
    fields = base(get(response, "model"), provider or chat_provider(response, usage))
    return chat_usage(usage, fields) if usage is not None else fields


def responses_fields(response: Any, provider: str | None) -> dict[str, Any]:
    """A Responses API ``Response`` (``response.completed`` carries it at the end of a stream)."""
    fields = base(get(response, "model"), provider or "openai")
    usage = get(response, "usage")
    if usage is not None:
        prompt = count(get(usage, "input_tokens"))
        output = count(get(usage, "output_tokens"))
        details = get(usage, "input_tokens_details")
        cached, write = fit(prompt, count(get(details, "cached_tokens")), count(get(details, "cache_write_tokens")))
        (reasoning,) = fit(output, count(get(get(usage, "output_tokens_details"), "reasoning_tokens")))
        fields["tokens_input"] = prompt
        fields["tokens_output"] = output
        put(fields, tokens_cached=cached, tokens_cache_write=write, tokens_reasoning=reasoning)
    # Hosted web search is billed per call, reported beside usage, not in it.
    searches = count(get(get(get(response, "tool_usage"), "web_search"), "num_requests"))
    return put(fields, web_searches=searches)


def transcription_fields(response: Any, provider: str | None) -> dict[str, Any]:
    """A transcription or translation: seconds (``whisper-1``) or tokens (``gpt-4o-transcribe``).

    The answer does not name its model: the caller's ``model=`` does.
    """
    fields = base(None, provider or "openai")
    usage = get(response, "usage")
    kind = get(usage, "type")
    if kind == "tokens":
        prompt = count(get(usage, "input_tokens"))
        (audio,) = fit(prompt, count(get(get(usage, "input_token_details"), "audio_tokens")))
        fields["tokens_input"] = prompt
        fields["tokens_output"] = count(get(usage, "output_tokens"))
        return put(fields, tokens_audio_input=audio)
    if kind == "duration":
        return put(fields, audio_seconds=seconds_up(get(usage, "seconds")))
    duration = get(response, "duration")  # verbose_json answers, translations included
    if duration is not None:
        return put(fields, audio_seconds=seconds_up(duration))
    raise UnrecognisedResponse(
        "the transcription has no usage and no duration: ask for response_format='verbose_json' "
        "(translations) or a model that reports usage"
    )


def images_fields(response: Any, provider: str | None) -> dict[str, Any]:
    """An ``ImagesResponse``: images generated, and GPT Image models' tokens."""
    fields = base(None, provider or "openai")
    data = get(response, "data")
    put(fields, images=len(data) if data else 0)
    usage = get(response, "usage")
    if usage is not None:
        prompt = count(get(usage, "input_tokens"))
        (image_in,) = fit(prompt, count(get(get(usage, "input_tokens_details"), "image_tokens")))
        fields["tokens_input"] = prompt
        fields["tokens_output"] = count(get(usage, "output_tokens"))
        put(fields, tokens_image_input=image_in)
    return fields


def speech_usage(input: str, model: str | None = None) -> dict[str, Any]:
    """Text-to-speech (``audio.speech.create``): billed per character of ``input``; the answer is audio only.

    Call it with the same ``input`` and ``model`` given to ``client.audio.speech.create(...)``.
    """
    if not isinstance(input, str):
        raise UnrecognisedResponse(f"speech input must be the text spoken, got {type(input).__name__}")
    return put(base(model, "openai"), characters=len(input))
