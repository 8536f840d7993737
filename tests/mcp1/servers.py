"""Real mcp 1.x servers and clients for the tests: the seed 000 low-level `Server`, mcp 1.x's own
`FastMCP`, standalone FastMCP (2 or 3, whichever the environment has), their HTTP and SSE apps, and a
connected `ClientSession` over every transport."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.fastmcp import FastMCP as SdkFastMCP
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.memory import create_connected_server_and_client_session
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from tests.common_servers import add_common_handlers, make_fastmcp

STDIO_SERVER = Path(__file__).resolve().parent / "stdio_server.py"
KINDS = ("lowlevel", "sdk-fastmcp", "fastmcp")
"""The low-level `Server` (seed 000), mcp 1.x's `mcp.server.fastmcp.FastMCP`, standalone FastMCP."""


class PromptMissing(LookupError):
    """Raised by the low-level server's prompt handler for every prompt."""


def register_lowlevel_handlers(server: Server[Any, Any], user_tracer: trace.Tracer | None = None) -> None:
    """Seed 000's shape: handlers registered with the decorators. Tools `echo`, `crash` (raises: mcp
    1.x answers it as an `isError` result), `nested` (a user span inside); every prompt raises."""
    tracer = user_tracer or trace.get_tracer("user.code")

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        schema = {"type": "object", "properties": {"text": {"type": "string"}}}
        return [types.Tool(name=name, inputSchema=schema) for name in ("echo", "crash", "nested")]

    @server.call_tool()
    async def call_tool(name: str, arguments: dict[str, Any]) -> list[types.TextContent]:
        if name == "crash":
            raise RuntimeError("low-level crash")
        text = str(arguments.get("text", ""))
        if name == "nested":
            with tracer.start_as_current_span("user.work"):
                text = text.upper()
        return [types.TextContent(type="text", text=text)]

    @server.get_prompt()
    async def get_prompt(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
        raise PromptMissing(f"no prompt {name} for customer Ada Lovelace")


def make_lowlevel(user_tracer: trace.Tracer | None = None) -> Server[Any, Any]:
    server: Server[Any, Any] = Server("lowlevel-server")
    register_lowlevel_handlers(server, user_tracer)
    return server


def make_sdk_fastmcp(stateless_http: bool = False) -> SdkFastMCP:
    """mcp 1.x's `FastMCP` with the handlers of `add_common_handlers`: tools `echo`, `fail` (raises:
    an `isError` result), prompt `greet`, resource `res://hello`."""
    server = SdkFastMCP("sdk-fastmcp", stateless_http=stateless_http)
    add_common_handlers(server)
    return server


def build(kind: str, stateless_http: bool = False) -> Any:
    if kind == "lowlevel":
        return make_lowlevel()
    if kind == "sdk-fastmcp":
        return make_sdk_fastmcp(stateless_http)
    return make_fastmcp()


def lowlevel_of(server: Any) -> Server[Any, Any]:
    """What the SDK's in-memory client runs (`Server.run`)."""
    inner = getattr(server, "_mcp_server", server)
    assert isinstance(inner, Server)
    return inner


class _ManagerApp:
    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.manager.handle_request(scope, receive, send)


def lowlevel_http_app(server: Server[Any, Any], stateless: bool) -> Starlette:
    """The SDK's documented streamable HTTP setup for a low-level server, at /mcp."""
    manager = StreamableHTTPSessionManager(app=server, stateless=stateless)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Route("/mcp", endpoint=_ManagerApp(manager))], lifespan=lifespan)


def lowlevel_sse_app(server: Server[Any, Any]) -> Starlette:
    """The SDK's documented SSE setup for a low-level server: GET /sse, POST /messages/."""
    sse = SseServerTransport("/messages/")

    async def connect(request: Request) -> Response:
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await server.run(read, write, server.create_initialization_options())
        return Response()

    return Starlette(
        routes=[
            Route("/sse", endpoint=connect, methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
        ]
    )


def http_app(kind: str, server: Any, transport: str) -> Any:
    """The app serving `server` over `transport` (`http-stateful`, `http-stateless`, `sse`)."""
    if transport == "sse":
        if kind == "lowlevel":
            return lowlevel_sse_app(server)
        return server.sse_app() if kind == "sdk-fastmcp" else server.http_app(transport="sse")
    stateless = transport == "http-stateless"
    if kind == "lowlevel":
        return lowlevel_http_app(server, stateless)
    if kind == "sdk-fastmcp":
        return server.streamable_http_app()  # stateless is a setting of the server
    return server.http_app(path="/mcp", transport="http", stateless_http=stateless)


@asynccontextmanager
async def session_over(read: Any, write: Any) -> AsyncIterator[ClientSession]:
    async with ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_client(
    url: str, transport: str, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """A real mcp 1.x client over SSE or streamable HTTP, initialized."""
    if transport == "sse":
        async with (
            sse_client(f"{url}/sse", headers=headers) as (read, write),
            session_over(read, write) as client,
        ):
            yield client
        return
    import httpx

    async with (
        httpx.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write, _),
        session_over(read, write) as client,
    ):
        yield client


@asynccontextmanager
async def memory_client(server: Any) -> AsyncIterator[ClientSession]:
    """The SDK's in-memory client: JSON-RPC over memory streams into `Server.run`."""
    async with create_connected_server_and_client_session(lowlevel_of(server)) as client:
        yield client


@asynccontextmanager
async def stdio_client_of(kind: str, endpoint: str, *extra: str) -> AsyncIterator[ClientSession]:
    """A real stdio client of `tests/mcp1/stdio_server.py KIND`, which exports to `endpoint`."""
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    params = StdioServerParameters(command=sys.executable, args=[str(STDIO_SERVER), kind, *extra], env=env)
    async with stdio_client(params) as (read, write), session_over(read, write) as client:
        yield client
