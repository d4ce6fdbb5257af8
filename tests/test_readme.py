"""The README is the front door: it must name every command and every setting the code has."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from services.cli import cli
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _command_paths(group: click.Group, prefix: str = "ai-usage") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_cli_command_is_documented() -> None:
    missing = [path for path in _command_paths(cli) if f"`{path}" not in README]
    assert missing == []


def test_every_setting_is_in_the_configuration_table() -> None:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)`", table, flags=re.MULTILINE))
    expected = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        expected.add(alias.choices[0] if alias is not None else f"AI_USAGE_{name.upper()}")
    assert expected == documented


def test_the_two_quick_start_commands_exist_and_ci_runs_the_test_one() -> None:
    for script in ("scripts/serve", "scripts/test"):
        assert f"{script} " in README
        assert os.access(ROOT / script, os.X_OK)
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_usage_kind_is_in_the_readmes_table_of_kinds() -> None:
    from models.usage_kinds import USAGE_KINDS

    table = README.split("### Usage kinds", 1)[1].split("\n#", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9_]+)`", table, flags=re.MULTILINE)
    assert documented == [kind.name for kind in USAGE_KINDS]
