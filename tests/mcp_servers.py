"""Real MCP servers for the tests: an `MCPServer`, a low-level `Server`, and a loopback HTTP runner."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server import MCPServer, Server
from opentelemetry import trace

from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

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


@asynccontextmanager
async def serve_http(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1; yields the base URL.

    Args:
        sock: a bound socket to serve on (a port reserved earlier); default a new ephemeral port.
    """
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


async def wait_for_spans(
    receiver: OtlpReceiver, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 15.0
) -> list[ReceivedSpan]:
    """`OtlpReceiver.wait_for_spans` off the event loop, so an in-process server keeps running."""
    return await anyio.to_thread.run_sync(partial(receiver.wait_for_spans, predicate, timeout))


def spans_named(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    """The spans called `name`."""
    return [span for span in spans if span.name == name]


def make_fastmcp_server(name: str = "fastmcp-server") -> Any:
    """A standalone FastMCP 4 server with an `echo` tool."""
    from fastmcp import FastMCP

    server = FastMCP(name)

    @server.tool
    def echo(text: str) -> str:
        return text

    return server
