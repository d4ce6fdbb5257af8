"""Google Gemini through ``google-genai``: a ``GenerateContentResponse`` and its ``usage_metadata``.

Field names are those of ``google-genai`` 3.6.1, ``types.py``: ``GenerateContentResponseUsageMetadata``
(``prompt_token_count`` "includes the number of tokens in the cached content", ``cached_content_token_count``,
``candidates_token_count``, ``thoughts_token_count``, ``tool_use_prompt_token_count``; ``total_token_count`` "is
the sum of prompt_token_count, candidates_token_count, tool_use_prompt_token_count and thoughts_token_count", so
thoughts and tool-use prompts are outside the other two), the ``*_tokens_details`` lists of
``ModalityTokenCount`` (``modality``: ``TEXT``, ``IMAGE``, ``AUDIO``...), ``model_version`` and
``candidates[].grounding_metadata.web_search_queries``. The REST answer spells the same fields in camelCase.
"""

from __future__ import annotations

from typing import Any

from ._common import base, count, fit, get, get2, put

PROVIDER = "google"


def _modality(details: Any, modality: str) -> int:
    """Tokens of one modality in a list of ``ModalityTokenCount`` (the SDK's enum is a ``str``)."""
    if not details:
        return 0
    total = 0
    for entry in details:
        if get(entry, "modality") == modality:
            total += count(get2(entry, "token_count", "tokenCount"))
    return total


def usage_metadata(response: Any) -> Any:
    return get2(response, "usage_metadata", "usageMetadata")


def _web_searches(response: Any, model: Any) -> int:
    """Google Search grounding: one billed request per grounded answer on Gemini 2.x, one per query on Gemini 3
    (https://ai.google.dev/gemini-api/docs/pricing, "Grounding with Google Search"; README's table)."""
    candidates = get(response, "candidates")
    if not candidates:
        return 0
    queries = get2(
        get2(candidates[0], "grounding_metadata", "groundingMetadata"), "web_search_queries", "webSearchQueries"
    )
    if not queries:
        return 0
    gemini_3 = isinstance(model, str) and model.rsplit("/", 1)[-1].startswith("gemini-3")
    return len(queries) if gemini_3 else 1


def response_fields(response: Any, provider: str | None) -> dict[str, Any]:
    """A ``GenerateContentResponse`` (or a stream's last chunk, whose ``usage_metadata`` is the final count)."""
    model = get2(response, "model_version", "modelVersion")
    fields = base(model, provider or PROVIDER)
    meta = usage_metadata(response)
    if meta is not None:
        prompt = count(get2(meta, "prompt_token_count", "promptTokenCount")) + count(
            get2(meta, "tool_use_prompt_token_count", "toolUsePromptTokenCount")
        )
        thoughts = count(get2(meta, "thoughts_token_count", "thoughtsTokenCount"))
        output = count(get2(meta, "candidates_token_count", "candidatesTokenCount")) + thoughts
        prompt_details = get2(meta, "prompt_tokens_details", "promptTokensDetails")
        cache_details = get2(meta, "cache_tokens_details", "cacheTokensDetails")
        # Gemini breaks cached tokens down by modality, so audio and image input count their uncached tokens.
        cached, audio_in, image_in = fit(
            prompt,
            count(get2(meta, "cached_content_token_count", "cachedContentTokenCount")),
            max(_modality(prompt_details, "AUDIO") - _modality(cache_details, "AUDIO"), 0),
            max(_modality(prompt_details, "IMAGE") - _modality(cache_details, "IMAGE"), 0),
        )
        reasoning, audio_out = fit(
            output, thoughts, _modality(get2(meta, "candidates_tokens_details", "candidatesTokensDetails"), "AUDIO")
        )
        fields["tokens_input"] = prompt
        fields["tokens_output"] = output
        put(
            fields,
            tokens_cached=cached,
            tokens_audio_input=audio_in,
            tokens_image_input=image_in,
            tokens_reasoning=reasoning,
            tokens_audio_output=audio_out,
        )
    return put(fields, web_searches=_web_searches(response, model))
