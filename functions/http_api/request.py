"""What a handler sees of an HTTP call, whichever runtime delivered it: no Flask or Appwrite type passes here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """Who is calling. ``server`` is the game backend, ``admin`` an operator, ``user`` one signed-in player."""

    SERVER = "server"
    ADMIN = "admin"
    USER = "user"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    role: Role
    user_id: str | None = None  # set for ``user`` (and for an admin identified as an Appwrite user)


ANONYMOUS = Caller(Role.ANONYMOUS)


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request.

    ``headers`` keys are lower-cased. ``body`` holds at most the route's body limit plus one byte; ``body_size``
    is the size the client declared or sent, so a body refused unread is still known to be too large.
    ``caller`` is None when the caller must be authenticated from the ``Authorization`` header (a plain HTTP
    server); the Appwrite adapter sets it from the headers Appwrite injects.
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_size: int | None = None
    caller: Caller | None = None
    correlation_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.body) if self.body_size is None else self.body_size
