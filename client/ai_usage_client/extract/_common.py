"""Small helpers every provider module shares: read a field from an SDK object or its dict form, and keep parts
within their wholes.

The client imports no SDK, so every reader is duck-typed: a dict (the JSON answer, or an SDK object's
``model_dump()``) is read by key, anything else by attribute. Attribute access on the SDKs' pydantic models is a
plain ``__dict__`` lookup, far cheaper than ``model_dump()``, which matters inside ``record()``'s 50 µs budget.
"""

from __future__ import annotations

import math
from typing import Any

_MISSING = object()
# (model class, name) -> whether the class defines the name (a property); bounded by the SDKs' classes and the
# few names the readers ask for.
_class_defines: dict[tuple[type, str], bool] = {}


class UnrecognisedResponse(ValueError):
    """The object is no response the client knows how to read usage from."""


def get(obj: Any, name: str) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise; None when absent (absent and null count alike).

    A pydantic model's missing attribute costs ~6 µs (its ``__getattr__`` raises), so a model is read from its
    ``__dict__`` (its fields), then its extras (OpenRouter's and DeepSeek's own fields on an OpenAI model), and
    only a name its class defines (a property) goes through ``getattr``.
    """
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    values = getattr(obj, "__dict__", None)
    if values is not None:
        value = values.get(name, _MISSING)
        if value is not _MISSING:
            return value
    extra = getattr(obj, "__pydantic_extra__", _MISSING)
    if extra is _MISSING:  # not a pydantic model: an ordinary attribute lookup is cheap
        return getattr(obj, name, None)
    if extra and name in extra:
        return extra[name]
    cls = type(obj)
    defined = _class_defines.get((cls, name))
    if defined is None:  # asked of the class once: pydantic's metaclass raises (slowly) for a missing name
        defined = _class_defines[(cls, name)] = hasattr(cls, name)
    return getattr(obj, name, None) if defined else None


def get2(obj: Any, snake: str, camel: str) -> Any:
    """A field spelled ``snake`` by the SDK and ``camel`` by the provider's REST JSON (Gemini, Firecrawl)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        value = obj.get(snake)
        return obj.get(camel) if value is None else value
    return getattr(obj, snake, None)


def count(value: Any) -> int:
    """A reported count as a non-negative int: absent or null is 0 (README, "Token convention")."""
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if value > 0 else 0
    if isinstance(value, float):
        return int(value) if value > 0 else 0
    raise UnrecognisedResponse(f"a usage count must be a number, got {type(value).__name__} {value!r}")


def seconds_up(value: Any) -> int:
    """Seconds as a whole number, rounded up, as the ledger counts them (README, "Token convention")."""
    if value is None or isinstance(value, bool):
        return 0
    if not isinstance(value, int | float) or value != value:  # NaN is no duration
        raise UnrecognisedResponse(f"a duration must be a number of seconds, got {value!r}")
    return math.ceil(value) if value > 0 else 0


def fit(whole: int, *parts: int) -> list[int]:
    """Clip parts, in priority order, so they never add up to more than their whole.

    The ledger refuses an event whose parts exceed the whole (README, "Usage kinds"). A provider that counts one
    token in two parts (a cached audio token reported as both cached and audio, where it does not break cached
    tokens down by modality) would otherwise make the whole event rejected; the earlier part keeps the token.
    """
    room = whole
    out = []
    for part in parts:
        kept = part if part <= room else room
        out.append(kept)
        room -= kept
    return out


def put(fields: dict[str, Any], **kinds: int) -> dict[str, Any]:
    """Add the kinds that are non-zero: the ledger counts an absent kind as 0."""
    for name, value in kinds.items():
        if value:
            fields[name] = value
    return fields


def base(model: Any, provider: str | None) -> dict[str, Any]:
    """The event's ``model`` and ``provider``, each only when known (the ledger infers a missing provider)."""
    fields: dict[str, Any] = {}
    if isinstance(model, str) and model:
        fields["model"] = model
    if provider:
        fields["provider"] = provider
    return fields
