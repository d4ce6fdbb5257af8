"""Where an export goes: stdout, a device, or a file written whole (a 0600 temporary file renamed onto it, removed on
any failure, Ctrl-C, SIGTERM or SIGHUP), never the ledger's own database."""

from __future__ import annotations

import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO

from services.cli.common import CommandFailed, invalid
from services.store.sqlite_files import is_store_file


def check_output(output: str, db_path: Path) -> None:
    """Refuse, before anything is read or written, a directory (``.``, ``out/``, an existing directory) and the
    store's own files: renaming the export onto the database would replace the ledger with a CSV file."""
    if output.endswith(("/", os.sep)) or Path(output).is_dir():
        raise invalid("output", f"{output!r} is a directory; name a file to write, or - for stdout")
    if is_store_file(output, db_path):
        raise invalid("output", f"{output!r} is the ledger's database (AI_USAGE_DB_PATH) or one of its files")


class OutputFailed(Exception):
    """Writing the export failed (disk full, I/O error): told apart from a failure to read the store."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def is_special(target: Path) -> bool:
    return target.exists() and not stat.S_ISREG(target.stat().st_mode)


class _Signalled(BaseException):
    """SIGTERM or SIGHUP arrived while a file was being written: raised like KeyboardInterrupt, so cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``_Signalled`` inside; the previous handlers are back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers: called from another one, a signal acts as it did before
        return
    raised = False

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:  # once: a second signal must not cut the cleanup of the first short
            raised = True
            raise _Signalled(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def destination(output: str) -> Iterator[IO[str]]:
    """stdout for ``-``; a device or pipe directly; otherwise a 0600 temporary file renamed onto ``output``.

    SIGTERM or SIGHUP while a file is open removes the temporary file, as Ctrl-C does, and exits 128 + the signal.
    """
    if output == "-":
        yield sys.stdout
        return
    target = Path(output)
    try:
        with _signals_interrupt():  # before the temporary file exists, until it is renamed or removed
            try:
                if is_special(target):
                    # /dev/stdout, a FIFO: renaming over one would replace the node itself, so it is written directly.
                    stream, partial = target.open("w", encoding="utf-8", newline=""), None
                else:
                    # mkstemp creates the file 0600 whatever the umask, under a name no concurrent export uses.
                    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
                    stream, partial = os.fdopen(fd, "w", encoding="utf-8", newline=""), Path(name)
            except OSError as exc:
                raise CommandFailed(f"cannot write {output}: {exc.strerror or exc}") from exc
            try:
                yield stream
                try:
                    stream.flush()
                    if partial is not None:
                        os.fsync(stream.fileno())  # on disk before the name says the export is complete
                        os.replace(partial, target)
                    stream.close()
                except OSError as exc:
                    raise OutputFailed(exc) from exc
            except BaseException:
                # Closing flushes what is buffered, which fails again on a full disk: that second error must not
                # hide the first (nor leave the partial file behind).
                with suppress(OSError):
                    stream.close()
                if partial is not None:
                    with suppress(OSError):
                        partial.unlink(missing_ok=True)
                raise
    except _Signalled as exc:
        raise SystemExit(128 + exc.signum) from None  # the status a shell gives a process the signal ended
