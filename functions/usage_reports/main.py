"""Appwrite function ``usage-reports``: per-user summaries, the rate limiter's count, session cost, prices.

``execute: ["users"]``: a signed-in user (``x-appwrite-user-id``) reads only their own daily and monthly usage;
an API key (no user id) is the game backend; users listed in ``AI_USAGE_ADMIN_USER_IDS`` are admins and may
read everything here, the global daily cost included (labelled admins use ``usage-admin``).
"""

from typing import Any

from functions.appwrite_adapter import AppwriteFunction
from functions.http_api import Role

function = AppwriteFunction("reports", signed_in_role=Role.USER)


def main(context: Any) -> Any:
    """The open-runtimes entry point."""
    return function(context)
