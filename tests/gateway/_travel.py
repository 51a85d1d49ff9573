"""A scripted model for travel_planning: each agent answers in character, by its system message."""

from __future__ import annotations

import threading
from typing import Any

from serving.testing import Reply, message_text

AGENTS = ["planner_agent", "local_agent", "language_agent", "travel_summary_agent"]
FINAL = "Final plan: Day 1 Kathmandu (Asan market), Day 2 Bhaktapur, Day 3 Pokhara. Namaste = hello."
PER_CALL = (100, 20)  # prompt, completion tokens of every scripted reply

_LINES = {
    "trip planner": "Day 1: Kathmandu. Day 2: Bhaktapur. Day 3: Pokhara.",
    "local guide": "Visit Asan market on day 1 and the Bhaktapur pottery square on day 2.",
    "communicate": "Namaste = hello; Dhanyabad = thank you.",
    "final travel plan": FINAL + "\nTERMINATE",
}


def speaker(body: dict[str, Any]) -> str:
    """Which agent is calling, from the system message (where the prompt layout puts it)."""
    text = " ".join(message_text(m) for m in body["messages"] if m.get("role") == "system")
    for key, agent in zip(_LINES, AGENTS, strict=True):
        if key in text:
            return agent
    raise AssertionError(f"unknown agent prompt: {text[:200]}")


def reply_for(body: dict[str, Any]) -> Reply:
    text = " ".join(message_text(m) for m in body["messages"] if m.get("role") == "system")
    for key, line in _LINES.items():
        if key in text:
            return Reply(content=line, prompt_tokens=PER_CALL[0], completion_tokens=PER_CALL[1])
    raise AssertionError(f"unknown agent prompt: {text[:200]}")


class GatedScript:
    """Answers like `reply_for`, but the call by `agent` waits until `release` is set."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, body: dict[str, Any]) -> Reply:
        if speaker(body) == self.agent and not self.release.is_set():
            self.reached.set()
            self.release.wait(30)  # blocks the scripted server's loop: fine, nothing else is waiting
        return reply_for(body)
