"""The usage ledger's data: what a caller sends, what is stored, and the summaries read back.

Token convention (enforced here): ``tokens_input`` is the whole prompt as OpenAI reports it, cache reads
and cache writes included; ``tokens_cached`` and ``tokens_cache_write`` are the parts of it billed at their
own rates; ``tokens_reasoning`` is the part of ``tokens_output`` spent on reasoning.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    create_model,
    field_validator,
    model_validator,
)

# The text and time rules live in field_rules; the identifier bound is re-exported with the other bounds here.
from models.field_rules import MAX_ID_CHARS as MAX_ID_CHARS
from models.field_rules import (
    AwareDatetime,
    Encodable,
    Identifier,
    NoControl,
    NoSlash,
    NotOperator,
    OptionalIdentifier,
    OptionalStrip,
    check_metadata_shape,
)

# The per-kind bounds live with the kinds; re-exported here, where callers have always found them.
from models.usage_kinds import MAX_CREDITS_PER_EVENT as MAX_CREDITS_PER_EVENT
from models.usage_kinds import MAX_TOKENS_PER_EVENT as MAX_TOKENS_PER_EVENT
from models.usage_kinds import PARTS, USAGE_KINDS

# Bounds that keep a single event sane; anything past them is a caller bug, not a real request.
MAX_DURATION_MS = 24 * 3600 * 1000
MAX_MODEL_CHARS = 200
MAX_FEATURE_CHARS = 100
MAX_ERROR_MESSAGE_CHARS = 2000
MAX_METADATA_BYTES = 4096


# How an event's price was chosen; the free rules are counted apart so $0 is never silent.
PriceRule = Literal["book", "default", "free_local", "free_variant", "other_host"]
FREE_PRICE_RULES = frozenset({"free_local", "free_variant"})


class ServiceTier(StrEnum):
    """How the provider served the request: batch, flex and priority tiers bill at their own rates."""

    STANDARD = "standard"
    BATCH = "batch"
    FLEX = "flex"
    PRIORITY = "priority"


class TaskType(StrEnum):
    """What the game asked the model to do."""

    STORY_PROGRESSION = "story_progression"
    COMBAT_NARRATION = "combat_narration"
    QUEST_SELECTION = "quest_selection"
    NPC_DIALOGUE = "npc_dialogue"
    GENERAL = "general"


# Exact money travels as a decimal string in JSON so no client parses it into a float by accident.
ExactUSD = Annotated[Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")]


class _EventFields(BaseModel):
    """The fields of an event other than its usage kinds (those come from ``USAGE_KINDS``; see ``UsageEvent``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    request_id: OptionalIdentifier = None
    user_id: Annotated[Identifier, NoSlash]
    tenant_id: OptionalIdentifier = None
    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_CHARS), Encodable, NoControl, NotOperator]
    provider: Annotated[str | None, Field(max_length=64), OptionalStrip, Encodable, NoControl, NotOperator] = None
    task_type: TaskType = TaskType.GENERAL
    # The product feature that made the call (a template, a quest board, an NPC archetype): the game's own
    # open set of labels, where task types are the ledger's closed one.
    feature: Annotated[
        str | None,
        Field(max_length=MAX_FEATURE_CHARS),
        OptionalStrip,
        Encodable,
        NoControl,
        NotOperator,
    ] = None
    service_tier: ServiceTier = ServiceTier.STANDARD
    session_id: Annotated[OptionalIdentifier, NoSlash] = None
    character_id: OptionalIdentifier = None
    request_duration_ms: Annotated[StrictInt | None, Field(ge=0, le=MAX_DURATION_MS)] = None
    success: StrictBool = True
    # Free text (a provider's error): control characters such as newlines are allowed, broken Unicode is not.
    error_message: Annotated[str | None, Field(max_length=MAX_ERROR_MESSAGE_CHARS), Encodable, NotOperator] = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    timestamp: AwareDatetime | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_small_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        check_metadata_shape(value)
        try:
            # Encoded exactly as it is stored and served (UTF-8 JSON), so whatever passes can be answered back.
            json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")
            encoded = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except UnicodeEncodeError:
            raise ValueError("must hold valid Unicode text only (a string has a lone surrogate)") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be a JSON object ({exc})") from exc
        if len(encoded.encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
        return value

    @model_validator(mode="after")
    def _parts_fit(self) -> _EventFields:
        # The part-of rules of the usage kinds table: the parts of a whole may not add up to more than it.
        values = self.__dict__
        for whole, parts in PARTS.items():
            if sum(values[part] for part in parts) > values[whole]:
                raise ValueError(f"{' + '.join(parts)} must not exceed {whole} (they are parts of it)")
        return self


def _kind_fields(*, bounded: bool) -> dict[str, Any]:
    """A field per usage kind: a strict, bounded integer on input; a plain integer on a stored row."""
    fields: dict[str, Any] = {}
    for kind in USAGE_KINDS:
        about = f"{kind.description} ({kind.unit}s)"
        if bounded:
            fields[kind.name] = (Annotated[StrictInt, Field(ge=0, le=kind.bound, description=about)], 0)
        else:
            fields[kind.name] = (Annotated[int, Field(description=about)], 0)
    return fields


# One AI request as the game backend reports it: the input of ``log_usage``. A usage kind is a row of
# ``USAGE_KINDS``; each is a field here, a non-negative integer within its bound.
UsageEvent = create_model("UsageEvent", __base__=_EventFields, __module__=__name__, **_kind_fields(bounded=True))
UsageEvent.__doc__ = "One AI request as the game backend reports it: the input of ``log_usage``."


class _RowFields(BaseModel):
    """The fields of a stored event other than its usage kinds (see ``AIUsageLog``)."""

    model_config = ConfigDict(extra="forbid")

    log_id: str
    request_id: str
    user_id: str
    tenant_id: str | None = None
    model: str
    provider: str | None = None
    task_type: TaskType
    feature: str | None = None
    service_tier: ServiceTier = ServiceTier.STANDARD
    tokens_total: int
    session_id: str | None = None
    character_id: str | None = None
    request_duration_ms: int | None = None
    success: bool = True
    error_message: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime
    cost_nano: int = Field(description="Exact cost in nano-USD (1e-9 USD), the stored unit of money")
    cost_nano_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description="cost_nano split by usage kind (and per_request; unsplit for events logged before the split), "
        "in whole nano-USD adding up to cost_nano; parts that cost nothing are left out",
    )
    estimated_cost: float = Field(description="USD, float(estimated_cost_exact), for display")
    estimated_cost_exact: ExactUSD = Field(description="Exact USD as a decimal string")
    price_model_id: str = Field(description="The price book entry that priced this event")
    price_is_fallback: bool = Field(description="True when the model was unknown and a default priced it")
    price_tier: ServiceTier = Field(
        default=ServiceTier.STANDARD,
        description="The tier whose prices applied: standard when the entry has no prices for the event's tier",
    )
    price_version: str | None = Field(
        default=None, description="The price entry that priced it: model id, and @effective_from for a dated one"
    )
    price_rule: PriceRule = Field(
        default="book",
        description="How the price was chosen: book (the model's entry), default (unknown model), "
        "free_local (a local runtime's id), free_variant (an OpenRouter ':free' id), other_host (the host that "
        "served it has no price of its own: the model's reference price)",
    )
    platform_credits: int = Field(description="int(cost in USD × 100)")

    @property
    def day(self) -> date:
        return self.timestamp.date()


