"""What a handler sees of an HTTP call, whichever runtime delivered it: no Flask or Appwrite type passes here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import InvalidBody


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


@dataclass(frozen=True)
class RawBody:
    """The undecoded body of a route that reads more than JSON (OTLP's protobuf): ``dispatch`` passes it as
    ``Call.body`` when the route's body model is a ``schemas.RawBodyModel``, so the handler picks the decoder.

    ``content_type`` is the lower-cased media type without parameters, ``content_encoding`` the lower-cased
    ``Content-Encoding`` (``gzip``); both are ``""`` when the header is absent.
    """

    data: bytes
    content_type: str = ""
    content_encoding: str = ""

    @classmethod
    def of(cls, request: ApiRequest) -> RawBody:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        encoding = request.headers.get("content-encoding", "").strip().lower()
        return cls(data=request.body, content_type=content_type, content_encoding=encoding)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_body(body: bytes, required: str = "a JSON body") -> Any:
    """A request body as JSON (NaN and Infinity refused); ``InvalidBody`` says what is wrong, never a 500."""
    if not body.strip():
        raise InvalidBody(f"required: {required}")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidBody("the JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidBody(f"not valid JSON: {exc}") from None
