"""YAML models of the `mcp_servers` section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _ServerBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    read_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for one tool call.")


class StdioServerSpec(_ServerBase):
    """An MCP server started as a child process speaking stdio."""

    type: Literal["stdio"]
    command: str = Field(description='Executable; "python" means the interpreter running the scenario.')
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    startup_timeout: float = Field(default=30.0, gt=0)


class HttpServerSpec(_ServerBase):
    """An MCP server reached over streamable HTTP."""

    type: Literal["streamable_http"]
    url: str
    headers: dict[str, str] | None = None
    timeout: float = Field(default=30.0, gt=0)


McpServerSpec = Annotated[StdioServerSpec | HttpServerSpec, Field(discriminator="type")]
