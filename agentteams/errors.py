"""The project's error tree (see the package docstring); every package's errors derive from it."""

from __future__ import annotations

__all__ = ["AgentTeamsError", "McpServerError", "ModelServerError", "ModelServerUnavailable", "UserError"]


class AgentTeamsError(Exception):
    """The base of every error this project raises on purpose."""


class UserError(AgentTeamsError):
    """A mistake in what the user wrote or asked; nothing was started because of it."""


class ModelServerError(AgentTeamsError):
    """The model server at `url` cannot be used; `str()` is one line naming it and what to do."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(" ".join(message.split()))
        self.url = url


class ModelServerUnavailable(ModelServerError):
    """The model server stopped answering (or could not be reached) while a run used it."""


class McpServerError(AgentTeamsError):
    """A declared MCP server could not be started, reached or used."""
