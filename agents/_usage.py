"""Token use and time: of one model call, one agent's turns in a run, or a whole run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """Adds up: the usage of several calls, agents or runs is their sum."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    turns: int = 0  # agent messages (a model call alone is no turn)
    seconds: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.turns + other.turns,
            self.seconds + other.seconds,
        )
