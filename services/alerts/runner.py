"""The scheduled check behind the ``usage-alerts`` Appwrite function, free of Appwrite's types.

Settings and the price book are built once per cold start; the store per execution, with the execution's key.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from services.alerts.check import check_alerts
from services.alerts.configured import config_from_settings, report_json
from services.alerts.delivery import WebhookSender
from services.errors import ValidationFailed
from services.log_config import configure_logging
from services.pricing import PriceBook
from services.settings import Settings
from services.store import open_store

log = structlog.get_logger("ai_usage.alerts")


class ScheduledCheck:
    """``settings`` builds the settings at the first execution (the Appwrite adapter adds the endpoint and
    project Appwrite injects); the price book is loaded once too."""

    def __init__(self, settings: Callable[[], Settings] = Settings) -> None:
        self._make_settings = settings
        self._settings: Settings | None = None
        self._price_book: PriceBook | None = None
        self._lock = threading.Lock()

    def _cold_start(self) -> tuple[Settings, PriceBook]:
        with self._lock:
            if self._settings is None:
                self._settings = self._make_settings()
            if self._price_book is None:
                configure_logging(self._settings.log_format, self._settings.log_level)
                self._price_book = PriceBook.load(self._settings.prices_file)
            return self._settings, self._price_book

    def __call__(self, raw_headers: Mapping[str, Any] | None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body): 200 when every rule was read, 500 otherwise (Appwrite marks the run failed)."""
        from services.usage_tracking_service import UsageTrackingService

        headers = {str(name).lower(): str(value) for name, value in (raw_headers or {}).items()}
        correlation_id = headers.get("x-appwrite-execution-id") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        try:
            settings, price_book = self._cold_start()
            config = config_from_settings(settings)
            store = open_store(settings, appwrite_key=headers.get("x-appwrite-key") or None)
        except ValidationFailed as exc:  # a bad rules file: say which key, fail the execution
            log.error("alerts.bad_configuration", fields=[f"{f.field}: {f.message}" for f in exc.fields])
            return 500, {"error": {"code": exc.code, "message": exc.message, "correlation_id": correlation_id}}
        except Exception:
            log.exception("alerts.unavailable")
            return 500, {"error": {"code": "internal_error", "correlation_id": correlation_id}}
        service = UsageTrackingService(store, price_book, settings=settings)
        try:
            report = check_alerts(service, config, WebhookSender(config.webhooks))
        except Exception:
            log.exception("alerts.check_failed")
            return 500, {"error": {"code": "internal_error", "correlation_id": correlation_id}}
        finally:
            service.close()
        return (500 if report.errors else 200), report_json(report)
