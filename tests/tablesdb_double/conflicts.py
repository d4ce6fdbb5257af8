"""Optimistic concurrency at commit: a staged write refuses a row changed after the write was staged.

Read from appwrite/appwrite `src/Appwrite/Platform/Modules/Databases/Http/Databases/Transactions/Update.php`
and the utopia-php/database each tag pins in composer.lock (6.0.0 for 1.9.6, 3.5.0 for 1.8.1),
`src/Database/Database.php`. The handle*Operation methods are identical at 1.8.1 and 1.9.6; line numbers
below are Update.php @1.9.6 (@1.8.1 in braces) and Database.php @6.0.0 (@3.5.0 in braces).

- The instant compared is the operation's own staging time, its transactionLogs row's `$createdAt`
  (L229 {L159} `$createdAt = new \\DateTime($operation['$createdAt'])`), in milliseconds (`DateTime::now()`
  formats 'Y-m-d H:i:s.v'; createDocument(s) L5606/L5724). Not the transaction's creation, not the commit.
- The test is strict, `$old->getUpdatedAt() > $createdAt`, on millisecond values: a row changed in the
  very millisecond the operation was staged does not conflict.
- update and delete: updateDocument L6327-6331 {L5270-5274} and deleteDocument L7753-7762 {L6575-6584},
  run under withRequestTimestamp (L590 {L473}, L677 {L560}), checked before anything is written.
- upsert: upsertDocumentsWithIncrease L7408-7419 {L6229-6240} under withRequestTimestamp (L641 {L524}),
  only for a row that exists at commit and that the upsert changes (unchanged rows are skipped first,
  L7284-7326 {L6104-6146}).
- bulkUpsert, bulkUpdate, bulkDelete: Update.php's own onNext checks, L940-950 {L823-833}, L872-883
  {L755-766}, L986-994 {L869-877} (the library's check is off: these set no request timestamp).
  bulkUpsert checks the rows that exist at commit and that it changes; bulkUpdate and bulkDelete every
  row they match.
- create and bulkCreate: no check; a row someone created since staging is a duplicate, itself a 409
  transaction_conflict. An upsert or bulkUpsert of a row that did not exist at staging but was created
  before the commit does conflict: its `$updatedAt` is later than the staging time.
- increment and decrement: no check; increaseDocumentAttribute L7531-7613 {L6352-6433} and
  decreaseDocumentAttribute L7629-7714 {L6450-6535} never read the request timestamp.
- A row an earlier operation of the same commit wrote is "dependent" (`isset($state[...][$id])`) and is
  not checked (L579-588, L623-639, L669-675, L873-876, L942-944, L987-989).
- ConflictException is caught at L317-321 {L248-252}: status `failed`, then 409 `transaction_conflict`
  with the type's description as message (app/config/errors.php L1077-1081 {L1020-1024}). The database
  transaction (L220) rolls back: nothing is applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import AppwriteError
from .operators import parse_operator
from .schema import Table
from .values import UNIQUE

if TYPE_CHECKING:
    from .transactions import Operation

# app/config/errors.php @1.9.6 L1077-1081 (@1.8.1 L1020-1024): TRANSACTION_CONFLICT's description; the
# commit throws it without a message of its own (Update.php L321), so the description is the message.
CONFLICT_MESSAGE = "The transaction has a conflict. Please resolve the conflict and try again."

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_NUMERIC = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def conflict() -> AppwriteError:
    return AppwriteError("transaction_conflict", CONFLICT_MESSAGE)


def epoch_ms(stamp: str) -> int:
    """Milliseconds since the epoch of a stored timestamp (DATETIME(3) keeps milliseconds)."""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


class CommitGuard:
    """The conflict check of one commit; `dependent` holds the rows earlier operations wrote."""

    def __init__(self) -> None:
        self.dependent: set[tuple[int, str]] = set()

    def run(self, op: Operation, table: Table, apply: Callable[[], list[str]]) -> None:
        """Apply `op` (`apply` answers the ids it wrote or deleted), or raise a conflict."""
        staged = epoch_ms(op.staged_at) if op.staged_at else None

        def key(row_id: str) -> tuple[int, str]:
            return id(table), row_id.lower() if table.rows.case_insensitive else row_id

        def stale(old: dict[str, Any] | None) -> bool:
            # Update.php L878-879 `$oldUpdatedAt > $createdAt`; Database.php L6329 `$oldUpdatedAt > $this->timestamp`.
            return staged is not None and old is not None and epoch_ms(old["$updatedAt"]) > staged

        action = op.action
        if action in ("update", "delete"):
            row_id = op.row_id or ""
            # checked before the write [U L6327-6331, L7753-7762]
            if key(row_id) not in self.dependent and stale(table.rows.get(row_id)):
                raise conflict()
            apply()
            if action == "update":
                self.dependent.add(key(row_id))
            else:
                self.dependent.discard(key(row_id))
        elif action in ("upsert", "bulkUpsert"):
            single = action == "upsert"
            payloads = [op.data] if single else list(op.data or [])
            olds = [
                (p["$id"], p, table.rows.get(p["$id"]))
                for p in payloads
                if isinstance(p, dict) and isinstance(p.get("$id"), str) and p["$id"] != UNIQUE
            ]
            # Update.php L623: a single upsert is dependent when its rowId (not data.$id) was written before.
            single_dependent = single and key(op.row_id or "") in self.dependent
            touched = apply()
            changed: set[tuple[int, str]] = set()
            for row_id, payload, old in olds:
                if old is not None and not upsert_changes(old, payload, op.permissions):
                    continue  # skipped as unchanged before the check [U L7322-7326]
                changed.add(key(row_id))
                dependent = single_dependent if single else key(row_id) in self.dependent
                if not dependent and stale(old):  # [U L7408-7419] / Update.php L940-950
                    raise conflict()
            # Update.php L641-646: a single upsert's row joins the state even when unchanged; a bulk
            # upsert's only when written (unchanged rows never reach onNext, L952).
            self.dependent.update(k for k in map(key, touched) if single or k in changed)
        elif action in ("bulkUpdate", "bulkDelete"):
            before = table.rows.snapshot()[0]  # folded id → row, as the operation found them
            touched = apply()
            for row_id in touched:  # Update.php L872-883 / L986-994: every row matched
                if key(row_id) not in self.dependent and stale(before.get(key(row_id)[1])):
                    raise conflict()
            if action == "bulkUpdate":
                self.dependent.update(map(key, touched))
            else:
                self.dependent.difference_update(map(key, touched))
        else:  # create, bulkCreate, increment, decrement: never checked
            self.dependent.update(map(key, apply()))


def upsert_changes(old: dict[str, Any], payload: dict[str, Any], permissions: Any) -> bool:
    """utopia's `$hasChanges` for an upsert of an existing row [U Database.php 6.0.0 L7284-7320, 3.5.0 L6104-6140]."""
    values = {k: v for k, v in payload.items() if not k.startswith("$")}
    if any(parse_operator(v) is not None for v in values.values()):
        return True
    given = permissions if permissions is not None else payload.get("$permissions")
    if given is not None and sorted(given) != sorted(old["$permissions"]):
        return True
    if any(not php_equal(old.get(k), v) for k, v in values.items()):
        return True
    # "old document has attributes that new document doesn't": a stored row carries every column.
    return any(not k.startswith("$") and k not in values for k in old)


def php_equal(a: Any, b: Any) -> bool:
    """PHP 8 loose `==` on JSON values (utopia compares with `$oldValue != $value`)."""
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        if (a is None or b is None) and (isinstance(a, str) or isinstance(b, str)):
            return (a if isinstance(a, str) else b) == ""  # null == "x" compares "" with the string
        return _php_bool(a) == _php_bool(b)
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(php_equal, a, b))
    numeric_a = not isinstance(a, str) or _NUMERIC.fullmatch(a) is not None
    numeric_b = not isinstance(b, str) or _NUMERIC.fullmatch(b) is not None
    if not (numeric_a and numeric_b):
        return a == b if isinstance(a, str) and isinstance(b, str) else str(a) == str(b)
    return _php_number(a) == _php_number(b)


def _php_number(value: Any) -> int | float:
    if not isinstance(value, str):
        return value
    text = value.strip()
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def _php_bool(value: Any) -> bool:
    return value not in (None, False, 0, "", "0", [])
