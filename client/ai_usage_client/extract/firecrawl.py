"""Firecrawl: billed in credits, which each answer reports.

``firecrawl-py`` 4.x (``firecrawl/v2/types.py``): a scrape returns a ``Document`` whose
``metadata.credits_used`` is the credits spent; crawl, batch-scrape, extract and agent jobs carry
``credits_used``. The HTTP API spells them ``data.metadata.creditsUsed`` and ``creditsUsed``
(https://docs.firecrawl.dev/billing). Map and search report none: use Firecrawl's rate card (README's table).
The answers name no model, so the model is the operation (``firecrawl/scrape``...), as the price book spells it.
"""

from __future__ import annotations

from typing import Any

from ._common import UnrecognisedResponse, base, count, get, get2, put

PROVIDER = "firecrawl"


def credits_of(response: Any) -> tuple[str, int] | None:
    """(operation, credits) when ``response`` is a Firecrawl answer that reports its credits, else None."""
    credits = get2(response, "credits_used", "creditsUsed")
    if credits is not None:
        # A job: crawl and batch-scrape jobs report progress (total/completed); extract and agent jobs do not.
        operation = "crawl" if get(response, "total") is not None else "extract"
        return operation, count(credits)
    data = get(response, "data")  # the HTTP answer of a scrape wraps the document: {"success", "data": {...}}
    document = data if isinstance(data, dict) and get(response, "success") is not None else response
    credits = get2(get(document, "metadata"), "credits_used", "creditsUsed")
    if credits is not None:
        return "scrape", count(credits)
    return None


def fields(response: Any, provider: str | None) -> dict[str, Any]:
    found = credits_of(response)
    if found is None:
        raise UnrecognisedResponse(
            "the Firecrawl answer reports no credits (metadata.credits_used / credits_used): map and search do "
            "not; record their credits from Firecrawl's rate card with credits="
        )
    operation, credits = found
    return put(base(f"firecrawl/{operation}", provider or PROVIDER), credits=credits)
