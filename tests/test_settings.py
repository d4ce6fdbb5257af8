"""Configuration is read once from the environment, with the names the README lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.settings import Settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AI_USAGE_DB_PATH", "APPWRITE_ENDPOINT", "APPWRITE_PROJECT_ID", "APPWRITE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.db_path == Path(".ai-usage/usage.db")
    assert settings.sqlite_synchronous == "NORMAL"
    assert not settings.uses_appwrite


@pytest.mark.parametrize("raw", ['["u1", "u2"]', "u1,u2", " u1 , u2 ,"])
def test_admin_user_ids_take_a_json_list_or_a_comma_list(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("AI_USAGE_ADMIN_USER_IDS", raw)
    assert Settings().admin_user_ids == ["u1", "u2"]


def test_appwrite_is_chosen_only_with_endpoint_project_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPWRITE_ENDPOINT", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("APPWRITE_PROJECT_ID", "p")
    assert not Settings().uses_appwrite
    monkeypatch.setenv("APPWRITE_API_KEY", "secret")
    settings = Settings()
    assert settings.uses_appwrite
    assert "secret" not in repr(settings)


def test_a_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_USAGE_SQLITE_SYNCHRONOUS", "SOMETIMES")
    with pytest.raises(ValidationError, match="sqlite_synchronous"):
        Settings()
