"""Pytest plugin: `tablesdb_double` (a fresh started double) and `appwrite_client` pointed at it.

Enable with `pytest_plugins = ["tests.tablesdb_double.fixtures"]` in a conftest, or import the
fixtures into a test module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from appwrite.client import Client

from .double import TablesDBDouble


@pytest.fixture
def tablesdb_double() -> Iterator[TablesDBDouble]:
    double = TablesDBDouble()
    double.start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def appwrite_client(tablesdb_double: TablesDBDouble) -> Client:
    client = Client()
    client.set_endpoint(tablesdb_double.endpoint)
    client.set_project(tablesdb_double.project_id)
    client.set_key(tablesdb_double.api_key)
    return client