AIUsageLog = create_model("AIUsageLog", __base__=_RowFields, __module__=__name__, **_kind_fields(bounded=False))
AIUsageLog.__doc__ = "A stored usage event: the input plus its identity, totals and price."


# Wide enough for any amount; Inexact is trapped, so a conversion can never round.
_EXACT = Context(prec=1000, traps=[Inexact, InvalidOperation])


def nano_to_usd(nano: int) -> Decimal:
    """Exact USD for an integer nano-USD amount (the stored unit of money)."""
    return Decimal(nano).scaleb(-9, context=_EXACT)


def platform_credits_of(cost_nano: int) -> int:
    """``int(cost in USD × 100)``: the platform credits an event is charged (the replaced service's unit)."""
    return cost_nano * 100 // 10**9


def derived_fields(cost_nano: int, tokens_input: int, tokens_output: int) -> dict[str, Any]:
    """The fields a row derives from what is stored (money for display, the token total): computed here, once,
    for the pricer that builds a row and every store that reads one back."""
    exact = nano_to_usd(cost_nano)
    return {"estimated_cost": float(exact), "estimated_cost_exact": exact, "tokens_total": tokens_input + tokens_output}


def log_id_for(request_id: str, tenant_id: str | None = None) -> str:
    """The idempotency key (tenant_id, request_id) as a stable row id: 32 of [0-9a-f], as Appwrite row ids allow.

    The default tenant (None) keeps the id of a bare request id, so rows stored before tenants scoped the key
    keep theirs; another tenant's id hashes both parts, joined by a control character no id may contain.
    """
    key = request_id if tenant_id is None else f"{tenant_id}\x1f{request_id}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class LogStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # this (tenant_id, request_id) was stored before with the same billed content
    REJECTED = "rejected"
    CONFLICT = "conflict"  # this (tenant_id, request_id) was stored before with different billed content


class FieldError(BaseModel):
    field: str
    message: str


class LogResult(BaseModel):
    """What logging one event did: stored it, found it already stored (a retry), or refused it."""

    status: LogStatus
    log: AIUsageLog | None = None
    errors: list[FieldError] = Field(default_factory=list)

    @property
    def duplicate(self) -> bool:
        return self.status is LogStatus.DUPLICATE


class EventPage(BaseModel):
    """One page of raw events; pass ``next_cursor`` back to get the next one (None: no more)."""

    items: list[AIUsageLog]
    next_cursor: str | None = None
