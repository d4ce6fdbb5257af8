"""The TOML price-file reader that validates entries (``entry.py``), and the rules that span entries.

A price file has ``[[models]]`` entries and a ``[defaults]`` table keyed by provider plus ``"*"``.
Prices are strings (``input_per_1k = "0.003"``) so ``Decimal`` reads exactly what was written; a TOML
float is refused because it has already been rounded to binary.

The rules that span entries (one entry per id and ``effective_from``; a contracted model has one entry and
no ``effective_from``) are :func:`check_entries`, run on each file, on the shipped file merged with an
override, and on the entries given to ``PriceBook.from_entries``: one implementation for every path.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from models.usage_kinds import USAGE_KINDS
from services.time_ranges import FIRST_DAY, LAST_DAY, OUTSIDE_DAYS

from .entry import (
    ALL_RATE_KEYS,
    KIND_ONLY_RATES,
    LONG_FIELDS,
    LONG_KIND_RATES,
    PRICE_UNITS,
    RATE_FIELDS,
    SERVICE_TIERS,
    LongContextRates,
    PriceBookError,
    PriceEntry,
    TierRates,
    rate_value,
)
from .ids import provider_name

# The price file that ships with the package (package data: ``services = ["data/*.toml"]`` in pyproject).
SHIPPED_PRICES = Path(__file__).parent.parent / "data" / "prices.toml"

_COMMON_KEYS = frozenset(
    {
        "provider",
        "unit",
        *ALL_RATE_KEYS,
        "long_context_threshold",
        "long_context",
        "tiers",
        "source",
        "source_date",
    }
)
_MODEL_KEYS = _COMMON_KEYS | {"id", "effective_from", "contracted", "aliases"}
_TOP_KEYS = frozenset({"models", "defaults"})

# The most any rate may be, in USD per the unit it is quoted for (1K tokens, 1K characters, 1K searches, one image,
# second, credit or request), after a service tier's multiplier. The dearest rate LiteLLM 1.110.2 lists (4,878
# entries) is $84 per 1K searches once converted, the dearest per unit $1.56 per second of 4K video, and the shipped
# book's dearest is $10 per 1K searches: the bound is about 12 times the first. Above it a file is a typo or an attack
# ("100000000" overflowed the stored nano-USD, "1e999999999" printed a billion digits).
MAX_RATE = Decimal(1000)
# Digits after the decimal point a rate may have: finer than 1e-30 USD is no price, and a rate written with a billion
# digits is printed by ``prices show`` and computed with by ``cost`` digit by digit. LiteLLM's float-born rates have
# at most 21 once per 1K.
MAX_RATE_PLACES = 30
_WIDE = Context(prec=200)  # exact for a rate times a multiplier (each at most 4 + 30 digits)
# The dearest event: every count at its bound (a part is within its whole, so a whole's bound covers its parts),
# each quoted unit at MAX_RATE, plus one request. 1,212,901 quoted units x $1,000 = 1.2e18 nano-USD, under the
# int64 the stores keep an event's cost in (9.2e18), so no event priced from a loaded file can overflow it.
MAX_EVENT_QUOTED_UNITS = sum(-(-kind.bound // kind.per) for kind in USAGE_KINDS if kind.part_of is None) + 1
MAX_EVENT_NANO = int(MAX_RATE) * MAX_EVENT_QUOTED_UNITS * 10**9
if MAX_EVENT_NANO > 2**63 - 1:  # a usage kind's bound was raised: lower MAX_RATE, or the stored cost overflows
    raise RuntimeError(f"MAX_RATE x the largest event ({MAX_EVENT_NANO} nano-USD) does not fit an int64")


def read_price_file(path: Path) -> tuple[list[PriceEntry], dict[str, PriceEntry]]:
    """Parse and validate one price file: its model entries and its defaults keyed by provider."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise PriceBookError(f"{path}: price file not found") from exc
    except UnicodeDecodeError as exc:  # before ValueError, which it is: TOML is UTF-8 text
        raise PriceBookError(f"{path}: price file is not UTF-8 text: {exc}") from exc
    except RecursionError as exc:  # tomllib recurses into nested arrays and inline tables
        raise PriceBookError(f"{path}: cannot read price file: arrays or tables nested too deeply") from exc
    except (OSError, ValueError) as exc:  # TOMLDecodeError, and an integer of more than 4,300 digits
        raise PriceBookError(f"{path}: cannot read price file: {exc}") from exc
    for key in sorted(set(data) - _TOP_KEYS):
        raise PriceBookError(f"{path}: unknown top-level key {key!r} (expected [[models]] and [defaults])")
    models = data.get("models", [])
    if not isinstance(models, list):
        raise PriceBookError(f"{path}: field 'models' must be an array of tables ([[models]])")
    entries = [_model_entry(raw, f"{path}: models[{i}]") for i, raw in enumerate(models)]
    check_entries(PlacedEntry(entry, str(path), index) for index, entry in enumerate(entries))
    raw_defaults = data.get("defaults", {})
    if not isinstance(raw_defaults, dict):
        raise PriceBookError(f"{path}: field 'defaults' must be a table keyed by provider")
    defaults = {}
    for provider, raw in raw_defaults.items():
        where = f"{path}: defaults.{provider}"
        name = provider_name(provider)
        model_id = "*" if name == "*" else f"{name}/*"
        defaults[name] = _entry(
            raw, where, _COMMON_KEYS, model_id=model_id, provider="unknown" if name == "*" else name, is_default=True
        )
    return entries, defaults


