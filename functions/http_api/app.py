"""The object every adapter hands to ``dispatch``: the tracking service and the auth configuration.

A process builds it once (cold start) and reuses it; ``PROCESS_APP`` holds that one instance for the
functions-framework targets, built on first use so importing the targets reads no environment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from services.log_config import configure_logging
from services.pricing import PriceBook
from services.settings import Settings
from services.store import UsageStore, open_store
from services.usage_tracking_service import UsageTrackingService

from .auth import AuthConfig


@dataclass
class ApiApp:
    service: UsageTrackingService
    auth: AuthConfig

    @classmethod
    def from_settings(
        cls, settings: Settings, *, store: UsageStore | None = None, price_book: PriceBook | None = None
    ) -> ApiApp:
        service = UsageTrackingService(
            store=store if store is not None else open_store(settings),
            price_book=price_book if price_book is not None else PriceBook.load(settings.prices_file),
            settings=settings,
        )
        return cls(service=service, auth=AuthConfig.from_settings(settings))

    def close(self) -> None:
        self.service.close()


def app_from_environment() -> ApiApp:
    """Cold start outside Appwrite: settings from the environment, logging configured, the store opened."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return ApiApp.from_settings(settings)


class AppSlot:
    """One lazily built ``ApiApp`` per process, replaceable (``ai-usage serve`` and tests set their own)."""

    def __init__(self, factory: Callable[[], ApiApp] = app_from_environment) -> None:
        self._factory = factory
        self._app: ApiApp | None = None
        self._lock = threading.Lock()

    def get(self) -> ApiApp:
        app = self._app
        if app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
                app = self._app
        return app

    def set(self, app: ApiApp | None) -> None:
        """Use this app from now on (``None``: build again from the factory on next use)."""
        with self._lock:
            self._app = app

    def configure(self, factory: Callable[[], ApiApp]) -> None:
        """Build the app with ``factory`` on first use; forked workers each build their own after the fork."""
        with self._lock:
            self._factory = factory
            self._app = None


PROCESS_APP = AppSlot()
