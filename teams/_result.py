"""What a run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autogen_agentchat.messages import BaseChatMessage

from tools import ProducedFile


@dataclass
class AgentUsage:
    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: AgentUsage) -> None:
        self.turns += other.turns
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.seconds += other.seconds


@dataclass
class RunResult:
    """One team run: its messages, the answer, why it stopped and what it cost."""

    messages: list[BaseChatMessage]
    final_text: str
    final_source: str
    stop_reason: str
    usage: dict[str, AgentUsage]
    elapsed_s: float
    state: dict[str, Any] = field(default_factory=dict)
    files: list[ProducedFile] = field(default_factory=list)  # what the `python` tool's code wrote

    @property
    def total(self) -> AgentUsage:
        total = AgentUsage()
        for usage in self.usage.values():
            total.add(usage)
        total.seconds = self.elapsed_s
        return total
