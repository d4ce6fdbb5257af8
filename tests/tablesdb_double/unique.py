"""Unique indexes: the tuple an index compares and a guard that refuses a second row with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import AppwriteError
from .rowset import Row, RowSet

if TYPE_CHECKING:
    from .schema import Index


def unique_tuple(row: dict[str, Any], index: Index, case_insensitive: bool) -> tuple[Any, ...] | None:
    """The value a unique index compares, or None when a NULL part exempts the row (SQL rule)."""
    values = []
    for name in index.columns:
        value = row.get(name)
        if value is None:
            return None
        if case_insensitive and isinstance(value, str):
            value = value.lower()  # appwrite-facts §3.2: unique indexes follow the _ci collation.
        values.append(value)
    return tuple(values)


class UniqueGuard:
    """Values held by each available unique index, to refuse a second row with the same tuple."""

    def __init__(self, indexes: list[Index], rows: RowSet) -> None:
        self.indexes, self.ci = indexes, rows.case_insensitive
        self.seen: dict[str, dict[tuple[Any, ...], str]] = {i.key: {} for i in indexes}
        for row in rows.all():
            self.add(row)

    def _owner(self, row: Row) -> str:
        return row["$id"].lower() if self.ci else row["$id"]

    def check(self, row: Row) -> None:
        for index in self.indexes:
            value = unique_tuple(row, index, self.ci)
            owner = self.seen[index.key].get(value) if value is not None else None
            if owner is not None and owner != self._owner(row):
                # appwrite-facts §2.2: unique index violated → 409 row_unique_constraint_violation.
                raise AppwriteError(
                    "row_unique_constraint_violation",
                    f"Row with the requested unique attributes already exists (index '{index.key}').",
                )

    def add(self, row: Row) -> None:
        for index in self.indexes:
            value = unique_tuple(row, index, self.ci)
            if value is not None:
                self.seen[index.key][value] = self._owner(row)

    def discard(self, row: Row) -> None:
        for index in self.indexes:
            value = unique_tuple(row, index, self.ci)
            if value is not None and self.seen[index.key].get(value) == self._owner(row):
                del self.seen[index.key][value]
