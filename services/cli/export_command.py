"""``ai-usage export``: raw events as CSV or JSON Lines, streamed page by page in constant memory.

Safe to open, and never stopped by a stored row:
- A CSV text cell that a spreadsheet would run as a formula gets a leading ``'`` (``neutralise_cell``) unless
  ``--raw-formulas`` is given. JSON Lines is data for programs, so its values are never altered.
- A lone UTF-16 surrogate, which UTF-8 cannot encode, is written as its JSON escape ``\\udXXX`` (``escape_surrogates``),
  and metadata too deep for pydantic's serializer is encoded without recursion (``encode_json``).
- A file is written to a private (0600) temporary file beside its target and renamed onto it only when complete,
  so a failed or interrupted export (Ctrl-C, SIGTERM, SIGHUP) leaves nothing behind; ``--output`` naming a
  directory, or the ledger's own database or one of its files, is refused up front.
- A SQLite row the event model refuses (edited by hand: an unknown task type, metadata that is not JSON, a broken
  timestamp) is written with its values as stored (``_as_stored``) instead of stopping the export.
- Written to a terminal, characters ``str.isprintable`` rejects (ESC, BEL, C1 controls, bidi overrides) are escaped,
  as everywhere stored text meets a terminal: CSV cells as tables show them, JSON Lines as JSON ``\\uXXXX`` escapes
  (the same data once parsed). A file or a pipe gets the bytes as stored.
Progress goes to stderr, never into the data.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
import structlog
from pydantic_core import PydanticSerializationError

from models.ai_usage import AIUsageLog
from services.cli.common import ISO_MOMENT, CommandFailed, invalid, load_settings, open_service, translate_errors
from services.cli.export_output import OutputFailed, check_output, destination, is_special
from services.cli.tables import terminal_safe
from services.store import MAX_PAGE_SIZE, EventFilter

EXPORT_FIELDS: tuple[str, ...] = tuple(AIUsageLog.model_fields)
# A row as the exporters take it: an event, or the values of a stored row the event model refuses (``_as_stored``).

log = structlog.get_logger("ai_usage.export")

# OWASP "CSV Injection": Excel, LibreOffice and Sheets run a cell beginning with = + - @ TAB or CR as a formula
# (=HYPERLINK(...) from a player-chosen id, say). NUL is ASVS 1.2.10's addition. "'" is in the set so that the
# prefix can be undone exactly: every neutralised text cell begins with "'", and removing it gives the stored value.
_NEUTRALISE_FIRST = frozenset("=+-@\t\r\0'")
# Spreadsheets may skip leading blanks before deciding a cell is a formula (" =1+1", "\n@SUM(...)").
_FORMULA_SIGNS = frozenset("=+-@")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NON_FINITE = {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"'}
# Compact, UTF-8 text; non-finite floats refused here and written as strings by the iterative encoder.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def neutralise_cell(value: str) -> str:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula; otherwise unchanged.

    Prefixed: a value whose first character is ``= + - @``, TAB, CR, NUL or ``'``, or whose first character after
    leading whitespace is ``= + - @``. To recover the stored value, drop one leading ``'``.
    """
    if value and (value[0] in _NEUTRALISE_FIRST or (value[0].isspace() and value.lstrip()[:1] in _FORMULA_SIGNS)):
        return "'" + value
    return value


