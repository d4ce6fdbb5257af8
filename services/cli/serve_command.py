"""``ai-usage serve``: every route on one port, on the configured store (SQLite by default), under gunicorn.

It serves the routes of the functions-framework ``all_routes`` target through the same request reading, as a
plain WSGI app: Flask's per-request cost was a third of a request's time, and this is the throughput path.
The server never runs open: without ``AI_USAGE_API_KEY`` a key is generated once, kept beside the database
(mode 0600) and printed the first time. Workers are forked after the store is migrated; each builds its own app
(and SQLite connections) on start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from services.log_config import configure_logging
from services.settings import Settings

KEY_FILE_NAME = "api-key"
# Measured on 2 cores (benchmarks/http_bench.py): one process per core; a third or fourth thread per worker
# lowered throughput and raised p99, because the work is CPU-bound under the GIL.
DEFAULT_WORKERS = min(os.cpu_count() or 1, 4)


def key_file(settings: Settings) -> Path:
    """Where a generated server key is kept: the data directory, beside the SQLite file."""
    return Path(settings.db_path).parent / KEY_FILE_NAME


def ensure_api_key(settings: Settings) -> tuple[Settings, str | None]:
    """Settings with a server key, and the key itself when it was generated just now (to print it once)."""
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings, None
    path = key_file(settings)
    generated = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise click.ClickException(f"{path} is empty; delete it to generate a new key") from None
    else:
        key = generated = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
    return settings.model_copy(update={"api_key": SecretStr(key)}), generated


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _gunicorn_server(wsgi_app: Any, options: dict[str, Any]) -> Any:
    import gunicorn.app.base

    class Server(gunicorn.app.base.BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return wsgi_app

    return Server()


def _when_ready(host: str) -> Any:
    def when_ready(server: Any) -> None:
        port = server.LISTENERS[0].sock.getsockname()[1]
        click.echo(f"Listening on {_url(host, port)}")  # click.echo flushes: a parent process can read it now

    return when_ready


def _post_fork(server: Any, worker: Any) -> None:
    from functions.http_api import PROCESS_APP

    PROCESS_APP.get()  # open the store in the worker now, so the first request is not the slow one


@click.command("serve")
@click.option(
    "--host",
    envvar="AI_USAGE_HOST",
    default="127.0.0.1",
    show_default=True,
    show_envvar=True,
    help="Interface to listen on.",
)
@click.option(
    "--port",
    envvar="AI_USAGE_PORT",
    default=8080,
    show_default=True,
    show_envvar=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--workers",
    default=DEFAULT_WORKERS,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes, each with its own store connections (default: the CPUs, at most 4).",
)
@click.option(
    "--threads",
    default=2,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker; more mostly add contention for Python's GIL.",
)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve every HTTP route (those of the functions-framework ``all_routes`` target) on one port."""
    from functions.http_api import PROCESS_APP, ApiApp
    from functions.wsgi_app import make_wsgi_app
    from services.store import open_store

    settings, generated = ensure_api_key(Settings().model_copy(update={"host": host, "port": port}))
    configure_logging(settings.log_format, settings.log_level)
    open_store(settings).close()  # create or migrate the store once, before any worker is forked
    PROCESS_APP.configure(lambda: ApiApp.from_settings(settings))
    if generated:
        click.echo(f"Generated API key (kept in {key_file(settings)}; send it as 'Authorization: Bearer <key>'):")
        click.echo(f"API key: {generated}")
    elif settings.api_key is not None and os.environ.get("AI_USAGE_API_KEY") is None:
        click.echo(f"API key: read from {key_file(settings)}")
    store = "Appwrite" if settings.uses_appwrite else f"SQLite {Path(settings.db_path).resolve()}"
    click.echo(f"Store: {store}")
    wsgi_app = make_wsgi_app()
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "keepalive": 5,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": None,  # dispatch logs one structured line per request instead
        "errorlog": "-",
        "loglevel": "warning",
        "control_socket_disable": True,
        "when_ready": _when_ready(host),
        "post_fork": _post_fork,
    }
    _gunicorn_server(wsgi_app, options).run()


commands: list[click.Command] = [serve]
