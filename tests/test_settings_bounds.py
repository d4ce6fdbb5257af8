"""Every numeric setting has an upper bound and every float is finite, and the Appwrite endpoint is an http(s) URL:
a bad value is refused when the settings load, naming the variable (exit 2 from the CLI), instead of overflowing
later (a C int, a date, time_t) or, for an infinite retry budget, never returning."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import ValidationError

from services import settings as settings_module
from services.cli import cli
from services.settings import Settings

# (variable, the largest value accepted, a value above it)
BOUNDS = [
    ("AI_USAGE_SQLITE_BUSY_TIMEOUT_MS", "600000", "600001"),
    ("AI_USAGE_MAX_FUTURE_SKEW_SECONDS", "604800", "604801"),
    ("AI_USAGE_COUNT_DEADLINE_MS", "60000", "60001"),
    ("AI_USAGE_PORT", "65535", "65536"),
    ("AI_USAGE_APPWRITE_TIMEOUT_SECONDS", "300", "300.5"),
    ("AI_USAGE_APPWRITE_RETRY_BUDGET_SECONDS", "900", "900.5"),
]
# The values the review found, each a traceback or a hang before.
REPORTED = [
    ("AI_USAGE_MAX_FUTURE_SKEW_SECONDS", "99999999999999999999"),  # too large for a C int
    ("AI_USAGE_MAX_FUTURE_SKEW_SECONDS", "999999999999"),  # now + skew is past year 9999
    ("AI_USAGE_SQLITE_BUSY_TIMEOUT_MS", "10000000000000"),  # past time_t
    ("AI_USAGE_APPWRITE_RETRY_BUDGET_SECONDS", "inf"),  # a read against a dead endpoint never returned
    ("AI_USAGE_APPWRITE_RETRY_BUDGET_SECONDS", "nan"),
    ("AI_USAGE_APPWRITE_TIMEOUT_SECONDS", "inf"),
    ("AI_USAGE_APPWRITE_TIMEOUT_SECONDS", "-inf"),
]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def refused(result: Result, variable: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: invalid configuration\n  {variable}: "), result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("variable", "top", "above"), BOUNDS)
def test_each_numeric_setting_takes_its_bound_and_refuses_above_it(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, top: str, above: str
) -> None:
    monkeypatch.setenv(variable, top)
    assert float(getattr(Settings(), variable.removeprefix("AI_USAGE_").lower())) == float(top)

    monkeypatch.setenv(variable, above)
    refused(run("daily", "p1"), variable)


def test_every_numeric_setting_is_bounded() -> None:
    """A numeric field added later without an upper bound fails here, not in production."""
    numeric = {name for name, field in Settings.model_fields.items() if field.annotation in (int, float)}
    bounded = {variable.removeprefix("AI_USAGE_").lower() for variable, _, _ in BOUNDS}
    assert numeric == bounded


@pytest.mark.parametrize(("variable", "value"), REPORTED)
def test_the_reported_values_are_refused_at_load(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    refused(run("daily", "p1"), variable)


def test_logging_with_the_largest_skew_works(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_USAGE_MAX_FUTURE_SKEW_SECONDS", str(settings_module.MAX_FUTURE_SKEW_SECONDS))
    result = run("log", "--user-id", "p1", "--model", "openai/gpt-4o-mini", "--tokens-input", "10")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "endpoint",
    [
        "not a url",
        "ftp://x/v1",
        "https:///v1",
        "HTTPS://cloud.appwrite.io/v1",  # the SDK compares the text: it would refuse this one
        "http://[::1/v1",
        "http://host:99999/v1",
        "http://ho st/v1",
        "https://cloud.appwrite.io/v1\x1b[2J",
    ],
)
def test_a_bad_appwrite_endpoint_is_refused_naming_it(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setenv("APPWRITE_ENDPOINT", endpoint)
    monkeypatch.setenv("APPWRITE_PROJECT_ID", "p")
    monkeypatch.setenv("APPWRITE_API_KEY", "k")
    result = run("daily", "p1")

    refused(result, "APPWRITE_ENDPOINT")
    assert "http:// or https:// URL" in result.stderr and "Value error" not in result.stderr


@pytest.mark.parametrize(
    ("endpoint", "kept"),
    [
        ("https://cloud.appwrite.io/v1", "https://cloud.appwrite.io/v1"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("http://[::1]:80/v1", "http://[::1]:80/v1"),
        (" https://appwrite/v1 ", "https://appwrite/v1"),
        ("", None),  # unset: the SQLite store, as before
    ],
)
def test_a_good_appwrite_endpoint_is_kept(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str, kept: str | None
) -> None:
    monkeypatch.setenv("APPWRITE_ENDPOINT", endpoint)
    assert Settings().appwrite_endpoint == kept


def test_an_endpoint_given_in_code_is_checked_too() -> None:
    with pytest.raises(ValidationError, match=r"APPWRITE_ENDPOINT|appwrite_endpoint"):
        Settings(appwrite_endpoint="ftp://x/v1")


def test_admin_ids_nested_too_deeply_are_refused_naming_the_variable(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_USAGE_ADMIN_USER_IDS", "[" * 5000 + "]" * 5000)
    refused(run("daily", "p1"), "AI_USAGE_ADMIN_USER_IDS")
