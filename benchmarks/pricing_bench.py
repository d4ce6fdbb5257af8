"""Pricing one event, ours against LiteLLM's ``cost_per_token`` (and tokencost); prints figures, asserts nothing.

    .venv/bin/pip install -e ".[bench]"          # LiteLLM and tokencost: a benchmark extra, never runtime
    .venv/bin/python benchmarks/pricing_bench.py [--events 20000] [--rounds 3] [--profile]

The same events go through every pricer: a realistic game mix of 20 model ids in the spellings games log
(OpenAI, Anthropic direct and on Bedrock, Gemini, DeepSeek, Mistral, Llama on Together and Cerebras) with cache
reads and writes, reasoning tokens, and a few with audio or image input and text-to-speech characters.

1. Ours, the ledger: ``EventPricer.price``, what ``EventPricer.build`` runs to price a validated ``UsageEvent``
   and every value of it the row stores: ``PriceBook.lookup``, the provider, the (entry, tier) pricer (the tier
   that applied, the price version) and ``cost_nano`` with its split by kind. This is issue 9's figure. Beside it:
   the same on a book whose every rate is finer than a nano-USD per token (each event then takes the path that
   cuts the parts and hands out the nano-USD lost; the shipped rates are whole nano-USD for 142 of 144 entries),
   ``PriceBook.lookup`` + ``cost_nano`` on counts built beforehand, and a direct caller's path; against
2. LiteLLM ``cost_per_token`` with the same counts (``LITELLM_LOCAL_MODEL_COST_MAP=True``: its bundled price map,
   no network), and 3. tokencost's ``calculate_cost_by_tokens`` (input, cached, output) where it knows the model.
   Timed in batches of 100 calls (``perf_counter_ns`` around each batch, divided), so timer overhead stays out;
   median and p99 of the batches, and a plain loop's total / events. Rounds alternate ours and theirs.
4. Agreement: an event is compared when every rate it uses is the same in both books (a kind LiteLLM is not told
   about must be free in ours); then ours must equal LiteLLM's cost x 1e9 rounded half-even (its floats read
   as the decimals they print as), within 1 nano-USD for float error. And the ledger's cost and split must equal
   the Decimal definition (``cost.exact_nano_by_kind``) on every event, on both books.

Targets (issue 9): median <= 2 us per event, and >= 50x faster than LiteLLM on the same events in the same run.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from operator import attrgetter
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # read by litellm at import: never fetch its map
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.ai_usage import UsageEvent
from models.usage_kinds import KIND_NAMES, USAGE_KINDS
from services.cli.tables import table
from services.pricing import PriceBook, TokenCounts, cost_nano, cost_nano_by_kind, rates_for
from services.pricing.cost import exact_nano_by_kind
from services.usage_events import EventPricer

_kind_values = attrgetter(*KIND_NAMES)

# (spelling as games log it, provider the event names, LiteLLM's key for the same model, weight, token profile)
MODELS: tuple[tuple[str, str | None, str, int, str], ...] = (
    ("gpt-4o-mini", None, "gpt-4o-mini", 14, "chat"),
    ("openai/gpt-4o", None, "gpt-4o", 6, "multimodal"),
    ("gpt-4.1-mini-2025-04-14", None, "gpt-4.1-mini-2025-04-14", 6, "chat"),
    ("gpt-5-mini", None, "gpt-5-mini", 8, "reasoning"),
    ("gpt-5", None, "gpt-5", 3, "reasoning"),
    ("o4-mini", None, "o4-mini", 2, "reasoning"),
    ("gpt-4o-mini-tts", None, "gpt-4o-mini-tts", 1, "tts"),
    ("claude-haiku-4-5", None, "claude-haiku-4-5", 8, "anthropic"),
    ("claude-sonnet-4-5-20250929", None, "claude-sonnet-4-5-20250929", 6, "anthropic"),
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", None, "us.anthropic.claude-sonnet-4-20250514-v1:0", 2, "anthropic"),
    ("claude-opus-4-5-20251101", None, "claude-opus-4-5-20251101", 1, "anthropic"),
    ("gemini-2.5-flash", None, "gemini/gemini-2.5-flash", 12, "multimodal"),
    ("models/gemini-2.5-pro", None, "gemini/gemini-2.5-pro", 2, "reasoning"),
    ("gemini-2.5-flash-lite", None, "gemini/gemini-2.5-flash-lite", 6, "chat"),
    ("deepseek-chat", None, "deepseek/deepseek-chat", 6, "chat"),
    ("deepseek-reasoner", None, "deepseek/deepseek-reasoner", 2, "reasoning"),
    ("mistral-large-latest", None, "mistral/mistral-large-latest", 2, "plain"),
    ("mistralai/mistral-small-2506", None, "mistral/mistral-small-latest", 3, "plain"),
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", 4,
     "plain"),
    ("cerebras/llama3.1-8b", None, "cerebras/llama3.1-8b", 2, "plain"),
)  # fmt: skip
# A fixed "now", so the prices in force (and every figure) do not move with the day the script runs.
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
BATCH = 100
TARGET_MEDIAN_US = 2.0
TARGET_RATIO = 50.0


@dataclass(frozen=True)
class Event:
    model: str
    provider: str | None
    at: datetime
    usage: dict[str, int]  # every usage kind, by name
    counts: TokenCounts
    litellm_model: str


def usage_for(profile: str, rng: random.Random) -> dict[str, int]:
    """One call's counts in the token convention (input and output are wholes; cached, reasoning... their parts)."""
    prompt, output = rng.randint(300, 6000), rng.randint(20, 900)
    usage = {"tokens_input": prompt, "tokens_output": output}
    if profile in ("chat", "multimodal", "reasoning") and rng.random() < 0.4:
        usage["tokens_cached"] = prompt // 1024 * 1024 // 2  # automatic prefix caching, in 1,024-token blocks
    if profile == "reasoning":
        usage["tokens_output"] = output = rng.randint(200, 4000)
        usage["tokens_reasoning"] = output * rng.randint(50, 80) // 100
    if profile == "anthropic":  # a cached system prompt: read on most turns, written on the first
        system = rng.randint(2000, 4000)
        usage["tokens_input"] = prompt + system
        usage["tokens_cached" if rng.random() < 0.8 else "tokens_cache_write"] = system
    if profile == "multimodal" and rng.random() < 0.1:
        room = usage["tokens_input"] - usage.get("tokens_cached", 0)
        usage["tokens_image_input" if rng.random() < 0.5 else "tokens_audio_input"] = min(room, rng.randint(258, 1200))
    if profile == "tts":  # a line of NPC speech: a few text tokens in, audio tokens out, its characters counted
        usage = {"tokens_input": rng.randint(20, 120), "characters": rng.randint(80, 500)}
        usage["tokens_output"] = usage["tokens_audio_output"] = rng.randint(300, 2000)
    return {name: usage.get(name, 0) for name in KIND_NAMES}


