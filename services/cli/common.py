"""What every ledger command shares: settings read once, the service opened from them, errors as exit codes.

Exit codes: 0 done, 1 the store or the service failed, 2 bad input (a field, an option or the configuration).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any, ParamSpec, TypeVar

import click
import pydantic
from pydantic import BaseModel

from services.errors import IdempotencyConflict, ServiceError, StoreError, ValidationFailed
from services.log_config import configure_logging
from services.pricing import PriceBookError
from services.settings import Settings
from services.usage_tracking_service import UsageTrackingService

EXIT_FAILED = 1
EXIT_INVALID = 2

P = ParamSpec("P")
R = TypeVar("R")


class CommandFailed(click.ClickException):
    """``error: <message>`` and one indented line per detail on stderr, then the exit code."""

    def __init__(self, message: str, details: Sequence[str] = (), exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.details = list(details)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        out = file or sys.stderr
        click.echo(f"error: {self.message}", file=out)
        for line in self.details:
            click.echo(f"  {line}", file=out)


def invalid(field: str, rule: str) -> CommandFailed:
    return CommandFailed("invalid input", [f"{field}: {rule}"], EXIT_INVALID)


def translate_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the service's error tree into ``CommandFailed``: a message, never a traceback, for bad input."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ValidationFailed as exc:
            summary = "invalid input" if exc.message.startswith("invalid input") else exc.message
            raise CommandFailed(summary, [f"{f.field}: {f.message}" for f in exc.fields], EXIT_INVALID) from exc
        except IdempotencyConflict as exc:
            raise CommandFailed(exc.message, [f"{f.field}: {f.message}" for f in exc.fields], EXIT_INVALID) from exc
        except StoreError as exc:
            hint = [f"retry after {exc.retry_after:g} s"] if exc.retry_after else []
            raise CommandFailed(exc.message, hint, EXIT_FAILED) from exc
        except ServiceError as exc:
            raise CommandFailed(exc.message, [], EXIT_FAILED) from exc
        except PriceBookError as exc:
            raise CommandFailed("the price book cannot be loaded", [str(exc)], EXIT_INVALID) from exc

    return wrapper


def load_settings() -> Settings:
    """The environment, read once per command; a bad variable is an input error naming the variable."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        details = []
        for error in exc.errors(include_url=False):
            name = ".".join(str(part) for part in error["loc"])
            variable = name if name.isupper() else f"AI_USAGE_{name.upper()}"
            details.append(f"{variable}: {error['msg']}")
        raise CommandFailed("invalid configuration", details, EXIT_INVALID) from None


def configure_cli_logging(settings: Settings) -> None:
    # The command prints its own result, so per-event INFO lines would only repeat it on stderr; an
    # explicit AI_USAGE_LOG_LEVEL still wins.
    level = settings.log_level if "log_level" in settings.model_fields_set else "WARNING"
    configure_logging(settings.log_format, level)


@contextmanager
def open_service(settings: Settings) -> Iterator[UsageTrackingService]:
    """The service on the configured store and price book, closed when the command ends."""
    configure_cli_logging(settings)
    try:
        service = UsageTrackingService(settings=settings)
    except OSError as exc:
        raise CommandFailed(f"cannot open the store at {settings.db_path}: {exc}") from exc
    try:
        yield service
    finally:
        service.close()


def store_label(settings: Settings) -> str:
    if settings.uses_appwrite:
        return f"Appwrite {settings.appwrite_endpoint} (database {settings.appwrite_database_id})"
    return f"SQLite {settings.db_path}"


def echo_model(model: BaseModel) -> None:
    """The model as JSON: exact money as decimal strings, dates as ISO 8601; non-ASCII escaped, so no stored
    text (a C1 control, a bidi override) can act on the terminal."""
    click.echo(json.dumps(model.model_dump(mode="json"), indent=2, ensure_ascii=True))


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


class IsoMoment(click.ParamType):
    """An ISO-8601 datetime with a timezone, or a bare YYYY-MM-DD meaning 00:00 UTC that day."""

    name = "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            moment = value
        else:
            text = str(value).strip()
            try:
                if len(text) == 10:
                    return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
                moment = datetime.fromisoformat(text)
            except ValueError:
                self.fail(f"{value!r} is not an ISO-8601 date or datetime (e.g. 2026-11-23T10:00:00Z)", param, ctx)
        if moment.tzinfo is None or moment.utcoffset() is None:
            self.fail(f"{value!r} has no timezone; add Z or +00:00 (days are UTC days)", param, ctx)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            self.fail(f"{value!r} is out of range once converted to UTC", param, ctx)


class IsoDay(click.ParamType):
    """A UTC day written YYYY-MM-DD."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a date written YYYY-MM-DD", param, ctx)


ISO_MOMENT = IsoMoment()
ISO_DAY = IsoDay()


def emit(model: BaseModel, render: Callable[[Any], str], as_json: bool) -> None:
    """``--json``: the model itself; otherwise its table."""
    if as_json:
        echo_model(model)
    else:
        click.echo(render(model))
