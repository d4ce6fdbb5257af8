"""Appwrite function ``usage-admin``: global daily cost plus every read route.

``execute: ["label:admin"]``: Appwrite admits only users labelled ``admin`` (add ``user:<id>`` entries for the
ids in ``AI_USAGE_ADMIN_USER_IDS``), so a signed-in executor here is an admin. An execution without a user id
is anonymous (401) unless ``AI_USAGE_APPWRITE_NO_USER_IS_SERVER=true``; the game backend reads through
``usage-reports``, so this function does not need it.
"""

from typing import Any

from functions.appwrite_adapter import AppwriteFunction
from functions.http_api import Role

function = AppwriteFunction("admin", signed_in_role=Role.ADMIN)


def main(context: Any) -> Any:
    """The open-runtimes entry point."""
    return function(context)
