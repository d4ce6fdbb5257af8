"""Alert rules and webhooks, read from a TOML file and checked key by key.

Every mistake names its key (``rule[2] "whale".threshold_usd: …``) and nothing is guessed. A file without
``[[rule]]`` entries keeps the default rules (so a file may only add webhooks); a file with rules replaces them.
Webhook URLs are secrets: no message here ever contains one, and their ``repr`` shows only the host.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from models.ai_usage import FieldError
from services.errors import ValidationFailed

MAX_RULE_NAME = 64
MAX_RULES_FILE_BYTES = 1024 * 1024  # a rules file is a few KiB; a MiB is not one
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class RuleKind(StrEnum):
    GLOBAL_COST = "global_cost"  # cost of the last 24 hours (rolling) or of the UTC day so far
    PLAYER_COST = "player_cost"  # one player's cost today
    PLAYER_REQUESTS = "player_requests"  # one player's requests today
    PROVIDER_ERRORS = "provider_errors"  # a provider's error rate over the last hour
    UNPRICED_MODELS = "unpriced_models"  # requests priced by a default or another host's rate today
    TENANT_BUDGET = "tenant_budget"  # a tenant's month-to-date cost against its monthly budget


class WebhookFormat(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    GENERIC = "generic"


@dataclass(frozen=True)
class Rule:
    name: str
    kind: RuleKind
    threshold: Decimal = Decimal(0)  # USD, a request count or a percent, by kind
    window: str = "24h"  # global_cost only: "24h" (rolling, by hour) or "day" (the UTC day so far)
    tenant: str | None = None  # None: every tenant; "": events logged without a tenant
    min_requests: int = 0  # provider_errors only
    monthly_budget_usd: Decimal = Decimal(0)  # tenant_budget only
    shares: tuple[Decimal, ...] = ()  # tenant_budget only: fractions of the budget, each alerting once a month
    max_players: int = 1000  # player rules: how many of the day's players are read at most


@dataclass(frozen=True)
class Webhook:
    url: str = field(repr=False)  # a secret: Slack and Discord URLs carry their token
    format: WebhookFormat = WebhookFormat.GENERIC
    timeout_seconds: float = 5.0
    attempts: int = 3
    backoff_seconds: float = 0.5

    @property
    def host(self) -> str:
        """What logs and messages may name: the host (and port), never the path that holds the token."""
        parts = urlsplit(self.url)
        return parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"

    def __repr__(self) -> str:
        return f"Webhook(host={self.host!r}, format={self.format.value!r})"


@dataclass(frozen=True)
class AlertConfig:
    rules: tuple[Rule, ...]
    webhooks: tuple[Webhook, ...] = ()


DEFAULT_RULES = (
    Rule("global-cost-24h", RuleKind.GLOBAL_COST, threshold=Decimal(50), window="24h"),
    Rule("provider-errors", RuleKind.PROVIDER_ERRORS, threshold=Decimal(25), min_requests=20),
    Rule("unpriced-models", RuleKind.UNPRICED_MODELS),
)

# Keys each kind accepts besides name and kind; the first of a tuple is required.
_THRESHOLD_KEY = {
    RuleKind.GLOBAL_COST: "threshold_usd",
    RuleKind.PLAYER_COST: "threshold_usd",
    RuleKind.PLAYER_REQUESTS: "threshold",
    RuleKind.PROVIDER_ERRORS: "threshold_percent",
}
_OPTIONAL = {
    RuleKind.GLOBAL_COST: {"window", "tenant"},
    RuleKind.PLAYER_COST: {"tenant", "max_players"},
    RuleKind.PLAYER_REQUESTS: {"tenant", "max_players"},
    RuleKind.PROVIDER_ERRORS: {"min_requests", "tenant"},
    RuleKind.UNPRICED_MODELS: {"tenant"},
    RuleKind.TENANT_BUDGET: {"shares"},
}
_WEBHOOK_KEYS = {"url", "format", "timeout_seconds", "attempts", "backoff_seconds"}


class _Errors:
    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[FieldError] = []

    def add(self, key: str, message: str) -> None:
        self.found.append(FieldError(field=key, message=message))

    def raise_any(self) -> None:
        if self.found:
            raise ValidationFailed(self.found, f"invalid alert rules in {self.source}")


def load_config(path: Path | str | None, extra_webhook_urls: Sequence[str] = ()) -> AlertConfig:
    """The rules and webhooks of a TOML file, or the defaults when ``path`` is None; ``extra_webhook_urls``
    (from a secret setting, say) are added as webhooks whose format follows their host."""
    if path is None:
        return parse_config({}, "the defaults", extra_webhook_urls)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_RULES_FILE_BYTES + 1)  # bounded: --rules /dev/zero must not fill the memory
    except OSError as exc:
        raise _file_error(path, f"cannot be read: {exc.strerror}") from exc
    if len(raw) > MAX_RULES_FILE_BYTES:
        raise _file_error(path, f"is larger than {MAX_RULES_FILE_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # TOML is UTF-8; tomllib.load raises this, not a TOMLDecodeError
        raise _file_error(path, f"is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _file_error(path, f"is not valid TOML: {exc}") from exc
    except RecursionError as exc:  # arrays nested a thousand deep
        raise _file_error(path, "is not valid TOML: nested too deeply") from exc
    except ValueError as exc:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise _file_error(path, "is not valid TOML: holds a number too long to read") from exc
    return parse_config(doc, str(path), extra_webhook_urls)


def _file_error(path: Path | str, message: str) -> ValidationFailed:
    # The path is said: it came from --rules or AI_USAGE_ALERTS_FILE, and the reader must know which.
    return ValidationFailed([FieldError(field="alerts_file", message=f"{message} ({path})")])


def parse_config(
    doc: Mapping[str, Any], source: str = "the rules", extra_webhook_urls: Sequence[str] = ()
) -> AlertConfig:
    errors = _Errors(source)
    for key in doc:
        if key not in ("rule", "webhook"):
            errors.add(key, "unknown key (expected [[rule]] and [[webhook]] tables)")
    rules = tuple(_rules(doc.get("rule"), errors)) if "rule" in doc else DEFAULT_RULES
    webhooks = list(_webhooks(doc.get("webhook", []), errors))
    for index, url in enumerate(extra_webhook_urls):
        webhooks.extend(_webhooks([{"url": url}], errors, f"webhook_urls[{index}]"))
    errors.raise_any()
    return AlertConfig(rules=rules, webhooks=tuple(webhooks))


def _rules(raw: object, errors: _Errors) -> list[Rule]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        errors.add("rule", "must be an array of tables ([[rule]])")
        return []
    rules: list[Rule] = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        name = item.get("name")
        where = f"rule[{index}]" + (f" ({name})" if isinstance(name, str) and NAME_PATTERN.fullmatch(name) else "")
        rule = _rule(item, where, errors)
        if rule is None:
            continue
        if rule.name in names:
            errors.add(f"{where}.name", "is used by another rule (names identify what was sent)")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _rule(item: dict[str, Any], where: str, errors: _Errors) -> Rule | None:
    before = len(errors.found)
    name = item.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        errors.add(f"{where}.name", f"is required: 1 to {MAX_RULE_NAME} letters, digits, '_', '.' or '-'")
    try:
        kind = RuleKind(item.get("kind"))
    except ValueError:
        errors.add(f"{where}.kind", f"must be one of {', '.join(k.value for k in RuleKind)}")
        return None
    allowed = {"name", "kind", *_OPTIONAL[kind]}
    allowed |= {_THRESHOLD_KEY[kind]} if kind in _THRESHOLD_KEY else set()
    allowed |= {"monthly_budget_usd", "tenant"} if kind is RuleKind.TENANT_BUDGET else set()
    for key in item:
        if key not in allowed:
            errors.add(f"{where}.{key}", f"is not a key of a {kind.value} rule (allowed: {', '.join(sorted(allowed))})")
    values: dict[str, Any] = {}
    if kind in _THRESHOLD_KEY:
        key = _THRESHOLD_KEY[kind]
        high = Decimal(100) if kind is RuleKind.PROVIDER_ERRORS else None
        values["threshold"] = _number(item, key, where, errors, required=True, high=high)
    if "window" in item:
        if item["window"] not in ("24h", "day"):
            errors.add(f"{where}.window", 'must be "24h" (the last 24 hours, by hour) or "day" (the UTC day so far)')
        values["window"] = item["window"]
    if "tenant" in item or kind is RuleKind.TENANT_BUDGET:
        tenant = item.get("tenant")
        if not isinstance(tenant, str) or len(tenant) > 128:
            errors.add(f"{where}.tenant", 'must be a tenant id of at most 128 characters ("" for events without one)')
        values["tenant"] = tenant
    if "min_requests" in item:
        values["min_requests"] = _integer(item, "min_requests", where, errors, low=1)
    if "max_players" in item:
        values["max_players"] = _integer(item, "max_players", where, errors, low=1, high=1000)
    if kind is RuleKind.TENANT_BUDGET:
        values["monthly_budget_usd"] = _number(item, "monthly_budget_usd", where, errors, required=True, positive=True)
        shares = item.get("shares", [0.8, 1.0])
        if not isinstance(shares, list) or not shares:
            errors.add(f"{where}.shares", "must be a non-empty list of fractions of the budget, e.g. [0.8, 1.0]")
            shares = []
        parsed = [
            _number({"s": s}, "s", f"{where}.shares[{i}]", errors, high=Decimal(10)) for i, s in enumerate(shares)
        ]
        values["shares"] = tuple(sorted({s for s in parsed if s is not None and s > 0}))
    if len(errors.found) > before:
        return None
    return Rule(name=name, kind=kind, **values)  # type: ignore[arg-type]


def _number(
    item: dict[str, Any], key: str, where: str, errors: _Errors, *, required: bool = False,
    high: Decimal | None = None, positive: bool = False,
) -> Decimal | None:  # fmt: skip
    label = where if key == "s" else f"{where}.{key}"
    value = item.get(key)
    if value is None:
        if required:
            errors.add(label, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        errors.add(label, "must be a number")
        return None
    try:
        number = Decimal(str(value))  # str(): 0.1 from TOML is the decimal 0.1, not its binary neighbour
    except InvalidOperation:
        errors.add(label, "must be a number")
        return None
    if not number.is_finite() or number < 0 or (positive and number == 0) or (high is not None and number > high):
        bound = f" and at most {high}" if high is not None else ""
        errors.add(label, f"must be {'above' if positive else 'at least'} 0{bound}")
        return None
    return number


def _integer(item: dict[str, Any], key: str, where: str, errors: _Errors, *, low: int, high: int = 10**9) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.add(f"{where}.{key}", f"must be an integer from {low} to {high}")
        return low
    return value


def _webhooks(raw: object, errors: _Errors, label: str | None = None) -> list[Webhook]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        errors.add("webhook", "must be an array of tables ([[webhook]])")
        return []
    found = []
    for index, item in enumerate(raw):
        where = label or f"webhook[{index}]"
        before = len(errors.found)
        for key in item:
            if key not in _WEBHOOK_KEYS:
                errors.add(f"{where}.{key}", f"is not a webhook key (allowed: {', '.join(sorted(_WEBHOOK_KEYS))})")
        url = item.get("url")
        # Never echo the URL: it is the secret.
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            errors.add(f"{where}.url", "is required: an http:// or https:// URL (the value is not shown: a secret)")
            continue
        try:
            fmt = WebhookFormat(item["format"]) if "format" in item else guess_format(url)
        except ValueError:
            errors.add(f"{where}.format", f"must be one of {', '.join(f.value for f in WebhookFormat)}")
            continue
        timeout = _number(item, "timeout_seconds", where, errors, high=Decimal(60), positive=True)
        backoff = _number(item, "backoff_seconds", where, errors, high=Decimal(30))
        attempts = _integer(item, "attempts", where, errors, low=1, high=10) if "attempts" in item else 3
        if len(errors.found) == before:
            found.append(
                Webhook(
                    url=url,
                    format=fmt,
                    timeout_seconds=float(timeout) if timeout is not None else 5.0,
                    attempts=attempts,
                    backoff_seconds=float(backoff) if backoff is not None else 0.5,
                )
            )
    return found


def guess_format(url: str) -> WebhookFormat:
    """Slack's and Discord's incoming-webhook hosts have their own bodies; anything else gets the generic one."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "hooks.slack.com":
        return WebhookFormat.SLACK
    if host.removeprefix("ptb.").removeprefix("canary.") in ("discord.com", "discordapp.com") and "/webhooks/" in (
        parts.path
    ):
        return WebhookFormat.DISCORD
    return WebhookFormat.GENERIC
