"""The views of one price entry that callers show: every rate it has, named the same way for each.

:func:`model_cost_info` is the display view (floats) that the service returns and HTTP serves as ``PriceInfo``;
:func:`entry_json` is every field with exact decimal strings, for ``ai-usage prices --json``. Both read the
rates through :data:`OTHER_RATES`, so a rate added to :class:`PriceEntry` is added to every view here at once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .file import PriceEntry

# (view name, PriceEntry attribute, label for text) of every rate beside input/output; a rate the entry lacks
# (None) is left out of the display view and shown as null in the JSON one.
OTHER_RATES: tuple[tuple[str, str, str], ...] = (
    ("cached_input", "cached_input_per_1k", "cached"),
    ("cache_write", "cache_write_per_1k", "cache write"),
    ("reasoning", "reasoning_per_1k", "reasoning"),
    ("per_request", "per_request", "per request"),
    ("per_credit", "per_credit", "per credit"),
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
    optional = {name: getattr(entry, attr) for name, attr, _ in OTHER_RATES}
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
        **{attr: _exact(getattr(entry, attr)) for _, attr, _ in OTHER_RATES},
        "long_context_threshold": entry.long_context_threshold,
        "long_context": None if long is None else {k: _exact(v) for k, v in vars(long).items()},
        "effective_from": entry.effective_from.isoformat() if entry.effective_from else None,
        "contracted": entry.contracted,
        "aliases": list(entry.aliases),
        "source": entry.source,
        "source_date": entry.source_date.isoformat() if entry.source_date else None,
        "is_default": entry.is_default,
    }


def _exact(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)
