"""Model ids and provider names: every spelling rule and inference in one place, pure strings, no price data.

Games log model ids in many spellings (``anthropic/claude-3.5-sonnet``, ``claude-3-5-sonnet-20241022``,
``Claude-3.5-Sonnet``...). :func:`parse_model_id` reduces one to a matching key plus the hints the
spelling carried (a ``provider/`` prefix, a local runtime's prefix, an OpenRouter ``:free`` suffix).
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

# Local runtimes: a model id that STARTS with one of these prefixes ran on the player's (or developer's) own
# machine, so nobody bills it per token. Spellings are LiteLLM's provider names (ollama, ollama_chat, lm_studio,
# llamafile, docker_model_runner, lemonade) and those other clients use for the same runtimes (lmstudio in the
# Vercel AI SDK and Continue, llama.cpp / llama_cpp / llamacpp for llama.cpp's server, jan, gpt4all, localai).
# Kept conservative on purpose: vllm / hosted_vllm, xinference, triton, oobabooga and petals are NOT here:
# they are servers that usually run on rented GPUs or someone else's machines, so $0 per token would hide a
# real cost. Such ids are priced by the book or a default (flagged); an operator who knows they are free adds
# an entry or a [defaults] table with unit = "free" to the price file, which is then visible as theirs.
_LOCAL_RUNTIMES = {
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "lm_studio": "lm_studio",
    "lmstudio": "lm_studio",
    "llamafile": "llamafile",
    "llama.cpp": "llama.cpp",
    "llama_cpp": "llama.cpp",
    "llamacpp": "llama.cpp",
    "docker_model_runner": "docker_model_runner",
    "lemonade": "lemonade",
    "jan": "jan",
    "gpt4all": "gpt4all",
    "localai": "localai",
}
OPENROUTER = "openrouter"
# OpenRouter's Free Models Router: a model id of its own, always $0 (https://openrouter.ai/openrouter/free).
_OPENROUTER_FREE_ROUTER = "free"

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
        """The id ends in ``:free``, whoever served it; see :attr:`is_openrouter_free` for the pricing rule."""
        return self.variant == "free"

    @property
    def local_runtime(self) -> str | None:
        """The local runtime the id's FIRST segment names (``ollama_chat/llama3`` -> ``ollama``), if any.

        Only the first segment counts: ``ollama/hf.co/org/model`` is a local model with a namespaced name, while
        ``org/ollama/model`` is not spelled by any runtime.
        """
        return _LOCAL_RUNTIMES.get(self.prefixes[0]) if self.prefixes else None

    @property
    def is_openrouter_free(self) -> bool:
        """The id is spelled like one of OpenRouter's $0 models.

        That is ``author/slug:free`` (how OpenRouter's API returns ``model``), optionally behind an
        ``openrouter/`` prefix (LiteLLM's spelling), or the Free Models Router ``openrouter/free``. A ``:free``
        suffix on any other shape (``gpt-4o:free``, ``x/y/z:free``) is not OpenRouter's and means nothing.
        """
        authors = self.prefixes[1:] if self.prefixes[:1] == (OPENROUTER,) else self.prefixes
        if self.is_free_variant:
            return len(authors) == 1 and authors[0] not in ("", OPENROUTER, *_NOT_PROVIDERS)
        router = self.prefixes in ((OPENROUTER,), (OPENROUTER, OPENROUTER))
        return router and self.variant is None and self.exact == _OPENROUTER_FREE_ROUTER


def provider_name(provider: str) -> str:
    """A provider as a price file names it: trimmed and case-folded, its spelling kept (``MistralAI`` -> ``mistralai``).

    Price entries keep the file's spelling (it is shown back as written); matching uses :func:`canonical_provider`.
    """
    return provider.strip().casefold()


def canonical_provider(provider: str) -> str:
    """Case-fold a provider name and map known alternative spellings (``mistralai`` -> ``mistral``)."""
    name = provider_name(provider)
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
