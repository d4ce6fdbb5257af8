"""Appwrite function ``usage-reports``: per-user summaries, the rate limiter's count, session cost, prices.

``execute: ["users"]``: a signed-in user (``x-appwrite-user-id``) reads only their own daily and monthly usage;
users listed in ``AI_USAGE_ADMIN_USER_IDS`` are admins and may read everything here, the global daily cost
included (labelled admins use ``usage-admin``). ``users`` admits neither guests nor custom-domain requests
(appwrite-facts.md 4.4), so an execution without a user id is an API key: the game backend, which this
deployment declares with ``AI_USAGE_APPWRITE_NO_USER_IS_SERVER=true``. Without that setting it is anonymous (401).
"""

from typing import Any

from functions.appwrite_adapter import AppwriteFunction
from functions.http_api import Role

function = AppwriteFunction("reports", signed_in_role=Role.USER)


def main(context: Any) -> Any:
    """The open-runtimes entry point."""
    return function(context)
