"""Hostile price files and LiteLLM JSON: refused by name, never a traceback, never a price they did not write.

Found by review: a LiteLLM ``mode`` holding a newline wrote price entries of its own into the import's output; a
price file that is not UTF-8, dated near year 1 or 9999, or priced at 1e999999999 raised (UnicodeDecodeError,
OverflowError, decimal.Overflow) or overflowed the stored int64 nano-USD; deeply nested JSON raised RecursionError;
and a failed ``--output`` left its temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import tomllib
import types
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from models.usage_kinds import USAGE_KINDS
from services.cli import cli, litellm_command
from services.pricing import (
    SHIPPED_PRICES,
    PriceBook,
    PriceBookError,
    TokenCounts,
    cost_nano,
    cost_usd,
    read_price_file,
)
from services.pricing.file import MAX_EVENT_NANO, MAX_RATE, MAX_RATE_PLACES
from services.pricing.litellm_import import LiteLLMFormatError, convert
from services.pricing.litellm_output import Unmapped
from tests.test_price_book import model_table

DAY = date(2026, 11, 24)
INT64_MAX = 2**63 - 1


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "my-prices.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(write(tmp_path, text))
    return str(caught.value)


def litellm(**entries: dict[str, Any]) -> str:
    return json.dumps(entries)


# -- 1. nothing LiteLLM wrote leaves its string or comment -------------------------------------------------------------
INJECTED = (
    'chat\n[[models]]\nid = "openai/gpt-4o"\ninput_per_1k = "9"\noutput_per_1k = "9"\nsource = "x"\n'
    "source_date = 2026-01-01\n#"
)


@pytest.mark.parametrize(
    "mode",
    [INJECTED, INJECTED.replace("\n", "\r\n"), INJECTED.replace("\n", "\r"), "a\x7fb", "a\u2028b", "a\ud800b", '"\\'],
)
def test_a_mode_holding_a_newline_or_control_stays_in_its_comment(tmp_path: Path, mode: str) -> None:
    text = litellm(m={"litellm_provider": "acme", "mode": mode, "input_cost_per_token": 1e-6})
    result = convert(text, source_date=DAY)
    models = tomllib.loads(result.toml)["models"]  # the output is valid TOML whatever the mode held
    assert [m["id"] for m in models] == ["acme/m"] and result.toml.splitlines().count("[[models]]") == 1
    assert all(line.isprintable() and line.isascii() for line in result.toml.splitlines())
    path = write(tmp_path, result.toml)
    assert PriceBook.load(path).lookup("gpt-4o").entry.input_per_1k != Decimal(9)  # the shipped price, not "9"


def test_the_injected_mode_does_not_reprice_gpt_4o_through_the_cli(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "litellm.json"
    source.write_text(litellm(m={"litellm_provider": "acme", "mode": INJECTED, "input_cost_per_token": 1e-6}))
    out = tmp_path / "imported.toml"
    result = CliRunner().invoke(cli, ["prices", "import-litellm", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("AI_USAGE_PRICES_FILE", str(out))
    shown = CliRunner().invoke(cli, ["prices", "show", "gpt-4o", "--json"], catch_exceptions=False)
    assert json.loads(shown.stdout)["entry"]["input_per_1k"] != "9"


def test_a_key_with_a_control_character_is_skipped_and_quoted() -> None:
    key = "m\x7f\u202e"
    text = litellm(**{key: {"litellm_provider": "acme", "input_cost_per_token": 1e-6}})
    result = convert(text, source_date=DAY)
    assert tomllib.loads(result.toml).get("models", []) == []  # not an id an event can carry: skipped, and valid
    assert str(result.unmapped[0]).isprintable()


def test_the_report_quotes_a_litellm_key_holding_a_terminal_escape() -> None:
    assert str(Unmapped("m", "cost\x1b[2J", "no such rate")) == "'m': 'cost\\x1b[2J': no such rate"
    assert str(Unmapped("m", "ocr_cost_per_page", "no such rate")) == "'m': ocr_cost_per_page: no such rate"


# -- 2. bad price files: refused at load, naming the entry and field ---------------------------------------------------
def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, model_table(source='"caf\xe9"').encode("latin-1"))
    assert "my-prices.toml: price file is not UTF-8 text" in message


@pytest.mark.parametrize(
    "moment",
    [
        '"0001-01-01T00:00:00+01:00"',  # no UTC date: OverflowError before
        '"9998-12-31T23:00:00-05:00"',  # 9999-01-01 in UTC: OverflowError where a day past it is stepped to
        "0001-01-01T00:00:00+01:00",  # as a TOML datetime
        '"1969-12-31"',
        "9999-01-01",
    ],
)
def test_effective_from_outside_1970_to_9998_is_refused(tmp_path: Path, moment: str) -> None:
    message = refused(tmp_path, model_table(effective_from=moment))
    assert "models[0] ('acme/model-1'): field 'effective_from' must be from 1970-01-01 to 9998-12-31" in message


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1969-12-31"])
def test_source_date_outside_1970_to_9998_is_refused(tmp_path: Path, day: str) -> None:
    message = refused(tmp_path, model_table(source_date=day))
    assert "models[0] ('acme/model-1'): field 'source_date' must be from 1970-01-01 to 9998-12-31" in message


def test_the_edges_of_the_range_load(tmp_path: Path) -> None:
    text = model_table(effective_from="1970-01-01", source_date="1970-01-01")
    text += model_table(effective_from='"9998-12-31T23:59:59Z"', source_date="9998-12-31")
    assert len(PriceBook.load(write(tmp_path, text)).entries()) > 2


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("input_per_1k", '"100000000"', "must be at most 1000 USD"),  # overflowed SQLite's INTEGER when logged
        ("input_per_1k", '"1e999999999"', "must be at most 1000 USD"),  # decimal.Overflow, a billion-digit show
        ("output_per_1k", '"1000.000000001"', "must be at most 1000 USD"),
        ("per_image", '"1e4"', "must be at most 1000 USD"),
        ("per_credit", '"5000"', "must be at most 1000 USD"),
        ("cached_input_per_1k", '"1e-999999999"', f"at most {MAX_RATE_PLACES} digits after the decimal point"),
        ("input_per_1k", '"0.' + "0" * 30 + '1"', f"at most {MAX_RATE_PLACES} digits after the decimal point"),
        ("input_per_1k", '"Infinity"', "must be a finite, non-negative price"),
        ("input_per_1k", "1" * 5000, "cannot read price file"),  # an integer tomllib cannot convert: ValueError
    ],
)
def test_a_rate_above_the_bound_or_too_fine_is_refused(tmp_path: Path, field: str, value: str, why: str) -> None:
    message = refused(tmp_path, model_table(**{field: value}))
    assert "my-prices.toml" in message and why in message and len(message) < 400
    if "cannot read" not in why:
        assert f"models[0] ('acme/model-1'): field '{field}'" in message


@pytest.mark.parametrize(
    "table",
    [
        'long_context_threshold = 1000\nlong_context = { input_per_1k = "1001" }',
        'tiers = { priority = { output_per_1k = "2000" } }',
        '[defaults.acme]\ninput_per_1k = "0.001"\noutput_per_1k = "1e9"\nsource = "x"\nsource_date = 2025-01-01',
    ],
)
def test_the_bound_holds_for_long_context_tiers_and_defaults(tmp_path: Path, table: str) -> None:
    assert "must be at most 1000 USD" in refused(tmp_path, model_table() + table + "\n")


def test_a_tier_multiplier_may_not_take_a_rate_past_the_bound(tmp_path: Path) -> None:
    dear = model_table(input_per_1k='"600"')
    message = refused(tmp_path, dear + 'tiers = { priority = { multiplier = "2" } }\n')
    assert "models[0] ('acme/model-1'): tiers.priority: field 'multiplier' makes input_per_1k 1200" in message
    own = dear + 'tiers = { priority = { multiplier = "2", input_per_1k = "900" } }\n'  # the tier sets its own
    assert PriceBook.load(write(tmp_path, own)).lookup("acme/model-1").entry.tiers


def test_the_bound_itself_and_long_trailing_zeros_load(tmp_path: Path) -> None:
    text = model_table(input_per_1k='"1000"', output_per_1k='"0.002' + "0" * 100_000 + '"')
    entry = PriceBook.load(write(tmp_path, text)).lookup("acme/model-1").entry
    assert entry.input_per_1k == MAX_RATE and entry.output_per_1k == Decimal("0.002")
    assert len(format(entry.output_per_1k, "f")) < 40  # what `prices show` prints


def test_shipped_rates_are_far_below_the_bound() -> None:
    entries, defaults = read_price_file(SHIPPED_PRICES)  # it loads: every shipped rate is within the bound
    assert entries and defaults


def test_the_dearest_event_the_bound_allows_fits_the_stored_int64(tmp_path: Path) -> None:
    """Every rate at MAX_RATE and every count at its bound: 1,212,901 quoted units x $1,000 = 1.2e18 nano-USD,
    under the int64 the stores keep an event's cost (and each of its parts) in."""
    rates = "".join(f'{kind.rate} = "{MAX_RATE}"\n' for kind in USAGE_KINDS)
    path = write(tmp_path, model_table(input_per_1k=None, output_per_1k=None) + rates + f'per_request = "{MAX_RATE}"\n')
    entry = PriceBook.load(path).lookup("acme/model-1").entry
    counts = TokenCounts(**{kind.name: kind.bound for kind in USAGE_KINDS if kind.part_of is None})
    quoted_units = sum(Decimal(kind.bound) / kind.per for kind in USAGE_KINDS if kind.part_of is None) + 1
    assert cost_usd(entry, counts) == MAX_RATE * quoted_units == Decimal(1_212_901_000)
    assert cost_nano(entry, counts) == MAX_EVENT_NANO == 1_212_901_000_000_000_000 <= INT64_MAX


