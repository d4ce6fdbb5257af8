"""Replicate predictions: time-billed hardware, so the usage is the seconds the model ran.

A prediction (``replicate`` SDK ``Prediction``, or the HTTP API's JSON, https://replicate.com/docs/reference/http
#predictions.get) has ``metrics.predict_time``: seconds of compute, queueing and boot excluded, which is what
Replicate bills for public models on its hardware (https://replicate.com/pricing). ``model`` is ``owner/name``.
"""

from __future__ import annotations

from typing import Any

from ._common import UnrecognisedResponse, base, get, put, seconds_up

PROVIDER = "replicate"


def prediction_fields(prediction: Any, provider: str | None) -> dict[str, Any]:
    metrics = get(prediction, "metrics")
    if get(metrics, "predict_time") is None and get(prediction, "status") not in ("failed", "canceled"):
        # A prediction still starting or processing has no predict_time yet: recording it now would bill 0.
        raise UnrecognisedResponse(
            f"the Replicate prediction is {get(prediction, 'status')!r} and has no metrics.predict_time yet: "
            "record it once it has finished (prediction.wait())"
        )
    fields = base(get(prediction, "model"), provider or PROVIDER)
    return put(fields, compute_seconds=seconds_up(get(metrics, "predict_time")))
