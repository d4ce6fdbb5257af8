"""LiteLLM's ``model_prices_and_context_window.json`` converted to this project's price format (pure: text in/out).

LiteLLM prices per TOKEN (``input_cost_per_token = 3e-06``); the price file prices per 1K tokens as decimal strings
(``input_per_1k = "0.003"``). Numbers are read from the JSON text as ``Decimal`` and multiplied by 1000 in an exact
context, so no value ever passes through a binary float. Every LiteLLM entry or key that the price format cannot hold
is reported (:class:`Unmapped`); keys that carry no price (context sizes, ``supports_*``...) are
:data:`INFORMATIONAL_KEYS` and are not. A price of 0 for something the price format does not bill at all loses nothing
and is not reported either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .entry import PriceEntry
from .file import excerpt, rate_problem
from .litellm_output import EXACT, MAX_ID, ImportedEntry, Unmapped, attach_aliases, decimal_text, one_per_name, render

# Keys that describe a model without pricing it: never imported, never reported.
INFORMATIONAL_KEYS = frozenset(
    {
        "litellm_provider", "mode", "max_tokens", "max_input_tokens", "max_output_tokens", "source", "metadata",
        "comment", "deprecation_date", "deprecation_source", "successor_model", "supported_endpoints",
        "supported_modalities", "supported_output_modalities", "supported_regions", "supported_audio_formats",
        "output_vector_size", "rpm", "tpm", "prompt_cache_min_tokens", "default_reasoning_effort",
        "reasoning_effort_levels", "reasoning_modes", "reasoning_contexts", "thinking_always_on",
        "thinking_on_by_default", "use_openai_responses_path", "uses_embed_content", "gemini_audio_only_live",
        "gemini_native_audio", "vertex_ai_audio_api", "audio_transcription_config", "web_search_billing_unit",
        "bedrock_output_config_effort_ceiling", "provider_specific_entry",
    }
)  # fmt: skip
INFORMATIONAL_PREFIXES = ("supports_", "bedrock_converse_supports_", "token_count_")

# LiteLLM per-token keys and the price-file rate each becomes (USD per 1K tokens).
TOKEN_RATES = {
    "input_cost_per_token": "input_per_1k",
    "output_cost_per_token": "output_per_1k",
    "cache_read_input_token_cost": "cached_input_per_1k",
    "cache_creation_input_token_cost": "cache_write_per_1k",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h_per_1k",
    "output_cost_per_reasoning_token": "reasoning_per_1k",
    "input_cost_per_audio_token": "audio_input_per_1k",
    "output_cost_per_audio_token": "audio_output_per_1k",
    "input_cost_per_image_token": "image_input_per_1k",
}
TIER_NAMES = {"batches": "batch", "flex": "flex", "priority": "priority"}
_AUDIO_MODES = frozenset({"audio_transcription", "audio_speech", "realtime"})
_IMAGE_MODES = frozenset({"image_generation", "image_edit"})
# "<stem>[_above_<N>k_tokens][_<tier>]": a long-context and/or service-tier variant of a per-token key. Numbers are
# ASCII and short: int() of a 5,000-digit key name raises, and no context or image is a million K tokens or pixels.
_VARIANT = re.compile(r"^(?P<stem>.+?)(?:_above_(?P<k>[0-9]{1,6})k_tokens)?(?:_(?P<tier>batches|flex|priority))?$")
_SIZE = re.compile(r"^([0-9]{1,6})-x-([0-9]{1,6})$")  # "1024-x-1024/dall-e-2": the size LiteLLM keys pixel prices by
# LiteLLM provider names whose models carry another name as the id's host prefix.
_PREFIX_OF = {"text-completion-openai": "openai", "text-completion-codestral": "codestral", "azure_text": "azure",
              "bedrock_converse": "bedrock"}  # fmt: skip


class LiteLLMFormatError(ValueError):
    """The text is not LiteLLM's price JSON (a top-level object of model entries)."""


@dataclass(frozen=True)
class ImportResult:
    toml: str  # the price file: [[models]] entries, loadable as AI_USAGE_PRICES_FILE
    imported: int  # entries written
    entries: int  # LiteLLM entries read
    unmapped: tuple[Unmapped, ...]  # every entry or key left out

    @property
    def skipped(self) -> tuple[Unmapped, ...]:
        return tuple(u for u in self.unmapped if u.key is None)

    @property
    def left_out_keys(self) -> tuple[Unmapped, ...]:
        """Keys of entries that were imported all the same."""
        skipped = {u.entry for u in self.skipped}
        return tuple(u for u in self.unmapped if u.key is not None and u.entry not in skipped)


