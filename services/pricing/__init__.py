"""Pricing, in one package: what a model id names, what the price file says, which price applied, what it cost.

- ``ids``: model-id parsing, provider spellings and inference (pure strings).
- ``file``: :class:`PriceEntry`, the price-file reader and the rules that span entries (contracts, duplicates).
- ``book``: :class:`PriceBook`, the price in force for a model at a moment and the rule that chose it.
- ``cost``: exact USD of one event at one entry, and its nano-USD and their split by kind, in Decimal.
- ``nano``: the same nano-USD and split in integers, per (entry, tier) pricer: what every logged event runs.
- ``view``: the entry as callers show it (service, HTTP, CLI).

Imports run one way: ``ids`` <- ``file`` <- ``book``, ``cost`` <- ``nano``, ``view``.
"""

from __future__ import annotations

from .book import FREE_RULES, GLOBAL_DEFAULT, PriceBook, PriceMatch, PriceRule
from .cost import (
    COST_PARTS,
    NANO_PER_USD,
    Rates,
    TokenCountError,
    TokenCounts,
    billed_units,
    cost_usd,
    nano_to_usd,
    rates_for,
)
from .entry import (
    PRICE_UNITS,
    LongContextRates,
    PriceBookError,
    PriceEntry,
    PriceUnit,
    TierRates,
    applied_tier,
    price_version,
    rate_value,
)
from .file import SHIPPED_PRICES, read_price_file
from .ids import (
    ParsedModelId,
    canonical_provider,
    infer_provider_from_name,
    normalise_model_id,
    parse_model_id,
    provider_name,
)
from .nano import EntryPricer, cost_nano, cost_nano_by_kind, cost_nano_by_kind_validated, entry_pricer
from .view import OTHER_RATES, decimal_text, entry_json, model_cost_info

__all__ = [
    "COST_PARTS",
    "FREE_RULES",
    "GLOBAL_DEFAULT",
    "NANO_PER_USD",
    "OTHER_RATES",
    "PRICE_UNITS",
    "SHIPPED_PRICES",
    "EntryPricer",
    "LongContextRates",
    "ParsedModelId",
    "PriceBook",
    "PriceBookError",
    "PriceEntry",
    "PriceMatch",
    "PriceRule",
    "PriceUnit",
    "Rates",
    "TierRates",
    "TokenCountError",
    "TokenCounts",
    "applied_tier",
    "billed_units",
    "canonical_provider",
    "cost_nano",
    "cost_nano_by_kind",
    "cost_nano_by_kind_validated",
    "cost_usd",
    "decimal_text",
    "entry_json",
    "entry_pricer",
    "infer_provider_from_name",
    "model_cost_info",
    "nano_to_usd",
    "normalise_model_id",
    "parse_model_id",
    "price_version",
    "provider_name",
    "rate_value",
    "rates_for",
    "read_price_file",
]
