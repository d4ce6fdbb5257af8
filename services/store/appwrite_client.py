"""The Appwrite SDK client with what a long-lived server process needs: timeouts and kept-alive connections.

SDK 27's ``Client.call`` sends every request through ``requests.request`` with no timeout (a stalled server
blocks the caller for ever) and a fresh TCP connection each time. This subclass keeps the SDK's services,
models and error type and changes only the transport: one ``requests.Session`` per thread, a timeout on
every request, and the server's ``x-appwrite-warning`` logged once instead of printed on every call.
Failures are raised as ``AppwriteException`` exactly as the SDK raises them (network failures with code 0).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import requests
import structlog
from appwrite.client import Client
from appwrite.encoders.value_class_encoder import ValueClassEncoder
from appwrite.exception import AppwriteException
from appwrite.query import Query

log = structlog.get_logger(__name__)


class TimeoutClient(Client):
    """``appwrite.client.Client`` with a per-request timeout and one pooled session per thread."""

    def __init__(self, timeout_seconds: float, *, keep_alive: bool = True) -> None:
        super().__init__()
        self.timeout_seconds = timeout_seconds
        self.keep_alive = keep_alive
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def _session(self) -> Any:
        if not self.keep_alive:
            return requests  # a new connection per request, as the SDK does
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()

    def call(self, method, path="", headers=None, params=None, response_type="json"):  # type: ignore[no-untyped-def]
        # Same request shape as the SDK: GET parameters flattened into the query string, JSON bodies otherwise.
        params = {key: Query._flatten(value) for key, value in (params or {}).items()}
        headers = {**self._global_headers, **(headers or {})}
        query: dict[str, Any] = {}
        body: str | None = None
        if method == "get":
            query = self.flatten(params)
        elif headers.get("content-type", "").startswith("application/json"):
            body = json.dumps(params, cls=ValueClassEncoder)
        else:
            # A programming error, not a network one: a non-zero code keeps the retry loop from retrying it.
            raise AppwriteException(
                f"TimeoutClient sends JSON bodies only, not {headers.get('content-type')!r}", 400, "client_usage"
            )
        try:
            response = self._session().request(
                method,
                self._endpoint + path,
                params=query,
                data=body,
                headers=headers,
                verify=not self._self_signed,
                timeout=self.timeout_seconds,
                allow_redirects=response_type != "location",
            )
        except requests.RequestException as exc:
            raise AppwriteException(f"{type(exc).__name__}: {exc}", 0) from exc
        self._note_warning(response.headers.get("x-appwrite-warning"))
        content_type = response.headers.get("Content-Type", "")
        if response.status_code >= 400:
            if content_type.startswith("application/json"):
                try:
                    error = response.json()
                except ValueError:
                    error = {"message": response.text}
                raise AppwriteException(
                    error.get("message", response.text), response.status_code, error.get("type"), response.text
                )
            raise AppwriteException(response.text, response.status_code, None, response.text)
        if response_type == "location":
            return response.headers.get("Location")
        if response_type == "text":
            return response.content.decode("utf-8")
        if content_type.startswith("application/json"):
            try:
                return response.json()
            except ValueError as exc:
                # A truncated answer is a lost answer: the request may have been executed.
                raise AppwriteException(f"invalid JSON in the answer: {exc}", 0) from exc
        if response.status_code != 204:
            # Appwrite answers JSON; anything else is a proxy in the way (a retryable 502, not a crash later).
            got = content_type or "no content type"
            raise AppwriteException(f"expected JSON, got {got!r}", 502, "unexpected_answer")
        return response.content

    def _note_warning(self, warning: str | None) -> None:
        if warning and warning not in self._warned:
            self._warned.add(warning)
            log.warning("appwrite_server_warning", warning=warning)


def get_json(client: Client, path: str, params: dict[str, Any] | None = None) -> Any:
    """A GET through any SDK client, answered as the server's JSON rather than parsed into the SDK's models.

    The headers are the ones the SDK's own services send (the project id travels per call in SDK 27).
    """
    headers = {"X-Appwrite-Project": client.get_config("project"), "accept": "application/json"}
    return client.call("get", path, headers, params or {})
