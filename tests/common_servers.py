"""What the test servers of both mcp majors (tests/mcp_servers.py, tests/mcp1/servers.py) share: the
tools, prompt and resource they register through the decorator API that mcp 2.x `MCPServer` and
mcp 1.x `FastMCP` have in common, and a standalone FastMCP server (2, 3 or 4, whichever the
environment has). Imported by those two modules only: it imports `fastmcp`."""

from __future__ import annotations

from typing import Any


def add_common_handlers(server: Any) -> None:
    """Register tools `echo` and `fail` (raises: an isError result), prompt `greet` and resource
    `res://hello` on an `MCPServer` or mcp 1.x `FastMCP`."""

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.tool()
    def fail(reason: str) -> str:
        raise ValueError(reason)

    @server.prompt()
    def greet(name: str) -> str:
        return f"Hello {name}"

    @server.resource("res://hello")
    def hello() -> str:
        return "hello"


def make_fastmcp(name: str = "fastmcp-server") -> Any:
    """A standalone FastMCP server (2, 3 or 4) with an `echo` tool."""
    from fastmcp import FastMCP

    server = FastMCP(name)

    @server.tool
    def echo(text: str) -> str:
        return text

    return server
