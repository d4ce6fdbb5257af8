"""``ai-usage serve`` as a user runs it: a subprocess on a free port, the printed URL and key, real requests."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from services.cli import cli
from services.cli.serve_command import ensure_api_key
from services.settings import Settings

AI_USAGE = str(Path(sys.executable).with_name("ai-usage"))
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, printed: list[str]) -> None:
        self.process = process
        self.url = url
        self.printed = printed

    @property
    def printed_key(self) -> str | None:
        found = [re.search(r"^API key: (\S+)$", line) for line in self.printed]
        keys = [match[1] for match in found if match and not match[1].startswith("read")]
        return keys[0] if keys else None


def _environment(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_USAGE_", "APPWRITE_"))}
    env.update(AI_USAGE_DB_PATH=str(data / "usage.db"), AI_USAGE_LOG_FORMAT="json", **extra)
    return env


@contextmanager
def serve(
    data: Path,
    *args: str,
    command: tuple[str, ...] = (AI_USAGE, "serve"),
    stop: signal.Signals = signal.SIGTERM,
    **env: str,
) -> Iterator[Served]:
    """Start ``ai-usage serve`` (or ``command``), wait for the line that says where it listens; ``stop`` it after."""
    log = (data / "server.log").open("a")
    process = subprocess.Popen(
        [*command, *args], stdout=subprocess.PIPE, stderr=log, text=True, env=_environment(data, **env), cwd=ROOT
    )
    printed: list[str] = []
    try:
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while url is None and time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = process.stdout.readline()
                assert line, f"serve exited early: {printed}, see {data / 'server.log'}"
                printed.append(line.rstrip("\n"))
                if match := re.search(r"Listening on (http://\S+)", line):
                    url = match[1]
        assert url is not None, f"serve printed no URL in {START_TIMEOUT}s: {printed}"
        yield Served(process, url, printed)
    finally:
        process.send_signal(stop)
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    assert process.returncode == 0, (data / "server.log").read_text()


def _bootstrapped() -> bool:
    """True when scripts/bootstrap would install nothing (scripts/test has run it, as in CI)."""
    stamp = ROOT / ".venv" / ".installed"
    return stamp.exists() and stamp.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime


COMMANDS = [
    pytest.param((AI_USAGE, "serve"), id="ai-usage serve"),
    pytest.param(
        (str(ROOT / "scripts" / "serve"),),
        id="scripts/serve",
        marks=pytest.mark.skipif(not _bootstrapped(), reason="scripts/bootstrap has not run: it would install"),
    ),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_readme_run_command_serves_every_route_with_a_generated_key(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    with serve(tmp_path, "--port", "0", command=command) as served:
        key = served.printed_key
        assert key is not None, served.printed
        auth = {"Authorization": f"Bearer {key}"}
        event = {"user_id": "p1", "model": "gpt-4o", "tokens_input": 1000, "tokens_output": 500, "request_id": "r1"}

        logged = requests.post(f"{served.url}/v1/usage", json=event, headers=auth, timeout=10)
        again = requests.post(f"{served.url}/v1/usage", json=event, headers=auth, timeout=10)
        count = requests.get(f"{served.url}/v1/users/p1/requests/today", headers=auth, timeout=10)
        daily = requests.get(f"{served.url}/v1/users/p1/usage/daily", headers=auth, timeout=10)
        health = requests.get(f"{served.url}/healthz", timeout=10)
        anonymous = requests.get(f"{served.url}/v1/users/p1/usage/daily", timeout=10)

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", served.url) and not served.url.endswith(":0")
    assert (logged.status_code, again.status_code) == (201, 200)
    assert count.json()["count"] == 1
    assert daily.json()["estimated_cost_exact"] == "0.007500000"
    assert health.json() == {"status": "ok", "store": "reachable"}
    assert anonymous.status_code == 401
    key_file = tmp_path / "api-key"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key not in (tmp_path / "server.log").read_text()  # printed once on stdout, never logged


def test_a_restart_keeps_the_key_and_the_data_and_does_not_print_the_key_again(tmp_path: Path) -> None:
    with serve(tmp_path, "--port", "0") as first:
        key = first.printed_key
        auth = {"Authorization": f"Bearer {key}"}
        requests.post(f"{first.url}/v1/usage", json={"user_id": "p2", "model": "gpt-4o"}, headers=auth, timeout=10)

    with serve(tmp_path, AI_USAGE_PORT="0") as second:  # the port from the environment this time
        count = requests.get(f"{second.url}/v1/users/p2/requests/today", headers=auth, timeout=10)

    assert second.printed_key is None
    assert all(key not in line for line in second.printed)
    assert count.json()["count"] == 1


def test_a_configured_key_is_used_and_nothing_is_generated(tmp_path: Path) -> None:
    with serve(tmp_path, "--port", "0", AI_USAGE_API_KEY="configured-key-123") as served:
        ok = requests.get(f"{served.url}/v1/prices", headers={"Authorization": "Bearer configured-key-123"}, timeout=10)

    assert ok.status_code == 200
    assert served.printed_key is None
    assert not (tmp_path / "api-key").exists()


def test_help_names_the_options_and_their_environment_variables() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])

    assert result.exit_code == 0
    for text in ("--host", "AI_USAGE_HOST", "127.0.0.1", "--port", "AI_USAGE_PORT", "8080"):
        assert text in result.output


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_right_after_start_stops_every_worker_gracefully(tmp_path: Path, stop: signal.Signals) -> None:
    # Sent at once, while the workers may still be opening the store: none may ignore it and have to be killed.
    with serve(tmp_path, "--port", "0", "--workers", "2", stop=stop, AI_USAGE_API_KEY="configured-key-123"):
        pass

    assert "worker_killed" not in (tmp_path / "server.log").read_text()


@pytest.mark.parametrize(("path", "declared"), [("/v1/usage", 100 * 2**20), ("/v1/usage/batch", 100 * 2**20)])
def test_a_body_over_the_limit_is_refused_on_its_declared_size_before_it_is_sent(
    tmp_path: Path, path: str, declared: int
) -> None:
    with serve(tmp_path, "--port", "0", AI_USAGE_API_KEY="configured-key-123") as served:
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer configured-key-123\r\n"
                f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{{".encode()
            )
            answer = sock.recv(65536)  # the server must answer without waiting for the other 100 MiB

    assert answer.startswith(b"HTTP/1.1 413 ")


def test_an_http_variable_in_the_servers_environment_is_not_read_as_a_request_header(tmp_path: Path) -> None:
    # granian starts each WSGI environ from the process environment, where HTTP_* keys look like headers.
    key = "configured-key-123"
    with serve(tmp_path, "--port", "0", AI_USAGE_API_KEY=key, HTTP_AUTHORIZATION=f"Bearer {key}") as served:
        anonymous = requests.get(f"{served.url}/v1/prices", timeout=10)

    assert anonymous.status_code == 401


# -- the key file: only one the server's user made and keeps private is used (issue 8, point 6) ----------------------
def _settings(data: Path) -> Settings:
    return Settings(db_path=data / "usage.db", api_key=None)


def _plant_key(data: Path, mode: int = 0o600) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    path = data / "api-key"
    path.write_text("planted-key-0123456789\n")
    path.chmod(mode)
    return path


def test_a_generated_key_is_kept_in_a_data_directory_made_private(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"

    settings, generated = ensure_api_key(_settings(data))

    assert generated is not None and settings.api_key is not None
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "api-key").stat().st_mode) == 0o600


def test_a_private_key_file_of_this_user_is_read(tmp_path: Path) -> None:
    _plant_key(tmp_path)

    settings, generated = ensure_api_key(_settings(tmp_path))

    assert generated is None
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "planted-key-0123456789"


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-key", "dangling"])
def test_a_key_file_that_is_a_symlink_is_refused_naming_it(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "elsewhere"
    if not dangling:
        target.write_text("planted-key-0123456789\n")
        target.chmod(0o600)
    (tmp_path / "api-key").symlink_to(target)

    with pytest.raises(click.ClickException, match="symbolic link") as refused:
        ensure_api_key(_settings(tmp_path))

    assert str(tmp_path / "api-key") in refused.value.message
    assert not target.exists() or target.read_text() == "planted-key-0123456789\n"  # never written through


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o610, 0o666])
def test_a_key_file_others_may_read_or_write_is_refused_naming_it(tmp_path: Path, mode: int) -> None:
    path = _plant_key(tmp_path, mode)

    with pytest.raises(click.ClickException, match="group or others") as refused:
        ensure_api_key(_settings(tmp_path))

    assert str(path) in refused.value.message and f"{mode:04o}" in refused.value.message


def test_a_key_file_owned_by_another_user_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _plant_key(tmp_path)
    if os.geteuid() == 0:
        os.chown(path, 4242, 4242)  # root can give it to another user for real
    else:  # anyone else cannot: look at it as a different user would
        real = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: real + 1)

    with pytest.raises(click.ClickException, match="not by this user") as refused:
        ensure_api_key(_settings(tmp_path))

    assert str(path) in refused.value.message


def test_serve_refuses_a_planted_key_and_says_which_file(tmp_path: Path) -> None:
    path = _plant_key(tmp_path, 0o644)

    result = CliRunner().invoke(
        cli, ["serve", "--port", "0"], env={"AI_USAGE_DB_PATH": str(tmp_path / "usage.db"), "AI_USAGE_API_KEY": None}
    )

    assert result.exit_code == 1
    assert str(path) in result.output and "0644" in result.output
