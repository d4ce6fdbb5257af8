"""What every ledger command shares: settings read once, the service opened from them, errors as exit codes.

Exit codes: 0 done, 1 the store or the service failed, 2 bad input (a field, an option or the configuration).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import click
import pydantic
from pydantic import BaseModel

from services.errors import IdempotencyConflict, ServiceError, StoreError, ValidationFailed
from services.log_config import configure_logging
from services.pricing import PriceBookError
from services.settings import Settings
from services.time_ranges import outside_days
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


# A store error is one line on a terminal. The Appwrite client's network errors carry requests' own text, whose
# "with url: …" is the whole request (path and encoded queries, kilobytes of it) and whose nested causes repeat
# the connection pool's repr; the host (and port) and the reason are what someone can act on.
MAX_ERROR_LENGTH = 300
_SETTINGS_KEY = "ai_usage.settings"  # where load_settings leaves them (click's context), for the endpoint's host
_CAUSED_BY = re.compile(r"Max retries exceeded with url: \S+ \(Caused by \w+\((?P<q>['\"])(?P<why>.*?)(?P=q)\)\)")
_WITH_URL = re.compile(r" with url: \S+")
_POOL = re.compile(r"\b\w+\(host='(?P<host>[^']*)', port=(?P<port>\d+)\): ")
_REPEATED = re.compile(r"(\S+: )\1+")
_FULL_URL = re.compile(r"\b(https?://[^/\s'\"?#]+)[^\s'\"]*")


def one_line(message: str, limit: int = MAX_ERROR_LENGTH) -> str:
    """``message`` on one line of at most ``limit`` characters: a request cut to its host, the rest elided."""
    text = _WITH_URL.sub("", _CAUSED_BY.sub(r"\g<why>", message))
    text = _POOL.sub(lambda m: f"{_host_port(m['host'], m['port'])}: ", text)
    text = _FULL_URL.sub(r"\1", _REPEATED.sub(r"\1", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
            message = one_line(exc.message)
            hint = [f"retry after {exc.retry_after:g} s"] if exc.retry_after else []
            raise CommandFailed(message, _endpoint_named(message) + hint, EXIT_FAILED) from exc
        except ServiceError as exc:
            raise CommandFailed(one_line(exc.message), [], EXIT_FAILED) from exc
        except PriceBookError as exc:
            raise CommandFailed("the price book cannot be loaded", [str(exc)], EXIT_INVALID) from exc

    return wrapper


def _endpoint_named(message: str) -> list[str]:
    """A detail naming the Appwrite host the command used, unless ``message`` already does: an error such as
    "GET /tablesdb/…: no complete answer within 0.5s" does not say where it went."""
    ctx = click.get_current_context(silent=True)
    settings = ctx.meta.get(_SETTINGS_KEY) if ctx is not None else None
    if not isinstance(settings, Settings) or not settings.uses_appwrite or settings.appwrite_endpoint is None:
        return []
    parts = urlsplit(settings.appwrite_endpoint)  # host and port only: never a user:password@ the URL may hold
    host = parts.hostname or ""
    where = host if parts.port is None else _host_port(host, str(parts.port))
    return [] if where in message else [f"Appwrite endpoint: {where}"]


def load_settings() -> Settings:
    """The environment, read once per command; a bad variable is an input error naming the variable."""
    try:
        settings = Settings()
    except pydantic.ValidationError as exc:
        details = []
        for error in exc.errors(include_url=False):
            name = ".".join(str(part) for part in error["loc"])
            variable = name if name.isupper() else f"AI_USAGE_{name.upper()}"
            # pydantic prefixes a validator's own message with "Value error, ": noise to someone reading it.
            details.append(f"{variable}: {error['msg'].removeprefix('Value error, ')}")
        raise CommandFailed("invalid configuration", details, EXIT_INVALID) from None
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_SETTINGS_KEY] = settings
    return settings


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
    """A UTC day written YYYY-MM-DD, from 1970-01-01 to 9998-12-31 as every range of the ledger (no event predates
    1970, and a range steps a day or a week past its ends: a day near year 1 or 9999 would overflow the calendar),
    refused under the option's own name."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            day = value
        else:
            try:
                day = date.fromisoformat(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a date written YYYY-MM-DD", param, ctx)
        if (why := outside_days(day)) is not None:
            self.fail(why, param, ctx)
        return day


ISO_MOMENT = IsoMoment()
ISO_DAY = IsoDay()


def emit(model: BaseModel, render: Callable[[Any], str], as_json: bool) -> None:
    """``--json``: the model itself; otherwise its table."""
    if as_json:
        echo_model(model)
    else:
        click.echo(render(model))
