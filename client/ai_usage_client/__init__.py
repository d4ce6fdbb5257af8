"""The ai-usage-tracker client for game backends (standard library only).

``UsageClient`` records every AI call in the ledger off the game's hot path and never loses an event: see
the README's "Tracking calls with the client".
"""

from .client import UsageClient
from .spool import DeadLetter, Spool, SpoolError
from .stats import ClientStats

__all__ = ["ClientStats", "DeadLetter", "Spool", "SpoolError", "UsageClient"]
