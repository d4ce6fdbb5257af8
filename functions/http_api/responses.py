"""What a handler answers: a status, a JSON body and headers, rendered by each adapter in its own way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

JSON_CONTENT_TYPE = "application/json"
CORRELATION_HEADER = "X-Correlation-Id"  # on every answer; errors also carry it in the body


@dataclass
class ApiResponse:
    """``payload`` is a pydantic model or plain JSON data; money inside it is already a number plus a string.

    A page or a file answers with ``body`` (its bytes) and its ``content_type`` instead; an export streams
    ``chunks``, which an adapter that can stream (WSGI) sends as they come, and others join."""

    status: int
    payload: BaseModel | dict[str, Any] | list[Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # set by ``render``, or given
    content_type: str = JSON_CONTENT_TYPE
    chunks: Iterator[bytes] | None = None

    @property
    def is_json(self) -> bool:
        return self.content_type == JSON_CONTENT_TYPE

    def render(self) -> bytes:
        """Serialise the body once (``dispatch`` does it inside its error handling); raises if it cannot be."""
        if self.chunks is not None:
            return b""  # sent by the adapter as it streams
        if self.body is None:
            if isinstance(self.payload, BaseModel):
                self.body = self.payload.model_dump_json().encode()
            else:
                self.body = json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False).encode()
        return self.body

    def json_data(self) -> Any:
        """The body as plain JSON data (dicts, lists, strings, numbers), e.g. for Appwrite's ``res.json``.

        Read back from the rendered bytes, so what a runtime serialises again is known to serialise.
        """
        return json.loads(self.render())

    def json_bytes(self) -> bytes:
        """The body as UTF-8 JSON, e.g. for a WSGI response."""
        return self.render()

    def whole_body(self) -> bytes:
        """Every byte of the answer at once, for a runtime that cannot stream (Appwrite, functions-framework)."""
        if self.chunks is None:
            return self.render()
        return b"".join(self.chunks)
