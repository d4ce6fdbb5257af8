"""``ai-usage prices import-litellm``: LiteLLM's price JSON converted to a price file, with what could not be mapped.

The conversion is :mod:`services.pricing.litellm_import`; this is the glue: read the file, write the TOML (stdout or
``--output``), print the report on stderr. Exit 2 when the file is not LiteLLM's JSON.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from services.cli.common import EXIT_INVALID, ISO_MOMENT, CommandFailed, invalid
from services.pricing import SHIPPED_PRICES, read_price_file
from services.pricing.litellm_import import LiteLLMFormatError, convert
from services.time_ranges import FIRST_DAY, LAST_DAY, OUTSIDE_DAYS


@click.command("import-litellm")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--effective-from", "effective_from", type=ISO_MOMENT, help="Date every imported price starts (UTC).")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout.")
def import_litellm(file: Path, effective_from: datetime | None, output: Path | None) -> None:
    """Convert LiteLLM's model_prices_and_context_window.json into a price file (AI_USAGE_PRICES_FILE)."""
    if effective_from is not None and not FIRST_DAY <= effective_from.date() <= LAST_DAY:
        raise invalid("--effective-from", OUTSIDE_DAYS)  # a price file refuses it: the output would not load
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise invalid("FILE", f"cannot read {file}: {exc}") from exc
    try:
        existing, _ = read_price_file(SHIPPED_PRICES)
        when = (effective_from or datetime.now(UTC)).date()
        result = convert(text, source_date=when, effective_from=effective_from, existing=existing)
    except LiteLLMFormatError as exc:
        raise CommandFailed(f"{file} is not LiteLLM's model price JSON", [str(exc)], EXIT_INVALID) from exc
    if output is None:
        click.echo(result.toml, nl=False)
    else:
        _write(output, result.toml)
    for item in result.unmapped:
        click.echo(f"not imported: {item}", err=True)
    click.echo(
        f"imported {result.imported} of {result.entries} LiteLLM entries; {len(result.skipped)} skipped, "
        f"{len(result.left_out_keys)} keys of imported entries left out" + (f"; written to {output}" if output else ""),
        err=True,
    )


def _write(path: Path, text: str) -> None:
    """Write via a temporary file renamed into place, so a failed write never leaves half a price file, nor the
    temporary file: it is removed on every failure (a full disk, a directory in the way, Ctrl-C)."""
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.resolve().parent, delete=False, suffix=".tmp"
        ) as handle:
            temporary = handle.name
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())  # a full disk may only say so here; and the rename must not outrun the data
        os.chmod(temporary, 0o644)  # a price file is not secret; the book's loader must be able to read it
        os.replace(temporary, path)
    except BaseException as exc:
        if temporary is not None:  # once renamed it is gone, and unlinking its old name does nothing
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if isinstance(exc, OSError):
            raise invalid("--output", f"cannot write {path}: {exc}") from exc
        raise
