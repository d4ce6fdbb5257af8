"""The views of one price entry that callers show: every rate it has, named the same way for each.

:func:`model_cost_info` is the display view (floats) that the service returns and HTTP serves as ``PriceInfo``;
:func:`entry_json` is every field with exact decimal strings, for ``ai-usage prices --json``. Both read the
rates through :data:`OTHER_RATES`, so a rate added to :class:`PriceEntry` is added to every view here at once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .entry import ALL_RATE_KEYS, PriceEntry, rate_value

# (view name, price-file key, label for text) of every rate beside input/output; a rate the entry lacks
# (None) is left out of the display view and shown as null in the JSON one.
_LABELS = {
    "cached_input_per_1k": ("cached_input", "cached"),
    "cache_write_per_1k": ("cache_write", "cache write"),
    "reasoning_per_1k": ("reasoning", "reasoning"),
    "per_request": ("per_request", "per request"),
    "per_credit": ("per_credit", "per credit"),
}


def _names(key: str) -> tuple[str, str]:
    """(view name, text label) of a rate: the long-standing ones as they always were, the rest from the key."""
    if key in _LABELS:
        return _LABELS[key]
    name = key.removesuffix("_per_1k")
    return name, name.replace("_", " ")


OTHER_RATES: tuple[tuple[str, str, str], ...] = tuple(
    (_names(key)[0], key, _names(key)[1]) for key in ALL_RATE_KEYS if key not in ("input_per_1k", "output_per_1k")
)
# The per-token rates a long-context tier may override (LongContextRates' fields, "<name>_per_1k").
_LONG_RATES = ("input", "output", "cached_input", "cache_write", "reasoning")


def decimal_text(value: Decimal | None) -> str:
    """A price as exact decimal text (never exponent notation); ``-`` when absent."""
    return "-" if value is None else format(value, "f")


def model_cost_info(entry: PriceEntry) -> dict[str, float | str | bool | None]:
    """Display view of an entry: ``input``/``output`` USD per 1K plus every other rate it has.

    Floats are for display only (the shape the replaced service returned); never add them up.
    """
    info: dict[str, float | str | bool | None] = {
        "input": float(entry.input_per_1k),
        "output": float(entry.output_per_1k),
    }
    optional = {name: rate_value(entry, key) for name, key, _ in OTHER_RATES}
    if entry.long_context is not None:
        for name in _LONG_RATES:
            optional[f"long_context_{name}"] = getattr(entry.long_context, f"{name}_per_1k")
    info.update({name: float(rate) for name, rate in optional.items() if rate is not None})
    if entry.long_context_threshold is not None:
        info["long_context_threshold"] = entry.long_context_threshold
    info.update(
        {
            "unit": entry.unit,
            "model_id": entry.model_id,
            "provider": entry.provider,
            "source": entry.source,
            "source_date": entry.source_date.isoformat() if entry.source_date else None,
            "effective_from": entry.effective_from.isoformat() if entry.effective_from else None,
            "contracted": entry.contracted,
            "is_default": entry.is_default,
        }
    )
    return info


def entry_json(entry: PriceEntry) -> dict[str, Any]:
    """Every field of the entry; prices as exact decimal strings (USD per 1K tokens, per request, per credit)."""
    long = entry.long_context
    return {
        "model_id": entry.model_id,
        "provider": entry.provider,
        "unit": entry.unit,
        "input_per_1k": decimal_text(entry.input_per_1k),
        "output_per_1k": decimal_text(entry.output_per_1k),
        **{key: _exact(rate_value(entry, key)) for _, key, _ in OTHER_RATES},
        "long_context_threshold": entry.long_context_threshold,
        "long_context": None if long is None else {key: _exact(rate_value(long, key)) for key in _long_keys(long)},
        "tiers": {
            tier: {
                "multiplier": _exact(rates.multiplier),
                **{key: format(value, "f") for key, value in rates.rates},
            }
            for tier, rates in entry.tiers
        },
        "effective_from": entry.effective_from.isoformat() if entry.effective_from else None,
        "contracted": entry.contracted,
        "aliases": list(entry.aliases),
        "source": entry.source,
        "source_date": entry.source_date.isoformat() if entry.source_date else None,
        "is_default": entry.is_default,
    }


def _long_keys(long: object) -> list[str]:
    return [f"{name}_per_1k" for name in _LONG_RATES] + [key for key, _ in long.kind_rates]  # type: ignore[attr-defined]


def _exact(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)
