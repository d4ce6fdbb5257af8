"""What differs between the Appwrite server versions the double can mirror: 1.9.6 (default) and 1.8.1.

Read from appwrite/appwrite at tags 1.8.1 and 1.9.6 (`git show <tag>:<path>`); everything not listed
here behaves the same in both for the double's purposes (errors, limits, transactions, bulk calls).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_COLUMN_KINDS_1_8 = ("string", "integer", "float", "boolean", "datetime", "enum", "email", "url", "ip")


@dataclass(frozen=True)
class ServerVersion:
    version: str  # APP_VERSION_STABLE [app/init/constants.php]
    column_kinds: tuple[str, ...]  # POST …/columns/<kind> routes the double serves
    inline_schema: bool  # create_table reads `columns`/`indexes`
    sequence_as_int: bool  # the Row model sends `$sequence` as a JSON integer
    list_rows_ttl: bool  # list_rows declares the `ttl` param


VERSIONS: dict[str, ServerVersion] = {
    "1.9.6": ServerVersion(
        version="1.9.6",
        # appwrite-facts §1.1: varchar/text/mediumtext/longtext/bigint routes exist in 1.9.x.
        column_kinds=("varchar", "text", "mediumtext", "longtext", "bigint", *_COLUMN_KINDS_1_8),
        inline_schema=True,  # appwrite-facts §1.1 [TDB/Tables/Create.php @1.9.6]
        sequence_as_int=False,  # appwrite-facts §1.4: `(string)` cast [Response/Model/Row.php @1.9.6]
        list_rows_ttl=True,  # appwrite-facts §1.2 [TDB/Tables/Rows/XList.php @1.9.6]
    ),
    "1.8.1": ServerVersion(
        version="1.8.1",
        # No Varchar/Text/Mediumtext/Longtext/Bigint folder in TDB/Tables/Columns/ @1.8.1 (point, line,
        # polygon and relationship exist but the double implements them for no version).
        column_kinds=_COLUMN_KINDS_1_8,
        # TDB/Tables/Create.php @1.8.1 declares no `columns`/`indexes` param; undeclared params are ignored.
        inline_schema=False,
        # src/Appwrite/Utopia/Response/Model/Row.php @1.8.1: `$sequence` TYPE_INTEGER and an (int) cast.
        sequence_as_int=True,
        # TDB/Tables/Rows/XList.php @1.8.1 declares queries, transactionId and total only (ttl came in 1.9.0).
        list_rows_ttl=False,
    ),
}


def lookup_version(name: str) -> ServerVersion:
    try:
        return VERSIONS[name]
    except KeyError:
        raise ValueError(f"server_version must be one of {sorted(VERSIONS)}, not {name!r}") from None


def _version_key(text: str) -> tuple[int, ...]:
    # PHP version_compare on plain dotted numbers; pre-release suffixes are compared by their digits
    # only (a simplification: SDKs send plain "x.y.z" formats).
    return tuple(int(part) for part in re.findall(r"\d+", text))


def sdk_warning(response_format: str | None, version: ServerVersion) -> str | None:
    """The X-Appwrite-Warning for a request's X-Appwrite-Response-Format, or None.

    app/controllers/general.php @1.8.1 L1051-1053 and L1089-1090, @1.9.6 L963-970: a format newer than
    APP_VERSION_STABLE adds this warning; no header (and no _APP_SYSTEM_RESPONSE_FORMAT) means none.
    """
    if not response_format or _version_key(response_format) <= _version_key(version.version):
        return None
    return (
        f"The current SDK is built for Appwrite {response_format}. However, the current Appwrite server "
        f"version is {version.version}. Please downgrade your SDK to match the Appwrite version: "
        "https://appwrite.io/docs/sdks"
    )


def _int_sequence(row: Any) -> None:
    if isinstance(row, dict) and "$sequence" in row:
        row["$sequence"] = int(row["$sequence"])


def row_output(body: Any, version: ServerVersion) -> Any:
    """Apply the version's Row response model to a reply: a Row or a RowList (`rows`).

    Column keys cannot start with `$` and column values are never objects, so only real rows match.
    """
    if version.sequence_as_int and isinstance(body, dict):
        _int_sequence(body)
        rows = body.get("rows")
        if isinstance(rows, list):
            for row in rows:
                _int_sequence(row)
    return body
