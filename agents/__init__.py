"""Model clients and AssistantAgents from their specs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentteams._lazy import lazy_exports

if TYPE_CHECKING:
    from agents._build import DEFAULT_SYSTEM_MESSAGE, build_agent
    from agents._context import RoleLastContext, bounded_context
    from agents._metered import MeteredClient, UsageLedger
    from agents._model_client import ResolvedModel, build_model_client, resolve_model_info
    from agents._usage import Usage
    from agents.spec import (
        AgentSpec,
        ContextSpec,
        LastNContext,
        ModelInfoSpec,
        ModelOptions,
        ModelSpec,
        PromptLayout,
        UnboundedContext,
    )

# name -> module: imported on first use, so that `import agents.spec` (and the CLI's
# quick commands) need none of the heavy libraries the builders use
_EXPORTS = {
    "DEFAULT_SYSTEM_MESSAGE": "agents._build",
    "build_agent": "agents._build",
    "RoleLastContext": "agents._context",
    "bounded_context": "agents._context",
    "MeteredClient": "agents._metered",
    "UsageLedger": "agents._metered",
    "ResolvedModel": "agents._model_client",
    "build_model_client": "agents._model_client",
    "resolve_model_info": "agents._model_client",
    "Usage": "agents._usage",
    "AgentSpec": "agents.spec",
    "ContextSpec": "agents.spec",
    "LastNContext": "agents.spec",
    "ModelInfoSpec": "agents.spec",
    "ModelOptions": "agents.spec",
    "ModelSpec": "agents.spec",
    "PromptLayout": "agents.spec",
    "UnboundedContext": "agents.spec",
}

__all__ = [
    "DEFAULT_SYSTEM_MESSAGE",
    "AgentSpec",
    "MeteredClient",
    "UsageLedger",
    "ContextSpec",
    "LastNContext",
    "ModelInfoSpec",
    "ModelOptions",
    "ModelSpec",
    "PromptLayout",
    "ResolvedModel",
    "RoleLastContext",
    "UnboundedContext",
    "Usage",
    "bounded_context",
    "build_agent",
    "build_model_client",
    "resolve_model_info",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