def test_a_bad_prices_file_for_reprice_is_an_error_not_a_traceback(db_path: Path, tmp_path: Path) -> None:
    path = write(tmp_path, model_table(input_per_1k='"1e999999999"'))
    args = ["prices", "reprice", "--prices", str(path), "--start", "2026-01-01", "--end", "2026-02-01"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "must be at most 1000 USD" in result.stderr, result.output


# -- 3. LiteLLM JSON that is deep, huge or out of bounds ---------------------------------------------------------------
def test_deeply_nested_json_is_not_litellm_json() -> None:
    with pytest.raises(LiteLLMFormatError, match="nested too deeply"):
        convert("[" * 100_000 + "]" * 100_000, source_date=DAY)


def test_nested_values_a_parser_accepts_are_reported_not_printed() -> None:
    depth = sys.getrecursionlimit() // 2
    nested = json.loads("[" * depth + "]" * depth)
    text = litellm(
        m={
            "litellm_provider": "acme",
            "input_cost_per_token": 1e-6,
            "mode": nested,
            "search_context_cost_per_query": nested,
        }
    )
    result = convert(text, source_date=DAY)
    assert tomllib.loads(result.toml)["models"][0]["id"] == "acme/m" and "(no mode)" in result.toml
    assert all(len(str(u)) < 300 for u in result.unmapped)


def test_the_cli_exits_2_on_deeply_nested_json(tmp_path: Path) -> None:
    source = tmp_path / "deep.json"
    source.write_text("{" + '"a":{' * 100_000 + "}" * 100_001)
    result = CliRunner().invoke(cli, ["prices", "import-litellm", str(source)])
    assert result.exit_code == 2 and "nested too deeply" in result.stderr, result.output


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("input_cost_per_token", "1e999999999", "not a price the price format can hold exactly"),
        ("input_cost_per_token", "2", "input_per_1k would be 2000: a price file's rate must be at most 1000 USD"),
        ("output_cost_per_image", "1e4", "per_image would be 1E+4: a price file's rate must be at most 1000 USD"),
        ("input_cost_per_token", "1e-40", "digits after the decimal point"),
        ("input_cost_per_token", "1." + "1" * 70 + "e-6", "not a price the price format can hold exactly"),
        ("input_cost_per_token_above_" + "9" * 5000 + "k_tokens", "1e-6", "no such rate in the price format"),
        ("output_cost_per_token", "-" + "9" * 5000, "is not a non-negative price"),
    ],
)
def test_a_litellm_price_the_file_cannot_hold_is_reported(key: str, value: str, reason: str) -> None:
    other = "input_cost_per_token" if key == "output_cost_per_token" else "output_cost_per_token"
    text = f'{{"m": {{"litellm_provider": "acme", "{other}": 1e-6, "{key}": {value}}}}}'  # numbers as written
    result = convert(text, source_date=DAY)
    assert tomllib.loads(result.toml)["models"][0]["id"] == "acme/m"  # the rest is imported, and it loads
    lost = {u.key: u.reason for u in result.unmapped}
    assert reason in lost[key] and len(lost[key]) < 300