def escape_surrogates(text: str) -> str:
    """Each lone UTF-16 surrogate (unencodable in UTF-8) as the six characters ``\\udXXX``, its JSON escape."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def encode_json(value: Any) -> str:
    """Compact JSON for any value a stored row holds, however deep, with lone surrogates escaped."""
    try:
        text = _encode(value)
    except (RecursionError, ValueError, TypeError):
        # Nesting deeper than the C encoder's recursion limit, NaN/Infinity, or a non-JSON type: never fail a row.
        text = _encode_iteratively(value)
    return escape_surrogates(text)


class _Raw(str):
    """A fragment of JSON text already encoded (as opposed to a string value still to be quoted)."""


def _encode_iteratively(value: Any) -> str:
    parts: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            parts.append(item)
        elif isinstance(item, dict):
            # Pushed in reverse: the stack pops "{", then each key and its value, then "}".
            stack.append(_Raw("}"))
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, child = entries[index]
                stack.append(child)
                stack.append(_Raw(("," if index else "") + _encode(str(key)) + ":"))
            stack.append(_Raw("{"))
        elif isinstance(item, list | tuple):
            stack.append(_Raw("]"))
            for index in range(len(item) - 1, -1, -1):
                stack.append(item[index])
                if index:
                    stack.append(_Raw(","))
            stack.append(_Raw("["))
        elif isinstance(item, float) and not math.isfinite(item):
            parts.append(_NON_FINITE[repr(item)])  # not JSON numbers: written as the names JavaScript gives them
        elif item is None or isinstance(item, bool | int | float | str):
            parts.append(_encode(item))
        else:
            parts.append(_encode(str(item)))  # a type JSON has no form for (a stored row never holds one)
    return "".join(parts)


def _row(log: AIUsageLog) -> dict[str, Any]:
    # Metadata skips pydantic's serializer, which stops at 255 levels ("Maximum serialization depth exceeded").
    data = log.model_dump(mode="json", exclude={"metadata"})
    data["metadata"] = log.metadata
    return data


def csv_cells(log: AIUsageLog, *, neutralise: bool = True) -> list[str]:
    """One CSV row: JSON-mode values, so exact cost is a decimal string and metadata a JSON object string."""
    data = _row(log)
    return [_cell(data[name], neutralise) for name in EXPORT_FIELDS]


def _cell(value: Any, neutralise: bool) -> str:
    if value.__class__ is str:  # most cells: checked inline, since this runs ~28 times a row
        text = value if value.isascii() else escape_surrogates(value)
    elif value is None:
        return ""
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, dict | list):
        text = encode_json(value)
    else:
        return str(value)  # a number: never negative in a row, so never read as a formula
    if neutralise and text and (text[0] in _NEUTRALISE_FIRST or text[0].isspace()):
        return neutralise_cell(text)
    return text


# The metadata is spliced in before the next field's key: `,"<key>":` cannot occur inside a JSON string, whose
# quotes are all escaped, so its first occurrence is the key itself.
_AFTER_METADATA = f',"{EXPORT_FIELDS[EXPORT_FIELDS.index("metadata") + 1]}":'


def jsonl_line(log: AIUsageLog) -> str:
    """One JSON Lines record (no newline): every AIUsageLog field in order, values exactly as stored."""
    try:
        # pydantic's own JSON is 4x faster than building a dict; it refuses only a lone surrogate.
        rest = log.model_dump_json(exclude={"metadata"})
    except PydanticSerializationError:
        rest = encode_json(log.model_dump(mode="json", exclude={"metadata"}))
    head, _, tail = rest.partition(_AFTER_METADATA)
    return f'{head},"metadata":{encode_json(log.metadata)}{_AFTER_METADATA}{tail}'


def printable_json(line: str) -> str:
    """``line`` (JSON text) with every character ``str.isprintable`` rejects as its JSON escape: the same value once
    parsed, and nothing a terminal acts on (JSON escapes C0 controls itself, but not DEL, C1 or bidi controls)."""
    if line.isprintable():
        return line
    return "".join(char if char.isprintable() else _json_escape(char) for char in line)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON escapes a character beyond the BMP as its UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


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
            text += f" to {terminal_safe(target)} in {elapsed:.1f}s"
        end = "\n" if final or not self.tty else ""
        click.echo(f"\r{text}" if self.tty else text, file=self.stream, nl=False)
        click.echo(end, file=self.stream, nl=False)
        self.stream.flush()


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--output", "-o", default="-", show_default=True, help="File to write (replaced whole), or - for stdout.")
@click.option("--user-id")
@click.option("--session-id")
@click.option("--model", help="Exactly as logged.")
@click.option("--start", type=ISO_MOMENT, help="From this moment, inclusive (ISO-8601; a bare date is 00:00 UTC).")
@click.option("--end", type=ISO_MOMENT, help="Up to this moment, exclusive.")
@click.option("--page-size", type=click.IntRange(1, MAX_PAGE_SIZE), default=MAX_PAGE_SIZE, show_default=True)
@click.option(
    "--raw-formulas",
    is_flag=True,
    help="CSV: write cells beginning with = + - @ TAB CR as stored, without the leading ' that stops a "
    "spreadsheet running them as formulas. Only for files no spreadsheet will open.",
)
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
    raw_formulas: bool,
    progress: bool | None,
) -> None:
    """Stream raw events, oldest first, as CSV (one column per AIUsageLog field) or JSON Lines."""
    if start is not None and end is not None and end <= start:
        raise invalid("end", "must be after start")
    settings = load_settings()
    if output != "-":
        check_output(output, settings.db_path)
    where = EventFilter(user_id=user_id, session_id=session_id, model=model, start=start, end=end)
    stderr = sys.stderr
    counter = Progress(stderr.isatty() if progress is None else progress, stderr)
    try:
        with open_service(settings) as service, destination(output) as out:
            events = service.iter_events(where, page_size=page_size)
            try:
                # A terminal shows what it is sent: stored text reaches one escaped (a file keeps the bytes).
                _write(fmt, events, out, counter, neutralise=not raw_formulas, terminal=out.isatty())
            except BrokenPipeError:  # `ai-usage export | head`: the reader left; stop quietly
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush from failing again
                raise SystemExit(1) from None
    except OutputFailed as exc:
        # A file is replaced only when complete; a device or pipe (or stdout) already has what was written.
        left = "; nothing was written" if output != "-" and not is_special(Path(output)) else ""
        raise CommandFailed(f"cannot write {output}: {exc.error.strerror or exc.error}{left}") from exc
    counter.finish("stdout" if output == "-" else output)


def _write(
    fmt: str, events: Iterator[AIUsageLog], out: IO[str], counter: Progress, *, neutralise: bool, terminal: bool = False
) -> None:
    if fmt == "csv":
        writer = csv.writer(out)
        _put(writer.writerow, EXPORT_FIELDS)
        for row in events:
            cells = csv_cells(row, neutralise=neutralise)
            _put(writer.writerow, [terminal_safe(cell) for cell in cells] if terminal else cells)
            counter.advance()
    else:
        for row in events:
            line = jsonl_line(row)
            _put(out.write, (printable_json(line) if terminal else line) + "\n")
            counter.advance()
    _put(out.flush)


def _put(write: Callable[..., object], *args: Any) -> None:
    try:
        write(*args)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputFailed(exc) from exc
