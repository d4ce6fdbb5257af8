"""The route table: (method, path pattern) → handler, paths relative to /v1."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from . import handlers_rows as rows
from . import handlers_schema as schema
from . import handlers_transactions as tx
from .engine import Engine, Reply, Request

Handler = Callable[[Engine, Request], Reply]

_TABLE = r"/tablesdb/(?P<db>[^/]+)/tables/(?P<table>[^/]+)"
_KIND = "(?P<kind>{kinds})"  # filled per server version (versions.py column_kinds)


def health_version(e: Engine, r: Request) -> Reply:
    # app/controllers/api/health.php @1.8.1 L74-81, Modules/Health/Http/Health/Version/Get.php @1.9.6:
    # scope `public`, answers {"version": APP_VERSION_STABLE}.
    return 200, {"version": e.version.version}


# Routes any caller may use without a key (label scope `public`).
PUBLIC: frozenset[Handler] = frozenset({health_version})

# Order matters: /tablesdb/transactions must win over /tablesdb/{databaseId}.
_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", r"/health/version", health_version),
    ("GET", r"/tablesdb/transactions", tx.list_transactions),
    ("POST", r"/tablesdb/transactions", tx.create_transaction),
    ("GET", r"/tablesdb/transactions/(?P<tx>[^/]+)", tx.get_transaction),
    ("PATCH", r"/tablesdb/transactions/(?P<tx>[^/]+)", tx.update_transaction),
    ("DELETE", r"/tablesdb/transactions/(?P<tx>[^/]+)", tx.delete_transaction),
    ("POST", r"/tablesdb/transactions/(?P<tx>[^/]+)/operations", tx.create_operations),
    ("GET", r"/tablesdb", schema.list_databases),
    ("POST", r"/tablesdb", schema.create_database),
    ("GET", r"/tablesdb/(?P<db>[^/]+)", schema.get_database),
    ("DELETE", r"/tablesdb/(?P<db>[^/]+)", schema.delete_database),
    ("GET", r"/tablesdb/(?P<db>[^/]+)/tables", schema.list_tables),
    ("POST", r"/tablesdb/(?P<db>[^/]+)/tables", schema.create_table),
    ("GET", _TABLE, schema.get_table),
    ("DELETE", _TABLE, schema.delete_table),
    ("GET", _TABLE + r"/columns", schema.list_columns),
    ("POST", _TABLE + r"/columns/" + _KIND, schema.create_column),
    ("GET", _TABLE + r"/columns/(?P<key>[^/]+)", schema.get_column),
    ("DELETE", _TABLE + r"/columns/(?P<key>[^/]+)", schema.delete_column),
    ("GET", _TABLE + r"/indexes", schema.list_indexes),
    ("POST", _TABLE + r"/indexes", schema.create_index),
    ("GET", _TABLE + r"/indexes/(?P<key>[^/]+)", schema.get_index),
    ("DELETE", _TABLE + r"/indexes/(?P<key>[^/]+)", schema.delete_index),
    ("GET", _TABLE + r"/rows", rows.list_rows),
    ("POST", _TABLE + r"/rows", rows.create_rows_or_row),
    ("PUT", _TABLE + r"/rows", rows.upsert_rows),
    ("PATCH", _TABLE + r"/rows", rows.update_rows),
    ("DELETE", _TABLE + r"/rows", rows.delete_rows),
    ("GET", _TABLE + r"/rows/(?P<row>[^/]+)", rows.get_row),
    ("PUT", _TABLE + r"/rows/(?P<row>[^/]+)", rows.upsert_row),
    ("PATCH", _TABLE + r"/rows/(?P<row>[^/]+)", rows.update_row),
    ("DELETE", _TABLE + r"/rows/(?P<row>[^/]+)", rows.delete_row),
    (
        "PATCH",
        _TABLE + r"/rows/(?P<row>[^/]+)/(?P<column>[^/]+)/(?P<direction>increment|decrement)",
        rows.change_column,
    ),
]


@cache
def _compiled(column_kinds: tuple[str, ...]) -> list[tuple[str, re.Pattern[str], Handler]]:
    kinds = "|".join(map(re.escape, column_kinds))
    return [(method, re.compile(pattern.replace("{kinds}", kinds)), handler) for method, pattern, handler in _ROUTES]


def resolve(method: str, path: str, column_kinds: tuple[str, ...]) -> tuple[Handler, dict[str, str]] | None:
    """The handler for a path below /v1, or None (appwrite-facts §2.1: 404 general_route_not_found).

    `column_kinds` are the server version's POST …/columns/<kind> routes: 1.8.1 has no varchar, text,
    mediumtext, longtext or bigint route (versions.py), so those paths are unknown routes there.
    `POST …/rows/query` (SDK 27 create_query) deliberately has no route: servers 1.8.1 and 1.9.6 lack it.
    """
    for route_method, pattern, handler in _compiled(column_kinds):
        if route_method == method:
            match = pattern.fullmatch(path)
            if match is not None:
                return handler, match.groupdict()
    return None
