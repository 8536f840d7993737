"""Real mcp 2.x servers for the tests: an `MCPServer`, a low-level `Server`, a FastMCP 4 server
(`make_fastmcp`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.server import MCPServer, Server
from opentelemetry import trace

from tests.common_servers import add_common_handlers
from tests.common_servers import make_fastmcp as make_fastmcp
from tests.loopback import serve_http as serve_http
from tests.loopback import spans_named as spans_named
from tests.loopback import wait_for_spans as wait_for_spans

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def make_mcpserver(
    tracer_provider: trace.TracerProvider | None = None, name: str = "test-server"
) -> MCPServer:
    """An `MCPServer` with the handlers of `add_common_handlers` (tools `echo`, `fail`, a prompt
    `greet`, a resource `res://hello`) and a tool `nested` (a user span inside)."""
    server = MCPServer(name)
    add_common_handlers(server)
    user_tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("user.code")

    @server.tool()
    def nested(text: str) -> str:
        with user_tracer.start_as_current_span("user.work"):
            return text.upper()

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
