"""Latency histograms kept in the rollups: percentiles of any slice, in bounded time, within a stated error.

A request's duration lands in one of ``LATENCY_BUCKETS`` log-spaced buckets, three per doubling: bucket 0
holds 0 ms, bucket ``i >= 1`` holds durations ``d`` with ``2**((i-1)/3) <= d < 2**(i/3)`` ms, and the last
bucket everything from about 11 minutes up. A percentile is reported as the geometric middle of the bucket
its rank falls in, so it is within ``LATENCY_RELATIVE_ERROR`` (2**(1/6) - 1, about 12.2%) of the exact
percentile of the same events, for durations below the last bucket. Buckets are counters like any other, so
histograms add up across rows, shards, hours and days exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

STEPS_PER_DOUBLING = 3
LATENCY_BUCKETS = 60
LATENCY_COUNTERS: tuple[str, ...] = tuple(f"latency_b{i:02d}" for i in range(LATENCY_BUCKETS))
LATENCY_RELATIVE_ERROR = 2 ** (1 / (2 * STEPS_PER_DOUBLING)) - 1
# Durations from here up share the last bucket: percentiles there are reported as this lower bound.
OVERFLOW_MS = 2 ** ((LATENCY_BUCKETS - 2) / STEPS_PER_DOUBLING)


def latency_bucket(duration_ms: int) -> int:
    """The histogram bucket of one duration (a non-negative integer of milliseconds)."""
    if duration_ms <= 0:
        return 0
    # log2 of an integer is exact at powers of two, the only bounds that are integers; others are irrational.
    index = math.floor(STEPS_PER_DOUBLING * math.log2(duration_ms)) + 1
    return min(index, LATENCY_BUCKETS - 1)


def bucket_bounds(index: int) -> tuple[int, int | None]:
    """The whole milliseconds bucket ``index`` holds, ``(low, high)`` inclusive (high None: no upper bound); a
    bucket too narrow to hold a whole number has ``high < low``. SQL counts a histogram with these."""
    if index == 0:
        return 0, 0
    low = math.ceil(2 ** ((index - 1) / STEPS_PER_DOUBLING))
    if index == LATENCY_BUCKETS - 1:
        return low, None
    return low, math.ceil(2 ** (index / STEPS_PER_DOUBLING)) - 1


def bucket_value(index: int) -> float:
    """The value reported for a rank that falls in bucket ``index``: the bucket's geometric middle."""
    if index == 0:
        return 0.0
    if index == LATENCY_BUCKETS - 1:
        return OVERFLOW_MS
    return 2 ** ((index - 0.5) / STEPS_PER_DOUBLING)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q``-th percentile (0 < q <= 100) of a histogram by nearest rank; None when it is empty.

    Nearest rank: the smallest value with at least q% of the values at or below it, the same definition the
    tests compare against on the raw durations.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return bucket_value(index)
    raise AssertionError("unreachable: the ranks add up to the total")