def make_events(count: int, seed: int = 9) -> list[Event]:
    rng = random.Random(seed)
    weights = [m[3] for m in MODELS]
    events = []
    for model, provider, litellm_model, _, profile in rng.choices(MODELS, weights, k=count):
        usage = usage_for(profile, rng)
        at = NOW - timedelta(seconds=rng.randrange(30 * 86400))
        events.append(Event(model, provider, at, usage, TokenCounts(**usage), litellm_model))
    return events


# -- timing ---------------------------------------------------------------------------------------------------
def timed_batches(run: Callable[[Sequence[Any]], None], items: Sequence[Any]) -> list[float]:
    """µs per item of each batch of BATCH items: one timer read per batch, not per call."""
    samples = []
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        began = time.perf_counter_ns()
        run(chunk)
        samples.append((time.perf_counter_ns() - began) / 1000 / len(chunk))
    return samples


def plain_loop_us(run: Callable[[Sequence[Any]], None], items: Sequence[Any]) -> float:
    began = time.perf_counter_ns()
    run(items)
    return (time.perf_counter_ns() - began) / 1000 / len(items)


def ours_runner(book: PriceBook) -> Callable[[Sequence[Any]], None]:
    lookup = book.lookup

    def run(items: Sequence[tuple[str, datetime, str | None, TokenCounts]]) -> None:
        for model, at, provider, counts in items:
            cost_nano(lookup(model, at, provider).entry, counts)

    return run


