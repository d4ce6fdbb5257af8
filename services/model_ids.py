"""Model-id normalisation and provider inference: pure string rules, no price data.

Games log model ids in many spellings (``anthropic/claude-3.5-sonnet``, ``claude-3-5-sonnet-20241022``,
``Claude-3.5-Sonnet``...). :func:`parse_model_id` reduces one to a matching key plus the hints the
spelling carried (a ``provider/`` prefix, an OpenRouter ``:free`` suffix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Prefix spellings that name a known provider differently (Hugging Face / OpenRouter organisation names).
_PROVIDER_SPELLINGS = {
    "meta-llama": "meta",
    "mistralai": "mistral",
    "google-ai": "google",
    "gemini": "google",
    "vertex_ai": "google",
}
# Prefixes that are path segments of an SDK, not a provider (Google's SDK reports "models/gemini-...").
_NOT_PROVIDERS = frozenset({"models"})

# "-20241022", "-2024-08-06", "@20241022" at the end of an id.
_DATE_SUFFIX = re.compile(r"[-@](?:\d{8}|\d{4}-\d{2}-\d{2})$")
_LATEST_SUFFIX = "-latest"
# OpenRouter variant suffixes (":free", ":beta", ":nitro"...): letters only, so Bedrock's ":0" stays.
_VARIANT_SUFFIX = re.compile(r":([a-z]+)$")
# "3-5" -> "3.5" when a single-digit group follows a digit and ends the id or is followed by "-".
_VERSION_DASH = re.compile(r"(?<=\d)-(\d)(?=-|$)")

_PREFIX_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?:gpt-|chatgpt|o[134](?:-|$))"), "openai"),
    (re.compile(r"^claude"), "anthropic"),
    (re.compile(r"^gemini"), "google"),
    (re.compile(r"^deepseek"), "deepseek"),
)
_CONTAINS_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"llama"), "meta"),
    (re.compile(r"mistral|mixtral|codestral|ministral"), "mistral"),
)


@dataclass(frozen=True)
class ParsedModelId:
    key: str  # normalised name used for matching
    exact: str  # case-folded name without prefix or variant suffix, before the other rules
    prefixes: tuple[str, ...]  # every "a/b/" segment before the name, case-folded
    variant: str | None  # OpenRouter suffix without the colon, e.g. "free"

    @property
    def provider_hint(self) -> str | None:
        """The provider the ``provider/`` prefix names (the segment nearest the name), if any."""
        for segment in reversed(self.prefixes):
            if segment and segment not in _NOT_PROVIDERS:
                return canonical_provider(segment)
        return None

    @property
    def is_free_variant(self) -> bool:
        return self.variant == "free"


def canonical_provider(provider: str) -> str:
    """Case-fold a provider name and map known alternative spellings (``mistralai`` -> ``mistral``)."""
    name = provider.strip().casefold()
    return _PROVIDER_SPELLINGS.get(name, name)


def parse_model_id(model: str) -> ParsedModelId:
    text = model.strip().casefold()
    *prefixes, name = text.split("/")
    name = name.strip()
    variant = None
    found = _VARIANT_SUFFIX.search(name)
    if found:
        variant = found.group(1)
        name = name[: found.start()]
    return ParsedModelId(
        key=_normalise_name(name), exact=name, prefixes=tuple(p.strip() for p in prefixes), variant=variant
    )


def _normalise_name(name: str) -> str:
    previous = None
    while previous != name:  # "-latest" and a date may be stacked in either order
        previous = name
        if name.endswith(_LATEST_SUFFIX):
            name = name[: -len(_LATEST_SUFFIX)]
        name = _DATE_SUFFIX.sub("", name)
    return _VERSION_DASH.sub(r".\1", name)


def normalise_model_id(model: str) -> str:
    """The key used for matching: case-folded, trimmed, without ``provider/`` prefix, date or ``-latest``."""
    return parse_model_id(model).key


def infer_provider_from_name(model: str) -> str | None:
    """Guess the provider from the model name alone (``gpt-4o`` -> ``openai``); None when nothing fits."""
    key = parse_model_id(model).key
    for pattern, provider in _PREFIX_RULES:
        if pattern.search(key):
            return provider
    for pattern, provider in _CONTAINS_RULES:
        if pattern.search(key):
            return provider
    return None
