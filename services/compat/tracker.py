"""``AIUsageTracker``: per-tenant ("administration") logging by feature, and the tenant's summary.

The replaced tracker knew only a request's token total. The ledger prices a total without its input/output split
as that tracker did, by one rate per model: the price book has no blended rates, so the whole total is counted as
``tokens_input`` and priced at the model's input rate, and the row says so in its ``metadata``
(``{"tokens_split": "unknown", "priced_as": "tokens_input"}``). Calls are logged under the system user.
"""

from __future__ import annotations

from typing import Any

import structlog

from models.ai_usage import AIUsageLog
from services.compat._service import SYSTEM_USER, resolve
from services.usage_tracking_service import UsageTrackingService

log = structlog.get_logger("ai_usage.compat")

# What a total-only row carries, so a reader can tell it from a row with a real split.
TOTAL_ONLY = {"tokens_split": "unknown", "priced_as": "tokens_input"}


class AIUsageTracker:
    """``AIUsageTracker(service=None)``: the ledger to write to, else the facades' default."""

    def __init__(self, service: UsageTrackingService | None = None) -> None:
        self.service = resolve(service)

    def log_ai_request(
        self, administration: str, template_type: str, tokens_used: int, model_used: str
    ) -> AIUsageLog | None:
        """Log one request of tenant ``administration`` for feature ``template_type``; the stored row.

        Like the tracker it replaces, a failure to log never breaks the caller: it is logged (with its cause)
        and swallowed, and the call returns None.
        """
        try:
            return self.service.log_usage(
                user_id=SYSTEM_USER,
                tenant_id=administration,
                model=model_used,
                feature=template_type,
                tokens_input=tokens_used,
                metadata=TOTAL_ONLY,
            ).log
        except Exception as exc:  # the contract of this call: usage logging must never fail the AI feature
            log.exception(
                "compat.ai_usage_tracker.log_failed",
                administration=administration,
                template_type=template_type,
                model=model_used,
                error=repr(exc),
            )
            return None

    def get_usage_summary(self, administration: str, days: int = 30) -> dict[str, Any]:
        """The tenant's last ``days`` UTC days (today included): totals and a per-feature breakdown.

        Costs are USD floats as the replaced summary returned them, each beside its exact ``Decimal``
        (``total_cost_exact``, ``cost_exact``); features are ordered by cost, highest first.
        """
        summary = self.service.get_tenant_usage_summary(administration, days)
        features = sorted(summary.by_feature.items(), key=lambda item: (-item[1].estimated_cost_exact, item[0]))
        return {
            "administration": administration,
            "period_days": days,
            "total_requests": summary.total_requests,
            "total_tokens": summary.total_tokens,
            "total_cost": float(summary.estimated_cost_exact),
            "total_cost_exact": summary.estimated_cost_exact,
            "by_feature": {
                feature: {
                    "requests": item.requests,
                    "tokens": item.tokens,
                    "cost": float(item.estimated_cost_exact),
                    "cost_exact": item.estimated_cost_exact,
                }
                for feature, item in features
            },
        }
