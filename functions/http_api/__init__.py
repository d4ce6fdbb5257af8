"""The HTTP surface of the tracker, independent of any runtime: routes, auth, errors, OpenAPI, dispatch.

Adapters (``functions/ff_targets.py`` for functions-framework, ``functions/<name>/main.py`` for Appwrite) turn
their runtime's request into an ``ApiRequest``, call ``dispatch`` and render the ``ApiResponse``.
"""

from .app import PROCESS_APP, ApiApp, AppSlot
from .auth import AuthConfig
from .dispatch import dispatch
from .request import ApiRequest, Caller, Role
from .responses import ApiResponse
from .routes import ROUTES, body_limit

__all__ = [
    "PROCESS_APP",
    "ROUTES",
    "ApiApp",
    "ApiRequest",
    "ApiResponse",
    "AppSlot",
    "AuthConfig",
    "Caller",
    "Role",
    "body_limit",
    "dispatch",
]
