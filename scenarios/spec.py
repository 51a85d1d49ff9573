"""The scenario file: the per-package specs composed into one document."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.spec import AgentSpec, Identifier, ModelSpec, PromptLayout
from mcp_servers.search.spec import KnowledgeSpec
from mcp_servers.spec import McpServerSpec
from teams.spec import RoundRobinTeamSpec, TeamSpec, TerminationSpec
from tools import BUILTIN_TOOLS
from tools.spec import CODE_TOOL, CodeSpec, PythonToolSpec

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SpecProblem:
    """A mistake found after the shapes validated: a name that leads nowhere, a duplicate."""

    path: Path
    message: str
    at_key: bool = False  # point at the key itself rather than its value


def did_you_mean(value: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_name(kind: str, value: str, choices: list[str]) -> str:
    expected = ", ".join(choices) if choices else "none declared"
    return f"unknown {kind} {value!r} (expected one of {expected}{did_you_mean(value, choices)})"


class ScenarioSpec(BaseModel):
    """A validated scenario: endpoints, MCP servers, tools, agents and one team."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="Scenario",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    name: Identifier
    description: str = ""
    task: str | None = Field(default=None, description="The default task; --task overrides it.")
    prompt_layout: PromptLayout = Field(
        default="auto",
        description="shared_prefix: role instruction after the shared history so agents reuse one cached "
        "prompt prefix; system_first: the usual layout; auto: the served model's profile decides.",
    )
    models: dict[str, ModelSpec] = Field(default_factory=lambda: {"default": ModelSpec()})
    mcp_servers: dict[str, McpServerSpec] = Field(default_factory=dict)
    tools: dict[str, PythonToolSpec] = Field(default_factory=dict)
    knowledge: dict[Identifier, KnowledgeSpec] = Field(
        default_factory=dict, description="Searchable documents and git histories; a name is a tool."
    )
    agents: list[AgentSpec] = Field(min_length=1)
    team: TeamSpec | None = Field(default=None, description="Optional when there is one agent.")
    code: CodeSpec = Field(
        default_factory=CodeSpec, description="The sandbox of the `python` tool (the code interpreter)."
    )

    def effective_team(self) -> TeamSpec:
        """The declared team, or for a lone agent a team that stops once it has answered."""
        if self.team is not None:
            return self.team
        only = self.agents[0].name
        return RoundRobinTeamSpec(
            type="round_robin", participants=[only], termination=TerminationSpec(source_match=only)
        )

    def tool_names(self) -> list[str]:
        return [
            *self.mcp_servers,
            *self.tools,
            *self.knowledge,
            *(n for n in [*BUILTIN_TOOLS, CODE_TOOL] if n not in self.tools),
        ]

    def python_tool(self, name: str) -> PythonToolSpec | None:
        if name in self.tools:
            return self.tools[name]
        path = BUILTIN_TOOLS.get(name)
        return PythonToolSpec(function=path) if path else None

    def uses_code(self) -> bool:
        """Whether an agent has the code interpreter (`tools: [python]`, not a declared tool of that name)."""
        return CODE_TOOL not in self.tools and any(CODE_TOOL in a.tools for a in self.agents)

    def used_model_names(self) -> list[str]:
        names = [agent.model for agent in self.agents]
        team = self.effective_team()
        if team.type == "selector":
            names.append(team.model)
        return list(dict.fromkeys(names))

    def problems(self) -> list[SpecProblem]:
        return list(self._problems())

    def _problems(self) -> Iterator[SpecProblem]:
        agent_names = [agent.name for agent in self.agents]
        models = list(self.models)
        seen: set[str] = set()
        for i, agent in enumerate(self.agents):
            if agent.name in seen:
                yield SpecProblem(("agents", i, "name"), f"duplicate agent name {agent.name!r}")
            seen.add(agent.name)
            if agent.model not in self.models:
                yield SpecProblem(("agents", i, "model"), unknown_name("model", agent.model, models))
            tools = self.tool_names()
            for j, tool in enumerate(agent.tools):
                if tool not in tools:
                    yield SpecProblem(
                        ("agents", i, "tools", j), unknown_name("tool or MCP server", tool, tools)
                    )
        for name, knowledge in self.knowledge.items():
            if name in self.mcp_servers or name in self.tools:
                message = f"knowledge {name!r} has the name of a tool"
                yield SpecProblem(("knowledge", name), message, at_key=True)
            if knowledge.embedding_model is not None and knowledge.embedding_model not in self.models:
                yield SpecProblem(
                    ("knowledge", name, "embedding_model"),
                    unknown_name("model", knowledge.embedding_model, models),
                )
        for name in self.tools:
            if name in self.mcp_servers:
                yield SpecProblem(
                    ("tools", name), f"tool {name!r} has the name of an MCP server", at_key=True
                )
        if self.team is None:
            if len(self.agents) > 1:
                yield SpecProblem(
                    ("agents",), f"{len(self.agents)} agents need a `team:` section (round_robin or selector)"
                )
            return
        for j, participant in enumerate(self.team.participants):
            if participant not in agent_names:
                yield SpecProblem(
                    ("team", "participants", j), unknown_name("agent", participant, agent_names)
                )
        if self.team.type == "selector":
            if self.team.model not in self.models:
                yield SpecProblem(("team", "model"), unknown_name("model", self.team.model, models))
            participants = self.team.participants
            for name, before in self.team.speaks_after.items():
                if name not in participants:
                    problem = unknown_name("participant", name, participants)
                    yield SpecProblem(("team", "speaks_after", name), problem, at_key=True)
                for j, other in enumerate(before):
                    if other not in participants:
                        problem = unknown_name("participant", other, participants)
                        yield SpecProblem(("team", "speaks_after", name, j), problem)
                    elif other == name:
                        yield SpecProblem(
                            ("team", "speaks_after", name, j), f"{name!r} cannot wait for itself"
                        )
        if self.team.termination is not None:
            yield from _termination_problems(self.team.termination, ("team", "termination"), agent_names)


def _termination_problems(spec: TerminationSpec, path: Path, agents: list[str]) -> Iterator[SpecProblem]:
    if spec.source_match is not None:
        sources = [spec.source_match] if isinstance(spec.source_match, str) else spec.source_match
        for j, source in enumerate(sources):
            if source not in agents:
                where = (
                    (*path, "source_match")
                    if isinstance(spec.source_match, str)
                    else (*path, "source_match", j)
                )
                yield SpecProblem(where, unknown_name("agent", source, agents))
    for key in ("any", "all"):
        children: list[TerminationSpec] | None = getattr(spec, key)
        for j, child in enumerate(children or []):
            yield from _termination_problems(child, (*path, key, j), agents)


def json_schema() -> dict[str, Any]:
    schema = ScenarioSpec.model_json_schema()
    schema["$id"] = "scenario.schema.json"
    return schema
