"""Configuration, read once from the environment and passed down; nothing else reads ``os.environ``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Upper bounds of the numeric settings. Each is far above any sane value but keeps a typo (an extra zero or ten)
# from reaching code that cannot take it: SQLite's busy timeout and the clocks' arithmetic overflow, and an
# unbounded Appwrite budget lets one read against a dead endpoint never return.
MAX_SQLITE_BUSY_TIMEOUT_MS = 600_000  # 10 minutes
MAX_FUTURE_SKEW_SECONDS = 7 * 86_400  # a week
MAX_COUNT_DEADLINE_MS = 60_000  # a minute
MAX_APPWRITE_TIMEOUT_SECONDS = 300.0  # 5 minutes
MAX_APPWRITE_RETRY_BUDGET_SECONDS = 900.0  # 15 minutes, the longest an Appwrite function may run
# An endpoint holding spaces or control characters is a paste error, never a URL requests could send to.
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f]")


class Settings(BaseSettings):
    """Every variable is listed in the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="AI_USAGE_", extra="ignore", populate_by_name=True)

    db_path: Path = Field(default=Path(".ai-usage/usage.db"), description="SQLite file of the embedded store")
    prices_file: Path | None = Field(default=None, description="Price-book override (TOML), merged on top")
    dashboard_admin_function_id: str = Field(
        default="usage-admin", description="usage-dashboard: the id of the admin function the page executes"
    )
    alerts_file: Path | None = Field(default=None, description="Alert rules (TOML); none: the default rules")
    alert_webhook_urls: SecretStr | None = Field(
        default=None,
        description="Webhook URLs added to the rules file's: a JSON list, or separated by commas or spaces (a secret)",
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="NORMAL survives a process crash; FULL also survives power loss, at a cost per commit",
    )
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0, le=MAX_SQLITE_BUSY_TIMEOUT_MS)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_future_skew_seconds: int = Field(
        default=300, ge=0, le=MAX_FUTURE_SKEW_SECONDS, description="How far ahead a timestamp may be"
    )
    count_deadline_ms: int = Field(
        default=250,
        ge=1,
        le=MAX_COUNT_DEADLINE_MS,
        description="The rate limiter's count answers within this, else 0 (degraded)",
    )

    # HTTP serving (functions-framework / `ai-usage serve`).
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api_key: SecretStr | None = Field(default=None, description="Bearer key of the game backend (server role)")
    admin_key: SecretStr | None = Field(default=None, description="Bearer key of admins")
    admin_user_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Appwrite user ids treated as admins: a JSON list or comma-separated"
    )

    # Appwrite backend: set endpoint, project and key to use it instead of SQLite.
    appwrite_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("APPWRITE_ENDPOINT", "appwrite_endpoint")
    )
    appwrite_project_id: str | None = Field(
        default=None, validation_alias=AliasChoices("APPWRITE_PROJECT_ID", "appwrite_project_id")
    )
    appwrite_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("APPWRITE_API_KEY", "appwrite_api_key")
    )
    appwrite_database_id: str = Field(
        default="ai_usage", validation_alias=AliasChoices("APPWRITE_DATABASE_ID", "appwrite_database_id")
    )
    # allow_inf_nan=False: "inf" would be a budget that never runs out, "nan" one every comparison gets wrong.
    appwrite_timeout_seconds: float = Field(default=10.0, gt=0, le=MAX_APPWRITE_TIMEOUT_SECONDS, allow_inf_nan=False)
    appwrite_retry_budget_seconds: float = Field(
        default=8.0, gt=0, le=MAX_APPWRITE_RETRY_BUDGET_SECONDS, allow_inf_nan=False
    )
    # Appwrite sends no user id for an execution made with an API key, but also for one made by anybody where
    # a function's execute permission admits guests; only the deployment knows which, so it must say so.
    appwrite_no_user_is_server: bool = Field(
        default=False, description="Treat an Appwrite execution without a user id as the game backend (server role)"
    )

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _id_list(cls, value: object) -> object:
        # Appwrite's console takes variables as plain strings: accept "a,b" as well as '["a", "b"]'.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except RecursionError:  # json.loads gives up on deep nesting this way, not with a ValueError
                    raise ValueError("is nested too deeply to be a list of ids") from None
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("appwrite_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        # The Appwrite SDK refuses anything else only once a store opens, as a traceback; refuse it here, named.
        if value is None or not value.strip():
            return None  # unset, as before: the SQLite store
        value = value.strip()
        try:
            parts = urlsplit(value)
            host = parts.hostname
            _ = parts.port  # a port that is not a number from 0 to 65535 raises ValueError only when read
        except ValueError:  # also a malformed IPv6 host ("http://[::1")
            host = None
        # startswith, not only the parsed scheme: the SDK compares the text, so "HTTPS://" would still fail there.
        if not (value.startswith(("http://", "https://")) and host) or _UNSAFE.search(value):
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://cloud.appwrite.io/v1")
        return value

    @property
    def uses_appwrite(self) -> bool:
        return bool(self.appwrite_endpoint and self.appwrite_project_id and self.appwrite_api_key)
