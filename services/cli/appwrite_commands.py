"""``ai-usage appwrite setup``: provision the Appwrite schema declared in ``appwrite.json``; safe to run again."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click
from appwrite.exception import AppwriteException
from appwrite.services.tables_db import TablesDB

from services.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    CommandFailed,
    configure_cli_logging,
    echo_json,
    load_settings,
)
from services.store.appwrite_client import TimeoutClient
from services.store.appwrite_migrations import rekey_tenant_events, settle_price_rules, split_old_costs
from services.store.appwrite_rebuild import backfill_if_changed
from services.store.appwrite_retry import RetryPolicy, describe
from services.store.appwrite_schema import Provisioner, SchemaError, SetupReport, find_config, load_schema
from services.store.appwrite_store import AppwriteUsageStore


@click.group("appwrite")
def appwrite() -> None:
    """Manage the Appwrite backend (APPWRITE_ENDPOINT, APPWRITE_PROJECT_ID, APPWRITE_API_KEY)."""


@appwrite.command("setup")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The appwrite.json to read (default: the nearest one upward from here, else the project's).",
)
@click.option("--wait", "wait_seconds", type=float, default=120.0, show_default=True, help="Seconds to wait for "
              "new columns and indexes to become available.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def setup(config_path: Path | None, wait_seconds: float, as_json: bool) -> None:
    """Create the database, tables, columns and indexes that are missing; report what differs.

    Reads the schema from appwrite.json (its tablesDB and tables keys). Nothing is ever dropped or changed:
    a difference is printed for you to resolve. The database id is APPWRITE_DATABASE_ID (default ai_usage).
    """
    settings = load_settings()
    configure_cli_logging(settings)
    key = settings.appwrite_api_key.get_secret_value() if settings.appwrite_api_key else ""
    missing = [
        name
        for name, value in (
            ("APPWRITE_ENDPOINT", settings.appwrite_endpoint),
            ("APPWRITE_PROJECT_ID", settings.appwrite_project_id),
            ("APPWRITE_API_KEY", key),
        )
        if not value
    ]
    if missing:
        raise CommandFailed("Appwrite is not configured", [f"{name}: not set" for name in missing], EXIT_INVALID)
    path = config_path or find_config()
    try:
        spec = load_schema(path, settings.appwrite_database_id)
    except SchemaError as exc:
        raise CommandFailed("the schema cannot be read", [str(exc)], EXIT_INVALID) from exc
    client = TimeoutClient(settings.appwrite_timeout_seconds)
    client.set_endpoint(settings.appwrite_endpoint).set_project(settings.appwrite_project_id).set_key(key)
    try:
        report = Provisioner(TablesDB(client), wait_seconds=wait_seconds).provision(spec, settings.appwrite_database_id)
        # Data written before tenants scoped the idempotency key moves to its tenant's row ids (idempotent).
        retry = RetryPolicy(budget_seconds=settings.appwrite_retry_budget_seconds)
        store = AppwriteUsageStore(TablesDB(client), settings.appwrite_database_id, retry=retry)
        rekeyed = rekey_tenant_events(store)
        settled = settle_price_rules(store)
        split = split_old_costs(store)
        # Last: rollups built by another definition (a kind added or removed, a new counter) are rebuilt from
        # the events, as SQLite does on open. Pause ingest while a backfill runs (README, "Trusting the rollups").
        backfill = backfill_if_changed(store)
    except AppwriteException as exc:
        raise CommandFailed("Appwrite refused the set-up", [describe(exc)], EXIT_FAILED) from exc
    except SchemaError as exc:
        raise CommandFailed("the set-up did not finish", [str(exc)], EXIT_FAILED) from exc
    finally:
        client.close()
    if as_json:
        echo_json(
            {
                "schema": str(path),
                "database_id": settings.appwrite_database_id,
                **asdict(report),
                "rekeyed": rekeyed,
                "price_rules_settled": settled,
                "rollups_split": split,
                "rollups_backfilled": backfill,
            }
        )
    else:
        click.echo(render(report, path, settings.appwrite_database_id))
        if rekeyed:
            click.echo(f"  moved {rekeyed} event(s) with a tenant to their tenant-scoped row ids")
        if settled:
            click.echo(f"  wrote the price rule onto {settled} older event(s), counting their free ones")
        if split:
            click.echo(f"  gave {split} rollup row(s) written before costs were split by kind their unsplit cost")
        if backfill is not None:
            click.echo(
                f"  rebuilt the rollups for this version's definition from {backfill['events']} event(s): "
                f"{backfill['rows_written']} row(s) written, {backfill['rows_deleted']} deleted"
            )
    if backfill is not None and backfill["events_arrived"]:
        raise CommandFailed(
            "events were logged while the rollups were rebuilt",
            ["pause ingest and run `ai-usage appwrite setup` (or `ai-usage rollups rebuild`) again"],
            EXIT_FAILED,
        )


def render(report: SetupReport, path: Path, database_id: str) -> str:
    lines = [f"Schema {path} → database {database_id}"]
    lines += [f"  created {item}" for item in report.created] or ["  nothing to create: everything declared exists"]
    if report.differences:
        lines.append("Differences (left as they are; resolve them by hand):")
        lines += [f"  {item}" for item in report.differences]
    return "\n".join(lines)


commands: list[click.Command] = [appwrite]
