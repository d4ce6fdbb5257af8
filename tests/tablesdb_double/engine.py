"""The data model behind the HTTP surface, and the request/reply shapes handlers use."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .schema import Catalog
from .transactions import TransactionBook
from .values import Clock
from .versions import VERSIONS, ServerVersion

# A handler answers (status, JSON body); a None body is an empty 204.
Reply = tuple[int, Any]


@dataclass
class Request:
    method: str
    path: str
    args: dict[str, str]  # path parameters
    params: dict[str, Any] = field(default_factory=dict)  # JSON body, or flattened GET query
    # The X-Appwrite-Timestamp header: a row update fails if the row changed after it (appwrite-facts §2.2).
    timestamp: datetime | None = None


class Engine:
    """Databases, tables, rows and transactions behind one lock (handlers run holding it)."""

    def __init__(
        self, *, case_insensitive: bool, column_ready_after: float, version: ServerVersion = VERSIONS["1.9.6"]
    ) -> None:
        self.lock = threading.RLock()
        self.version = version
        self.clock = Clock()
        self.case_insensitive = case_insensitive
        self.catalog = Catalog(self.clock, case_insensitive, column_ready_after)
        self.transactions = TransactionBook(self.catalog, self.clock)
