"""Appwrite function ``usage-dashboard``: the admin dashboard's page (``GET /dashboard``), to anyone.

``execute: ["any"]`` and no scopes: a browser reaches it through the function's domain, which Appwrite allows only
for ``any`` or ``guests`` (appwrite-facts 4.4), and the page holds no data. The admin signs in on the page with their
Appwrite account; each figure is then an execution of ``usage-admin`` through Appwrite's API, which Appwrite runs
only for users its execute permission admits (``label:admin``). That function keeps its permission: never ``any``.
"""

from typing import Any

from functions.usage_dashboard.page_function import DashboardFunction

function = DashboardFunction()


def main(context: Any) -> Any:
    """The open-runtimes entry point."""
    return function(context)