@dataclass(frozen=True)
class PlacedEntry:
    """An entry and where it was written, so an error names the file, the entry and the field."""

    entry: PriceEntry
    origin: str  # the price file's path, or the caller that gave the entries
    index: int  # position among that origin's [[models]]

    @property
    def where(self) -> str:
        return f"{self.origin}: models[{self.index}] ({self.entry.model_id!r})"

    def named_beside(self, other: PlacedEntry) -> str:
        """This entry's place in a message about ``other``: the file is left out when it is the same one."""
        return f"models[{self.index}]" if self.origin == other.origin else f"{self.origin}: models[{self.index}]"


def check_entries(placed: Iterable[PlacedEntry]) -> None:
    """Refuse entries that cannot form one price history per model.

    No two entries share an id and ``effective_from``; a contracted entry has no ``effective_from`` (its rates
    apply at every timestamp) and is its model's only entry (no dated prices beside it, whichever file adds them).
    """
    placed = list(placed)
    seen: dict[tuple[str, datetime | None], PlacedEntry] = {}
    for item in placed:
        key = (item.entry.model_id, item.entry.effective_from)
        if key in seen:
            raise PriceBookError(
                f"{item.where}: field 'effective_from': duplicates {seen[key].named_beside(item)} "
                "(same id and effective_from)"
            )
        seen[key] = item
    contracts: dict[str, PlacedEntry] = {}
    for item in placed:
        if item.entry.contracted and item.entry.effective_from is not None:
            raise PriceBookError(
                f"{item.where}: field 'effective_from' must be absent: contracted rates apply at every timestamp"
            )
        if item.entry.contracted:
            contracts[item.entry.model_id] = item
    for item in placed:
        contract = contracts.get(item.entry.model_id)
        if contract is not None and contract is not item:
            raise PriceBookError(
                f"{item.where}: field 'effective_from': {item.entry.model_id!r} is contracted "
                f"({contract.named_beside(item)}, field 'contracted'), so it may have only one entry (no dated "
                "prices); replace the contracted entry (no effective_from) instead"
            )


def _model_entry(raw: Any, where: str) -> PriceEntry:
    if not isinstance(raw, dict):
        raise PriceBookError(f"{where}: must be a table")
    model_id = raw.get("id")
    if not isinstance(model_id, str) or "/" not in model_id.strip("/"):
        raise PriceBookError(f"{where}: field 'id' must be a 'provider/model' string, got {model_id!r}")
    model_id = model_id.strip().casefold()
    where = f"{where} ({model_id!r})"
    provider = raw.get("provider", model_id.split("/", 1)[0])
    if not isinstance(provider, str) or not provider.strip():
        raise PriceBookError(f"{where}: field 'provider' must be a non-empty string")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise PriceBookError(f"{where}: field 'aliases' must be a list of non-empty strings")
    contracted = raw.get("contracted", False)
    if not isinstance(contracted, bool):
        raise PriceBookError(f"{where}: field 'contracted' must be true or false")
    return _entry(
        raw,
        where,
        _MODEL_KEYS,
        model_id=model_id,
        provider=provider_name(provider),
        aliases=tuple(a.strip() for a in aliases),
        contracted=contracted,
        effective_from=_moment(raw.get("effective_from"), where),
    )


