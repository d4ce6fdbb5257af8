"""The client distribution installs and runs without the server's dependencies: standard library only."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "client"

# Imports every module of the package in an isolated interpreter (-I: no user site, no environment; -S: no
# site-packages at all) with only client/ on the path, then reports any loaded module outside the standard library.
PROBE = """
import json, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import ai_usage_client
for module in pkgutil.walk_packages(ai_usage_client.__path__, "ai_usage_client."):
    __import__(module.name)
from ai_usage_client import UsageClient
from ai_usage_client.cli import main
foreign = sorted(
    name for name in sys.modules
    if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] not in ("ai_usage_client", "__main__")
)
print(json.dumps(foreign))
"""


def test_every_client_module_imports_with_the_standard_library_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(CLIENT)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_distribution_declares_no_dependencies_and_the_dead_letters_command() -> None:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == []
    assert project["scripts"] == {"ai-usage-client": "ai_usage_client.cli:main"}
    installed = importlib.metadata.distribution("ai-usage-client")  # as scripts/bootstrap installs it
    assert installed.requires in (None, [])
    assert [(ep.name, ep.value) for ep in installed.entry_points.select(group="console_scripts")] == [
        ("ai-usage-client", "ai_usage_client.cli:main")
    ]


def test_the_console_command_runs(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("ai-usage-client")
    done = subprocess.run([str(command), "dead-letters", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "retry" in done.stdout and "purge" in done.stdout