def test_an_image_size_of_150_digits_is_not_an_image_size() -> None:
    key = "9" * 150 + "-x-1/dall-e"  # priced 1e142 USD an image before: written, and loaded
    text = litellm(**{key: {"litellm_provider": "openai", "mode": "image_generation", "input_cost_per_pixel": 1e-8}})
    result = convert(text, source_date=DAY)
    assert result.imported == 0 and "no price" in result.unmapped[0].reason


def test_effective_from_outside_1970_to_9998_is_refused_by_the_import(tmp_path: Path) -> None:
    source = tmp_path / "litellm.json"
    source.write_text(litellm(m={"litellm_provider": "acme", "input_cost_per_token": 1e-6}))
    args = ["prices", "import-litellm", str(source), "--effective-from", "9998-12-31T23:00:00-05:00"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "1970-01-01 to 9998-12-31" in result.stderr


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_output_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    source = tmp_path / "litellm.json"
    source.write_text(litellm(m={"litellm_provider": "acme", "input_cost_per_token": 1e-6}))
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    fake_os = types.SimpleNamespace(**{**vars(os), failing: full})  # this module's os only, not everyone's
    monkeypatch.setattr(litellm_command, "os", fake_os)
    result = CliRunner().invoke(cli, ["prices", "import-litellm", str(source), "--output", str(out_dir / "p.toml")])
    assert result.exit_code == 2 and "No space left on device" in result.stderr
    assert list(out_dir.iterdir()) == []  # neither half a price file nor its tmpXXXX.tmp
