"""MCP servers: the session pool that shares one session per declared server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentteams._lazy import lazy_exports

if TYPE_CHECKING:
    from mcp_servers._pool import McpSessionPool, McpStartError, SharedMcpServer
    from mcp_servers.spec import HttpServerSpec, McpServerSpec, StdioServerSpec

# name -> module: imported on first use, so that `import mcp_servers.spec` (and the CLI's
# quick commands) need none of the heavy libraries the builders use
_EXPORTS = {
    "McpSessionPool": "mcp_servers._pool",
    "McpStartError": "mcp_servers._pool",
    "SharedMcpServer": "mcp_servers._pool",
    "HttpServerSpec": "mcp_servers.spec",
    "McpServerSpec": "mcp_servers.spec",
    "StdioServerSpec": "mcp_servers.spec",
}

__all__ = [
    "HttpServerSpec",
    "McpServerSpec",
    "McpSessionPool",
    "McpStartError",
    "SharedMcpServer",
    "StdioServerSpec",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