def ledger_runner(book: PriceBook) -> Callable[[Sequence[Any]], None]:
    """``EventPricer.price`` on a validated UsageEvent, as ``EventPricer.build`` calls it: lookup, the provider,
    the (entry, tier) pricer, the cost and its split by kind (the counts are not checked again)."""
    price = EventPricer(book, lambda: NOW, timedelta(0)).price

    def run(items: Sequence[tuple[UsageEvent, datetime]]) -> None:
        for event, at in items:
            price(event, at)

    return run


def finer_book(book: PriceBook) -> PriceBook:
    """The book with $0.0000005 per 1M tokens (0.0005 nano-USD a token) added to every input and output rate:
    no event's cost is then a whole number of nano-USD per part, as it is with the shipped rates."""
    finer = Decimal("0.0000000005")

    def finer_entry(entry: Any) -> Any:
        return dataclasses.replace(entry, input_per_1k=entry.input_per_1k + finer,
                                   output_per_1k=entry.output_per_1k + finer)  # fmt: skip

    defaults = {provider: finer_entry(entry) for provider, entry in book.defaults().items()}
    return PriceBook.from_entries([finer_entry(entry) for entry in book.entries()], defaults)


def split_agreement(book: PriceBook, items: Sequence[tuple[UsageEvent, datetime]]) -> int:
    """How many events the ledger prices exactly as the Decimal definition does (cost and every part)."""
    price = EventPricer(book, lambda: NOW, timedelta(0)).price
    same = 0
    for event, at in items:
        match, _, _, nano, parts = price(event, at)
        values = (*_kind_values(event), 1)
        same += (nano, parts) == exact_nano_by_kind(match.entry, values, event.service_tier)
    return same


def direct_runner(book: PriceBook) -> Callable[[Sequence[Any]], None]:
    """A direct caller's path (reprice, tests): ``TokenCounts(**usage)`` built (and checked) per event, lookup,
    ``cost_nano_by_kind``."""
    lookup = book.lookup

    def run(items: Sequence[Event]) -> None:
        for event in items:
            cost_nano_by_kind(lookup(event.model, event.at, event.provider).entry, TokenCounts(**event.usage))

    return run


def litellm_args(event: Event) -> dict[str, Any]:
    u = event.usage
    return {
        "model": event.litellm_model,
        "prompt_tokens": u["tokens_input"],
        "completion_tokens": u["tokens_output"],
        "cache_read_input_tokens": u["tokens_cached"],
        "cache_creation_input_tokens": u["tokens_cache_write"],
    }


def litellm_runner(litellm: Any) -> Callable[[Sequence[dict[str, Any]]], None]:
    cost_per_token = litellm.cost_per_token

    def run(items: Sequence[dict[str, Any]]) -> None:
        for kwargs in items:
            cost_per_token(**kwargs)

    return run


def tokencost_runner(tokencost: Any) -> Callable[[Sequence[tuple[str, int, int, int]]], None]:
    by_tokens = tokencost.calculate_cost_by_tokens

    def run(items: Sequence[tuple[str, int, int, int]]) -> None:
        for model, uncached, cached, output in items:
            cost = by_tokens(uncached, model, "input") + by_tokens(output, model, "output")
            if cached:
                cost += by_tokens(cached, model, "cached")

    return run


def tokencost_items(tokencost: Any, events: list[Event]) -> list[tuple[str, int, int, int]]:
    """The events whose model tokencost prices, as (model, uncached input, cached input, output)."""
    items = []
    for e in events:
        u = e.usage
        try:
            tokencost.calculate_cost_by_tokens(1, e.litellm_model, "input")
            if u["tokens_cached"]:
                tokencost.calculate_cost_by_tokens(1, e.litellm_model, "cached")
        except KeyError:
            continue
        items.append((e.litellm_model, u["tokens_input"] - u["tokens_cached"], u["tokens_cached"], u["tokens_output"]))
    return items