def _entry(raw: Any, where: str, allowed: frozenset[str], **fixed: Any) -> PriceEntry:
    if not isinstance(raw, dict):
        raise PriceBookError(f"{where}: must be a table")
    for key in sorted(set(raw) - allowed):
        raise PriceBookError(f"{where}: unknown field {key!r}")
    unit = raw.get("unit", "tokens")
    if unit not in PRICE_UNITS:
        raise PriceBookError(f"{where}: field 'unit' must be one of {', '.join(PRICE_UNITS)}, got {unit!r}")
    token_priced = unit == "tokens"
    rates = {name: _price(raw, name, where, required=token_priced) for name in ("input_per_1k", "output_per_1k")}
    rates.update({name: _price(raw, name, where) for name in RATE_FIELDS})
    kind_rates = _present({name: _price(raw, name, where) for name in KIND_ONLY_RATES})
    for needed, needed_unit in (("per_request", "request"), ("per_credit", "credit")):
        if unit == needed_unit and rates[needed] is None:
            raise PriceBookError(f"{where}: field {needed!r} is required when unit = {unit!r}")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise PriceBookError(f"{where}: field 'source' must name the URL or document the prices come from")
    threshold, long_context = _long_context(raw, where)
    entry = PriceEntry(
        unit=unit,
        input_per_1k=rates.pop("input_per_1k") or Decimal(0),
        output_per_1k=rates.pop("output_per_1k") or Decimal(0),
        **rates,
        long_context_threshold=threshold,
        long_context=long_context,
        kind_rates=kind_rates,
        tiers=_tiers(raw.get("tiers"), where),
        source=source.strip(),
        source_date=_day(raw.get("source_date"), where),
        **fixed,
    )
    _check_multiplied(entry, where)
    return entry


def rate_problem(price: Decimal) -> str | None:
    """Why ``price`` cannot be a rate of a price file (finite, non-negative, bounded), or None when it can be."""
    if not price.is_finite() or price < 0:
        return "must be a finite, non-negative price"
    if price > MAX_RATE:
        return f"must be at most {MAX_RATE} USD per unit it is quoted for"
    if _places(price) > MAX_RATE_PLACES:
        return f"must have at most {MAX_RATE_PLACES} digits after the decimal point"
    return None


def _places(price: Decimal) -> int:
    """Digits after the decimal point, trailing zeros left out: ``0.0030`` has 3 (a LiteLLM rate x 1000 keeps the
    exponent it had per token, so its digits are counted, not how it is written)."""
    if not price:
        return 0
    _, digits, exponent = price.as_tuple()
    trailing = len(digits) - len(bytes(digits).rstrip(b"\0"))
    return max(0, -(int(exponent) + trailing))


def _check_multiplied(entry: PriceEntry, where: str) -> None:
    """A tier's multiplier keeps every rate it scales within MAX_RATE (rates the tier sets itself are not scaled)."""
    base: dict[str, Decimal] = {}
    for rates in (entry, entry.long_context):
        if rates is None:
            continue
        for key in ALL_RATE_KEYS:
            value = rate_value(rates, key)
            if value is not None and value > base.get(key, Decimal(0)):
                base[key] = value
    for tier, tier_rates in entry.tiers:
        if tier_rates.multiplier is None:
            continue
        own = dict(tier_rates.rates)
        for key, value in base.items():
            scaled = _WIDE.multiply(value, tier_rates.multiplier)
            if key not in own and scaled > MAX_RATE:
                raise PriceBookError(
                    f"{where}: tiers.{tier}: field 'multiplier' makes {key} {excerpt(format(scaled, 'f'))}, "
                    f"above the {MAX_RATE} USD per unit a rate may be"
                )


