"""AssistantAgent from its spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autogen_agentchat.agents import AssistantAgent
from autogen_core.models import ChatCompletionClient
from autogen_core.tools import Workbench

from agents._context import RoleLastContext, bounded_context
from agents.spec import AgentSpec, ResolvedPromptLayout

DEFAULT_SYSTEM_MESSAGE = "You are a helpful assistant."


def build_agent(
    spec: AgentSpec,
    model_client: ChatCompletionClient,
    *,
    workbenches: Sequence[Workbench] = (),
    prompt_layout: ResolvedPromptLayout = "system_first",
    stream_tokens: bool | None = None,
    team_roles: Mapping[str, str] | None = None,
) -> AssistantAgent:
    """One AssistantAgent; `prompt_layout` is the already-resolved layout for its model.

    `stream_tokens` overrides the spec's `streaming` (False when nobody watches the tokens:
    every streamed chunk costs a message through AutoGen's runtime). `team_roles` (agent
    name -> instruction) lets the shared-prefix layout render the other agents' turns.
    """
    context = bounded_context(spec.context)
    instruction = spec.system_message or DEFAULT_SYSTEM_MESSAGE
    system_message: str | None = instruction
    if prompt_layout == "shared_prefix":
        context = RoleLastContext(
            context,
            instruction,
            name=spec.name,
            roles=team_roles or {},
            system_role=bool(model_client.model_info.get("multiple_system_messages")),
        )
        system_message = None
    return AssistantAgent(
        spec.name,
        model_client=model_client,
        workbench=list(workbenches) or None,
        model_context=context,
        description=spec.description or f"The {spec.name} agent.",
        system_message=system_message,
        model_client_stream=spec.streaming if stream_tokens is None else stream_tokens,
        reflect_on_tool_use=spec.reflect_on_tool_use,
        max_tool_iterations=spec.max_tool_iterations,
    )