# -- agreement ------------------------------------------------------------------------------------------------
# Which of LiteLLM's rates applies to each of our kinds, given the call above: parts it is not told about are
# billed at the whole's rate (audio and image input as prompt tokens, reasoning and audio output as completion).
_LITELLM_RATE = {
    "tokens_input": ("input_cost_per_token",),
    "tokens_cached": ("cache_read_input_token_cost", "input_cost_per_token"),
    "tokens_cache_write": ("cache_creation_input_token_cost", "input_cost_per_token"),
    "tokens_audio_input": ("input_cost_per_token",),
    "tokens_image_input": ("input_cost_per_token",),
    "tokens_output": ("output_cost_per_token",),
    "tokens_reasoning": ("output_cost_per_token",),
    "tokens_audio_output": ("output_cost_per_token",),
}
_PER = {kind.name: kind.per for kind in USAGE_KINDS}


def litellm_rate(info: dict[str, Any], kind: str) -> Decimal:
    for key in _LITELLM_RATE.get(kind, ()):
        if info.get(key) is not None:
            return Decimal(repr(info[key]))
    return Decimal(0)  # a kind LiteLLM is not told about costs nothing there


def same_prices(entry: Any, event: Event, info: dict[str, Any] | None) -> bool:
    """Every rate this event uses is the same per unit in our entry and in LiteLLM's map."""
    if info is None or entry.unit == "free":
        return False
    rates = rates_for(entry, event.usage["tokens_input"])
    if rates.long_context or rates.per_request != Decimal(repr(info.get("input_cost_per_request") or 0)):
        return False
    for kind, units in event.usage.items():
        if units and rates.of(kind) / _PER[kind] != litellm_rate(info, kind):
            return False
    return True


