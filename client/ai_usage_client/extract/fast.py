"""The common answers read in one pass over plain dicts: an OpenAI-shaped chat completion and an Anthropic message,
as a dict or as the SDK's pydantic object, whose counts are plain non-negative ints.

``record()`` has 50 µs in all, and the general readers spend most of theirs asking ``get`` (an ``isinstance``, a
``getattr`` or two) for each of some 18 fields. Here a level of the answer is turned once into a dict whose
``.get(name)`` is exactly what ``get(level, name)`` would return: the dict itself, or a pydantic model's
``__dict__`` when it has no extras and its class defines none of the names read (checked once per class, so a
property never hides behind a missing field). Anything else (another type, extras such as OpenRouter's
``provider``, a float or a bool or a negative count) returns None and the general reader decides, so the two
always give the same fields: ``tests/test_client_fast_path.py`` pins them to each other.
"""

from __future__ import annotations

from typing import Any

from ._common import fit, put
from .anthropic import PROVIDER as ANTHROPIC
from .openai import OPENAI_MODEL_ID

_NAMES = (  # every name read below, at any level: a class defining one (a property) is not read from __dict__
    "object", "type", "model", "id", "provider", "usage", "prompt_tokens", "completion_tokens",
    "prompt_tokens_details", "completion_tokens_details", "prompt_cache_hit_tokens", "cached_tokens",
    "cache_write_tokens", "audio_tokens", "image_tokens", "reasoning_tokens", "input_tokens", "output_tokens",
    "cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation", "output_tokens_details",
    "server_tool_use", "ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens", "thinking_tokens",
    "web_search_requests",
)  # fmt: skip
_EMPTY: dict[str, Any] = {}
_CHAT = ("chat.completion", "chat.completion.chunk")  # a tuple: an unhashable ``object`` value is no error
# class -> whether its instances' __dict__ answers as ``get`` does; bounded by the SDKs' classes.
_plain_class: dict[type, bool] = {}
# model id -> "openai" or None (chat_provider's last rule); bounded, as a game uses a handful of models.
_MODEL_CACHE_LIMIT = 256
_provider_of_model: dict[str, str | None] = {}


class _NotCommon(Exception):
    """Raised inside a fast reader when the answer needs the general one."""


def _plain(cls: type) -> bool:
    known = _plain_class.get(cls)
    if known is None:
        # A pydantic v2 model (``__pydantic_extra__`` is one of its slots) whose class has none of the names.
        known = hasattr(cls, "__pydantic_extra__") and not any(hasattr(cls, name) for name in _NAMES)
        _plain_class[cls] = known
    return known


def _fields(level: Any) -> dict[str, Any]:
    """``level`` as a dict read like ``get`` reads it: None is empty; raises _NotCommon when that is not sure."""
    if type(level) is dict:
        return level
    if level is None:
        return _EMPTY
    if _plain(type(level)) and not level.__pydantic_extra__:
        return level.__dict__
    raise _NotCommon


def _count(value: Any) -> int:
    """``_common.count`` for the common values: an absent count or a non-negative int; others go general."""
    if value is None:
        return 0
    if type(value) is int and value >= 0:
        return value
    raise _NotCommon


def _with_model(model: Any) -> dict[str, Any]:
    """The event's fields so far: the model when the answer names one as a plain str."""
    if type(model) is str:
        return {"model": model} if model else {}
    if model is not None:
        raise _NotCommon  # a str subclass or another type: the general reader's isinstance decides
    return {}


def _chat(top: dict[str, Any], provider: str | None) -> dict[str, Any]:
    """``openai.chat_fields``: the same rules (see there), read from plain dicts."""
    usage = _fields(top.get("usage"))
    hit = usage.get("prompt_cache_hit_tokens")
    model = top.get("model")
    if not provider:  # openai.chat_provider
        ident = top.get("id")
        if type(ident) is not str and ident is not None:
            raise _NotCommon
        if top.get("provider") is not None or (ident is not None and ident.startswith("gen-")):
            provider = "openrouter"
        elif hit is not None:
            provider = "deepseek"
        elif type(model) is str:
            if model in _provider_of_model:
                provider = _provider_of_model[model]
            else:
                provider = "openai" if OPENAI_MODEL_ID.match(model) else None
                if len(_provider_of_model) < _MODEL_CACHE_LIMIT:
                    _provider_of_model[model] = provider
    fields = _with_model(model)
    if provider:
        fields["provider"] = provider
    if top.get("usage") is None:
        return fields
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    details = _fields(usage.get("prompt_tokens_details"))
    cached, write, audio_in, image_in = fit(
        prompt,
        _count(hit) if hit is not None else _count(details.get("cached_tokens")),
        _count(details.get("cache_write_tokens")),
        _count(details.get("audio_tokens")),
        _count(details.get("image_tokens")),
    )
    details = _fields(usage.get("completion_tokens_details"))
    reasoning, audio_out = fit(completion, _count(details.get("reasoning_tokens")), _count(details.get("audio_tokens")))
    fields["tokens_input"] = prompt
    fields["tokens_output"] = completion
    return put(
        fields, tokens_cached=cached, tokens_cache_write=write, tokens_audio_input=audio_in,
        tokens_image_input=image_in, tokens_reasoning=reasoning, tokens_audio_output=audio_out,
    )  # fmt: skip


def _message(top: dict[str, Any], provider: str | None) -> dict[str, Any]:
    """``anthropic.message_fields`` (``AnthropicUsage.read(...).fields``): the same rules, from plain dicts."""
    fields = _with_model(top.get("model"))
    fields["provider"] = provider or ANTHROPIC
    if top.get("usage") is None:
        return fields
    usage = _fields(top.get("usage"))
    uncached = _count(usage.get("input_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    written = usage.get("cache_creation_input_tokens")
    written = None if written is None else _count(written)
    breakdown = usage.get("cache_creation")
    one_hour = 0
    if breakdown is not None:
        breakdown = _fields(breakdown)
        one_hour = _count(breakdown.get("ephemeral_1h_input_tokens"))
        if written is None:
            written = _count(breakdown.get("ephemeral_5m_input_tokens")) + one_hour
    written = written or 0
    one_hour = one_hour if one_hour <= written else written
    output = _count(usage.get("output_tokens"))
    details = usage.get("output_tokens_details")
    thinking = 0 if details is None else _count(_fields(details).get("thinking_tokens"))
    thinking = thinking if thinking <= output else output
    tools = usage.get("server_tool_use")
    searches = 0 if tools is None else _count(_fields(tools).get("web_search_requests"))
    fields["tokens_input"] = uncached + read + written
    fields["tokens_output"] = output
    return put(
        fields, tokens_cached=read, tokens_cache_write=written - one_hour, tokens_cache_write_1h=one_hour,
        tokens_reasoning=thinking, web_searches=searches,
    )  # fmt: skip


def read(response: Any, provider: str | None) -> dict[str, Any] | None:
    """The fields of a common chat completion or message, or None when the general reader must decide.

    The shapes are told apart as ``extract._detect`` does: ``object`` first, then ``type``.
    """
    try:
        top = _fields(response)
        kind = top.get("object")
        if kind in _CHAT:
            return _chat(top, provider)
        if kind is None and top.get("type") == "message":
            return _message(top, provider)
    except _NotCommon:
        pass
    return None