def convert(
    text: str,
    *,
    source_date: date,
    effective_from: datetime | None = None,
    existing: Iterable[PriceEntry] = (),
) -> ImportResult:
    """Convert LiteLLM's JSON text into price-file TOML and the report of what was left out.

    ``existing`` are the entries the output will be loaded over (the shipped book): an import whose name belongs to
    another of their models, or that would price a contracted one, is skipped and reported, so the output loads.
    """
    data = _parse(text)
    unmapped: list[Unmapped] = []
    candidates: list[ImportedEntry] = []
    aliases: list[tuple[str, str]] = []
    for key, raw in data.items():
        if key == "sample_spec":
            unmapped.append(Unmapped(key, None, "LiteLLM's documentation of its keys, not a model"))
        elif not isinstance(raw, dict):
            unmapped.append(Unmapped(key, None, "not an object"))
        elif isinstance(raw.get("alias_of"), str) and set(raw) - {"alias_of"} <= INFORMATIONAL_KEYS:
            aliases.append((key, raw["alias_of"]))
        else:
            entry = _entry(key, raw, unmapped)
            if entry is not None:
                candidates.append(entry)
    kept = one_per_name(candidates, list(existing), unmapped)
    attach_aliases(aliases, kept, list(existing), unmapped)
    position = {key: index for index, key in enumerate(data)}
    unmapped.sort(key=lambda u: position[u.entry])  # the report follows the file (stable: keys stay in order)
    when = source_date.isoformat()
    blocks = [render(e, when, effective_from) for e in kept.values()]
    header = (
        f"# Imported from LiteLLM's model_prices_and_context_window.json on {when} (ai-usage prices import-litellm).\n"
        f"# {len(blocks)} of {len(data)} entries; USD per 1K tokens unless the key says otherwise.\n"
    )
    return ImportResult("\n".join([header, *blocks]), len(blocks), len(data), tuple(unmapped))


def _parse(text: str) -> dict[str, Any]:
    def refuse_constant(name: str) -> None:
        raise LiteLLMFormatError(f"{name} is not a price (JSON has no NaN or Infinity)")

    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        raise LiteLLMFormatError(f"not JSON: {exc}") from exc
    except RecursionError as exc:  # json's decoder recurses into each nested array or object
        raise LiteLLMFormatError("not LiteLLM's JSON: arrays or objects nested too deeply") from exc
    if not isinstance(data, dict) or not data:
        raise LiteLLMFormatError("expected a JSON object of model entries keyed by model name")
    if not any(isinstance(v, dict) and ("litellm_provider" in v or "alias_of" in v) for v in data.values()):
        raise LiteLLMFormatError("no entry has 'litellm_provider': this is not LiteLLM's model price file")
    return data


def _entry(key: str, raw: dict[str, Any], unmapped: list[Unmapped]) -> ImportedEntry | None:
    provider = raw.get("litellm_provider")
    if not isinstance(provider, str) or not provider.strip():
        unmapped.append(Unmapped(key, None, "no litellm_provider"))
        return None
    model_id = _model_id(key, provider)
    if len(model_id) > MAX_ID or any(not c.isprintable() for c in model_id):
        unmapped.append(Unmapped(key, None, f"id {model_id!r} is not a model id an event can carry"))
        return None
    mode = raw.get("mode")  # a mode that is not text is none: str() of a deeply nested one would recurse
    entry = ImportedEntry(key, model_id, model_id.split("/", 1)[0], mode if isinstance(mode, str) else "")
    lost: list[Unmapped] = []
    long_keys = [m for k in raw if (m := _VARIANT.match(k)) and m["k"] and not m["tier"] and m["stem"] in TOKEN_RATES]
    thresholds = sorted({int(m["k"]) for m in long_keys})
    entry.threshold = thresholds[0] * 1000 if thresholds else None
    for name in sorted(raw):
        if name in INFORMATIONAL_KEYS or name.startswith(INFORMATIONAL_PREFIXES):
            continue
        try:
            reason = _map_key(entry, name, raw[name], raw)
        except ArithmeticError:  # decimal's Inexact or Overflow: more digits or a larger exponent than EXACT holds
            reason = "not a price the price format can hold exactly"
        if reason is not None:
            lost.append(Unmapped(key, name, reason))
    if not (entry.rates or entry.long_context or entry.tiers):
        unmapped.append(Unmapped(key, None, "no price the price format can hold"))
        unmapped.extend(lost)
        return None
    unmapped.extend(lost)
    return entry


def _model_id(key: str, provider: str) -> str:
    """``provider/name``: a key already behind its host prefix (``gemini/``, ``vertex_ai/``) keeps it."""
    family = "vertex_ai" if provider.startswith("vertex_ai") else _PREFIX_OF.get(provider, provider)
    first = key.split("/", 1)[0]
    return key if "/" in key and first in (provider, family) else f"{family}/{key}"


