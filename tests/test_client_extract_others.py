"""usage_from_response on Replicate predictions, Firecrawl answers and ElevenLabs speech, and its refusals.

These SDKs are not test dependencies: their answers are read as the HTTP API's recorded JSON and as objects of
the SDKs' shapes (``replicate`` ``Prediction.metrics`` is a dict; ``firecrawl-py`` 4.x ``Document.metadata.
credits_used``; the ElevenLabs SDK's raw response exposes httpx ``Headers``).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2 as httpx  # openai 3.x and the others run on httpx2, the maintained fork of httpx
import pytest
from ai_usage_client.extract import UnrecognisedResponse, elevenlabs_usage, usage_from_response

DATA = Path(__file__).parent / "data" / "provider_responses"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def test_replicate_prediction_bills_compute_seconds_rounded_up() -> None:
    body = recorded("replicate_prediction.json")
    expected = {"model": "stability-ai/sdxl", "provider": "replicate", "compute_seconds": 7}  # 6.444169 s
    assert usage_from_response(body) == expected
    prediction = SimpleNamespace(**body)  # the SDK's Prediction: the same fields, metrics a dict
    assert usage_from_response(prediction) == expected


def test_a_replicate_prediction_still_running_is_refused_rather_than_billed_zero() -> None:
    body = recorded("replicate_prediction.json") | {"status": "processing", "metrics": {}}
    with pytest.raises(UnrecognisedResponse, match=r"'processing'.*predict_time.*wait\(\)"):
        usage_from_response(body)


def test_a_failed_replicate_prediction_without_metrics_bills_nothing() -> None:
    body = recorded("replicate_prediction.json") | {"status": "failed", "metrics": {}}
    assert usage_from_response(body) == {"model": "stability-ai/sdxl", "provider": "replicate"}


def test_firecrawl_scrape_reports_its_credits() -> None:
    expected = {"model": "firecrawl/scrape", "provider": "firecrawl", "credits": 5}
    assert usage_from_response(recorded("firecrawl_scrape.json")) == expected
    document = SimpleNamespace(markdown="# Inn", metadata=SimpleNamespace(credits_used=5, title="Inn"))
    assert usage_from_response(document) == expected


def test_firecrawl_jobs_report_their_credits() -> None:
    assert usage_from_response(recorded("firecrawl_crawl_job.json")) == {
        "model": "firecrawl/crawl",
        "provider": "firecrawl",
        "credits": 36,
    }
    job = SimpleNamespace(status="completed", total=3, completed=3, credits_used=3, data=[])
    assert usage_from_response(job)["credits"] == 3
    extract = SimpleNamespace(success=True, status="completed", data={"name": "x"}, credits_used=12)
    assert usage_from_response(extract) == {"model": "firecrawl/extract", "provider": "firecrawl", "credits": 12}


def test_elevenlabs_characters_come_from_the_character_cost_header() -> None:
    headers = httpx.Headers({"Character-Cost": "37", "request-id": "abc"})
    assert elevenlabs_usage("Hail and well met!", headers=headers, model="eleven_flash_v2_5") == {
        "model": "eleven_flash_v2_5",
        "provider": "elevenlabs",
        "characters": 37,
    }
    assert elevenlabs_usage(headers={"CHARACTER-COST": "9"})["characters"] == 9


def test_elevenlabs_without_the_header_counts_the_text() -> None:
    assert elevenlabs_usage("Hail and well met!") == {
        "model": "eleven_multilingual_v2",
        "provider": "elevenlabs",
        "characters": 18,
    }
    with pytest.raises(UnrecognisedResponse, match="character-cost"):
        elevenlabs_usage(headers={})


def test_elevenlabs_raw_response_is_read_from_its_header() -> None:
    raw = SimpleNamespace(headers=httpx.Headers({"character-cost": "120"}), data=iter([b"audio"]))
    assert usage_from_response(raw, provider="elevenlabs") == {"provider": "elevenlabs", "characters": 120}


@pytest.mark.parametrize("response", [None, "text", 42, object(), {"choices": []}, SimpleNamespace(id="x")])
def test_anything_else_is_refused_with_a_value_error_naming_it(response: object) -> None:
    with pytest.raises(UnrecognisedResponse, match=r"cannot read usage from a .*expected an answer of OpenAI"):
        usage_from_response(response)
    assert issubclass(UnrecognisedResponse, ValueError)


def test_a_count_that_is_not_a_number_is_refused_naming_it() -> None:
    body = recorded("openai_chat_completion.json")
    body["usage"]["prompt_tokens"] = "1117"
    with pytest.raises(UnrecognisedResponse, match="a usage count must be a number, got str '1117'"):
        usage_from_response(body)
