"""The floor under every package: the project's one error tree.

    AgentTeamsError             anything this project raises on purpose
    ├── UserError               a mistake in what the user wrote or asked (scenario, YAML, tool import)
    ├── ModelServerError        the model server cannot be used (`url` names it)
    │   └── ModelServerUnavailable   it stopped answering during a run
    └── McpServerError          an MCP server cannot be started or used

`str()` of each is one line that says what is wrong and, where it can, what to do.
Importing this package imports nothing else.
"""

from agentteams.errors import (
    AgentTeamsError,
    McpServerError,
    ModelServerError,
    ModelServerUnavailable,
    UserError,
)

__all__ = ["AgentTeamsError", "McpServerError", "ModelServerError", "ModelServerUnavailable", "UserError"]
