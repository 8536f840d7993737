"""Real mcp 2.x servers for the tests: an `MCPServer`, a low-level `Server`, a FastMCP 4 server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.server import MCPServer, Server
from opentelemetry import trace

from tests.loopback import serve_http as serve_http
from tests.loopback import spans_named as spans_named
from tests.loopback import wait_for_spans as wait_for_spans

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def make_mcpserver(
    tracer_provider: trace.TracerProvider | None = None, name: str = "test-server"
) -> MCPServer:
    """An `MCPServer` with tools `echo`, `fail` (an isError result), `nested` (a user span inside),
    a prompt `greet` and a resource `res://hello`."""
    server = MCPServer(name)
    user_tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("user.code")

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.tool()
    def fail(reason: str) -> str:
        raise ValueError(reason)

    @server.tool()
    def nested(text: str) -> str:
        with user_tracer.start_as_current_span("user.work"):
            return text.upper()

    @server.prompt()
    def greet(name: str) -> str:
        return f"Hello {name}"

    @server.resource("res://hello")
    def hello() -> str:
        return "hello"

    return server


class LowLevelCrash(RuntimeError):
    """Raised by the low-level server's `crash` tool."""


def make_lowlevel_server() -> Server[Any]:
    """A low-level `Server` with tools `echo` and `crash` (raises `LowLevelCrash`)."""

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        schema = {"type": "object", "properties": {"text": {"type": "string"}}}
        return types.ListToolsResult(
            tools=[
                types.Tool(name="echo", input_schema=schema),
                types.Tool(name="crash", input_schema=schema),
            ]
        )

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name == "crash":
            raise LowLevelCrash("low-level crash")
        text = str((params.arguments or {}).get("text", ""))
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    return Server("lowlevel-server", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


def make_fastmcp_server(name: str = "fastmcp-server") -> Any:
    """A standalone FastMCP 4 server with an `echo` tool."""
    from fastmcp import FastMCP

    server = FastMCP(name)

    @server.tool
    def echo(text: str) -> str:
        return text

    return server
