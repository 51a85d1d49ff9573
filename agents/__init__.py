"""Model clients and AssistantAgents from their specs."""

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
