"""How usage events and rollups look as Appwrite rows: ids, column values, and the way back.

Row ids are derived, never random, so a retry writes the same ids: an event's id comes from its idempotency
key, (``tenant_id``, ``request_id``) (Appwrite answers a second create with a conflict instead of storing a
copy), a rollup's from its (kind, scope, bucket, dim, shard). Global rollups are split over shards by player
so the day's global row is not one hot row every write of every player waits for; readers add the shards up.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from appwrite.operator import Operator

from models.ai_usage import MAX_METADATA_BYTES, AIUsageLog, derived_fields, log_id_for
from models.counters import COUNTER_FIELDS, Counters, moved_counters
from models.usage_kinds import COST_COUNTERS, COST_PARTS, KIND_NAMES
from services.store.rollups import (
    GLOBAL_KINDS,
    SHAPES_FINGERPRINT,
    RollupKey,
    day_bucket,
    kept_by,
    month_bucket,
    rollup_keys,
)

INT64_MAX = 2**63 - 1
# Starts a metadata text whose opening brace was replaced so that Appwrite does not read it as an operator.
NOT_AN_OPERATOR = "~"
# Operator methods of Appwrite 1.8/1.9 (server `Operator::isMethod`; SDK `appwrite/operator.py`).
OPERATOR_METHODS = frozenset({
    "increment", "decrement", "multiply", "divide", "modulo", "power", "arrayAppend", "arrayPrepend",
    "arrayInsert", "arrayRemove", "arrayUnique", "arrayIntersect", "arrayDiff", "arrayFilter", "stringConcat",
    "stringReplace", "toggle", "dateAddDays", "dateSubDays", "dateSetNow",
})  # fmt: skip
_TEXT_FIELDS = (
    "request_id", "log_id", "user_id", "tenant_id", "model", "provider", "session_id", "character_id",
    "error_message", "price_model_id", "price_rule", "service_tier", "price_tier", "price_version", "feature",
)  # fmt: skip
# The widths of the rollups' key columns (appwrite.json). A longer scope (a tenant-qualified player) or dim (a joined
# one with a long provider or model: provider, model and task type) is stored as a hash, and the text in ``long_key``.
SCOPE_CHARS = 128
DIM_CHARS = 200
# The rollups table's one row that is not a rollup: which definition (shapes and counters) built the rows. Written by
# a rebuild (``ai-usage appwrite setup``), read by the store before its first write.
META_KIND = "_meta"
META_ROW_ID = "rollup_definition"
ROLLUP_DEFINITION = hashlib.sha256(f"{SHAPES_FINGERPRINT} {COUNTER_FIELDS!r}".encode()).hexdigest()
_INT_FIELDS = (*KIND_NAMES, "tokens_total", "request_duration_ms", "cost_nano", "platform_credits")


def event_row_id(request_id: str, tenant_id: str | None = None) -> str:
    return log_id_for(request_id, tenant_id)


def key_column(value: str, width: int) -> str:
    """What a rollup's scope or dim column holds: the value, or "#" and its hash when it is wider than the column.

    Queries for a scope use the same form, so a long key is read as exactly as a short one."""
    if len(value) <= width:
        return value
    return "#" + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()


def rollup_row_id(kind: str, scope: str, bucket: str, dim: str, shard: int) -> str:
    key = "\x1f".join((kind, scope, bucket, dim, str(shard)))
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def shard_of(user_id: str, shards: int) -> int:
    """A stable shard for a player (``hash()`` is salted per process, so it cannot be used)."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "big") % shards


def names_operator(value: Mapping[str, Any]) -> bool:
    # As Appwrite tests it (Http/Databases/Action.php parseOperators: `is_string($decoded['method'])` and
    # `Operator::isMethod`): a list or object under "method" is data, and unhashable here.
    method = value.get("method")
    return isinstance(method, str) and method in OPERATOR_METHODS


def looks_like_operator(value: str) -> bool:
    """Appwrite reads any string that decodes to a JSON object with a known ``method`` as an operator."""
    if not value.lstrip().startswith("{"):
        return False
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError):  # deeper than Python reads is deeper than PHP's json_decode (512)
        return False
    return isinstance(decoded, dict) and names_operator(decoded)


def encode_metadata(metadata: Mapping[str, Any]) -> str:
    """The metadata column's text: the event's compact ASCII JSON, at most ``MAX_METADATA_BYTES``, the column's width.

    An object that would read as an operator is wrapped in a list when that fits the column (still JSON); the
    2 characters do not fit at the limit, so there its opening brace becomes ``NOT_AN_OPERATOR`` instead: no longer
    JSON, so never an operator, and never longer than what the validator accepted."""
    text = json.dumps(metadata, separators=(",", ":"))
    if not names_operator(metadata):
        return text
    return f"[{text}]" if len(text) + 2 <= MAX_METADATA_BYTES else NOT_AN_OPERATOR + text[1:]


