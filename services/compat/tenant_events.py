"""``track_usage``: the SQLAlchemy tracker's one call, with its per-tenant daily and monthly rollups.

The first argument was a database session; here it is the ledger (None: the facades' default). The event's
rollups are the ledger's own: ``get_tenant_daily_usage(tenant_id, date)`` and
``get_tenant_monthly_usage(tenant_id, year, month)`` answer requests, tokens and exact cost with
``requests_by_provider`` / ``cost_by_provider`` for every provider, named as the caller named it, where the
replaced tables counted only Gemini and OpenAI requests.
"""

from __future__ import annotations

from datetime import datetime

from models.ai_usage import AIUsageLog
from services.compat._service import as_utc, caller_names, resolve
from services.usage_tracking_service import UsageTrackingService

_NAMES = {"tokens_input": "prompt_tokens", "tokens_output": "completion_tokens", "timestamp": "request_timestamp"}


def track_usage(
    service: UsageTrackingService | None,
    tenant_id: str,
    user_id: str,
    kb_id: str,
    provider: str,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    request_timestamp: datetime | None = None,
) -> AIUsageLog:
    """Log one request of ``user_id`` in ``tenant_id`` and return the stored event.

    ``kb_id`` is kept in the event's ``metadata``; a naive ``request_timestamp`` is read as UTC (the replaced
    code wrote ``datetime.utcnow()``), and None is now. Bad input raises ``ValidationFailed`` naming these
    arguments; nothing is stored then.
    """
    fields: dict[str, object] = {
        "tenant_id": tenant_id,
        "user_id": user_id,
        "provider": provider,
        "model": model,
        "tokens_input": prompt_tokens,
        "tokens_output": completion_tokens,
        "metadata": {"kb_id": kb_id},
    }
    if request_timestamp is not None:
        fields["timestamp"] = as_utc(request_timestamp)
    with caller_names(_NAMES):
        return resolve(service).log_usage(**fields).log  # type: ignore[return-value]  # fresh id: stored
