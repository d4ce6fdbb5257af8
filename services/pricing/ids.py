"""Model ids and provider names: every spelling rule and inference in one place, pure strings, no price data.

Games log model ids in many spellings (``anthropic/claude-3.5-sonnet``, ``claude-3-5-sonnet-20241022``,
``Claude-3.5-Sonnet``...). :func:`parse_model_id` reduces one to a matching key plus the hints the
spelling carried (a ``provider/`` prefix, a local runtime's prefix, an OpenRouter ``:free`` suffix, and the host
that served it: a ``together/`` prefix, or a host-shaped id such as Bedrock's ``us.anthropic.claude-...-v2:0``).

A host is who served (and billed) the request; the maker is who made the model. They differ for open models
(Llama on Together, Groq, Cerebras...) and for resold ones (Claude on Bedrock and Vertex, GPT on Azure), and the
price is the host's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Hosts that serve other makers' models at their own prices, by every spelling clients use for them: LiteLLM's
# provider names (together_ai, fireworks_ai, vertex_ai, azure_ai...), the Vercel AI SDK's (togetherai,
# google-vertex, amazon-bedrock...) and the plain name. The canonical name (the value) is LiteLLM's where it has
# one that is not a company suffix: "vertex_ai" (not "google": Vertex bills apart from the Gemini API and resells
# Claude, Llama and Mistral), "together", "fireworks", "azure" (Azure OpenAI and Azure AI Foundry alike).
_HOST_SPELLINGS = {
    "together": "together",
    "together_ai": "together",
    "togetherai": "together",
    "together-ai": "together",
    "groq": "groq",
    "cerebras": "cerebras",
    "fireworks": "fireworks",
    "fireworks_ai": "fireworks",
    "fireworks-ai": "fireworks",
    "deepinfra": "deepinfra",
    "bedrock": "bedrock",
    "amazon-bedrock": "bedrock",
    "aws-bedrock": "bedrock",
    "vertex_ai": "vertex_ai",
    "vertex": "vertex_ai",
    "vertexai": "vertex_ai",
    "vertex_ai_beta": "vertex_ai",
    "google-vertex": "vertex_ai",
    "google_vertex": "vertex_ai",
    "azure": "azure",
    "azure_ai": "azure",
    "azure-openai": "azure",
    "azure_openai": "azure",
    "openrouter": "openrouter",
    # OpenTelemetry's gen_ai.provider.name values (GenAI semantic conventions, registry "gen-ai.md").
    "aws.bedrock": "bedrock",
    "gcp.vertex_ai": "vertex_ai",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
}
HOSTS = frozenset(_HOST_SPELLINGS.values())
BEDROCK = "bedrock"
VERTEX = "vertex_ai"
# Prefix spellings that name a known provider differently (Hugging Face / OpenRouter organisation names).
_PROVIDER_SPELLINGS = {
    "meta-llama": "meta",
    "mistralai": "mistral",
    "google-ai": "google",
    "gemini": "google",
    # OpenTelemetry's names (see above) of providers that are not hosts.
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "xai",
    **_HOST_SPELLINGS,
}
# Prefixes that are path segments of an SDK, not a provider (Google's SDK reports "models/gemini-...", LiteLLM
# routes Bedrock calls as "bedrock/converse/<id>" or "bedrock/invoke/<id>").
_NOT_PROVIDERS = frozenset({"models", "converse", "invoke"})

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
# Bedrock's model ids: an optional cross-region inference profile ("us.", "eu.", "apac.", "global."...), the
# vendor, the vendor's name for the model, then Bedrock's version ("-v2:0", "-1:0", ":1") and an optional
# context-window variant (":200k"). A vendor prefix alone ("meta.x") is not enough: a region or version must be
# there too, so a dotted name of some other service is not taken for Bedrock's.
_BEDROCK_ID = re.compile(
    r"(?:(?P<region>us|eu|apac|global|us-gov|jp|au|ca)\.)?"
    r"(?P<vendor>anthropic|meta|mistral|amazon|cohere|ai21|deepseek|openai|qwen|writer|stability|twelvelabs)\."
    r"(?P<name>[a-z0-9][a-z0-9.\-]*?)"
    r"(?P<version>-v?\d+:\d+|:\d+)?(?::\d+k)?"
)
# Vertex AI's model ids carry their version after "@": a release date ("claude-3-5-sonnet-v2@20241022") or a
# version number ("mistral-large@2407").
_VERTEX_ID = re.compile(r"(?P<name>.+?)(?P<v2>-v\d+)?@(?P<version>\d+)")
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
    host: str | None = None  # who served it, canonical: the first segment if a known host, else the id's shape
    vendor: str | None = None  # the maker a Bedrock id names ("anthropic" in "us.anthropic.claude-...-v2:0")

    @property
    def provider_hint(self) -> str | None:
        """The provider the ``provider/`` prefix names (the segment nearest the name), else a Bedrock vendor."""
        for segment in reversed(self.prefixes):
            if segment and segment not in _NOT_PROVIDERS:
                return canonical_provider(segment)
        return self.vendor

    @property
    def maker_hint(self) -> str | None:
        """The maker the id names: the segment nearest the name that is not a host, else a Bedrock vendor.

        ``openrouter/anthropic/claude-3.5-sonnet`` -> ``anthropic``; ``together/llama-3.3-70b`` -> None. A prefix
        that is no known host (``novita/``) counts, so an entry of that provider is still preferred by it.
        """
        for segment in reversed(self.prefixes):
            name = canonical_provider(segment) if segment and segment not in _NOT_PROVIDERS else None
            if name and name not in HOSTS:
                return name
        return self.vendor

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


def host_name(segment: str) -> str | None:
    """The canonical host a spelling names (``together_ai`` -> ``together``), or None for any other name."""
    return _HOST_SPELLINGS.get(provider_name(segment))


def parse_model_id(model: str) -> ParsedModelId:
    text = model.strip().casefold()
    *raw_prefixes, name = text.split("/")
    prefixes = tuple(p.strip() for p in raw_prefixes)
    name = name.strip()
    variant = None
    found = _VARIANT_SUFFIX.search(name)
    if found:
        variant = found.group(1)
        name = name[: found.start()]
    # Only the first segment names the host, as only it names a local runtime: LiteLLM's "together_ai/meta-llama/x".
    host = _HOST_SPELLINGS.get(prefixes[0]) if prefixes else None
    vendor = None
    bedrock = _BEDROCK_ID.fullmatch(name)
    vertex = _VERTEX_ID.fullmatch(name)
    if bedrock and (bedrock.group("region") or bedrock.group("version")):
        name, vendor, host = bedrock.group("name"), canonical_provider(bedrock.group("vendor")), host or BEDROCK
    elif vertex:
        # "@20241022" becomes "-20241022" (the date rule strips it; "-v2" before it is Claude 3.5 Sonnet v2's
        # marker, the same price); "@2407" becomes "-2407", the name the maker gives that version.
        dated = len(vertex.group("version")) == 8
        base = vertex.group("name") + ("" if dated else vertex.group("v2") or "")
        name, host = f"{base}-{vertex.group('version')}", host or VERTEX
    return ParsedModelId(
        key=_normalise_name(name), exact=name, prefixes=prefixes, variant=variant, host=host, vendor=vendor
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
