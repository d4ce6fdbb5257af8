"""``ai-usage``: a thin command line over the service. Each command module contributes its commands."""

from __future__ import annotations

import importlib

import click

# Each module defines ``commands: list[click.Command]``; one module per area keeps them small.
COMMAND_MODULES = (
    "services.cli.ledger_commands",
    "services.cli.tenant_commands",
    "services.cli.stats_command",
    "services.cli.rollups_command",
    "services.cli.alerts_command",
    "services.cli.serve_command",
    "services.cli.appwrite_commands",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Log, price and summarise AI usage (embedded SQLite store, or Appwrite when configured)."""


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(_name).commands:
        cli.add_command(_command)


def main() -> None:
    cli()
