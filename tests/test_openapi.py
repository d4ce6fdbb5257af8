"""The OpenAPI document matches the server: generated from the route table, and fuzzed with schemathesis.

The conformance run sends schemathesis-generated requests (valid and invalid) to a live server with the server
key; no input may make it answer 5xx, and every answer must match the document.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from functions.http_api.openapi import openapi_document
from functions.http_api.routes import ROUTES, routes_for
from tests.http_harness import SERVER_KEY, LiveServer, live_server, make_app


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    app = make_app(Path(tmp_path_factory.mktemp("openapi")) / "usage.db")
    with live_server(app) as server:
        yield server
    app.close()


# The document the server serves at /openapi.json (checked below to be the same). The key goes through the
# document's bearerAuth scheme, so requests schemathesis breaks on purpose (no Authorization) stay broken.
_config = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearerAuth": {"bearer": SERVER_KEY}}}})
schema = schemathesis.openapi.from_dict(openapi_document(), config=_config)


# CI runs a fixed set of 25 examples per route so a red build always reproduces; OPENAPI_EXAMPLES=300 (say)
# explores fresh random ones locally.
_EXAMPLES = os.environ.get("OPENAPI_EXAMPLES")


@schema.parametrize()
@settings(
    max_examples=int(_EXAMPLES or 25),
    derandomize=_EXAMPLES is None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_makes_the_server_fail_or_break_the_document(
    case: schemathesis.Case, live: LiveServer
) -> None:
    response = case.call(base_url=live.url)

    assert response.status_code < 500, response.text
    # Every other default check runs too (status codes, content types, response schemas, negative data
    # refused). "Schema-valid data accepted" cannot hold: an event's cross-field rules (cached tokens within
    # input tokens, reasoning within output, no timestamp in the future) are not expressible in JSON Schema.
    case.validate_response(response, additional_checks=[not_a_server_error], excluded_checks=[positive_data_acceptance])


def test_the_served_document_is_the_generated_one(live: LiveServer) -> None:
    assert live.get("/openapi.json").json() == openapi_document()


def test_every_route_is_documented_once_with_its_method() -> None:
    document = openapi_document()

    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented == {(route.method, route.openapi_path) for route in ROUTES}


def test_each_function_documents_only_the_routes_it_serves() -> None:
    ingest = openapi_document("ingest")["paths"]

    assert set(ingest) == {route.openapi_path for route in routes_for("ingest")}
    assert "/v1/usage" in ingest and "/v1/admin/cost/daily" not in ingest


def test_money_is_documented_as_a_number_and_an_exact_decimal_string() -> None:
    schemas = openapi_document()["components"]["schemas"]

    daily = schemas["DailyUsageSummary"]["properties"]
    assert daily["estimated_cost"]["type"] == "number"
    assert daily["estimated_cost_exact"]["type"] == "string"


def test_public_routes_need_no_key_and_the_rest_need_a_bearer_key() -> None:
    paths = openapi_document()["paths"]

    assert paths["/healthz"]["get"]["security"] == []
    assert paths["/v1/usage"]["post"]["security"] == [{"bearerAuth": []}]
    assert "401" in paths["/v1/usage"]["post"]["responses"]
    assert "413" in paths["/v1/usage/batch"]["post"]["responses"]
