"""What an import of LiteLLM's prices writes: one entry per model name, LiteLLM's aliases, and the TOML text.

The price book tells models apart by (provider, name): LiteLLM lists one model under several keys (``x`` and
``bedrock/us-east-1/x``, or one image model per size), so only one of them can be written and the rest are reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Context, Decimal, Inexact

from .entry import PriceEntry
from .ids import parse_model_id, provider_name

EXACT = Context(prec=60, traps=[Inexact])  # a price with more digits than this is refused, never rounded
MAX_ID = 200  # the longest model id an event may carry
_PLAIN = re.compile(r"[A-Za-z0-9_.-]{1,60}")  # a LiteLLM mode written as is in a comment ("chat", "embedding")


@dataclass(frozen=True)
class Unmapped:
    """One LiteLLM entry (``key`` None: the whole entry) or one key of it that the import left out, and why."""

    entry: str
    key: str | None
    reason: str

    def __str__(self) -> str:
        # The key is LiteLLM's text, printed on the terminal: quoted when it holds a control or format character.
        key = self.key if self.key is None or self.key.isprintable() else repr(self.key)
        return f"{self.entry!r}: " + (f"{key}: {self.reason}" if key else f"skipped: {self.reason}")


@dataclass
class ImportedEntry:
    litellm_key: str
    model_id: str
    provider: str
    mode: str
    rates: dict[str, Decimal] = field(default_factory=dict)
    long_context: dict[str, Decimal] = field(default_factory=dict)
    threshold: int | None = None
    tiers: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)


def one_per_name(
    candidates: list[ImportedEntry], existing: list[PriceEntry], unmapped: list[Unmapped]
) -> dict[str, ImportedEntry]:
    """One entry per (provider, model name), as the price book requires: the plainest key wins.

    LiteLLM lists one model under several keys (``bedrock/us-east-1/x`` and ``x``; ``1024-x-1024/dall-e-2`` and
    ``512-x-512/dall-e-2``); the price book tells models apart by name only, so the rest are reported. A name that
    is already a model of ``existing`` (``claude-sonnet-4-5-20250929``, an alias of ``anthropic/claude-sonnet-4.5``)
    prices that model: the entry takes its id. A contracted model is never priced by an import.
    """
    owners: dict[tuple[str, str], PriceEntry] = {}
    contracted: dict[tuple[str, str], str] = {}
    for old in existing:
        provider = provider_name(old.provider)
        for name in (old.model_id, *old.aliases):
            parsed = parse_model_id(name)
            owners.setdefault((provider, parsed.exact), old)
            if old.contracted:
                contracted[(provider, parsed.key)] = old.model_id
    kept: dict[str, ImportedEntry] = {}
    for entry in sorted(candidates, key=lambda e: e.litellm_key.count("/")):  # stable: file order among equals
        parsed = parse_model_id(entry.model_id)
        provider = provider_name(entry.provider)
        owner = owners.get((provider, parsed.exact))
        contract = contracted.get((provider, parsed.key)) or (owner.model_id if owner and owner.contracted else None)
        if contract is not None:
            unmapped.append(
                Unmapped(entry.litellm_key, None, f"the price book has a contracted price for {contract!r}")
            )
            continue
        if owner is not None:
            entry.model_id, entry.provider = owner.model_id, provider_name(owner.provider)
        model_id = entry.model_id.casefold()
        if model_id in kept:
            reason = f"same model name as {kept[model_id].litellm_key!r}, which is imported as {model_id!r}"
            unmapped.append(Unmapped(entry.litellm_key, None, reason))
            continue
        kept[model_id] = entry
        owners[(provider_name(entry.provider), parse_model_id(model_id).exact)] = _placeholder(entry)
    order = {id(e): i for i, e in enumerate(candidates)}
    return dict(sorted(kept.items(), key=lambda item: order[id(item[1])]))


def _placeholder(entry: ImportedEntry) -> PriceEntry:
    """An imported entry as an owner of its name, so a later LiteLLM key with that name prices the same model."""
    zero = Decimal(0)
    return PriceEntry(entry.model_id.casefold(), provider_name(entry.provider), "tokens", zero, zero)


def attach_aliases(
    aliases: list[tuple[str, str]], kept: dict[str, ImportedEntry], existing: list[PriceEntry], unmapped: list[Unmapped]
) -> None:
    """A LiteLLM ``alias_of`` entry becomes an alias of its target when the name is free for that provider."""
    by_key = {e.litellm_key: e for e in kept.values()}
    taken = {(provider_name(e.provider), parse_model_id(n).exact) for e in existing for n in (e.model_id, *e.aliases)}
    taken |= {(e.provider.casefold(), parse_model_id(e.model_id).exact) for e in kept.values()}
    for alias, target_key in aliases:
        target = by_key.get(target_key)
        name = (target.provider.casefold(), parse_model_id(alias).exact) if target else None
        if target is None:
            unmapped.append(Unmapped(alias, None, f"alias of {target_key!r}, which is not imported"))
        elif len(alias) > MAX_ID or not alias.isprintable():
            unmapped.append(Unmapped(alias, None, "not a model id an event can carry"))
        elif name in taken:
            unmapped.append(Unmapped(alias, None, f"alias of {target_key!r}: the name {name[1]!r} is taken"))
        else:
            target.aliases.append(alias)
            taken.add(name)


def render(entry: ImportedEntry, when: str, effective_from: datetime | None) -> str:
    """One ``[[models]]`` entry. Text from LiteLLM's file (its key and mode, the model id and aliases) is written
    only as a TOML string or an escaped string in a comment, never raw: a newline in it would end the comment and
    write entries of its own."""
    mode = entry.mode if _PLAIN.fullmatch(entry.mode) else _string(entry.mode) if entry.mode else "no mode"
    lines = [f"# LiteLLM {_string(entry.litellm_key)} ({mode})", "[[models]]"]
    lines.append(f"id = {_string(entry.model_id)}")
    lines.append(f"provider = {_string(entry.provider)}")
    rates = {"input_per_1k": Decimal(0), "output_per_1k": Decimal(0), **entry.rates}  # LiteLLM: absent costs 0
    lines += [f"{name} = {_string(decimal_text(value))}" for name, value in rates.items()]
    if entry.long_context:
        lines.append(f"long_context_threshold = {entry.threshold}")
        lines.append(f"long_context = {_inline(entry.long_context)}")
    if effective_from is not None:
        lines.append(f"effective_from = {_moment(effective_from)}")
    if entry.aliases:
        lines.append(f"aliases = [{', '.join(_string(a) for a in entry.aliases)}]")
    lines.append(f"source = {_string(f'LiteLLM model_prices_and_context_window.json (imported {when})')}")
    lines.append(f"source_date = {when}")
    if entry.tiers:
        lines.append(f"tiers = {{ {', '.join(f'{t} = {_inline(r)}' for t, r in sorted(entry.tiers.items()))} }}")
    return "\n".join(lines) + "\n"


def decimal_text(value: Decimal) -> str:
    """``0.003`` for 3e-06 x 1000: the exact value, never an exponent, no trailing zeros."""
    return format(value.normalize(EXACT), "f") if value else "0"


def _inline(rates: dict[str, Decimal]) -> str:
    return "{ " + ", ".join(f"{k} = {_string(decimal_text(v))}" for k, v in rates.items()) + " }"


def _string(text: str) -> str:
    """A TOML basic string holding ``text``, in printable ASCII only, so it is also safe inside a comment.

    A JSON string with ASCII escapes is a TOML basic string, but for DEL, which JSON leaves raw and TOML forbids,
    and a lone surrogate, whose ``\\ud800`` TOML refuses: the first is escaped, the second becomes "?".
    """
    text = text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text
    return json.dumps(text, ensure_ascii=True).replace("\x7f", "\\u007f")


def _moment(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    if moment.time() == time(0):
        return moment.date().isoformat()  # a bare date means 00:00 UTC that day
    return moment.isoformat().replace("+00:00", "Z")
