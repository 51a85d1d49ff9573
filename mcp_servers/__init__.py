"""MCP servers: the session pool that shares one session per declared server."""

from mcp_servers._pool import McpSessionPool, McpStartError, SharedMcpServer
from mcp_servers.spec import HttpServerSpec, McpServerSpec, StdioServerSpec

__all__ = [
    "HttpServerSpec",
    "McpServerSpec",
    "McpSessionPool",
    "McpStartError",
    "SharedMcpServer",
    "StdioServerSpec",
]
