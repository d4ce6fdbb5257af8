"""The price book: which price applied to a model at a moment in time.

Prices come from ``services/data/prices.toml`` plus an optional user file with the same format on top.
Every price is a ``Decimal`` read from a string; nothing here does arithmetic on money (see ``cost``).

Two rules price a model at $0 without a book entry, and only the model id itself can invoke them: a local
runtime's prefix (``ollama/llama3``) and an OpenRouter ``:free`` id (``meta-llama/llama-3.3-70b-instruct:free``).
A ``provider`` argument is a hint that chooses between models sharing a name and picks a default; it never
makes a priced id free. A contracted model is never free. Every match says which rule chose it.

Hosts: an entry's ``provider`` is who serves the model at that price, so one model may have several entries
(``together/llama-3.3-70b-instruct``, ``cerebras/llama-3.3-70b``). The host of a request is the ``provider``
argument, else the one its id names (``cerebras/`` prefix, Bedrock's ``us.anthropic.…-v2:0``, Vertex's ``…@date``).
That host's entry prices it; when the host has none, the model's reference entry (its maker's own, else the first
by id) prices it and the rule says ``other_host``, so a price borrowed from another host is never silent.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from models.ai_usage import FREE_PRICE_RULES, PriceRule

from .entry import PriceBookError, PriceEntry
from .file import SHIPPED_PRICES, PlacedEntry, check_entries, read_price_file
from .ids import OPENROUTER, canonical_provider, infer_provider_from_name, parse_model_id

GLOBAL_DEFAULT = "*"
_FREE_VARIANT_SOURCE = "https://openrouter.ai/docs/guides/routing/model-variants/free (OpenRouter ':free': no charge)"
_EPOCH = datetime.min.replace(tzinfo=UTC)
# Model names seen in traffic are few; the bound keeps a flood of junk names from growing memory.
_RESOLVED_CACHE_SIZE = 10_000
_UNSEEN = "\0unseen"  # not a provider: a model id whose provider is not cached yet


# The rules are defined once, with the row that stores them.
FREE_RULES: frozenset[PriceRule] = FREE_PRICE_RULES  # type: ignore[assignment]


@dataclass(frozen=True)
class PriceMatch:
    """The entry that prices a model at a moment, and the rule that chose it.

    ``rule`` is one of:

    - ``"book"``: the model's own entry in the price book, its host's when a host is named (a contracted entry is
      always this, whatever the host).
    - ``"other_host"``: a host is named and has no entry for the model, so the model's reference entry (its
      maker's own, else the first by id) priced it: a real price, but another host's.
    - ``"default"``: the model is unknown; its provider's default, else the global one, priced it.
    - ``"free_local"``: $0 because the id starts with a local runtime's prefix (``ollama/``, ``lm_studio/``...).
    - ``"free_variant"``: $0 because the id is an OpenRouter ``:free`` id (or the ``openrouter/free`` router).

    The two free rules are not book prices, so callers store the rule and count them apart: $0 is never silent.
    ``host`` is the host the request named (the ``provider`` argument, else the id's prefix or shape), canonical,
    or None; compare it with ``entry.provider`` to see whose rate priced it.
    """

    entry: PriceEntry
    rule: PriceRule
    host: str | None = None

    @property
    def is_other_host(self) -> bool:
        """True when the named host has no entry for the model and another host's rate priced it."""
        return self.rule == "other_host"

    @property
    def is_fallback(self) -> bool:
        """True when no entry knew the model and a default priced it (stored as ``price_is_fallback``)."""
        return self.rule == "default"

    @property
    def is_free_by_rule(self) -> bool:
        return self.rule in FREE_RULES


def _free_entry(model_id: str, provider: str, source: str) -> PriceEntry:
    zero = Decimal(0)
    return PriceEntry(
        model_id=model_id, provider=provider, unit="free", input_per_1k=zero, output_per_1k=zero, source=source
    )


def _utc(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} has no timezone; pass an aware (UTC) datetime")
    return at.astimezone(UTC)


def _names(entry: PriceEntry) -> list[tuple[str, str]]:
    """The (exact, key) pairs of an entry's id and aliases."""
    return [(parsed.exact, parsed.key) for parsed in map(parse_model_id, (entry.model_id, *entry.aliases))]


# A matched model's price history, the rule that chose it and the host the request named; then, as looked up,
# the moments its versions start (sorted) and the match each gives.
_Resolved = tuple[list[PriceEntry], PriceRule, str | None]
_Versions = tuple[list[datetime], list[PriceMatch]]


class PriceBook:
    """Entries indexed by model id, exact name and normalised key; build with :meth:`load` or :meth:`from_entries`."""

    def __init__(self, entries: Iterable[PriceEntry], defaults: Mapping[str, PriceEntry]) -> None:
        self._history: dict[str, list[PriceEntry]] = {}
        self._resolved: dict[tuple[str, str | None], _Versions] = {}
        self._providers: dict[str, str | None] = {}
        entries = list(entries)
        # The same rules as a price file's; :meth:`load` has run them already with each entry's file named.
        check_entries(PlacedEntry(entry, "PriceBook entries", index) for index, entry in enumerate(entries))
        for entry in entries:
            self._history.setdefault(entry.model_id, []).append(entry)
        for versions in self._history.values():
            versions.sort(key=lambda v: v.effective_from or _EPOCH)
        if GLOBAL_DEFAULT not in defaults:
            raise PriceBookError(f"defaults: the global default {GLOBAL_DEFAULT!r} is missing")
        self._defaults = {
            canonical_provider(p) if p != GLOBAL_DEFAULT else p: dataclasses.replace(e, is_default=True)
            for p, e in defaults.items()
        }
        self._exact: dict[str, set[str]] = {}
        self._keys: dict[str, set[str]] = {}
        for model_id, versions in self._history.items():
            for version in versions:
                for exact, key in _names(version):
                    self._exact.setdefault(exact, set()).add(model_id)
                    self._keys.setdefault(key, set()).add(model_id)
        # Who serves each model at its price, spelled as hosts and hints are (a file may write "together_ai").
        self._served_by = {model_id: canonical_provider(v[0].provider) for model_id, v in self._history.items()}
        self._spelled = {model_id: parse_model_id(model_id).exact for model_id in self._history}
        self._check_name_clashes()

    def _check_name_clashes(self) -> None:
        """Two models of one provider may not share a spelling, nor a key if either is contracted."""
        for index, contracted_only in ((self._exact, False), (self._keys, True)):
            for name, ids in index.items():
                by_provider: dict[str, list[PriceEntry]] = {}
                for model_id in sorted(ids):
                    first = self._history[model_id][0]
                    by_provider.setdefault(first.provider, []).append(first)
                for provider, owners in by_provider.items():
                    if len(owners) > 1 and (not contracted_only or any(o.contracted for o in owners)):
                        raise PriceBookError(
                            f"name {name!r} matches several {provider} models "
                            f"{[o.model_id for o in owners]} (a contracted model's names are "
                            "its own): field 'aliases'"
                        )

    @classmethod
    def from_entries(cls, entries: Iterable[PriceEntry], defaults: Mapping[str, PriceEntry]) -> PriceBook:
        return cls(entries, defaults)

    @classmethod
    def load(cls, override_path: Path | None = None) -> PriceBook:
        """The shipped price file, then the user's file on top (its entries win for the same id + date)."""
        entries, defaults = read_price_file(SHIPPED_PRICES)
        merged = _by_version(entries, SHIPPED_PRICES)
        if override_path is not None:
            extra_entries, extra_defaults = read_price_file(Path(override_path))
            contracted_now = {e.model_id for e in extra_entries if e.contracted}
            # A contract in the user's file replaces every shipped price for that model.
            merged = {k: v for k, v in merged.items() if k[0] not in contracted_now}
            merged.update(_by_version(extra_entries, override_path))
            defaults = {**defaults, **extra_defaults}
        # A dated price in one file beside a contract in the other is refused here, naming both files.
        check_entries(merged.values())
        return cls([placed.entry for placed in merged.values()], defaults)

    def entries(self) -> list[PriceEntry]:
        return [v for model_id in sorted(self._history) for v in self._history[model_id]]

    def defaults(self) -> dict[str, PriceEntry]:
        return dict(self._defaults)

    def current_entries(self, at: datetime) -> list[PriceEntry]:
        when = _utc(at)
        return [_in_force(self._history[model_id], when) for model_id in sorted(self._history)]

    def find(self, model: str, at: datetime | None = None) -> PriceEntry | None:
        match = self.lookup(model, at)
        return None if match.is_fallback else match.entry

    def versions(self, model: str, provider: str | None = None) -> _Versions:
        """The moments the prices for ``model`` (served by ``provider``) start, oldest first, and the match in force
        from each: one, from the epoch, for a model with a single price, a free or a default one.

        Name matching is the costly part and does not depend on time, so it is resolved once per name (every
        event is looked up); ``lookup`` and the ledger's ``EventPricer`` pick the version for a moment from this.
        """
        resolved = self._resolved.get((model, provider))
        if resolved is None:
            resolved = _versions(self._resolve(model, provider))
            if len(self._resolved) < _RESOLVED_CACHE_SIZE:
                self._resolved[(model, provider)] = resolved
        return resolved

    def lookup(self, model: str, at: datetime | None = None, provider: str | None = None) -> PriceMatch:
        starts, matches = self.versions(model, provider)
        when = at if at is not None and at.tzinfo is UTC else _utc(at)  # a naive moment is refused, always
        return matches[0] if len(matches) == 1 else matches[bisect_right(starts, when) - 1]

    def _resolve(self, model: str, provider: str | None) -> PriceMatch | _Resolved:
        """A fixed answer (free or default), or the price history of the matched model, its rule and host."""
        parsed = parse_model_id(model)
        # The id alone decides the free rules; `provider` never switches pricing off (issue 8, point 7).
        runtime = parsed.local_runtime
        if runtime is not None:
            source = f"Local runtime {runtime!r} (id prefix '{parsed.prefixes[0]}/'): runs locally, no per-token charge"
            return PriceMatch(_free_entry(f"{runtime}/{parsed.exact}", runtime, source), "free_local")
        given = canonical_provider(provider) if provider else None
        host = given or parsed.host  # the event's own word on who served it outranks the id's spelling
        # "anthropic/claude-3.5-sonnet:free" from Anthropic itself is not OpenRouter's: a provider other than
        # OpenRouter can only keep the price on, never take it off.
        openrouter_free = parsed.is_openrouter_free and given in (None, OPENROUTER)
        makers = [p for p in (parsed.maker_hint, infer_provider_from_name(parsed.key)) if p]
        chosen = self._choose(parsed.exact, parsed.key, host, makers)
        if chosen is not None:
            history = self._history[chosen[0]]
            if openrouter_free and not history[0].contracted:  # a contract holds whatever the id's suffix says
                return [_as_free(version) for version in history], "free_variant", host
            return history, chosen[1], host
        if openrouter_free:
            owner = given or parsed.provider_hint or "unknown"
            name = "/".join((*parsed.prefixes, parsed.exact)) + (":free" if parsed.is_free_variant else "")
            return PriceMatch(_free_entry(name, owner, _FREE_VARIANT_SOURCE), "free_variant", host)
        for candidate in (given, parsed.host, parsed.provider_hint, *makers):
            if candidate and candidate in self._defaults:
                return PriceMatch(self._defaults[candidate], "default", host)
        return PriceMatch(self._defaults[GLOBAL_DEFAULT], "default", host)

    def infer_provider(self, model: str) -> str | None:
        provider = self._providers.get(model, _UNSEEN)  # one dict read: every logged event without a provider asks
        if provider is not _UNSEEN:
            return provider
        parsed = parse_model_id(model)
        # Who served it: a local runtime, a host (prefix or id shape), then the provider the prefix names.
        provider = parsed.local_runtime or parsed.host or parsed.provider_hint
        if not provider:
            maker = infer_provider_from_name(parsed.key)
            chosen = self._choose(parsed.exact, parsed.key, None, [maker] if maker else [])
            provider = self._history[chosen[0]][0].provider if chosen else maker
        if len(self._providers) < _RESOLVED_CACHE_SIZE:
            self._providers[model] = provider
        return provider

    def _choose(self, exact: str, key: str, host: str | None, makers: list[str]) -> tuple[str, PriceRule] | None:
        """The model id that prices a name, and its rule; None when no entry has the name.

        The model's entries across hosts are those with the exact spelling, then those with the normalised key
        (hosts spell one model differently, and an alias may be on one host's entry only). A contract among them
        wins whatever the host; then the host's own entry; then the reference entry (the maker's, else any with
        the exact spelling), which is ``other_host`` when a host was named and ``book`` when none was.
        """
        exact_ids, key_ids = self._exact.get(exact, set()), self._keys.get(key, set())
        # A dated snapshot with an entry of its own (gpt-4o-2024-05-13) is another model than its key's (gpt-4o):
        # the key's entries are not its hosts.
        snapshot = exact != key and any(self._spelled[i] == exact for i in exact_ids)
        tiers = [(sorted(ids), name) for ids, name in ((exact_ids, exact), (key_ids, key)) if ids]
        tiers = tiers[:1] if snapshot else tiers
        if not tiers:
            return None
        contract = self._first(tiers, lambda i: self._history[i][0].contracted)
        if contract is not None:
            return contract, "book"
        served = self._first(tiers, lambda i: self._served_by[i] == host) if host else None
        if served is not None:
            return served, "book"
        makers_own = (self._first(tiers, lambda i, m=maker: self._served_by[i] == m) for maker in makers)
        reference = next((i for i in makers_own if i is not None), None) or self._spelled_first(*tiers[0])
        return reference, "other_host" if host else "book"

    def _first(self, tiers: list[tuple[list[str], str]], accept: Callable[[str], bool]) -> str | None:
        """The first accepted id, tier by tier. Several may share a key (gpt-4o and its dated snapshot): the one
        spelled like the name wins, then the lowest id, so the answer never depends on set order."""
        for ids, name in tiers:
            accepted = [i for i in ids if accept(i)]
            if accepted:
                return self._spelled_first(accepted, name)
        return None

    def _spelled_first(self, ids: list[str], name: str) -> str:
        return min(ids, key=lambda i: (self._spelled[i] != name, i))


def _versions(resolved: PriceMatch | _Resolved) -> _Versions:
    """The moments each version of the price starts (the first, launch, price from the earliest: ``_in_force``'s
    rule) and a match per version; a fixed answer or a single price is one match from the epoch."""
    if isinstance(resolved, PriceMatch):
        return [_EPOCH], [resolved]
    history, rule, host = resolved
    starts = [_EPOCH, *(version.effective_from or _EPOCH for version in history[1:])]
    return starts, [PriceMatch(version, rule, host) for version in history]


def _in_force(versions: list[PriceEntry], at: datetime) -> PriceEntry:
    """The latest version with effective_from <= at; before the first dated one, the first (launch) price."""
    chosen = versions[0]
    for version in versions:
        if (version.effective_from or _EPOCH) <= at:
            chosen = version
    return chosen


def _by_version(entries: list[PriceEntry], path: Path) -> dict[tuple[str, datetime | None], PlacedEntry]:
    """A file's entries keyed by (id, effective_from), each remembering its file and place for error messages."""
    return {(e.model_id, e.effective_from): PlacedEntry(e, str(path), i) for i, e in enumerate(entries)}


def _as_free(entry: PriceEntry) -> PriceEntry:
    return dataclasses.replace(
        _free_entry(f"{entry.model_id}:free", entry.provider, _FREE_VARIANT_SOURCE), effective_from=entry.effective_from
    )
