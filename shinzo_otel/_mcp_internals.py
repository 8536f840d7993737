"""The only place that reads mcp 2.x internals; each read has a fallback.

mcp 2.3 exposes the per-connection state (`Connection`) to middleware only through the private
`ServerSession._connection` (FastMCP 4 reads it the same way), and the transport kind only through
the request-scoped dispatch context. See ../shared/notes/mcp2.md.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext

DIRECT_TRANSPORT_KIND = "direct"
"""`TransportContext.kind` of the in-process 2026-era path (`mcp.shared.direct_dispatcher`)."""


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection | None:
    """The request's `Connection`, or None when this mcp version hides it."""
    connection = getattr(ctx.session, "_connection", None)
    return connection if isinstance(connection, Connection) else None


def transport_kind(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """`TransportContext.kind` of the request (`jsonrpc`, `streamable-http`, `direct`), or None."""
    outbound = getattr(ctx.session, "_request_outbound", None)
    transport = getattr(outbound, "transport", None)
    kind = getattr(transport, "kind", None)
    return kind if isinstance(kind, str) else None


def server_middleware(server: Any) -> list[Any]:
    """The middleware list of a low-level `Server`, an `MCPServer`, or a FastMCP 4 server.

    Raises:
        TypeError: `server` is none of these.
    """
    # FastMCP 4's own `.middleware` is its FastMCP-level chain; the SDK's is on `_mcp_server`.
    for candidate in (getattr(server, "_mcp_server", None), server):
        middleware = getattr(candidate, "middleware", None)
        if isinstance(middleware, list):
            return middleware
    raise TypeError(
        f"instrument_server expects an mcp Server, MCPServer or FastMCP server, not {type(server).__name__}"
    )


def lowlevel_server(server: Any) -> Any:
    """The low-level `Server` behind `server` (itself for a low-level `Server`)."""
    for attribute in ("_lowlevel_server", "_mcp_server"):
        inner = getattr(server, attribute, None)
        if inner is not None:
            return inner
    return server


def fastmcp_native_tracing_off(server: Any) -> Callable[[], AbstractContextManager[object]] | None:
    """For a FastMCP 4 server, its `suppress_fastmcp_telemetry` (native SERVER spans off in the
    current context only, so other servers in the process keep theirs); None for other servers.

    Inside our SERVER span FastMCP's propagation-only mode is transparent: its `_meta` extraction
    keeps an already-valid current span (`fastmcp.telemetry.extract_trace_context`).
    """
    if not type(server).__module__.startswith("fastmcp"):
        return None
    try:
        from fastmcp.telemetry import suppress_fastmcp_telemetry
    except ImportError:  # a FastMCP without the switch: its spans stay (documented)
        return None
    return suppress_fastmcp_telemetry
