"""Commands of this area (being written)."""

from __future__ import annotations

import click

commands: list[click.Command] = []
