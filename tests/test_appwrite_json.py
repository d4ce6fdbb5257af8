"""``appwrite.json`` agrees with the code: every declared function can be deployed and run as declared.

``appwrite push`` deploys from this file, so a wrong entrypoint, runtime or scope only shows up on Appwrite;
these tests find it here. (The Appwrite store's tests check the declared tables against what it writes.)
"""

from __future__ import annotations

import fnmatch
import importlib.util
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, TypeAdapter

from functions.http_api.routes import ROUTES, routes_for
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CONFIG = json.loads((ROOT / "appwrite.json").read_text(encoding="utf-8"))
FUNCTIONS: list[dict[str, Any]] = CONFIG.get("functions", [])
# The keys appwrite-cli 25 accepts in a function entry (its schema is strict: anything else is an error).
FUNCTION_KEYS = {
    "$id", "name", "runtime", "path", "entrypoint", "commands", "execute", "events", "schedule", "timeout",
    "enabled", "logging", "scopes", "vars", "ignore", "deploymentRetention", "specification",
    "buildSpecification", "runtimeSpecification",
}  # fmt: skip
READ_SCOPES = {"rows.read", "tables.read", "databases.read", "documents.read", "collections.read"}
NEEDED_FOR_BUILD = ["pyproject.toml", "appwrite.json", "functions/http_api/dispatch.py", "services/settings.py",
                    "services/data/prices.toml", "models/ai_usage.py"]  # fmt: skip


def _ids(functions: list[dict[str, Any]]) -> list[str]:
    return [function["$id"] for function in functions]


def _load_entrypoint(function: dict[str, Any]) -> Any:
    path = ROOT / function.get("path", ".") / function["entrypoint"]
    spec = importlib.util.spec_from_file_location(f"appwrite_json_{function['$id'].replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _setting_names() -> set[str]:
    names = set()
    for field_name, field in Settings.model_fields.items():
        names.add(f"AI_USAGE_{field_name.upper()}")
        if isinstance(field.validation_alias, AliasChoices):
            names.update(c.upper() for c in field.validation_alias.choices if isinstance(c, str))
    return names


def test_the_file_names_a_project_and_declares_functions() -> None:
    assert CONFIG["projectId"]
    assert FUNCTIONS
    assert len(set(_ids(FUNCTIONS))) == len(FUNCTIONS)


@pytest.mark.parametrize("function", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_each_function_uses_only_keys_the_cli_accepts(function: dict[str, Any]) -> None:
    assert set(function) <= FUNCTION_KEYS
    assert {"$id", "name", "runtime", "entrypoint", "commands", "execute", "scopes", "timeout"} <= set(function)


@pytest.mark.parametrize("function", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_each_entrypoint_exists_and_exposes_main_taking_the_context(function: dict[str, Any]) -> None:
    module = _load_entrypoint(function)

    assert callable(module.main)
    assert list(inspect.signature(module.main).parameters) == ["context"]


@pytest.mark.parametrize("function", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_each_function_runs_python_3_12_or_newer_and_installs_the_project(function: dict[str, Any]) -> None:
    match = re.fullmatch(r"python-(\d+)\.(\d+)", function["runtime"])

    assert match is not None, function["runtime"]
    assert (int(match[1]), int(match[2])) >= (3, 12)
    assert function["commands"] == "pip install ."
    assert function.get("path", ".") == "."  # the whole project is the deployment: pip installs it


@pytest.mark.parametrize("function", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_each_timeout_fits_a_synchronous_execution(function: dict[str, Any]) -> None:
    assert 1 <= function["timeout"] <= 30  # Appwrite cuts synchronous executions at 30 s


@pytest.mark.parametrize("function", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_the_ignore_list_keeps_everything_the_build_needs(function: dict[str, Any]) -> None:
    patterns = function.get("ignore", [])

    for needed in NEEDED_FOR_BUILD:
        assert (ROOT / needed).exists(), needed
        parts = Path(needed).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        assert not any(fnmatch.fnmatch(p, pattern) for p in prefixes for pattern in patterns), needed
    assert ".venv" in patterns


@pytest.mark.parametrize("function", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_vars_are_known_settings_and_hold_no_secrets(function: dict[str, Any]) -> None:
    known = _setting_names()

    for name, value in function.get("vars", {}).items():
        assert name in known, f"{name} is not a setting"
        assert "KEY" not in name, f"{name} is a secret: set it in the console, not in appwrite.json"
        assert isinstance(value, str)


def _http_functions() -> list[dict[str, Any]]:
    # A scheduled function (a cron `schedule`: usage-alerts) serves no route; every other one is an HTTP group.
    return [function for function in FUNCTIONS if not function.get("schedule")]


def test_the_functions_serve_every_route_with_permissions_that_fit() -> None:
    http = _http_functions()
    assert [f["$id"] for f in FUNCTIONS if f.get("schedule")] == ["usage-alerts"]
    groups = {function["$id"]: _load_entrypoint(function).function.group for function in http}
    served = {route for group in groups.values() for route in routes_for(group)}
    by_group = {groups[function["$id"]]: function for function in http}

    assert served == set(ROUTES)
    assert by_group["ingest"]["execute"] == []  # API keys (the game backend) only
    assert by_group["reports"]["execute"] == ["users"]
    assert by_group["admin"]["execute"] == ["label:admin"]  # Appwrite admits admins only: never `any`
    # The page, through the function's domain (which needs `any`); it holds no data and reads no store.
    assert by_group["dashboard"]["execute"] == ["any"] and by_group["dashboard"]["scopes"] == []
    assert "rows.write" in by_group["ingest"]["scopes"]
    for group in ("reports", "admin"):  # readers get read scopes only
        assert set(by_group[group]["scopes"]) <= READ_SCOPES


def test_the_dashboard_runs_the_admin_function_declared_here() -> None:
    # usage-dashboard's page executes the admin function by id: its default id (or its var) is that function's $id.
    from functions.usage_dashboard.page_function import ADMIN_FUNCTION_VARIABLE

    groups = {_load_entrypoint(function).function.group: function for function in _http_functions()}
    default = Settings.model_fields["dashboard_admin_function_id"].default
    configured = groups["dashboard"].get("vars", {}).get(ADMIN_FUNCTION_VARIABLE, default)

    assert configured == groups["admin"]["$id"] == "usage-admin"


def test_declared_tables_point_at_a_declared_database() -> None:
    if "tables" not in CONFIG:
        pytest.skip("no tables declared yet")
    databases = {database["$id"] for database in CONFIG.get("tablesDB", [])}
    for table in CONFIG["tables"]:
        assert table["databaseId"] in databases
        assert "rowSecurity" in table  # appwrite-cli defaults it to true when omitted, unlike the API
        for column in table.get("columns", []):
            assert {"key", "type"} <= set(column)


@pytest.mark.parametrize("function", FUNCTIONS, ids=_ids(FUNCTIONS))
def test_a_function_that_treats_no_user_as_the_server_admits_no_guests(function: dict[str, Any]) -> None:
    # No user id comes from an API key, an anonymous caller or a custom domain (which needs `any`/`guests`):
    # appwrite-facts.md 4.2, 4.4. Only where execute admits neither is "no user" an API key.
    value = function.get("vars", {}).get("AI_USAGE_APPWRITE_NO_USER_IS_SERVER", "false")
    if TypeAdapter(bool).validate_python(value):
        assert not {"any", "guests"} & set(function["execute"]), function["$id"]
