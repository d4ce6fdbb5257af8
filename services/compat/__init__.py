"""Drop-in facades for the usage services this ledger replaces, over ``UsageTrackingService``.

``from services.compat import AIUsageLogger, AIPricingConfig, AIUsageTracker, track_usage, UsageTracker,
ProviderType, OperationType``: each keeps the names, argument names, argument order and return shapes its callers
use, takes an optional ledger (``service``; else one built from settings, shared, replaceable with
``set_default_service``), and adds no logic beyond the conversions each module's docstring names.
"""

from __future__ import annotations

from services.compat._service import SYSTEM_USER, default_service, set_default_service
from services.compat.logger import AIPricingConfig, AIUsageLogger
from services.compat.tenant_events import track_usage
from services.compat.tracker import AIUsageTracker
from services.compat.unified import OperationType, ProviderType, UsageTracker

__all__ = [
    "SYSTEM_USER",
    "AIPricingConfig",
    "AIUsageLogger",
    "AIUsageTracker",
    "OperationType",
    "ProviderType",
    "UsageTracker",
    "default_service",
    "set_default_service",
    "track_usage",
]
