"""The double's `server_version` option: Appwrite self-hosted 1.8.1 next to the default 1.9.6.

What differs is listed, with the Appwrite source it mirrors, in tests/tablesdb_double/versions.py.
SDK 27's Row model wants `$sequence` as a str, so 1.8.1 rows are read as wire JSON (`Client.call`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from appwrite.client import Client
from appwrite.exception import AppwriteException
from appwrite.services.tables_db import TablesDB

from tests.tablesdb_double import TablesDBDouble

DB, T = "main", "events"
ROWS = f"/tablesdb/{DB}/tables/{T}/rows"
WARNING = (
    "The current SDK is built for Appwrite 2.5.0. However, the current Appwrite server version is {}. "
    "Please downgrade your SDK to match the Appwrite version: https://appwrite.io/docs/sdks"
)


def started(**options: Any) -> Iterator[TablesDBDouble]:
    double = TablesDBDouble(**options).start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(params=["1.8.1", "1.9.6"])
def double(request: pytest.FixtureRequest) -> Iterator[TablesDBDouble]:
    yield from started(server_version=request.param)


@pytest.fixture
def client(double: TablesDBDouble) -> Client:
    return Client().set_endpoint(double.endpoint).set_project(double.project_id).set_key(double.api_key)


@pytest.fixture
def tdb(client: Client) -> TablesDB:
    service = TablesDB(client)
    service.create(DB, "Main")
    service.create_table(DB, T, "Events")
    return service


def wire(client: Client, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
    """The answer's JSON as sent, through the SDK client (headers as its services send them)."""
    headers = {"X-Appwrite-Project": client.get_config("project"), "content-type": "application/json"}
    return client.call(method, path, headers, params)


def fails(call: Any, *args: Any, **kwargs: Any) -> AppwriteException:
    with pytest.raises(AppwriteException) as info:
        call(*args, **kwargs)
    return info.value


def test_the_version_is_an_attribute_and_served_without_a_key(double: TablesDBDouble) -> None:
    answer = requests.get(f"{double.endpoint}/health/version", timeout=5)

    assert answer.status_code == 200
    assert answer.json() == {"version": double.server_version}


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match=r"1\.8\.1"):
        TablesDBDouble(server_version="1.7.4")


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("create_varchar_column", ("v", 16, False)),
        ("create_text_column", ("t", False)),
        ("create_big_int_column", ("b", False)),
    ],
)
def test_varchar_text_and_bigint_routes_exist_only_from_1_9(
    double: TablesDBDouble, tdb: TablesDB, method: str, args: tuple[Any, ...]
) -> None:
    if double.server_version == "1.8.1":
        error = fails(getattr(tdb, method), DB, T, *args)
        assert (error.code, error.type) == (404, "general_route_not_found")
        assert '"version":"1.8.1"' in error.response.replace(" ", "")
    else:
        assert getattr(tdb, method)(DB, T, *args).status.value == "processing"


def test_string_and_integer_routes_exist_in_both(tdb: TablesDB) -> None:
    with pytest.deprecated_call():  # SDK 27 deprecates it, yet it is 1.8's only string column route
        assert tdb.create_string_column(DB, T, "s", 16, False).status.value == "processing"
    assert tdb.create_integer_column(DB, T, "i", False).status.value == "processing"


def test_inline_columns_and_indexes_are_ignored_by_1_8_1(double: TablesDBDouble, tdb: TablesDB) -> None:
    tdb.create_table(
        DB,
        "inline",
        "Inline",
        columns=[{"key": "name", "type": "string", "size": 16, "required": False}],
        indexes=[{"key": "by_name", "type": "key", "attributes": ["name"]}],
    )

    table = tdb.get_table(DB, "inline")

    created = double.server_version != "1.8.1"
    assert [c.key for c in table.columns] == (["name"] if created else [])
    assert [i.key for i in table.indexes] == (["by_name"] if created else [])


def test_sequence_is_an_integer_on_the_wire_in_1_8_1_and_a_string_from_1_9(
    double: TablesDBDouble, client: Client, tdb: TablesDB
) -> None:
    tdb.create_integer_column(DB, T, "n", False)
    double.advance_clock(1)  # the column becomes available
    kind = int if double.server_version == "1.8.1" else str

    created = wire(client, "post", ROWS, {"rowId": "a", "data": {"n": 1}})
    bulk = wire(client, "post", ROWS, {"rows": [{"$id": "b", "n": 2}]})
    upserted = wire(client, "put", f"{ROWS}/c", {"data": {"n": 3}})
    got = wire(client, "get", f"{ROWS}/a")
    listed = wire(client, "get", ROWS)

    sequences = [created, *bulk["rows"], upserted, got, *listed["rows"], *double.rows(DB, T)]
    assert [s["$sequence"] for s in sequences] == [kind(n) for n in (1, 2, 3, 1, 1, 2, 3, 1, 2, 3)]


def test_list_rows_ttl_is_checked_by_1_9_6_and_ignored_by_1_8_1(double: TablesDBDouble, tdb: TablesDB) -> None:
    if double.server_version == "1.8.1":
        assert tdb.list_rows(DB, T, ttl=100_000).total == 0
    else:
        error = fails(tdb.list_rows, DB, T, ttl=100_000)
        assert (error.code, error.type) == (400, "general_argument_invalid")


def test_a_newer_response_format_gets_the_downgrade_warning(double: TablesDBDouble) -> None:
    def warning(**headers: str) -> str | None:
        answer = requests.get(f"{double.endpoint}/health/version", headers=headers, timeout=5)
        return answer.headers.get("X-Appwrite-Warning")

    assert warning(**{"X-Appwrite-Response-Format": "2.5.0"}) == WARNING.format(double.server_version)
    assert warning(**{"X-Appwrite-Response-Format": double.server_version}) is None
    assert warning(**{"X-Appwrite-Response-Format": "1.8.0"}) is None
    assert warning() is None


def test_the_sdk_prints_the_warning_on_every_call_unless_it_is_turned_off(capsys: pytest.CaptureFixture[str]) -> None:
    for sdk_warning in (True, False):
        for double in started(server_version="1.8.1", sdk_warning=sdk_warning):
            client = Client().set_endpoint(double.endpoint).set_project(double.project_id).set_key(double.api_key)
            TablesDB(client).create(DB, "Main")
            TablesDB(client).get(DB)

        printed = capsys.readouterr().err
        assert printed.count(f"Warning: {WARNING.format('1.8.1')}\n") == (2 if sdk_warning else 0)
