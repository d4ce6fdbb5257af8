"""``ai-usage serve``: every route on one port, on the configured store (SQLite by default), under granian.

It serves the routes of the functions-framework ``all_routes`` target through the same request reading, as a
plain WSGI app: Flask's per-request cost was a third of a request's time, and this is the throughput path.
granian (a Rust HTTP server) reads and parses requests off the Python threads, so a client that sends its
headers slowly holds a Rust task, not a worker thread (under gunicorn's gthread workers 12 such clients stopped
the server), and on 2 cores it answers this app's GETs about twice as fast as gunicorn did and a constant WSGI
app five times as fast (benchmarks/RESULTS.md).

The server never runs open: without ``AI_USAGE_API_KEY`` a key is generated once, kept beside the database
(mode 0600, in a directory made 0700) and printed the first time; a key file that another user could have
planted or read is refused. Workers are forked after the store is migrated; each builds its own app (and
SQLite connections) on start.
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import structlog
from pydantic import SecretStr

from services.log_config import configure_logging
from services.settings import Settings

KEY_FILE_NAME = "api-key"
# Measured on 2 cores (benchmarks/http_bench.py): one process per core.
DEFAULT_WORKERS = min(os.cpu_count() or 1, 4)
# Threads per worker. Ingest requests wait on SQLite's one writer lock without using the CPU; with 2 threads a
# worker's threads were all such waiters under heavy ingest and the rate limiter's count queued behind them for up
# to 1.5 s, with 8 it never waited more than 221 ms (benchmarks/RESULTS.md, "count under ingest").
DEFAULT_THREADS = 8
# A client gets this long to send a request's headers (and an idle keep-alive connection to start its next
# request); past it the connection is closed. It costs a waiting client nothing else.
HEADER_READ_TIMEOUT_MS = 10_000
BACKLOG = 1024
# Seconds a worker gets to finish its requests after SIGTERM/SIGINT before it is killed.
GRACEFUL_TIMEOUT = 10
STOP_REPEAT_SECONDS = 0.5

log = structlog.get_logger("ai_usage.serve")


def key_file(settings: Settings) -> Path:
    """Where a generated server key is kept: the data directory, beside the SQLite file."""
    return Path(settings.db_path).parent / KEY_FILE_NAME


def _read_private_key(path: Path) -> str:
    """The key in ``path``, refused unless it is a regular file of this user that no one else may read or write.

    A key another user planted (in a shared or world-writable directory) would let them call the server; one
    others can read is no secret. O_NOFOLLOW refuses a symlink, and the checks are made on the opened file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise click.ClickException(f"{path} is a symbolic link; the server key must be a regular file") from None
        raise click.ClickException(f"{path} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise click.ClickException(f"{path} is not a regular file; the server key must be one")
        if info.st_uid != os.geteuid():
            raise click.ClickException(
                f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}); the server key "
                "must belong to the user that runs the server"
            )
        if info.st_mode & 0o077:
            raise click.ClickException(
                f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; the server key must not be readable or "
                f"writable by group or others (chmod 600 {path})"
            )
        key = handle.read().decode("utf-8", "replace").strip()
    if not key:
        raise click.ClickException(f"{path} is empty; delete it to generate a new key")
    return key


def ensure_api_key(settings: Settings) -> tuple[Settings, str | None]:
    """Settings with a server key, and the key itself when it was generated just now (to print it once)."""
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings, None
    path = key_file(settings)
    generated = None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # 0700 when made here; an existing one is kept
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # also a symlink, dangling or not: O_EXCL never follows one
        key = _read_private_key(path)
    else:
        key = generated = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
    return settings.model_copy(update={"api_key": SecretStr(key)}), generated


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that port 0 is resolved once, printed, and shared by every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {_url(host, port)}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _worker_loader(wsgi_app: Callable[..., Any]) -> Callable[[], Callable[..., Any]]:
    """What each granian worker runs after the fork, before it serves: returns the WSGI app."""

    def load() -> Callable[..., Any]:
        from functions.http_api import PROCESS_APP

        try:
            PROCESS_APP.get()  # open the store in the worker now, so the first request is not the slow one
        except Exception:  # each request retries and answers a logged 500, as before the warm-up
            log.exception("http.app_unavailable")
        # granian starts every WSGI environ from the copy of os.environ it takes when this returns: an HTTP_*
        # variable of the server's own environment would read as a request header (an Authorization, say) on
        # requests that lack it. Hide them from that copy and put them back at the first request (HTTP_PROXY
        # is still wanted by the Appwrite client).
        hidden = {name: os.environ.pop(name) for name in [name for name in os.environ if name.startswith("HTTP_")]}
        if not hidden:
            return wsgi_app

        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if hidden:
                os.environ.update(hidden)
                hidden.clear()
            return wsgi_app(environ, start_response)

        return application

    return load


def _granian_server(listener: socket.socket, workers: int, threads: int) -> Any:
    from granian._granian import SocketHolder
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server.mp import MPServer

    class Server(MPServer):  # type: ignore[misc]
        # granian binds its own listener per worker with SO_REUSEPORT on Linux, so port 0 would give each
        # worker a different port; hand it the socket bound here instead, as it does on other platforms.
        def _init_shared_socket(self) -> None:
            self._ssp = None
            self._shd = SocketHolder(listener.fileno(), False, BACKLOG)
            self._sfd = listener.fileno()
            self._sso = listener

        # granian signals each worker once. A worker that gets it while it starts (it still has the main
        # process's handlers, or has just installed its own and not yet begun to serve) loses it and serves on
        # until killed, as happened when the server was stopped right after it started. Repeat the signal until
        # the worker is gone; a worker already stopping just takes it again.
        def _stop_workers(self) -> None:
            deadline = time.monotonic() + GRACEFUL_TIMEOUT
            for worker in self.wrks:
                worker.terminate()
            for worker in self.wrks:
                while worker.is_alive() and time.monotonic() < deadline:
                    worker.join(STOP_REPEAT_SECONDS)
                    if worker.is_alive():
                        worker.terminate()
                if worker.is_alive():
                    log.warning("http.worker_killed", worker=worker.idx + 1, after_seconds=GRACEFUL_TIMEOUT)
                    worker.kill()
                    worker.join()
            self.wrks.clear()

    host, port = listener.getsockname()[:2]
    stderr = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return Server(
        "ai-usage serve",  # a label: the app comes from the loader given to serve()
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,  # the Python threads that run the app, per worker
        backlog=BACKLOG,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS),
        log_level=LogLevels.warning,
        # granian logs to stdout by default; stdout is for the URL and key lines, the log goes to stderr
        log_dictconfig={
            "handlers": {"console": {**stderr, "formatter": "generic"}, "access": {**stderr, "formatter": "access"}}
        },
    )


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
    default=DEFAULT_THREADS,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Python threads per worker running requests (writes waiting on the store's lock hold one each).",
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
    listener = _listen(host, port)
    server = _granian_server(listener, workers, threads)
    url = _url(host, listener.getsockname()[1])
    # Said once granian handles SIGTERM/SIGINT (its start-up hooks run after that, before the workers are forked):
    # whoever reads the line may stop the server at once. Connections made until a worker is up wait in the backlog.
    server.on_startup(lambda: click.echo(f"Listening on {url}"))  # click.echo flushes: a parent process reads it now
    server.serve(target_loader=_worker_loader(make_wsgi_app()), wrap_loader=False)


commands: list[click.Command] = [serve]