def _long_context(raw: dict[str, Any], where: str) -> tuple[int | None, LongContextRates | None]:
    threshold, table = raw.get("long_context_threshold"), raw.get("long_context")
    if threshold is None and table is None:
        return None, None
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
        raise PriceBookError(
            f"{where}: field 'long_context_threshold' must be a positive whole number of "
            f"prompt tokens when long_context is given, got {threshold!r}"
        )
    if not isinstance(table, dict) or not table:
        raise PriceBookError(
            f"{where}: field 'long_context' must be a table of rates when long_context_threshold is given"
        )
    for key in sorted(set(table) - {*LONG_FIELDS, *LONG_KIND_RATES}):
        raise PriceBookError(f"{where}: unknown field 'long_context.{key}'")
    inner = f"{where}: long_context"
    rates = {name: _price(table, name, inner) for name in LONG_FIELDS}
    extra = _present({name: _price(table, name, inner) for name in LONG_KIND_RATES})
    return threshold, LongContextRates(**rates, kind_rates=extra)


def _tiers(table: Any, where: str) -> tuple[tuple[str, TierRates], ...]:
    """``tiers = { batch = { multiplier = "0.5" }, priority = { input_per_1k = "..." } }``, checked."""
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise PriceBookError(f"{where}: field 'tiers' must be a table keyed by service tier")
    tiers = []
    for tier, raw in table.items():
        inner = f"{where}: tiers.{tier}"
        if tier not in SERVICE_TIERS[1:]:
            raise PriceBookError(f"{inner}: unknown service tier (expected one of {', '.join(SERVICE_TIERS[1:])})")
        if not isinstance(raw, dict) or not raw:
            raise PriceBookError(f"{inner}: must be a table with a multiplier and/or rates")
        for key in sorted(set(raw) - {"multiplier", *ALL_RATE_KEYS}):
            raise PriceBookError(f"{inner}: unknown field {key!r}")
        multiplier = _price(raw, "multiplier", inner)
        rates = _present({name: _price(raw, name, inner) for name in ALL_RATE_KEYS})
        tiers.append((tier, TierRates(multiplier, rates)))
    return tuple(sorted(tiers))


def _present(rates: dict[str, Decimal | None]) -> tuple[tuple[str, Decimal], ...]:
    return tuple((name, rate) for name, rate in rates.items() if rate is not None)


def _price(raw: dict[str, Any], name: str, where: str, *, required: bool = False) -> Decimal | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise PriceBookError(f"{where}: field {name!r} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PriceBookError(
            f'{where}: field {name!r} must be a decimal string such as "0.003", got {excerpt(repr(value))}'
        )
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise PriceBookError(f"{where}: field {name!r} is not a decimal number: {excerpt(repr(value))}") from exc
    why = rate_problem(price)
    if why is not None:
        raise PriceBookError(f"{where}: field {name!r} {why}, got {excerpt(repr(value))}")
    if int(price.as_tuple().exponent) < -MAX_RATE_PLACES:  # trailing zeros past the bound: shown as written, so cut
        price = _WIDE.normalize(price) if price else Decimal(0)
    return price


def excerpt(text: str, limit: int = 60) -> str:
    """At most ``limit`` characters of a value quoted in an error: a rate may be written with a million digits."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _day(value: Any, where: str) -> date:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise PriceBookError(f"{where}: field 'source_date' is not a YYYY-MM-DD date: {value!r}") from exc
    if isinstance(value, datetime) or not isinstance(value, date):
        raise PriceBookError(f"{where}: field 'source_date' must be a YYYY-MM-DD date, got {value!r}")
    if not FIRST_DAY <= value <= LAST_DAY:  # the project's days: no event predates 1970, a range steps past its end
        raise PriceBookError(f"{where}: field 'source_date' {OUTSIDE_DAYS}, got {value.isoformat()}")
    return value


def _moment(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError as exc:
            raise PriceBookError(f"{where}: field 'effective_from' is not an ISO date or datetime: {value!r}") from exc
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(0), tzinfo=UTC)  # a bare date means 00:00 UTC that day
    if not isinstance(value, datetime):
        raise PriceBookError(f"{where}: field 'effective_from' must be a date or datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise PriceBookError(
            f"{where}: field 'effective_from' has no timezone; write it in UTC, e.g. 2025-06-10T00:00:00Z"
        )
    try:
        moment = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC date
        moment = None
    if moment is None or not FIRST_DAY <= moment.date() <= LAST_DAY:
        raise PriceBookError(f"{where}: field 'effective_from' {OUTSIDE_DAYS} in UTC, got {value.isoformat()}")
    return moment
