"""ElevenLabs text-to-speech: billed per character.

The audio answer carries no usage body; ElevenLabs reports the characters it charged in the ``character-cost``
response header, which the SDK exposes through ``client.text_to_speech.with_raw_response.convert(...)``
(``.headers``). Without the header, the characters are those of the ``text`` sent (README's table).
"""

from __future__ import annotations

from typing import Any

from ._common import UnrecognisedResponse, base, put

PROVIDER = "elevenlabs"
HEADER = "character-cost"
DEFAULT_MODEL = "eleven_multilingual_v2"  # the SDK's default model_id for convert()


def header_characters(headers: Any) -> int | None:
    """The ``character-cost`` header as an int, from httpx ``Headers`` or any mapping (case-insensitive)."""
    if headers is None:
        return None
    value = headers.get(HEADER)
    if value is None and isinstance(headers, dict):
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == HEADER), None)
    if value is None:
        return None
    try:
        characters = int(str(value).strip())
    except ValueError:
        raise UnrecognisedResponse(f"the {HEADER} header must be a whole number, got {value!r}") from None
    return max(characters, 0)


def tts_usage(text: str | None = None, headers: Any = None, model: str | None = None) -> dict[str, Any]:
    """Characters of one text-to-speech call: the ``character-cost`` header, else ``len(text)``.

    ``model`` is the ``model_id`` given to ``convert`` (ElevenLabs' default when not given).
    """
    characters = header_characters(headers)
    if characters is None:
        if not isinstance(text, str):
            raise UnrecognisedResponse(
                f"ElevenLabs usage needs the {HEADER} response header (with_raw_response) or the text spoken"
            )
        characters = len(text)
    return put(base(model or DEFAULT_MODEL, PROVIDER), characters=characters)


def raw_response_fields(response: Any, provider: str | None) -> dict[str, Any]:
    """A raw response (``with_raw_response``): only its header can say what it cost."""
    characters = header_characters(getattr(response, "headers", None))
    if characters is None:
        raise UnrecognisedResponse(
            f"the ElevenLabs response has no {HEADER} header: use elevenlabs_usage(text=..., model=...)"
        )
    # The raw response does not name its model: the caller's ``model=`` does (a default could misprice: Flash
    # costs half of Multilingual).
    return put(base(None, provider or PROVIDER), characters=characters)
