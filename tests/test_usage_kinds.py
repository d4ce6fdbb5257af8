"""The table of usage kinds is the one definition: the event, the row, the counters, both stores' columns and
OpenAPI follow it, and its part-of rules are what validation enforces."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.http_api.openapi import openapi_document
from models.ai_usage import AIUsageLog, UsageEvent
from models.counters import COUNTER_FIELDS, Counters
from models.usage_kinds import KIND_NAMES, PARTS, USAGE_KINDS
from services.errors import ValidationFailed
from services.store.appwrite_schema import load_schema
from services.store.appwrite_store import EVENTS_TABLE, ROLLUPS_TABLE
from services.store.rollups import RollupKind
from services.store.sqlite_store import SQLiteUsageStore
from services.usage_events import parse_event
from services.usage_tracking_service import UsageTrackingService


def test_every_kind_is_a_bounded_event_field_a_row_field_and_a_counter() -> None:
    for kind in USAGE_KINDS:
        field = UsageEvent.model_fields[kind.name]
        bounds = {type(m).__name__: m for m in field.metadata}
        assert (bounds["Ge"].ge, bounds["Le"].le, field.default) == (0, kind.bound, 0), kind.name
        assert kind.name in AIUsageLog.model_fields and kind.name in COUNTER_FIELDS


def test_every_kind_is_in_openapi_with_its_bound() -> None:
    schema = openapi_document(None)["components"]["schemas"]["UsageEvent"]["properties"]
    for kind in USAGE_KINDS:
        assert (schema[kind.name]["type"], schema[kind.name]["maximum"]) == ("integer", kind.bound), kind.name


def test_every_kind_is_an_integer_column_of_both_appwrite_tables() -> None:
    spec = load_schema()
    for table in (EVENTS_TABLE, ROLLUPS_TABLE):
        columns = {c["key"]: c for c in spec.table(table).columns}
        for name in KIND_NAMES:
            assert columns[name]["type"] == "integer", (table, name)


def test_every_kind_is_a_column_of_both_sqlite_tables(sqlite_store: SQLiteUsageStore) -> None:
    conn = sqlite3.connect(sqlite_store.path)
    for table in ("events", "rollups"):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        assert set(KIND_NAMES) <= columns, table
    conn.close()


def test_summaries_carry_every_kinds_total_in_usage(sqlite_store: SQLiteUsageStore, price_book) -> None:  # type: ignore[no-untyped-def]
    ledger = UsageTrackingService(sqlite_store, price_book)
    ledger.log_usage(user_id="p", model="gpt-4o", tokens_input=100, tokens_cached=40, tokens_output=9)
    ledger.log_usage(user_id="p", model="firecrawl/scrape", credits=7)
    usage = ledger.get_daily_usage("p").usage
    assert usage == {**dict.fromkeys(KIND_NAMES, 0), "tokens_input": 100, "tokens_cached": 40, "tokens_output": 9,
                     "credits": 7}  # fmt: skip
    assert Counters(tokens_input=3).usage["tokens_input"] == 3


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({name: st.integers(0, 50) for name in KIND_NAMES}))
def test_an_event_is_valid_exactly_when_every_whole_holds_its_parts(values: dict[str, int]) -> None:
    fits = all(sum(values[part] for part in parts) <= values[whole] for whole, parts in PARTS.items())
    try:
        parse_event({"user_id": "p", "model": "m", **values})
    except ValidationFailed as exc:
        assert not fits
        assert {f.field for f in exc.fields} <= {parts[0] for parts in PARTS.values()}
    else:
        assert fits


def test_a_kind_new_to_a_database_is_added_as_zero_and_the_rollups_rebuilt(tmp_path: Path, price_book) -> None:  # type: ignore[no-untyped-def]
    db_path = tmp_path / "usage.db"
    store = SQLiteUsageStore(db_path)
    UsageTrackingService(store, price_book).log_usage(user_id="p", model="gpt-4o", tokens_input=10, tokens_output=1)
    store.close()
    # As if "credits" had just been added to the table of kinds: neither table has its column yet.
    conn = sqlite3.connect(db_path, isolation_level=None)
    for table in ("events", "rollups"):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN credits")
    conn.close()
    reopened = SQLiteUsageStore(db_path)
    day = reopened.get_rollups(RollupKind.USER_DAY, "p", next(iter(_days(reopened))))
    assert sum(c.requests for c in day.values()) == 1 and sum(c.credits for c in day.values()) == 0
    ledger = UsageTrackingService(reopened, price_book)
    ledger.log_usage(user_id="p", model="firecrawl/scrape", credits=5)
    assert ledger.get_daily_usage("p").usage["credits"] == 5
    reopened.close()


def _days(store: SQLiteUsageStore) -> list[str]:
    return [row[0] for row in sqlite3.connect(store.path).execute("SELECT DISTINCT substr(ts, 1, 10) FROM events")]


@pytest.mark.parametrize("whole", sorted(PARTS))
def test_the_parts_rule_names_the_first_part(whole: str) -> None:
    first = PARTS[whole][0]
    with pytest.raises(ValidationFailed) as raised:
        parse_event({"user_id": "p", "model": "m", whole: 1, first: 2})
    assert [f.field for f in raised.value.fields] == [first]
