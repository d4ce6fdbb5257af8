"""Row storage for one table: rows by id, in `$sequence` order, with cheap snapshots."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]  # stored form: "$id", "$sequence" (int), "$createdAt", "$updatedAt", "$permissions", columns


class RowSet:
    """Rows keyed by id. Stored row dicts are never mutated, only replaced, so a shallow copy of
    the mapping is a consistent snapshot (used for atomic bulk writes, commits and transaction reads).
    """

    def __init__(self, case_insensitive: bool) -> None:
        self.case_insensitive = case_insensitive
        self._rows: dict[str, Row] = {}
        self.next_sequence = 1

    def _key(self, row_id: str) -> str:
        # appwrite-facts §3.2 last bullet: utf8mb4_general_ci makes "ABC" and "abc" the same row id.
        return row_id.lower() if self.case_insensitive else row_id

    def get(self, row_id: str) -> Row | None:
        return self._rows.get(self._key(row_id))

    def put(self, row: Row) -> None:
        # dict insertion order equals `$sequence` order: new rows are appended, replacements keep place.
        self._rows[self._key(row["$id"])] = row

    def remove(self, row_id: str) -> None:
        self._rows.pop(self._key(row_id), None)

    def take_sequence(self) -> int:
        sequence = self.next_sequence
        self.next_sequence += 1
        return sequence

    def all(self) -> list[Row]:
        return list(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)

    def snapshot(self) -> tuple[dict[str, Row], int]:
        return dict(self._rows), self.next_sequence

    def restore(self, snapshot: tuple[dict[str, Row], int]) -> None:
        self._rows, self.next_sequence = dict(snapshot[0]), snapshot[1]

    def copy(self) -> RowSet:
        clone = RowSet(self.case_insensitive)
        clone.restore(self.snapshot())
        return clone
