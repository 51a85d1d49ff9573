"""The Scenario runtime: owns endpoints, model clients and MCP sessions; runs the team."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient
from autogen_core.tools import BaseTool, StaticWorkbench, Workbench

from agents import (
    DEFAULT_SYSTEM_MESSAGE,
    AgentSpec,
    MeteredClient,
    ResolvedModel,
    UsageLedger,
    build_agent,
    build_model_client,
    resolve_model_info,
)
from agents.spec import ResolvedPromptLayout
from agentteams import AgentTeamsError
from mcp_servers import McpSessionPool, McpStartError, StdioServerSpec
from scenarios._code import open_sandbox
from scenarios._errors import ScenarioError
from scenarios._knowledge import open_knowledge_tools
from scenarios._loader import LoadedSpec, read_spec, scenario_path
from serving import Endpoint, detect_engine, model_info_for, open_endpoint, server_down
from teams import ModelServerUnavailable, RunEvent, RunResult, Turn, build_team, stream_team
from tools import CODE_TOOL, CodeSession, InputFile, Sandbox, build_function_tool

logger = logging.getLogger(__name__)


class Scenario:
    """A validated scenario, ready to open. Use as an async context manager.

    Opening resolves each model endpoint (starting the bundled server for `auto` when none
    runs), builds one model client per endpoint and starts each MCP server the agents name.
    Every run builds fresh agents and a fresh team over those shared resources, so runs
    may overlap.
    """

    def __init__(
        self,
        loaded: LoadedSpec,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        max_messages: int | None = None,
    ) -> None:
        self._loaded = loaded
        self.spec = loaded.spec
        self._overrides = (base_url, model, api_key)
        self._max_messages = max_messages
        self._stack: AsyncExitStack | None = None
        self._clients: dict[str, ChatCompletionClient] = {}
        self._resolved: dict[str, ResolvedModel] = {}
        self._pool: McpSessionPool | None = None
        self._python_tools: dict[str, BaseTool[Any, Any]] = {}
        self._sandbox: Sandbox | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def file(self) -> str:
        return self._loaded.file

    @property
    def endpoints(self) -> dict[str, ResolvedModel]:
        """The resolved endpoint of each model the scenario uses (after opening)."""
        return dict(self._resolved)

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError(f"scenario {self.name!r} is already open")
        stack = AsyncExitStack()
        try:
            self._sandbox = await open_sandbox(self._loaded) if self.spec.uses_code() else None
            await self._open_models(stack)
            await self._open_mcp(stack)
            self._python_tools = {
                name: build_function_tool(name, tool_spec)
                for agent in self.spec.agents
                for name in agent.tools
                if name not in self.spec.mcp_servers and (tool_spec := self.spec.python_tool(name))
            }
            self._python_tools.update(
                await open_knowledge_tools(self._loaded, self._resolved, self._overrides, stack)
            )
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        self._clients.clear()
        self._pool = None
        if stack is not None:
            await stack.aclose()

    async def _open_models(self, stack: AsyncExitStack) -> None:
        base_override, model_override, key_override = self._overrides
        endpoints: dict[tuple[str, str, str], tuple[Endpoint, str | None]] = {}
        for name in self.spec.used_model_names():
            spec = self.spec.models[name]
            triple = (
                base_override or spec.base_url,
                model_override or spec.model,
                key_override or spec.api_key,
            )
            if triple not in endpoints:
                endpoint = await stack.enter_async_context(open_endpoint(*triple))
                endpoints[triple] = (
                    endpoint,
                    await detect_engine(endpoint.base_url, endpoint.api_key, endpoint.model),
                )
            endpoint, engine = endpoints[triple]
            info, layout = resolve_model_info(name, spec, endpoint.model)
            sampling = model_info_for(endpoint.model).sampling_for(engine)
            resolved = ResolvedModel(
                name, endpoint.base_url, endpoint.model, endpoint.api_key, info, layout, engine, sampling
            )
            client = build_model_client(resolved, spec)
            stack.push_async_callback(client.close)
            self._clients[name] = client
            self._resolved[name] = resolved

    async def _open_mcp(self, stack: AsyncExitStack) -> None:
        used = [n for n in self.spec.mcp_servers if any(n in a.tools for a in self.spec.agents)]
        if not used:
            return
        pool = McpSessionPool({n: self.spec.mcp_servers[n] for n in used})
        try:
            await pool.start()
        except McpStartError as exc:
            field = "command" if isinstance(self.spec.mcp_servers[exc.server], StdioServerSpec) else "url"
            raise self._loaded.error_at(("mcp_servers", exc.server, field), str(exc)) from exc
        stack.push_async_callback(pool.close)
        self._pool = pool

    def _workbenches(self, agent: AgentSpec, code: CodeSession | None = None) -> list[Workbench]:
        pool = self._pool
        workbenches: list[Workbench] = [pool[t] for t in agent.tools if pool is not None and t in pool]
        python_tools = [self._python_tools[t] for t in agent.tools if t in self._python_tools]
        if code is not None and CODE_TOOL in agent.tools:
            python_tools.append(code.tool(agent.name))
        if python_tools:
            workbenches.append(StaticWorkbench(python_tools))
        return workbenches

    def _layout(self, agent: AgentSpec) -> ResolvedPromptLayout:
        layout = agent.prompt_layout or self.spec.prompt_layout
        return self._resolved[agent.model].prompt_layout if layout == "auto" else layout

    def _task_messages(self, task: str | None, history: Sequence[Turn]) -> list[BaseChatMessage]:
        text = task or self.spec.task
        if not text:
            raise ScenarioError(f"no task: give one with --task, or set `task:` in {self.file}")
        messages: list[BaseChatMessage] = [
            TextMessage(
                content=turn.content, source="user" if turn.role == "user" else turn.name or "assistant"
            )
            for turn in history
        ]
        messages.append(TextMessage(content=text, source="user"))
        return messages

    async def run(
        self,
        task: str | None = None,
        *,
        history: Sequence[Turn] = (),
        state: dict[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        stream_tokens: bool | None = False,
        files: Sequence[InputFile] = (),
        output_dir: str | os.PathLike[str] | None = None,
    ) -> RunResult:
        """Run the team to its end. Tokens are not streamed unless asked: nobody sees them."""
        result: RunResult | None = None
        async for item in self.run_stream(
            task,
            history=history,
            state=state,
            cancellation_token=cancellation_token,
            stream_tokens=stream_tokens,
            files=files,
            output_dir=output_dir,
        ):
            if isinstance(item, RunResult):
                result = item
        assert result is not None
        return result

    async def run_stream(
        self,
        task: str | None = None,
        *,
        history: Sequence[Turn] = (),
        state: dict[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        stream_tokens: bool | None = None,
        files: Sequence[InputFile] = (),
        output_dir: str | os.PathLike[str] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Every event of one run as it happens (see `teams.events`), then the RunResult.

        `stream_tokens`: None follows each agent's `streaming:`; False sends whole messages
        only (cheaper: each token is otherwise an event through AutoGen's runtime).
        `files` appear in the code interpreter's working directory; what its code writes is
        in `RunResult.files` (and saved under `output_dir` when given).
        """
        if self._stack is None:
            raise RuntimeError("open the scenario first: `async with load_scenario(...) as scenario:`")
        messages = self._task_messages(task, history)
        code = (
            CodeSession(self._sandbox, inputs=files, output_dir=Path(output_dir) if output_dir else None)
            if self._sandbox is not None
            else None
        )
        try:
            async for item in self._run_stream(messages, state, cancellation_token, stream_tokens, code):
                if isinstance(item, RunResult) and code is not None:
                    item = dataclasses.replace(item, files=tuple(code.files))
                yield item
        finally:
            if code is not None:
                code.close()

    async def _run_stream(
        self,
        messages: list[BaseChatMessage],
        state: dict[str, Any] | None,
        cancellation_token: CancellationToken | None,
        stream_tokens: bool | None,
        code: CodeSession | None,
    ) -> AsyncIterator[RunEvent]:
        team_spec = self.spec.effective_team()
        ledger = UsageLedger()
        by_name = {a.name: a for a in self.spec.agents}
        roles = {n: by_name[n].system_message or DEFAULT_SYSTEM_MESSAGE for n in team_spec.participants}
        agents = [
            build_agent(
                by_name[name],
                MeteredClient(self._clients[by_name[name].model], ledger, name),
                workbenches=self._workbenches(by_name[name], code),
                prompt_layout=self._layout(by_name[name]),
                stream_tokens=stream_tokens,
                team_roles=roles,
            )
            for name in team_spec.participants
        ]
        selector = (
            MeteredClient(self._clients[team_spec.model], ledger, "selector")
            if team_spec.type == "selector"
            else None
        )
        team = build_team(
            team_spec,
            agents,
            selector_client=selector,
            selector_engine=self._resolved[team_spec.model].engine if team_spec.type == "selector" else None,
            max_messages=self._max_messages,
        )
        if state:
            await team.load_state(state)
        try:
            async for item in stream_team(
                team,
                messages,
                agent_names=team_spec.participants,
                ledger=ledger,
                time_limit=team_spec.timeout,
                cancellation_token=cancellation_token,
            ):
                yield item
        except AgentTeamsError:
            raise
        except Exception as exc:
            await self._raise_if_endpoint_down(exc)
            raise

    async def _raise_if_endpoint_down(self, cause: Exception) -> None:
        for resolved in {(r.base_url, r.api_key): r for r in self._resolved.values()}.values():
            url = resolved.base_url
            down = await server_down(url, resolved.api_key, cause)
            if down is not None:
                first_line = (str(cause).splitlines() or [type(cause).__name__])[0]
                raise ModelServerUnavailable(
                    f"the model server at {url} stopped answering during the run ({down}); "
                    f"the run failed: {first_line}",
                    url=url,
                ) from cause


def load_scenario(
    name_or_path: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    scenario_dirs: Iterable[str | os.PathLike[str]] = (),
    max_messages: int | None = None,
) -> Scenario:
    """Find, read and validate a scenario (a name or a path); nothing is started until opened."""
    path = scenario_path(name_or_path, scenario_dirs)
    return Scenario(
        read_spec(path), base_url=base_url, model=model, api_key=api_key, max_messages=max_messages
    )
