"""Appwrite function ``usage-ingest``: POST /v1/usage and /v1/usage/batch.

``execute`` is empty in appwrite.json, so only API keys (the game backend) can run it; a signed-in user who
somehow reaches it is a ``user`` and gets 403 on both routes.
"""

from typing import Any

from functions.appwrite_adapter import AppwriteFunction
from functions.http_api import Role

function = AppwriteFunction("ingest", signed_in_role=Role.USER)


def main(context: Any) -> Any:
    """The open-runtimes entry point."""
    return function(context)
