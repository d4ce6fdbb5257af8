"""Usage from a provider's answer, in the ledger's convention (README, "Token convention").

``usage_from_response(response)`` takes the SDK's own response object, or its dict form (the JSON answer or
``model_dump()``), and returns the event fields it can tell: ``model`` and ``provider`` when known, and the usage
kinds the answer reports (a kind left out counts 0). No SDK is imported: answers are recognised by their shape.

Answers that name no model (OpenAI transcriptions and images, an ElevenLabs raw response) leave ``model`` out:
the caller's ``model=`` supplies it. Calls whose answer carries no usage at all have helpers taking what was
sent: :func:`speech_usage` (OpenAI text-to-speech) and :func:`elevenlabs_usage`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import anthropic, elevenlabs, fast, firecrawl, gemini, openai, replicate
from ._common import UnrecognisedResponse, get, get2

__all__ = ["UnrecognisedResponse", "elevenlabs_usage", "speech_usage", "usage_from_response"]

Reader = Callable[[Any, str | None], dict[str, Any]]

speech_usage = openai.speech_usage
elevenlabs_usage = elevenlabs.tts_usage

# The SDKs whose classes always have one shape: the reader found for such a class is kept, so the next answer
# of that class skips detection (record() has 50 µs in all).
_SDK_MODULES = ("openai.", "anthropic.", "google.genai.", "replicate.", "firecrawl.", "elevenlabs.")
_by_class: dict[type, Reader] = {}


def _detect(response: Any) -> Reader | None:
    """The reader for an answer of this shape; the checks are ordered most common first."""
    kind = get(response, "object")
    if kind in ("chat.completion", "chat.completion.chunk"):
        return openai.chat_fields
    if kind == "response":
        return openai.responses_fields
    kind = get(response, "type")
    if kind == "message":
        return anthropic.message_fields
    if get2(response, "usage_metadata", "usageMetadata") is not None or get(response, "candidates") is not None:
        return gemini.response_fields
    usage = get(response, "usage")
    if get(usage, "type") in ("tokens", "duration") or (
        get(response, "duration") is not None and get(response, "text") is not None
    ):
        return openai.transcription_fields
    if get(response, "created") is not None and isinstance(get(response, "data"), list | type(None)):
        return openai.images_fields
    if get(response, "metrics") is not None or (get(response, "urls") is not None and get(response, "status")):
        return replicate.prediction_fields
    if firecrawl.credits_of(response) is not None:
        return firecrawl.fields
    headers = getattr(response, "headers", None)
    if headers is not None and elevenlabs.header_characters(headers) is not None:
        return elevenlabs.raw_response_fields
    return None


def usage_from_response(response: object, provider: str | None = None) -> dict[str, Any]:
    """Ledger event fields from a provider's answer (an SDK object or its dict form).

    ``provider`` names who served the call when the answer cannot tell (an OpenAI-compatible host such as
    ``groq``, or ``vertex_ai`` / ``bedrock`` for a resold model); it never changes how the answer is read.
    Raises :class:`UnrecognisedResponse` (a ``ValueError``) for anything else, naming what was given.
    """
    if provider is None or type(provider) is str:  # anything else fails below, as it always has
        fields = fast.read(response, provider.strip() if provider else None)  # None: the readers below decide
        if fields is not None:
            return fields
    cls = type(response)
    reader = _by_class.get(cls)
    if reader is None:
        reader = _detect(response)
        if reader is None:
            raise UnrecognisedResponse(
                f"cannot read usage from a {cls.__module__}.{cls.__qualname__}: expected an answer of OpenAI "
                "(chat completion, response, transcription, images), Anthropic (message), Gemini "
                "(GenerateContentResponse), Replicate (prediction), Firecrawl (document or job) or ElevenLabs "
                "(raw response with a character-cost header), as the SDK returns it or as a dict"
            )
        if cls.__module__.startswith(_SDK_MODULES):
            _by_class[cls] = reader
    return reader(response, provider.strip() if provider else None)
