"""Scheduled faults: which request misbehaves, and how."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

KINDS = frozenset({"status_429", "status_503", "status_500", "slow", "drop", "lost_answer", "conflict"})


class Fault:
    """A misbehaviour for matching requests.

    method: HTTP method to match (any when None); path: regex searched in the request path
    (e.g. r"/rows$"; the path includes the /v1 prefix, not the query string); kind: one of KINDS
    (required); after: matching requests to let through first; times: matching requests it then
    hits; delay: seconds to sleep for kind "slow". A "conflict" fault matches only transaction commits.
    """

    def __init__(
        self,
        method: str | None = None,
        path: str | None = None,
        kind: str | None = None,
        times: int = 1,
        after: int = 0,
        delay: float = 0.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
        if times < 1 or after < 0 or delay < 0:
            raise ValueError("times must be ≥ 1, after and delay ≥ 0")
        self.method, self.path, self.kind = method, path, kind
        self.times, self.after, self.delay = times, after, delay
        self._pattern = re.compile(path) if path is not None else None
        self._skipped = 0
        self._hits = 0

    def __repr__(self) -> str:
        return (
            f"Fault(method={self.method!r}, path={self.path!r}, kind={self.kind!r}, times={self.times}, "
            f"after={self.after}, delay={self.delay})"
        )

    def _matches(self, method: str, path: str, is_commit: bool) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self._pattern is not None and self._pattern.search(path) is None:
            return False
        return is_commit or self.kind != "conflict"

    @property
    def exhausted(self) -> bool:
        return self._hits >= self.times


@dataclass
class FaultSchedule:
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def take(self, method: str, path: str, *, is_commit: bool) -> Fault | None:
        """The fault that hits this request, if any (the first live one in insertion order)."""
        with self._lock:
            for fault in self.faults:
                if fault.exhausted or not fault._matches(method, path, is_commit):
                    continue
                if fault._skipped < fault.after:
                    fault._skipped += 1
                    continue
                fault._hits += 1
                return fault
        return None