def decode_metadata(text: str) -> dict[str, Any]:
    if text.startswith(NOT_AN_OPERATOR):
        text = "{" + text[1:]
    value = json.loads(text)
    return value[0] if isinstance(value, list) else value


def iso_ms(ts: datetime) -> str:
    """Appwrite's datetime form: UTC, milliseconds (it keeps no more)."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


# Appwrite's datetime range on MariaDB (appwrite-facts §3.4); query bounds outside it are refused with a 400.
_EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def iso_ms_ceil(ts: datetime) -> str:
    """The first millisecond at or after ``ts``; stored times are whole milliseconds, so comparing with it is exact.

    Clamped to Appwrite's datetime range: no event lies outside it, so the clamped bound selects the same rows.
    """
    ts = min(max(ts.astimezone(UTC), _EARLIEST), _LATEST)
    spare = ts.microsecond % 1000
    return iso_ms(ts + timedelta(microseconds=1000 - spare) if spare else ts)


def event_data(log: AIUsageLog) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(log, name) for name in (*_TEXT_FIELDS, *_INT_FIELDS)}
    for name in _TEXT_FIELDS:
        if data[name] is not None and looks_like_operator(data[name]):
            raise ValueError(f"{name} reads as an Appwrite operator (JSON with an operator 'method'); cannot store it")
    data.update(
        task_type=log.task_type.value,
        success=log.success,
        price_is_fallback=log.price_is_fallback,
        metadata=encode_metadata(log.metadata),
        timestamp=iso_ms(log.timestamp),
        day=day_bucket(log),
        month=month_bucket(log),
    )
    by_kind = log.cost_nano_by_kind
    data.update({column: by_kind.get(part, 0) for part, column in zip(COST_PARTS, COST_COUNTERS, strict=True)})
    return data


def log_from_data(data: Mapping[str, Any]) -> AIUsageLog:
    fields = {name: data.get(name) for name in (*_TEXT_FIELDS, *_INT_FIELDS) if name != "tokens_total"}
    fields["price_rule"] = fields["price_rule"] or _rule_before_the_column(data)
    for name in ("service_tier", "price_tier"):  # rows from before tiers were all standard
        fields[name] = fields[name] or "standard"
    for name in KIND_NAMES:  # a kind added after the row was written has no value on it: none of it was used
        fields[name] = fields[name] or 0
    by_kind = {part: data.get(column) or 0 for part, column in zip(COST_PARTS, COST_COUNTERS, strict=True)}
    if data.get(COST_COUNTERS[-1]) is None:  # written before costs were split by kind: all of it is unsplit
        by_kind = {"unsplit": data["cost_nano"]}
    return AIUsageLog(
        **fields,
        cost_nano_by_kind={part: nano for part, nano in by_kind.items() if nano},
        task_type=data["task_type"],
        **derived_fields(data["cost_nano"], fields["tokens_input"], fields["tokens_output"]),
        success=bool(data["success"]),
        price_is_fallback=bool(data["price_is_fallback"]),
        metadata=decode_metadata(data["metadata"]),
        timestamp=datetime.fromisoformat(data["timestamp"]).astimezone(UTC),
    )


def _rule_before_the_column(data: Mapping[str, Any]) -> str:
    """The price rule of a row stored before rows kept it (the SQLite migration to version 2 reads it the same way):
    the free entries of that time were ``ollama/...`` and ``...:free`` at $0."""
    if data["price_is_fallback"]:
        return "default"
    model_id = data.get("price_model_id") or ""
    if data["cost_nano"] == 0 and model_id.endswith(":free"):
        return "free_variant"
    if data["cost_nano"] == 0 and model_id.startswith("ollama/"):
        return "free_local"
    return "book"


def counters_from_data(data: Mapping[str, Any]) -> Counters:
    return Counters(**{name: data.get(name) or 0 for name in COUNTER_FIELDS})


def definition_row() -> dict[str, Any]:
    """The rollups table's row recording the definition the rollups were built by."""
    return {"$id": META_ROW_ID, "kind": META_KIND, "scope": META_ROW_ID, "bucket": "", "dim": ROLLUP_DEFINITION,
            "shard": 0}  # fmt: skip


def rollup_key_of(data: Mapping[str, Any]) -> tuple[str, str]:
    """A rollup row's (scope, dim) as the rollups define them: the texts behind hashed columns put back."""
    long_key = data.get("long_key")
    if not long_key:
        return data["scope"], data["dim"]
    scope, dim = json.loads(long_key)
    return scope, dim


