"""TablesDBDouble: start, observe, fault and stop one local strict TablesDB server."""

from __future__ import annotations

import copy
import threading
from types import TracebackType
from typing import Any

from .engine import Engine
from .faults import Fault
from .http_app import App, serve
from .rows import to_wire
from .versions import lookup_version, row_output


class TablesDBDouble:
    """A strict local Appwrite TablesDB server for tests (see appwrite-facts §1-3 and §8).

    case_insensitive_ids: mirror MariaDB's utf8mb4_general_ci collation for row ids, unique
    indexes and string comparisons in queries (appwrite-facts §3.2, last bullet).
    column_ready_after: seconds a column or index created on its own stays `processing`.
    server_version: the Appwrite server mirrored, "1.9.6" (default) or "1.8.1"; versions.py lists what
    differs (no varchar/text/bigint column routes, no inline create_table schema, integer `$sequence`,
    no list_rows `ttl` in 1.8.1).
    sdk_warning: answer `X-Appwrite-Warning` when the client's X-Appwrite-Response-Format is newer than
    the server version, as Appwrite does (SDK 27 sends 2.5.0 and prints the warning to stderr).
    """

    def __init__(
        self,
        project_id: str = "test-project",
        api_key: str = "test-key",
        case_insensitive_ids: bool = True,
        column_ready_after: float = 0.05,
        server_version: str = "1.9.6",
        sdk_warning: bool = True,
    ) -> None:
        self.project_id = project_id
        self.api_key = api_key
        self._version = lookup_version(server_version)
        self.server_version = self._version.version
        self.engine = Engine(
            case_insensitive=case_insensitive_ids, column_ready_after=column_ready_after, version=self._version
        )
        self._app = App(self.engine, project_id, api_key, sdk_warning=sdk_warning)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> TablesDBDouble:
        if self._server is None:
            self._server, self._thread = serve(self._app)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> TablesDBDouble:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def snapshot(self) -> Any:
        """The databases as they are now (schema and rows), for ``restore`` into another double: provisioning one
        costs ~220 requests (1.4 s), and most tests need the same provisioned project."""
        with self.engine.lock:
            return copy.deepcopy(self.engine.catalog.databases)

    def restore(self, databases: Any) -> None:
        with self.engine.lock:
            self.engine.catalog.databases = copy.deepcopy(databases)

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the double is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def request_count(self) -> int:
        with self._app.counter_lock:
            return len(self._app.requests)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request since the last reset_counts(), faulted ones included."""
        with self._app.counter_lock:
            return list(self._app.requests)

    def reset_counts(self) -> None:
        with self._app.counter_lock:
            self._app.requests.clear()

    def inject(self, fault: Fault) -> None:
        self._app.faults.add(fault)

    def clear_faults(self) -> None:
        self._app.faults.clear()

    def rows(self, database_id: str, table_id: str) -> list[dict[str, Any]]:
        """Committed rows of a table in `$sequence` order, in wire format."""
        with self.engine.lock:
            table = self.engine.catalog.table(database_id, table_id)
            columns = table.visible_columns(self.engine.clock.time())
            return [row_output(to_wire(table, row, columns), self._version) for row in table.rows.all()]

    def fail_column(self, database_id: str, table_id: str, key: str, error: str = "worker failed") -> None:
        """Put a column into `failed`, as Appwrite's worker does when it cannot build it (appwrite-facts §1.1)."""
        with self.engine.lock:
            table = self.engine.catalog.table(database_id, table_id)
            table.columns[key].failed = error

    def advance_clock(self, seconds: float) -> None:
        """Move the double's clock forward (transaction expiry, timestamps, column readiness)."""
        self.engine.clock.advance(seconds)
