"""HTTP surface: parse requests, authenticate, apply faults, dispatch, answer like Appwrite."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import routes
from .engine import Engine, Reply, Request
from .errors import AppwriteError
from .faults import Fault, FaultSchedule
from .versions import ServerVersion, row_output, sdk_warning

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
# app/http.php (1.9.6): `$payloadSize = 12 * (1024 * 1024)` is Swoole's `package_max_length`. Swoole answers a request
# whose header length + Content-Length passes it with a bare "413 Request Entity Too Large" (no body) and closes the
# connection (swoole-src src/server/port.cc ListenPort::readable_callback_http, `goto _too_large`); nothing runs.
PAYLOAD_MAX = 12 * 1024 * 1024
_COMMIT_PATH = re.compile(r"/v1/tablesdb/transactions/(?P<tx>[^/]+)")
_FAULT_ERRORS = {
    # appwrite-facts §2.2: 429 general_rate_limit_exceeded; the 5xx answers stand in for a failing server.
    "status_429": AppwriteError(
        "general_rate_limit_exceeded",
        "Rate limit for the current endpoint has been exceeded. Please try again after some time.",
    ),
    "status_503": AppwriteError("general_server_error", "Service unavailable (fault injected by the double)", 503),
    "status_500": AppwriteError("general_unknown", "Server Error", 500),
}


class App:
    """Everything one running double needs to answer a request."""

    def __init__(self, engine: Engine, project_id: str, api_key: str, *, sdk_warning: bool = True) -> None:
        self.engine, self.project_id, self.api_key = engine, project_id, api_key
        self.version: ServerVersion = engine.version
        self.sdk_warning = sdk_warning
        self.faults = FaultSchedule()
        self.counter_lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []

    def count(self, method: str, path: str) -> None:
        with self.counter_lock:
            self.requests.append((method, path))

    def authenticate(self, headers: Any) -> None:
        key = headers.get("X-Appwrite-Key")
        if not key:
            # appwrite-facts §2.2/§4.4: without a key the caller is a guest lacking the scope → 401.
            raise AppwriteError("general_unauthorized_scope", 'app.guest (role: guests) missing scopes (["rows.read"])')
        if headers.get("X-Appwrite-Project") != self.project_id or key != self.api_key:
            # (inferred) a key that is not this project's key is refused as unauthorized.
            raise AppwriteError(
                "user_unauthorized", "The current user is not authorized to perform the requested action."
            )

    def error_body(self, exc: AppwriteError) -> dict[str, Any]:
        return exc.body(self.version.version)

    def warning(self, headers: Any) -> str | None:
        """X-Appwrite-Warning for this request (versions.sdk_warning), unless turned off."""
        return sdk_warning(headers.get("X-Appwrite-Response-Format"), self.version) if self.sdk_warning else None

    def dispatch(self, method: str, path: str, headers: Any, params: Any) -> Reply:
        try:
            found = (
                routes.resolve(method, path[len(API_PREFIX) :], self.version.column_kinds)
                if path.startswith(API_PREFIX + "/")
                else None
            )
            if found is None:
                # appwrite-facts §2.1: an unknown route is 404 general_route_not_found.
                raise AppwriteError(
                    "general_route_not_found",
                    "The requested route was not found. Please refer to the API docs and try again.",
                )
            handler, args = found
            if handler not in routes.PUBLIC:
                self.authenticate(headers)
            if isinstance(params, AppwriteError):
                raise params
            timestamp = request_timestamp(headers)
            with self.engine.lock:
                status, body = handler(self.engine, Request(method, path, args, params, timestamp))
            return status, row_output(body, self.version)
        except AppwriteError as exc:
            return exc.code, self.error_body(exc)
        except Exception as exc:  # never let a bug hang the client: answer 500 and keep the cause
            log.exception("TablesDB double failed on %s %s", method, path)
            body = self.error_body(AppwriteError("general_unknown", "Server Error"))
            body["trace"] = f"{type(exc).__name__}: {exc}"  # as Appwrite's development mode adds
            return 500, body


def request_timestamp(headers: Any) -> datetime | None:
    """``X-Appwrite-Timestamp`` as Appwrite reads it (app/init/resources.php ``requestTimestamp``: ``new DateTime``
    of the header; one it cannot parse is 400 general_argument_invalid). A zone-less value is UTC, the server's."""
    value = headers.get("X-Appwrite-Timestamp") if headers is not None else None
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AppwriteError("general_argument_invalid", "Invalid X-Appwrite-Timestamp header value") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`queries[0]=…&total=false` → {"queries": {"0": …}, "total": "false"} (appwrite-facts §1)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"\[([^\]]*)\]", key)
        head = key.split("[", 1)[0]
        node = out
        for name in [head, *parts][:-1]:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                break
        else:
            node[([head, *parts])[-1]] = value
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would stall keep-alive
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read request_count instead
        return

    def do_GET(self) -> None:
        try:
            self._handle()
        except Exception as exc:  # a bug outside dispatch: still answer, never leave the client hanging
            log.exception("TablesDB double failed before dispatch on %s %s", self.command, self.path)
            body = self.server.app.error_body(AppwriteError("general_unknown", "Server Error"))
            body["trace"] = f"{type(exc).__name__}: {exc}"
            self.close_connection = True
            self._send(500, body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _params(self, method: str, query: str, body: bytes) -> Any:
        if method == "GET":
            return _unflatten(parse_qsl(query, keep_blank_values=True))
        if not body.strip():
            return {}
        try:
            params = json.loads(body)
        except ValueError:
            return AppwriteError("general_argument_invalid", "Request body is not valid JSON")
        return (
            params
            if isinstance(params, dict)
            else AppwriteError("general_argument_invalid", "Request body must be a JSON object")
        )

    def _handle(self) -> None:
        app = self.server.app
        method = self.command.upper()
        split = urlsplit(self.path)
        path = unquote(split.path)
        length = int(self.headers.get("Content-Length") or 0)
        if self._header_length() + length > PAYLOAD_MAX:
            app.count(method, path)
            self._too_large(length)
            return
        body = self.rfile.read(length)
        app.count(method, path)
        params = self._params(method, split.query, body)
        commit = _COMMIT_PATH.fullmatch(path)
        is_commit = bool(
            method == "PATCH" and commit and isinstance(params, dict) and params.get("commit") in (True, "true")
        )
        fault = app.faults.take(method, path, is_commit=is_commit)
        if fault is not None and self._fault(app, fault, commit.group("tx") if commit else ""):
            return
        status, reply = app.dispatch(method, path, self.headers, params)
        if fault is not None and fault.kind == "lost_answer":
            self._drop()  # the write happened; its answer is lost (appwrite-facts §8)
            return
        self._send(status, reply)

    def _header_length(self) -> int:
        """The request line and headers as received (what Swoole counts with the body)."""
        return len(self.raw_requestline) + sum(len(f"{k}: {v}\r\n") for k, v in self.headers.items()) + 2

    def _too_large(self, length: int) -> None:
        # Swoole answers on the headers alone; a client still sending may see its connection reset instead. The
        # double reads the body first so that every client sees the 413 (a store must never send such a body).
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.write(b"HTTP/1.1 413 Request Entity Too Large\r\n\r\n")
            self.wfile.flush()

    def _fault(self, app: App, fault: Fault, tx_id: str) -> bool:
        """Apply a fault; True when the request is fully handled by it."""
        if fault.kind in _FAULT_ERRORS:
            error = _FAULT_ERRORS[fault.kind]
            self._send(error.code, app.error_body(error))
            return True
        if fault.kind == "drop":
            self._drop()
            return True
        if fault.kind == "slow":
            time.sleep(fault.delay)
        if fault.kind == "conflict":
            try:
                with app.engine.lock:
                    app.engine.transactions.conflict(tx_id)
            except AppwriteError as exc:
                self._send(exc.code, app.error_body(exc))
            return True
        if fault.kind == "late_commit":
            try:
                with app.engine.lock:
                    app.engine.transactions.commit_later(tx_id)
            except AppwriteError as exc:
                self._send(exc.code, app.error_body(exc))
                return True
            timer = threading.Timer(fault.delay, self._land, (app, tx_id))
            timer.daemon = True
            timer.start()
            self._drop()
            return True
        return False

    @staticmethod
    def _land(app: App, tx_id: str) -> None:
        with app.engine.lock:
            app.engine.transactions.land_late(tx_id)

    def _drop(self) -> None:
        """Close the connection without answering, so the client's read fails at once."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def _send(self, status: int, reply: Any) -> None:
        try:
            self.send_response(status)
            warning = self.server.app.warning(self.headers)
            if warning is not None:
                # general.php @1.8.1 L1089-1090 / @1.9.6 L968-970: sent on every answer, errors included.
                self.send_header("X-Appwrite-Warning", warning)
            if reply is None:
                # appwrite-facts §2.1: SDK 27 needs a non-JSON Content-Type on an empty 204.
                self.send_header("Content-Type", "text/plain")
                payload = b""
            else:
                # appwrite-facts §2.1: errors and models are sent as application/json.
                self.send_header("Content-Type", "application/json")
                payload = json.dumps(reply).encode()
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client went away; nothing left to tell it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: App) -> None:
        self.app = app
        super().__init__(("127.0.0.1", 0), _Handler)


def serve(app: App) -> tuple[_Server, threading.Thread]:
    server = _Server(app)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="tablesdb-double", daemon=True
    )
    thread.start()
    return server, thread
