"""One pricing package: the rules that span entries run once for every path, and one table drives the views."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.pricing import (
    OTHER_RATES,
    SHIPPED_PRICES,
    LongContextRates,
    PriceBook,
    PriceBookError,
    PriceEntry,
    entry_json,
    model_cost_info,
)
from services.pricing.entry import LEGACY_RATE_KEYS

D = Decimal
CONTRACTED = "anthropic/claude-3.5-sonnet"  # contracted in the shipped file


def entry(model_id: str, **extra: object) -> PriceEntry:
    return PriceEntry(
        model_id=model_id,
        provider=model_id.split("/")[0],
        unit="tokens",
        input_per_1k=D("0.001"),
        output_per_1k=D("0.002"),
        source="test",
        **extra,
    )


GLOBAL = {"*": entry("*")}
DATED = datetime(2026, 1, 1, tzinfo=UTC)


def override(tmp_path: Path, *tables: str) -> Path:
    path = tmp_path / "my-prices.toml"
    path.write_text("".join(f"[[models]]\n{t}\n" for t in tables), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["price_book", "price_data", "model_ids"])
def test_the_old_pricing_modules_are_gone(name: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"services.{name}")


@pytest.mark.parametrize(
    ("entries", "field", "place"),
    [
        ([entry("a/b"), entry("a/b")], "'effective_from': duplicates models[0]", "models[1] ('a/b')"),
        ([entry("a/b", contracted=True, effective_from=DATED)], "'effective_from' must be absent", "models[0]"),
        ([entry("a/b", contracted=True), entry("a/b", effective_from=DATED)], "'contracted'", "models[1] ('a/b')"),
    ],
)
def test_from_entries_names_the_entry_and_field_like_a_file(entries: list[PriceEntry], field: str, place: str) -> None:
    with pytest.raises(PriceBookError) as caught:
        PriceBook.from_entries(entries, GLOBAL)
    assert field in str(caught.value) and f"PriceBook entries: {place}" in str(caught.value)


def test_a_dated_override_beside_a_shipped_contract_names_both_files(tmp_path: Path) -> None:
    path = override(
        tmp_path,
        f'id = "{CONTRACTED}"\ninput_per_1k = "0.006"\noutput_per_1k = "0.03"\n'
        'effective_from = 2027-01-01T00:00:00Z\nsource = "list"\nsource_date = 2026-12-01',
    )
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: models[0] ('{CONTRACTED}'): field 'effective_from'")
    assert f"{SHIPPED_PRICES}: models[" in message and "'contracted'" in message


def test_an_override_that_replaces_a_contract_may_date_its_prices(tmp_path: Path) -> None:
    # The undated entry replaces the shipped contract, so no contract is left for the dated one to contradict.
    common = 'input_per_1k = "{}"\noutput_per_1k = "0.015"\nsource = "list"\nsource_date = 2026-12-01'
    path = override(
        tmp_path,
        f'id = "{CONTRACTED}"\n' + common.format("0.003"),
        f'id = "{CONTRACTED}"\neffective_from = 2027-01-01T00:00:00Z\n' + common.format("0.004"),
    )
    book = PriceBook.load(path)
    assert book.lookup(CONTRACTED, at=datetime(2026, 6, 1, tzinfo=UTC)).entry.input_per_1k == D("0.003")
    assert book.lookup(CONTRACTED, at=datetime(2027, 6, 1, tzinfo=UTC)).entry.input_per_1k == D("0.004")


def test_every_rate_of_an_entry_appears_in_both_views() -> None:
    rates = {attr: D("0.0001") * (i + 1) for i, (_, attr, _) in enumerate(OTHER_RATES)}
    fields = {key: rate for key, rate in rates.items() if key in LEGACY_RATE_KEYS}
    kind_rates = tuple((key, rate) for key, rate in rates.items() if key not in LEGACY_RATE_KEYS)
    long = LongContextRates(input_per_1k=D("0.002"), cached_input_per_1k=D("0.0002"))
    full = entry("a/b", **fields, kind_rates=kind_rates, long_context_threshold=200_000, long_context=long)
    info, exact = model_cost_info(full), entry_json(full)
    for name, attr, _ in OTHER_RATES:
        assert info[name] == float(rates[attr]) and exact[attr] == format(rates[attr], "f")
    assert info["long_context_input"] == 0.002 and info["long_context_cached_input"] == 0.0002
    assert "long_context_output" not in info and exact["long_context"]["output_per_1k"] is None
