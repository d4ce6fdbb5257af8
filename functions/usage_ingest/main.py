"""Appwrite function ``usage-ingest``: POST /v1/usage and /v1/usage/batch.

``execute`` is empty in appwrite.json, so no end user can run it: only API keys (the game backend) can, and
Appwrite refuses custom-domain requests to it (they need ``any`` or ``guests``; appwrite-facts.md 4.4). An
execution without a user id is the server only with ``AI_USAGE_APPWRITE_NO_USER_IS_SERVER=true``, which this
deployment sets; without it, or if the function ever admits guests, anyone reaching it is anonymous and gets 401
instead of logging usage. A signed-in user who somehow reaches it is a ``user`` and gets 403 on both routes.
"""

from typing import Any

from functions.appwrite_adapter import AppwriteFunction
from functions.http_api import Role

function = AppwriteFunction("ingest", signed_in_role=Role.USER)


def main(context: Any) -> Any:
    """The open-runtimes entry point."""
    return function(context)
