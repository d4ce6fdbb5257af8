"""Build an ``AppwriteUsageStore`` on a started local TablesDB double, schema provisioned from appwrite.json."""

from __future__ import annotations

from typing import Any

from appwrite.services.tables_db import TablesDB

from services.store.appwrite_client import TimeoutClient
from services.store.appwrite_rebuild import record_definition
from services.store.appwrite_retry import RetryPolicy
from services.store.appwrite_schema import Provisioner, load_schema
from services.store.appwrite_store import AppwriteUsageStore

DATABASE_ID = "ai_usage"


def tables_db_for(double: Any, timeout_seconds: float = 10.0) -> TablesDB:
    client = TimeoutClient(timeout_seconds)
    client.set_endpoint(double.endpoint).set_project(double.project_id).set_key(double.api_key)
    return TablesDB(client)


# What provisioning left, per server version: the first test of a run provisions through the API (setup's own
# code, every request), later ones start from a copy of the result (the same tables, columns, indexes and rows).
_PROVISIONED: dict[tuple[str, bool, str], Any] = {}


def provision(double: Any, database_id: str = DATABASE_ID) -> None:
    """``double`` as ``ai-usage appwrite setup`` leaves a new deployment: appwrite.json's schema, and the rollup
    definition recorded (the store refuses to write rollups built by another)."""
    key = (double.server_version, double.engine.case_insensitive, database_id)
    if key in _PROVISIONED and not double.engine.catalog.databases:
        double.restore(_PROVISIONED[key])
        return
    tables_db = tables_db_for(double)
    try:
        Provisioner(tables_db, poll_seconds=0.02).provision(load_schema(), database_id)
        record_definition(AppwriteUsageStore(tables_db, database_id, retry=RetryPolicy(budget_seconds=20.0)))
    finally:
        tables_db.client.close()
    if len(double.engine.catalog.databases) == 1:  # a project holding this database alone
        _PROVISIONED[key] = double.snapshot()


def make_appwrite_store(double: Any, **options: Any) -> AppwriteUsageStore:
    """A store on ``double`` (started), provisioned first; ``options`` go to the store. Its one read of the rollup
    definition is done here, so a test counting requests sees only its own."""
    provision(double)
    options.setdefault("retry", RetryPolicy(budget_seconds=20.0))
    timeout = options.pop("timeout_seconds", 10.0)
    store = AppwriteUsageStore(tables_db_for(double, timeout), DATABASE_ID, **options)
    store.check_definition()
    return store


def record_in_process(endpoint: str, project_id: str, api_key: str, logs: list[Any]) -> None:
    """A writer in another process (spawned): a batch, then singles, then the batch again as a retry."""
    client = TimeoutClient(10.0)
    client.set_endpoint(endpoint).set_project(project_id).set_key(api_key)
    store = AppwriteUsageStore(TablesDB(client), DATABASE_ID, retry=RetryPolicy(budget_seconds=20.0))
    store.record(logs[:10])
    for log in logs[10:]:
        store.record([log])
    if store.record(logs[:10]) != [False] * 10:
        raise SystemExit("a retried batch was stored again")
    store.close()
