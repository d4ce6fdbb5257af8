"""A realistic day of an AI-driven game, as ``log_usage`` keyword arguments: pure, seeded, no store.

Several players, every task type, a mix of priced models (contracted, per-token with cache reads,
per-request, local and free), one failed request and one model the price book does not know.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models.ai_usage import TaskType

PLAYERS = ("aria", "borin", "cael", "dusk", "eira")
UNKNOWN_MODEL = "acme/dragon-lore-7b"

# (model id as a game would log it, weight)
MODELS = (
    ("anthropic/claude-3.5-sonnet", 4),
    ("anthropic/claude-3.5-haiku", 6),
    ("meta/meta-llama-3-70b-instruct", 4),
    ("openai/gpt-4o-mini", 5),
    ("deepseek-chat", 3),
    ("gemini-2.5-flash", 3),
    ("cerebras/llama3.1-8b", 2),
    ("ollama/llama3.2", 1),
)


@dataclass(frozen=True)
class TaskProfile:
    prompt: tuple[int, int]
    completion: tuple[int, int]
    seconds: tuple[float, float]


TASKS = {
    TaskType.STORY_PROGRESSION: TaskProfile((2_500, 7_000), (400, 1_200), (2.0, 9.0)),
    TaskType.COMBAT_NARRATION: TaskProfile((900, 2_200), (150, 450), (0.8, 3.0)),
    TaskType.QUEST_SELECTION: TaskProfile((1_200, 3_500), (40, 220), (0.5, 2.5)),
    TaskType.NPC_DIALOGUE: TaskProfile((600, 1_800), (80, 350), (0.4, 2.0)),
    TaskType.GENERAL: TaskProfile((200, 900), (30, 200), (0.3, 1.5)),
}
NPCS = ("blacksmith-hadrin", "oracle-veyl", "innkeeper-marta", "captain-roth")


def sample_events(count: int, run_id: str, now: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` events (at least 7) with request ids ``demo-<run_id>-<n>``, timestamped between the start
    of this UTC month and ``now``; the first five cover every task type, today."""
    if count < 7:
        raise ValueError("the demo needs at least 7 events to show every case")
    rng = random.Random(seed)
    now = now.astimezone(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = today.replace(day=1)
    tasks = list(TASKS)
    models, weights = zip(*MODELS, strict=True)
    events = []
    for n in range(count):
        task = tasks[n] if n < len(tasks) else rng.choice(tasks)
        profile = TASKS[task]
        # Two thirds today, the rest earlier this month (today only, on the 1st).
        first = today if n < len(tasks) or rng.random() < 2 / 3 else month_start
        moment = first + (now - first) * rng.random()
        prompt = rng.randint(*profile.prompt)
        player = PLAYERS[n % len(PLAYERS)] if n < len(PLAYERS) else rng.choice(PLAYERS)
        event: dict[str, Any] = {
            "request_id": f"demo-{run_id}-{n:05d}",
            "user_id": player,
            "model": rng.choices(models, weights)[0],
            "task_type": task.value,
            "tokens_input": prompt,
            "tokens_output": rng.randint(*profile.completion),
            "tokens_cached": prompt // 2 if rng.random() < 0.3 else 0,
            "session_id": f"{player}-{moment:%Y%m%d}",
            "request_duration_ms": int(rng.uniform(*profile.seconds) * 1000),
            "timestamp": moment,
        }
        if task is TaskType.NPC_DIALOGUE:
            event["character_id"] = rng.choice(NPCS)
        events.append(event)
    # One request the provider failed (still counted), one model nobody priced.
    for index, seconds_ago, change in (
        (5, 90, {"success": False, "error_message": "upstream timeout after 30 s", "tokens_output": 0}),
        (6, 60, {"model": UNKNOWN_MODEL}),
    ):
        moment = max(now - timedelta(seconds=seconds_ago), today)
        player = events[index]["user_id"]
        events[index].update(change, timestamp=moment, session_id=f"{player}-{moment:%Y%m%d}")
    return events
