"""The Appwrite error envelope and the one exception every rule of the double raises."""

from __future__ import annotations

from typing import Any

# appwrite-facts §0/§2.1: the envelope carries the server version (APP_VERSION_STABLE); 1.9.6 unless
# the double mirrors another version (versions.py).
VERSION = "1.9.6"

# appwrite-facts §2.2 and §1.3: HTTP status of every error type the double answers with.
CODES: dict[str, int] = {
    "general_argument_invalid": 400,
    "general_bad_request": 400,
    "general_query_invalid": 400,
    "general_cursor_not_found": 400,
    "general_route_not_found": 404,
    "general_unauthorized_scope": 401,
    "user_unauthorized": 401,
    "general_rate_limit_exceeded": 429,
    "general_server_error": 503,
    "general_unknown": 500,
    "database_not_found": 404,
    "database_already_exists": 409,
    "database_query_order_null": 400,
    "table_not_found": 404,
    "table_already_exists": 409,
    "column_not_found": 404,
    "column_already_exists": 409,
    "column_not_available": 400,
    "column_unknown": 400,
    "column_value_invalid": 400,
    "column_default_unsupported": 400,
    "column_limit_exceeded": 400,
    "column_type_invalid": 400,
    "attribute_type_invalid": 400,
    "index_not_found": 404,
    "index_invalid": 400,
    "column_index_already_exists": 409,
    "column_index_limit_exceeded": 400,
    "row_not_found": 404,
    "row_already_exists": 409,
    "row_update_conflict": 409,
    "row_unique_constraint_violation": 409,
    "row_invalid_structure": 400,
    "row_missing_data": 400,
    "row_missing_payload": 400,
    "transaction_not_found": 404,
    "transaction_expired": 410,
    "transaction_limit_exceeded": 400,
    "transaction_not_ready": 400,
    "transaction_conflict": 409,
    "transaction_failed": 400,
    "document_not_found": 404,
    "document_invalid_structure": 400,
    "attribute_limit_exceeded": 400,
}


class AppwriteError(Exception):
    """An error answer: HTTP status, Appwrite `type` string and message."""

    def __init__(self, type_: str, message: str, code: int | None = None) -> None:
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message
        self.code = code if code is not None else CODES[type_]

    def body(self, version: str = VERSION) -> dict[str, Any]:
        # appwrite-facts §2.1: body is {"message","code","type","version"} [S general.php ~L1495;
        # general.php @1.8.1 L1384-1389: `'version' => APP_VERSION_STABLE`].
        return {"message": self.message, "code": self.code, "type": self.type, "version": version}


def argument_invalid(param: str, rule: str) -> AppwriteError:
    # appwrite-facts §2.1: framework param failures read "Invalid `<param>` param: <description>".
    return AppwriteError("general_argument_invalid", f"Invalid `{param}` param: {rule}")


def query_invalid(detail: str) -> AppwriteError:
    # appwrite-facts §2.2: query errors are prefixed "Invalid query: ".
    return AppwriteError("general_query_invalid", f"Invalid query: {detail}")


def structure_invalid(detail: str) -> AppwriteError:
    # appwrite-facts §2.2: row structure errors read "Invalid document structure: ...".
    return AppwriteError("row_invalid_structure", f"Invalid document structure: {detail}")


def row_not_found(row_id: str) -> AppwriteError:
    return AppwriteError("row_not_found", f"Row with the requested ID '{row_id}' could not be found.")


def not_implemented(what: str) -> AppwriteError:
    """A request the real server would serve but this strict double refuses to guess at."""
    return AppwriteError("general_bad_request", f"The TablesDB test double does not implement {what}.")