def long_key_of(scope: str, dim: str) -> str | None:
    """The ``long_key`` column of a rollup whose scope or dim is stored hashed: both texts, as JSON; else None.

    Written unescaped (as record and rebuild both must, or a rebuild would not compare equal): at most one of the
    two is past its column (a long scope is a tenant's player, whose dim is at most a model id), so the pair fits
    the column's 1,024 characters even when every character is escaped; ``\\uXXXX`` escapes would not."""
    if len(scope) <= SCOPE_CHARS and len(dim) <= DIM_CHARS:
        return None
    return json.dumps([scope, dim], ensure_ascii=False)


@dataclass
class RollupDelta:
    """What one transaction adds to one rollup row."""

    kind: str
    scope: str
    bucket: str
    dim: str
    shard: int
    values: list[int] = field(default_factory=lambda: [0] * len(COUNTER_FIELDS))

    def key_columns(self, row_id: str) -> dict[str, Any]:
        long_key = long_key_of(self.scope, self.dim)
        return {
            "$id": row_id, "kind": self.kind, "scope": key_column(self.scope, SCOPE_CHARS), "bucket": self.bucket,
            "dim": key_column(self.dim, DIM_CHARS), "shard": self.shard, **({"long_key": long_key} if long_key else {}),
        }  # fmt: skip

    def row(self, row_id: str) -> dict[str, Any]:
        """A ``bulkUpsert`` row: creates the rollup or adds to it (an explicit max lets counters pass 2^31).

        Only the counters this delta moves are named: an optional column missing from an upsert keeps its value
        (or takes its default, 0, on create; appwrite-facts "Upsert semantics"), and an event moves a dozen of
        the ~110 counters. ``requests`` is always named, so a row is never an upsert without data."""
        increments = {
            name: increment(value)
            for name, value in zip(COUNTER_FIELDS, self.values, strict=True)
            if value or name == "requests"
        }
        return {**self.key_columns(row_id), **increments}


@functools.lru_cache(maxsize=8192)
def increment(value: int) -> str:
    """``Operator.increment`` with an explicit max (memoised: most deltas are 0 or 1, and this is the hot path)."""
    return Operator.increment(value, INT64_MAX)


def json_size(value: Any) -> int:
    """Bytes ``value`` takes in a request body: the SDK sends ``json.dumps`` (ASCII; ", " and ": " separators)."""
    return len(json.dumps(value))


# The most one counter named in a ``RollupDelta.row`` adds to its JSON: `, "name": "<increment by up to 2^63-1>"`.
_COUNTER_BYTES = tuple(len(name) + 6 + json_size(increment(INT64_MAX)) for name in COUNTER_FIELDS)


def rollup_rows_of(log: AIUsageLog, shards: int) -> Iterator[tuple[str, RollupKey, int]]:
    """(row id, key, shard) of every rollup row an event adds to."""
    shard = shard_of(log.user_id, shards)
    for key in rollup_keys(log):
        row_shard = shard if key.kind in GLOBAL_KINDS else 0
        yield rollup_row_id(key.kind.value, key.scope, key.bucket, key.dim, row_shard), key, row_shard


def rollup_deltas(logs: Iterable[AIUsageLog], shards: int) -> dict[str, RollupDelta]:
    """What a set of events adds to each rollup row, merged per row id."""
    deltas: dict[str, RollupDelta] = {}
    for log in logs:
        moved = moved_counters(log)
        for row_id, key, row_shard in rollup_rows_of(log, shards):
            delta = deltas.get(row_id)
            if delta is None:
                for part in (key.scope, key.dim):
                    if looks_like_operator(part):
                        raise ValueError(f"{part!r} reads as an Appwrite operator and cannot be a rollup key")
                delta = deltas[row_id] = RollupDelta(key.kind.value, key.scope, key.bucket, key.dim, row_shard)
            values = delta.values
            for index, value in kept_by(key.kind, moved):
                values[index] += value
    return deltas


class RollupRowsSize:
    """An upper bound of the JSON bytes of the rollup rows (``RollupDelta.row``) a growing group of events upserts,
    counted event by event without building them: each row's key columns, and each counter it names at its widest."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self.bytes = 0
        self.named: dict[str, set[int]] = {}  # row id -> positions of the counters its row names

    def add(self, log: AIUsageLog) -> None:
        moved = moved_counters(log)
        for row_id, key, row_shard in rollup_rows_of(log, self.shards):
            named = self.named.get(row_id)
            if named is None:
                delta = RollupDelta(key.kind.value, key.scope, key.bucket, key.dim, row_shard)
                named = self.named[row_id] = {0}  # ``requests`` is always named
                self.bytes += json_size(delta.key_columns(row_id)) + 2 + _COUNTER_BYTES[0]
            for index, _ in kept_by(key.kind, moved):
                if index not in named:
                    named.add(index)
                    self.bytes += _COUNTER_BYTES[index]
