"""``ai-usage export``: raw events as CSV or JSON Lines, streamed page by page in constant memory.

A file is written beside its target and moved into place only when the export is complete, so a failed
export never leaves a truncated file that looks whole. Progress goes to stderr, never into the data.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click

from models.ai_usage import AIUsageLog
from services.cli.common import ISO_MOMENT, CommandFailed, invalid, load_settings, open_service, translate_errors
from services.store import MAX_PAGE_SIZE, EventFilter

EXPORT_FIELDS: tuple[str, ...] = tuple(AIUsageLog.model_fields)


def csv_cells(log: AIUsageLog) -> list[str]:
    """One CSV row: JSON-mode values, so exact cost is a decimal string and metadata a JSON object string."""
    data = log.model_dump(mode="json")
    return [_cell(data[name]) for name in EXPORT_FIELDS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


class Progress:
    """A counter on stderr: rewritten in place on a terminal, a line every few seconds elsewhere."""

    def __init__(self, enabled: bool, stream: IO[str]) -> None:
        self.enabled = enabled
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = 0.1 if self.tty else 2.0
        self.started = self.last = time.monotonic()
        self.count = 0

    def advance(self, by: int = 1) -> None:
        self.count += by
        now = time.monotonic()
        if self.enabled and now - self.last >= self.interval:
            self.last = now
            self._show(final=False)

    def finish(self, target: str) -> None:
        if self.enabled:
            self._show(final=True, target=target)

    def _show(self, final: bool, target: str = "") -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        text = f"exported {self.count:,} events ({self.count / elapsed:,.0f}/s)"
        if final:
            text += f" to {target} in {elapsed:.1f}s"
        end = "\n" if final or not self.tty else ""
        click.echo(f"\r{text}" if self.tty else text, file=self.stream, nl=False)
        click.echo(end, file=self.stream, nl=False)
        self.stream.flush()


@contextmanager
def _destination(output: str) -> Iterator[IO[str]]:
    """stdout for ``-``; otherwise a temporary file renamed onto ``output`` only on success."""
    if output == "-":
        yield sys.stdout
        return
    target = Path(output)
    partial = target.with_name(f".{target.name}.partial")
    try:
        handle = partial.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CommandFailed(f"cannot write {output}: {exc.strerror or exc}") from exc
    try:
        with handle:
            yield handle
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--output", "-o", default="-", show_default=True, help="File to write, or - for stdout.")
@click.option("--user-id")
@click.option("--session-id")
@click.option("--model", help="Exactly as logged.")
@click.option("--start", type=ISO_MOMENT, help="From this moment, inclusive (ISO-8601; a bare date is 00:00 UTC).")
@click.option("--end", type=ISO_MOMENT, help="Up to this moment, exclusive.")
@click.option("--page-size", type=click.IntRange(1, MAX_PAGE_SIZE), default=MAX_PAGE_SIZE, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Counter on stderr (default: when stderr is a terminal).")
@translate_errors
def export(
    fmt: str,
    output: str,
    user_id: str | None,
    session_id: str | None,
    model: str | None,
    start: datetime | None,
    end: datetime | None,
    page_size: int,
    progress: bool | None,
) -> None:
    """Stream raw events, oldest first, as CSV (one column per AIUsageLog field) or JSON Lines."""
    if start is not None and end is not None and end <= start:
        raise invalid("end", "must be after start")
    where = EventFilter(user_id=user_id, session_id=session_id, model=model, start=start, end=end)
    stderr = sys.stderr
    counter = Progress(stderr.isatty() if progress is None else progress, stderr)
    with open_service(load_settings()) as service, _destination(output) as out:
        events = service.iter_events(where, page_size=page_size)
        try:
            _write(fmt, events, out, counter)
        except BrokenPipeError:  # `ai-usage export | head`: the reader left; stop quietly
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush from failing again
            raise SystemExit(1) from None
    counter.finish("stdout" if output == "-" else output)


def _write(fmt: str, events: Iterator[AIUsageLog], out: IO[str], counter: Progress) -> None:
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(EXPORT_FIELDS)
        for log in events:
            writer.writerow(csv_cells(log))
            counter.advance()
    else:
        for log in events:
            out.write(log.model_dump_json())
            out.write("\n")
            counter.advance()
    out.flush()
