"""The route table: one list that drives matching (404/405), permissions, body limits and the OpenAPI document.

Each route names the Appwrite functions (``groups``) that serve it, so every runtime agrees on who serves what:
``ingest`` (server keys only), ``reports`` (signed-in users: their own data; users listed as admins by id: all
of it, the global cost included), ``admin`` (users Appwrite admits by their ``admin`` label), and ``dashboard``
(anyone: the admin dashboard's page only, which reads everything else through executions of ``admin``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from models.ai_usage import UsageEvent
from models.analytics import (
    Breakdown,
    LatencyReport,
    RealtimeMetrics,
    TenantDailyUsage,
    TenantMonthlyUsage,
    TenantUsageSummary,
    TimeSeries,
    TopOperations,
    TopPlayers,
)
from models.summaries import DailyUsageSummary, GlobalDailyUsage, MonthlyUsageSummary, SessionUsage
from services.errors import NotFound
from services.usage_tracking_service import MAX_BATCH_EVENTS

from . import analytics_api as api
from . import dashboard, handlers, otlp
from .errors import RouteMethodNotAllowed
from .request import ApiRequest, Role
from .responses import ApiResponse
from .schemas import (
    BatchRequest,
    BatchResponse,
    DayQuery,
    Health,
    LoggedUsage,
    MonthQuery,
    OtlpTracesRequest,
    OtlpTracesResponse,
    PriceInfo,
    PriceList,
    RequestCountResponse,
    maximal_event_bytes,
)

KIB = 1024
MIB = 1024 * KIB
DEFAULT_BODY_LIMIT = 64 * KIB  # routes that take no body, and unknown paths
API_GROUPS = ("ingest", "reports", "admin")  # the functions answering the JSON routes
GROUPS = (*API_GROUPS, "dashboard")
# A thousand maximal events, rounded up to whole MiB (8 MiB today): see ``maximal_event_bytes``.
BATCH_BODY_LIMIT = -(-MAX_BATCH_EVENTS * maximal_event_bytes() // MIB) * MIB

SERVER = frozenset({Role.SERVER})
SERVER_ADMIN = frozenset({Role.SERVER, Role.ADMIN})
AUTHENTICATED = frozenset({Role.SERVER, Role.ADMIN, Role.USER})
ANYONE = frozenset(Role)

_PARAM = re.compile(r"\{(\w+)(:path)?\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # "{name}" is one path segment, "{name:path}" the rest of the path (slashes included)
    name: str  # the OpenAPI operationId
    summary: str
    handler: Callable[[handlers.Call], Any]
    roles: frozenset[Role]
    groups: frozenset[str]
    response: type[BaseModel] | None
    status: int = 200
    other_statuses: tuple[int, ...] = ()  # statuses besides ``status`` that answer with ``response``
    owner_param: str | None = None  # a ``user`` caller may use the route when this path parameter is their id
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None  # documents the body; handlers validate it themselves
    body_limit: int = DEFAULT_BODY_LIMIT
    content_types: tuple[str, ...] = ()  # what a non-JSON success answers with (a file, a page)
    # Re-encodes this route's error answers for its callers (OTLP's protobuf Status); None: the API's JSON errors.
    error_answer: Callable[[ApiRequest, ApiResponse], ApiResponse] | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts, last = [], 0
        for match in _PARAM.finditer(self.pattern):
            parts.append(re.escape(self.pattern[last : match.start()]))
            parts.append(f"(?P<{match[1]}>{'.+' if match[2] else '[^/]+'})")
            last = match.end()
        parts.append(re.escape(self.pattern[last:]))
        object.__setattr__(self, "regex", re.compile("".join(parts)))

    @property
    def path_params(self) -> list[str]:
        return [match[1] for match in _PARAM.finditer(self.pattern)]

    @property
    def openapi_path(self) -> str:
        return _PARAM.sub(lambda m: "{" + m[1] + "}", self.pattern)


READERS = frozenset({"reports", "admin"})
EVERY_API_GROUP = frozenset(API_GROUPS)

ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/usage", "logUsage", "Log one AI request (idempotent on request_id)",
          handlers.log_usage, SERVER, frozenset({"ingest"}), LoggedUsage, status=201, other_statuses=(200,),
          body=UsageEvent, body_limit=1 * MIB),
    Route("POST", "/v1/usage/batch", "logUsageBatch", "Log up to 1,000 AI requests; one result per event",
          handlers.log_usage_batch, SERVER, frozenset({"ingest"}), BatchResponse, body=BatchRequest,
          body_limit=BATCH_BODY_LIMIT),
    Route("POST", "/v1/traces", "exportTraces",
          "OpenTelemetry GenAI spans (OTLP/HTTP, JSON or protobuf): one usage event per span; OTLP partial success",
          otlp.export_traces, SERVER, frozenset({"ingest"}), OtlpTracesResponse, body=OtlpTracesRequest,
          body_limit=otlp.OTLP_BODY_LIMIT, content_types=(otlp.PROTOBUF_ANSWER,), error_answer=otlp.error_answer),
    Route("GET", "/v1/users/{user_id}/usage/daily", "getDailyUsage", "One user's usage on a UTC day",
          handlers.daily_usage, SERVER_ADMIN, READERS, DailyUsageSummary, owner_param="user_id",
          query=api.TenantDayQuery),
    Route("GET", "/v1/users/{user_id}/cost/monthly", "getMonthlyCost", "One user's cost in a calendar month",
          handlers.monthly_cost, SERVER_ADMIN, READERS, MonthlyUsageSummary, owner_param="user_id",
          query=api.TenantMonthQuery),
    Route("GET", "/v1/users/{user_id}/requests/today", "getRequestCountToday",
          "The rate limiter's count of today's requests (fail-open)", handlers.requests_today, SERVER_ADMIN,
          READERS, RequestCountResponse, query=api.TenantQuery),
    Route("GET", "/v1/sessions/{session_id}/usage", "getSessionUsage", "What one play session cost",
          handlers.session_usage, SERVER_ADMIN, READERS, SessionUsage, query=api.TenantQuery),
    Route("GET", "/v1/tenants/{tenant_id}/usage/daily", "getTenantDailyUsage",
          "One tenant's usage on a UTC day, by provider", api.tenant_daily, SERVER_ADMIN, READERS,
          TenantDailyUsage, query=DayQuery),
    Route("GET", "/v1/tenants/{tenant_id}/usage/monthly", "getTenantMonthlyUsage",
          "One tenant's usage in a calendar month, by provider", api.tenant_monthly, SERVER_ADMIN, READERS,
          TenantMonthlyUsage, query=MonthQuery),
    Route("GET", "/v1/tenants/{tenant_id}/usage/summary", "getTenantUsageSummary",
          "One tenant's last N days by feature, task type and provider", api.tenant_summary, SERVER_ADMIN,
          READERS, TenantUsageSummary, query=api.DaysQuery),
    Route("GET", "/v1/admin/cost/daily", "getGlobalDailyCost", "Everyone's cost on a UTC day",
          handlers.global_daily_cost, SERVER_ADMIN, READERS, GlobalDailyUsage, query=DayQuery),
    Route("GET", "/v1/admin/metrics/realtime", "getRealtimeMetrics", "The last 24 hours by hour, per provider",
          api.realtime, SERVER_ADMIN, READERS, RealtimeMetrics, query=api.EveryTenantQuery),
    Route("GET", "/v1/admin/metrics/aggregates", "getAggregates",
          "A time series by hour, day or month, with filters", api.aggregates, SERVER_ADMIN, READERS, TimeSeries,
          query=api.SeriesQuery),
    Route("GET", "/v1/admin/costs/by-provider", "getCostByProvider", "Cost, requests and latency by provider",
          api.cost_by_provider, SERVER_ADMIN, READERS, Breakdown, query=api.RangeQuery),
    Route("GET", "/v1/admin/costs/by-model", "getCostByModel", "Cost, requests and latency by model",
          api.cost_by_model, SERVER_ADMIN, READERS, Breakdown, query=api.RangeQuery),
    Route("GET", "/v1/admin/performance/latency", "getLatencyPercentiles",
          "p50/p95/p99 latency and success rate per provider and model", api.latency, SERVER_ADMIN, READERS,
          LatencyReport, query=api.LatencyQuery),
    Route("GET", "/v1/admin/top/players", "getTopPlayers", "The players who cost the most over a day or range",
          api.top_players, SERVER_ADMIN, READERS, TopPlayers, query=api.TopPlayersQuery),
    Route("GET", "/v1/admin/top/operations", "getTopOperations", "Task type x provider by cost",
          api.top_operations, SERVER_ADMIN, READERS, TopOperations, query=api.TopQuery),
    Route("GET", "/v1/admin/errors/by-provider", "getErrorsByProvider", "Error rate by provider",
          api.errors_by_provider, SERVER_ADMIN, READERS, api.ErrorRates, query=api.RangeQuery),
    Route("GET", "/v1/admin/export", "exportEvents", "Raw events as CSV or JSON Lines, streamed page by page",
          api.export, SERVER_ADMIN, READERS, None, query=api.ExportQuery,
          content_types=(api.CSV_TYPE, api.JSONL_TYPE)),
    Route("GET", "/v1/admin/alerts", "listSentAlerts", "The alerts sent (or being sent), most recent first",
          dashboard.alert_history, SERVER_ADMIN, READERS, dashboard.AlertHistory, query=dashboard.AlertsQuery),
    # The page holds no data (its script reads the routes above with the admin key, or on Appwrite through the
    # admin function as the signed-in admin), so anyone may load it: usage-dashboard serves it to anyone.
    Route("GET", "/dashboard", "dashboard", "The admin dashboard: an HTML page reading the admin routes",
          dashboard.dashboard_page, ANYONE, frozenset({"dashboard"}), None, content_types=(dashboard.HTML_TYPE,)),
    Route("GET", "/v1/prices", "listPrices", "The price book in force now, USD per 1K tokens",
          handlers.list_prices, AUTHENTICATED, READERS, PriceList),
    Route("GET", "/v1/prices/{model:path}", "getModelPrice",
          "The price that applies to a model now (the default price when unknown)", handlers.model_price,
          AUTHENTICATED, READERS, PriceInfo),
    Route("GET", "/healthz", "health", "Liveness and store reachability", handlers.health, ANYONE, EVERY_API_GROUP,
          Health, other_statuses=(503,)),
    Route("GET", "/openapi.json", "openapi", "This document", handlers.openapi_document, ANYONE, EVERY_API_GROUP,
          None),
)  # fmt: skip


def routes_for(group: str | None) -> tuple[Route, ...]:
    """The routes one function serves; ``None`` is every route (the all-routes target and ``ai-usage serve``)."""
    if group is None:
        return ROUTES
    if group not in GROUPS:
        raise ValueError(f"unknown function group {group!r}; expected one of {GROUPS}")
    return tuple(route for route in ROUTES if group in route.groups)


def match(method: str, path: str, group: str | None = None) -> tuple[Route, dict[str, str]]:
    """The route for a request and its path parameters; ``NotFound`` or ``RouteMethodNotAllowed`` otherwise."""
    allowed: list[str] = []
    for route in routes_for(group):
        found = route.regex.fullmatch(path)
        if found is None:
            continue
        if route.method == method:
            return route, found.groupdict()
        allowed.append(route.method)
    if allowed:
        raise RouteMethodNotAllowed(method, sorted(set(allowed)))
    raise NotFound(f"no route for {path}")


def body_limit(method: str, path: str, group: str | None = None) -> int:
    """How many body bytes an adapter should read for this request (the route's limit, or a small default)."""
    try:
        route, _ = match(method, path, group)
    except (NotFound, RouteMethodNotAllowed):
        return DEFAULT_BODY_LIMIT
    return route.body_limit