def litellm_nano(prompt_and_completion: tuple[float, float]) -> int:
    usd = sum((Decimal(repr(part)) for part in prompt_and_completion), Decimal(0))
    return int((usd * 1_000_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def agreement(book: PriceBook, litellm: Any, events: list[Event]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Per model: events, events with the same prices, exact, within 1 nano, disagreeing; and examples."""
    stats: dict[str, list[int]] = {m[0]: [0, 0, 0, 0, 0] for m in MODELS}
    examples: list[str] = []
    for event in events:
        entry = book.lookup(event.model, event.at, event.provider).entry
        row = stats[event.model]
        row[0] += 1
        if not same_prices(entry, event, litellm.model_cost.get(event.litellm_model)):
            continue
        row[1] += 1
        ours, theirs = cost_nano(entry, event.counts), litellm_nano(litellm.cost_per_token(**litellm_args(event)))
        row[2 if ours == theirs else 3 if abs(ours - theirs) <= 1 else 4] += 1
        if abs(ours - theirs) > 1 and len(examples) < 5:
            examples.append(f"{event.model} {event.usage}: ours {ours} nano-USD, LiteLLM {theirs}")
    rows = []
    for model, _, litellm_model, _, _ in MODELS:
        entry = book.lookup(model, NOW).entry
        rows.append((model, litellm_model, entry.model_id, *(f"{n:,}" for n in stats[model])))
    totals = [sum(s[i] for s in stats.values()) for i in range(5)]
    rows.append(("all", "", "", *(f"{n:,}" for n in totals)))
    return rows, examples


# -- report ---------------------------------------------------------------------------------------------------
def summary(samples: list[float], loops: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], min(loops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each pricer, alternating")
    parser.add_argument("--profile", action="store_true", help="cProfile ours even when it meets the target")
    args = parser.parse_args()
    try:
        import litellm
        import tokencost
    except ImportError:
        sys.exit('LiteLLM and tokencost are the benchmark extra: .venv/bin/pip install -e ".[bench]"')
    book = PriceBook.load()
    finer = finer_book(book)
    events = make_events(args.events)
    ours_items = [(e.model, e.at, e.provider, e.counts) for e in events]
    ledger_items = [(UsageEvent(user_id="bench", model=e.model, provider=e.provider, **e.usage), e.at) for e in events]
    litellm_items = [litellm_args(e) for e in events]
    tc_items = tokencost_items(tokencost, events)
    pricers: dict[str, tuple[Callable[[Sequence[Any]], None], Sequence[Any]]] = {
        "ours": (ours_runner(book), ours_items),
        "ledger": (ledger_runner(book), ledger_items),
        "finer": (ledger_runner(finer), ledger_items),
        "direct": (direct_runner(book), events),
        "litellm": (litellm_runner(litellm), litellm_items),
        "tokencost": (tokencost_runner(tokencost), tc_items),
    }
    for run, items in pricers.values():
        run(items[:2000])  # warm: names resolved, rates cached, LiteLLM's lru caches filled
    print(
        f"Python {sys.version.split()[0]}, LiteLLM {version('litellm')}, tokencost {version('tokencost')}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {len(events):,} events, "
        f"{len(MODELS)} model ids",
        flush=True,
    )
    samples: dict[str, list[float]] = {name: [] for name in pricers}
    loops: dict[str, list[float]] = {name: [] for name in pricers}
    for _ in range(args.rounds):
        for name, (run, items) in pricers.items():
            samples[name] += timed_batches(run, items)
            loops[name].append(plain_loop_us(run, items))
    figures = {name: summary(samples[name], loops[name]) for name in pricers}
    print(report(figures, len(events), len(tc_items)))
    print(
        f"ledger cost and split equal to the Decimal definition on {split_agreement(book, ledger_items):,} of "
        f"{len(ledger_items):,} events, and on {split_agreement(finer, ledger_items):,} with the finer rates"
    )
    rows, examples = agreement(book, litellm, events)
    print()
    print(table(("model as logged", "LiteLLM key", "our entry", "events", "same prices", "exact", "±1 nano",
                 "disagree"), rows, "lllrrrrr"))  # fmt: skip
    for example in examples:
        print("  disagreement:", example)
    if args.profile or figures["ledger"][0] > TARGET_MEDIAN_US:
        profile(pricers["ledger"])
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes on these CPUs slow every figure)")


def report(figures: dict[str, tuple[float, float, float]], count: int, tc_count: int) -> str:
    ours_median = figures["ours"][0]
    litellm_median = figures["litellm"][0]

    def row(label: str, name: str, events: int, target: str = "", verdict: str = "") -> tuple[str, ...]:
        median, p99, loop = figures[name]
        speedup = f"{litellm_median / median:,.1f}x" if name != "litellm" else ""
        return (label, f"{events:,}", f"{median:,.2f}", f"{p99:,.2f}", f"{loop:,.2f}", speedup, target, verdict)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    def met(median: float) -> bool:
        return median <= TARGET_MEDIAN_US and litellm_median / median >= TARGET_RATIO

    target = f"<= {TARGET_MEDIAN_US} µs, >= {TARGET_RATIO:.0f}x"
    rows = [
        row("ours, ledger: EventPricer.price (lookup, provider, tier, version, cost_nano + split by kind)",
            "ledger", count, target, verdict(met(figures["ledger"][0]))),
        row("ours, ledger, rates finer than a nano-USD a token (no shipped mix): parts cut, nano-USD handed out",
            "finer", count),
        row("ours: lookup + cost_nano", "ours", count, target, verdict(met(ours_median))),
        row("ours, direct: TokenCounts(...) + lookup + cost_nano_by_kind", "direct", count),
        row("LiteLLM cost_per_token", "litellm", count),
        row("tokencost calculate_cost_by_tokens x2-3", "tokencost", tc_count),
    ]  # fmt: skip
    headers = ("pricer (µs per event)", "events", "median", "p99", "loop", "LiteLLM /", "target", "")
    return "\n" + table(headers, rows, "lrrrrrll") + f"\n(batches of {BATCH}; loop = best plain loop total / events)"


def profile(pricer: tuple[Callable[[Sequence[Any]], None], Sequence[Any]]) -> None:
    run, items = pricer
    profiler = cProfile.Profile()
    profiler.runcall(run, items)
    print("\ncProfile of the ledger's pricing (one pass; times inflated by the profiler), by own time:")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(15)


def version(package: str) -> str:
    from importlib.metadata import version as installed

    return installed(package)


if __name__ == "__main__":
    main()
