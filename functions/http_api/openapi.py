"""An OpenAPI 3.1 document generated from the route table and the pydantic models, never written by hand."""

from __future__ import annotations

from functools import cache
from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .request import Role
from .routes import Route, routes_for
from .schemas import ErrorBody

TITLE = "AI usage tracker"
_ERRORS = {
    400: "Malformed request: the body is not JSON",
    401: "Missing or invalid API key",
    403: "The caller's role may not use this route",
    404: "No such resource",
    413: "Body too large",
    422: "Invalid input; `fields` names each bad field",
    503: "The store cannot answer now; retry after `Retry-After` seconds",
}


def _version() -> str:
    try:
        return metadata.version("ai-usage-tracker")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0"


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        variants = [v for v in prop.pop("anyOf", []) if v.get("type") != "null"]
        if len(variants) == 1:
            prop.update(variants[0])
        prop.pop("default", None)
        prop.pop("title", None)
        description = prop.pop("description", None)
        parameter = {"name": name, "in": "query", "required": False, "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(route: Route, refs: dict[tuple[type[BaseModel], JsonSchemaMode], Any]) -> dict[str, Any]:
    error_ref = refs[(ErrorBody, "serialization")]
    ok_schema = refs[(route.response, "serialization")] if route.response else {"type": "object"}
    # JSON (when the route has a model), and the other media types it may answer with (a file, a page, protobuf).
    content = _json(ok_schema) if route.response is not None or not route.content_types else {}
    content.update({media: {"schema": {"type": "string"}} for media in route.content_types})
    responses: dict[str, Any] = {str(route.status): {"description": "Success", "content": content}}
    for status in route.other_statuses:
        responses[str(status)] = {"description": _ERRORS.get(status, "Success"), "content": _json(ok_schema)}
    errors: set[int] = set()
    if Role.ANONYMOUS not in route.roles:
        errors |= {401, 403, 503}
    if route.path_params:
        errors |= {404, 422}  # a path value can break a rule too (a blank model name)
    if route.query is not None:
        errors.add(422)
    if route.body is not None:
        errors |= {400, 413, 422}
    for status in sorted(errors - {int(s) for s in responses}):
        responses[str(status)] = {"description": _ERRORS[status], "content": _json(error_ref)}
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "responses": responses,
        "security": [] if Role.ANONYMOUS in route.roles else [{"bearerAuth": []}],
        "x-roles": sorted(role.value for role in route.roles if role is not Role.ANONYMOUS)
        + (["owner"] if route.owner_param else []),
        "x-appwrite-functions": sorted(route.groups),
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in route.path_params
    ]
    if route.query is not None:
        parameters += _query_parameters(route.query)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _json(refs[(route.body, "validation")]),
            "description": f"At most {route.body_limit} bytes",
        }
    return operation


@cache
def openapi_document(group: str | None = None) -> dict[str, Any]:
    """The document for the routes one function serves (``None``: every route)."""
    routes = routes_for(group)
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for route in routes:
        if route.response is not None:
            wanted.append((route.response, "serialization"))
        if route.body is not None:
            wanted.append((route.body, "validation"))
    refs, definitions = models_json_schema(list(dict.fromkeys(wanted)), ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE if group is None else f"{TITLE}: {group} function",
            "version": _version(),
            "description": "Money is `estimated_cost` (a JSON number, USD, for display) plus "
            "`estimated_cost_exact` (a decimal string, exact). Every error is "
            '`{"error": {"code", "message", "fields": [{"field", "message"}]}}`.',
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
