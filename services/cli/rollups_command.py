"""``ai-usage rollups verify|rebuild``: check the rollups against the raw events, and repair them.

Glue only: the comparison and the repair live in ``services/rollup_maintenance.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import click

from services.cli import tables
from services.cli.common import (
    EXIT_FAILED,
    ISO_DAY,
    CommandFailed,
    configure_cli_logging,
    echo_json,
    invalid,
    json_option,
    load_settings,
    store_label,
    translate_errors,
)
from services.rollup_maintenance import VerifyReport, rebuild, verify
from services.store import UsageStore, open_store


@contextmanager
def _open_store() -> Iterator[tuple[UsageStore, str]]:
    # The store alone: repairing the rollups must not depend on the price book loading.
    settings = load_settings()
    configure_cli_logging(settings)
    try:
        store = open_store(settings)
    except OSError as exc:
        raise CommandFailed(f"cannot open the store at {settings.db_path}: {exc}") from exc
    try:
        yield store, store_label(settings)
    finally:
        store.close()


@click.group("rollups")
def rollups() -> None:
    """Check the rollups (what every summary reads) against the raw events, and repair them."""


def _render(report: VerifyReport, label: str) -> str:
    span = f"{report.start or 'the first event'} to {report.end or 'the last event'} (UTC days, inclusive)"
    lines = [
        f"Rollups of {tables.terminal_safe(label)}, {span}",
        tables.fields(
            [
                ("events", tables.count(report.events)),
                (
                    "rows expected / stored",
                    f"{tables.count(report.rows_expected)} / {tables.count(report.rows_stored)}",
                ),
                ("kinds checked", ", ".join(report.kinds_checked)),
                ("differences", tables.count(report.difference_count)),
            ]
        ),
    ]
    lines += [f"  {kind} not checked: {why}" for kind, why in report.kinds_skipped.items()]
    if not report.definition_current:
        lines.append("  the rollups were not built by this version's definition: run `ai-usage rollups rebuild`")
    if report.differences:
        rows = [
            (d.kind, d.scope, d.bucket, d.dim, d.counter, str(d.stored), str(d.expected)) for d in report.differences
        ]
        lines.append(tables.table(("kind", "scope", "bucket", "dim", "counter", "stored", "expected"), rows, "lllllrr"))
        if len(report.differences) < report.difference_count:
            lines.append(f"  … and {report.difference_count - len(report.differences)} more (--max to see more)")
    return "\n".join(lines)


@rollups.command("verify")
@click.option("--start", type=ISO_DAY, help="First UTC day (YYYY-MM-DD), inclusive. Default: the first event.")
@click.option("--end", type=ISO_DAY, help="Last UTC day (YYYY-MM-DD), inclusive. Default: the last event.")
@click.option("--max", "max_differences", type=click.IntRange(min=0), default=1000, show_default=True,
              help="How many differences to list (all are counted).")  # fmt: skip
@json_option
@translate_errors
def verify_command(start: date | None, end: date | None, max_differences: int, as_json: bool) -> None:
    """Recompute the rollups of a range from the raw events and report every counter that differs (exit code 1).

    Day and hour rollups are checked for every day of the range, all-time rollups (player by model, session) only
    without --start and --end."""
    if start is not None and end is not None and end < start:
        raise invalid("--end", "must not be before --start")
    with _open_store() as (store, label):
        report = verify(store, start, end, max_differences=max_differences)
    if as_json:
        echo_json({"store": label, "clean": report.clean, **report.model_dump(mode="json")})
    else:
        click.echo(_render(report, label))
    if not report.clean:
        raise SystemExit(EXIT_FAILED)


@rollups.command("rebuild")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@translate_errors
def rebuild_command(yes: bool, as_json: bool) -> None:
    """Recompute every rollup from every event and store exactly that (safe to run again; resumes where an
    interrupted run stopped). On Appwrite, pause ingest while it runs: events logged meanwhile may be missed."""
    with _open_store() as (store, label):
        if not yes:
            click.confirm(f"Rebuild every rollup of {tables.terminal_safe(label)} from its events?", abort=True)
        report = rebuild(store)
    if as_json:
        # The report's own "store" is the store's class name; the table names the database, so the JSON does too.
        echo_json({**report.model_dump(mode="json"), "store": label})
    else:
        click.echo(
            tables.fields(
                [
                    ("store", tables.terminal_safe(label)),
                    ("events", tables.count(report.events)),
                    ("rollup rows", tables.count(report.rows)),
                    ("written", tables.count(report.rows_written)),
                    ("deleted", tables.count(report.rows_deleted)),
                    ("unchanged", tables.count(report.rows_unchanged)),
                ]
            )
        )
    if report.events_arrived:
        raise CommandFailed(
            "events were logged while the rollups were rebuilt",
            ["rows they feed may be short: pause ingest and run `ai-usage rollups rebuild` again"],
            EXIT_FAILED,
        )


commands: list[click.Command] = [rollups]