def _map_key(entry: ImportedEntry, name: str, value: Any, raw: dict[str, Any]) -> str | None:
    """Put one LiteLLM key into the entry; the reason it cannot, or None when it is in."""
    if name == "search_context_cost_per_query":
        return _map_search(entry, value)
    if name == "alias_of":
        return "an alias with prices of its own: imported as its own entry"
    if isinstance(value, dict | list | str):
        return "not a price: the price format has no place for it"
    price = _price(value)
    if price is None:
        return f"{excerpt(str(value))} is not a non-negative price"
    match = _VARIANT.match(name)
    if match and match["stem"] in TOKEN_RATES:
        rate, threshold, tier = TOKEN_RATES[match["stem"]], match["k"], match["tier"]
        if threshold and tier:
            return "a long-context price of a service tier: the price format's tiers have no long-context rates"
        if threshold and int(threshold) * 1000 != entry.threshold:
            return f"a second long-context threshold ({threshold}K; only the first, {entry.threshold} tokens, is kept)"
        converted = _per_1k(price)
        if (why := _unloadable(rate, converted)) is not None:
            return why
        target = (
            entry.long_context if threshold else entry.tiers.setdefault(TIER_NAMES[tier], {}) if tier else entry.rates
        )
        target[rate] = converted
        return None
    other = _other_rate(entry, name, raw)
    if other is None:
        return None if price == 0 else "no such rate in the price format"
    rate, per_unit = other
    before, value = entry.rates.get(rate), per_unit(price)
    if (why := _unloadable(rate, value)) is not None:
        return why
    if before not in (None, 0, value):
        return None if value == 0 else f"{rate} is already {decimal_text(before)} from another key"
    entry.rates[rate] = value
    return None


def _other_rate(entry: ImportedEntry, name: str, raw: dict[str, Any]) -> tuple[str, Any] | None:
    """The price-file rate (and its unit conversion) of a LiteLLM key that is not per token, if it has one."""
    one = _same
    if name == "output_cost_per_image" or (name == "input_cost_per_image" and entry.mode in _IMAGE_MODES):
        return "per_image", one
    if name == "input_cost_per_character":
        return "per_1k_characters", _per_1k
    if name == "input_cost_per_request":
        return "per_request", one
    if name == "input_cost_per_token_cache_hit":  # DeepSeek's spelling of the cache-read price
        return "cached_input_per_1k", _per_1k
    if name == "input_cost_per_query" and entry.mode == "search":
        return "per_1k_searches", _per_1k
    if name == "output_cost_per_second" and entry.mode in _AUDIO_MODES:
        # LiteLLM gives whisper the same price per second on both sides: one audio second is billed once, and a
        # different output price is reported by the caller's check.
        return "per_audio_second", one
    if name in ("input_cost_per_second", "cost_per_second"):
        return ("per_audio_second" if entry.mode in _AUDIO_MODES else "per_compute_second"), one
    if name in ("input_cost_per_pixel", "output_cost_per_pixel") and "output_cost_per_image" not in raw:
        size = [m for part in entry.litellm_key.split("/") if (m := _SIZE.match(part))]
        if size and "input_cost_per_image" not in raw:
            pixels = int(size[0][1]) * int(size[0][2])
            in_px, out_px = (
                _price(raw.get(k, 0)) or Decimal(0) for k in ("input_cost_per_pixel", "output_cost_per_pixel")
            )
            total = EXACT.multiply(EXACT.add(in_px, out_px), Decimal(pixels))  # exact: a plain + rounds to 28 digits
            return "per_image", lambda _price: total  # both pixel keys give one per-image price for the key's size
    return None


def _map_search(entry: ImportedEntry, value: Any) -> str | None:
    """One price per 1K searches: OpenAI's default context size (medium), or the one price when all sizes agree."""
    if not isinstance(value, dict):
        return "not a table of prices by search context size"  # not its repr: a nested value's would recurse
    prices = {k: _price(v) for k, v in value.items()}
    medium = prices.get("search_context_size_medium")
    if medium is None:
        return "no search_context_size_medium price"
    converted = _per_1k(medium)
    if (why := _unloadable("per_1k_searches", converted)) is not None:
        return why
    entry.rates["per_1k_searches"] = converted
    others = sorted(k for k, p in prices.items() if p != medium)
    shown = ", ".join(k if k.isprintable() else repr(k) for k in others)  # LiteLLM's text, printed on the terminal
    return f"{excerpt(shown)} differ from medium (the medium price is imported)" if others else None


def _unloadable(rate: str, value: Decimal) -> str | None:
    """Why the price file would refuse this rate (above its bound, too many digits), so it is reported instead of
    written into a file that does not load."""
    why = rate_problem(value)
    return None if why is None else f"{rate} would be {excerpt(str(value))}: a price file's rate {why}"


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, Decimal | int) or not Decimal(value).is_finite():
        return None
    return Decimal(value) if value >= 0 else None


def _per_1k(price: Decimal) -> Decimal:
    return EXACT.multiply(price, Decimal(1000))


def _same(price: Decimal) -> Decimal:
    return price
