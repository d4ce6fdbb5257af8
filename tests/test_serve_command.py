"""``ai-usage serve`` as a user runs it: a subprocess on a free port, the printed URL and key, real requests."""

from __future__ import annotations

import os
import re
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from services.cli import cli

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
def serve(data: Path, *args: str, command: tuple[str, ...] = (AI_USAGE, "serve"), **env: str) -> Iterator[Served]:
    """Start ``ai-usage serve`` (or ``command``) and wait for the line that says where it listens."""
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
        process.send_signal(signal.SIGTERM)
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
