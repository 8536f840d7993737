"""The mcp 2.x adapter: the only module that reads mcp 2.x (and FastMCP 4) internals.

It installs a `ServerMiddleware` first in the server's chain, in place of the SDK's built-in
`OpenTelemetryMiddleware` (so each message gets exactly one SERVER span), and turns each
`ServerRequestContext` into the version-neutral `InboundMessage` of `_tracing` and each handler
outcome into its `Outcome`. Private reads, each with a fallback when a later mcp drops it:

- `ServerSession._connection`: the request's `Connection` (FastMCP 4 reads it the same way);
- `NotifyOnlyOutbound._outbound._tg`: the task group of a 2026-07-28 duplex stream's dispatcher,
  cancelled at the stream's EOF; the stream's session ends with it (fallback: when the stream's
  channel object is garbage-collected);
- `mcp.server._otel.OpenTelemetryMiddleware`: the SDK's built-in tracing, removed and restored;
- `MCPServer._tool_manager` / `._prompt_manager`: whether a tool or prompt exists;
- `Server._notification_handlers`: the notifications a server handles;
- `fastmcp.telemetry.suppress_fastmcp_telemetry`: FastMCP 4's native SERVER span, off for the
  instrumented server only.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import Any

import anyio
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.connection import Connection, NotifyOnlyOutbound
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue
from pydantic import ValidationError

from shinzo_otel import _semconv as sc
from shinzo_otel._tracing import Carrier, InboundMessage, Outcome, RequestTracer
from shinzo_otel._transport import http_attributes, sse_session_id
from shinzo_otel.sessions import SessionOrigin

_logger = logging.getLogger(__name__)

_LEGACY_INTERNAL_ERROR = 0
"""The wire code of an unmapped handler exception on a handshake-era connection (mcp 2.x's
`JSONRPCDispatcher` keeps 1.x's `code=0`); the 2026-07-28 era answers INTERNAL_ERROR."""

_streams: weakref.WeakKeyDictionary[NotifyOnlyOutbound, Carrier] = weakref.WeakKeyDictionary()
"""The carriers of 2026-07-28 duplex streams, keyed by the stream's shared channel."""
_CARRIER_KEY = "shinzo_otel.carrier"
"""Key of a handshake-era connection's `Carrier` in `Connection.state` (built once per connection)."""


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


def _native_tracing_off(server: Any) -> Callable[[], AbstractContextManager[object]] | None:
    """For a FastMCP 4 server, its `suppress_fastmcp_telemetry` (native SERVER spans off in the
    current context only, so other servers in the process keep theirs); else None.

    Inside our SERVER span FastMCP's propagation-only mode is transparent: its `_meta` extraction
    keeps an already-valid current span (`fastmcp.telemetry.extract_trace_context`).
    """
    if type(server).__module__.startswith("fastmcp"):
        try:
            from fastmcp.telemetry import suppress_fastmcp_telemetry
        except ImportError:  # a FastMCP without the switch: its spans stay (documented)
            pass
        else:
            return suppress_fastmcp_telemetry
    return None


def method_known(server: Any) -> Callable[[str], bool]:
    """Whether `server` handles a method outside the spec's list (a custom request handler)."""
    inner = lowlevel_server(server)

    def known(method: str) -> bool:
        handlers = getattr(inner, "_notification_handlers", {})
        return inner.get_request_handler(method) is not None or method in handlers

    return known


def target_lookup(server: Any) -> Callable[[str, str], bool | None]:
    """Whether an `MCPServer` has a tool or prompt of that name; None for other servers (their tools
    are learned from their `tools/list` answers)."""
    get_tool = getattr(getattr(server, "_tool_manager", None), "get_tool", None)
    get_prompt = getattr(getattr(server, "_prompt_manager", None), "get_prompt", None)
    if not callable(get_tool) or not callable(get_prompt):
        return lambda kind, name: None

    def lookup(kind: str, name: str) -> bool | None:
        return (get_tool if kind == "tool" else get_prompt)(name) is not None

    return lookup


async def _run_at_cancel(callback: Callable[[], None]) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        callback()


def _stream_carrier(outbound: NotifyOnlyOutbound) -> Carrier:
    """The carrier of a 2026-07-28 duplex stream: every request of the stream gets its own
    `Connection`, all sharing the stream's `NotifyOnlyOutbound` channel."""
    carrier = _streams.get(outbound)
    if carrier is not None:
        return carrier
    # A weak reference: the carrier is the value of a weak-keyed map and must not keep its key alive.
    stream = weakref.ref(outbound)

    def on_close(callback: Callable[[], None]) -> None:
        channel = stream()
        if channel is None:
            callback()
            return
        task_group = getattr(getattr(channel, "_outbound", None), "_tg", None)
        start_soon = getattr(task_group, "start_soon", None)
        if callable(start_soon):
            # The dispatcher cancels its task group at the stream's EOF: the watcher's finally runs.
            start_soon(_run_at_cancel, callback)
        else:
            weakref.finalize(channel, callback)

    carrier = _streams[outbound] = Carrier(SessionOrigin.STREAM, {}, on_close)
    return carrier


def _connection_carrier(connection: Connection) -> Carrier:
    carrier = connection.state.get(_CARRIER_KEY)
    if isinstance(carrier, Carrier):
        return carrier
    exit_stack = connection.exit_stack

    def on_close(callback: Callable[[], None]) -> None:
        exit_stack.callback(callback)

    carrier = connection.state[_CARRIER_KEY] = Carrier(SessionOrigin.CONNECTION, connection.state, on_close)
    return carrier


_NO_META: Mapping[str, Any] = MappingProxyType({})
_PIPE: Mapping[str, AttributeValue] = {sc.NETWORK_TRANSPORT: "pipe"}
_INPROC: Mapping[str, AttributeValue] = {sc.NETWORK_TRANSPORT: "inproc"}


def _transport_attributes(request: Any, connection: Connection | None) -> Mapping[str, AttributeValue]:
    if request is not None:
        return http_attributes(request)
    # Off HTTP, only the in-process 2026-07-28 path (`Client(server)`, direct dispatch) has no
    # channel back to the client; stdio and memory streams have one.
    return _INPROC if connection is not None and not connection.has_standalone_channel else _PIPE


def inbound_message(ctx: ServerRequestContext[Any, Any]) -> InboundMessage:
    """The version-neutral view of one request context."""
    params: Mapping[str, Any] = ctx.params or {}
    meta = params.get("_meta")
    modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
    request = ctx.request
    connection = getattr(ctx.session, "_connection", None)
    if not isinstance(connection, Connection):
        connection = None
    protocol_session_id = None
    carrier: Carrier | None = None
    if connection is not None:
        protocol_session_id = connection.session_id or (None if request is None else sse_session_id(request))
        if isinstance(connection.outbound, NotifyOnlyOutbound):
            carrier = _stream_carrier(connection.outbound)
        elif protocol_session_id is not None or (request is None and not modern):
            # A protocol session, or a handshake-era stdio / in-memory connection; a stateless
            # HTTP connection lives for one request only.
            carrier = _connection_carrier(connection)
    headers = None if request is None else getattr(request, "headers", None)
    return InboundMessage(
        method=ctx.method,
        request_id=None if ctx.request_id is None else str(ctx.request_id),
        params=params,
        meta=meta if type(meta) is dict or (meta is not None and isinstance(meta, Mapping)) else _NO_META,
        protocol_version=ctx.protocol_version,
        modern=modern,
        attributes=_transport_attributes(request, connection),
        headers=headers if headers is not None and isinstance(headers, Mapping) else None,
        protocol_session_id=protocol_session_id,
        carrier=carrier,
        client_info=params.get("clientInfo") if ctx.method == "initialize" else None,
        native=ctx,
    )


def outcome_of(error: BaseException, modern: bool) -> Outcome:
    """What the wire said for a handler exception (`handler_exception_to_error_data` and each
    era's catch-all: 0 on a handshake-era connection, INTERNAL_ERROR in the 2026-07-28 era)."""
    if isinstance(error, MCPError):
        return Outcome(error_code=error.error.code, error_message=error.error.message, exception=None)
    if isinstance(error, ValidationError):
        # pydantic's message echoes client input: the wire carries a fixed one, so do we.
        return Outcome(error_code=INVALID_PARAMS, error_message="Invalid request parameters")
    if isinstance(error, Exception):
        code = INTERNAL_ERROR if modern else _LEGACY_INTERNAL_ERROR
        return Outcome(error_code=code, error_message=str(error), exception=error)
    # CancelledError (notifications/cancelled, connection closed), KeyboardInterrupt: not completed.
    return Outcome(cancelled=True)


class Mcp2Middleware:
    """`ServerMiddleware` (mcp 2.x) handing every inbound message to a `RequestTracer`.

    Args:
        tracer: the request tracer of the instrumented server.
        around_call: entered around the rest of the chain (FastMCP 4: native tracing off); None for
            none (a null context would cost three calls per message).
    """

    def __init__(
        self, tracer: RequestTracer, around_call: Callable[[], AbstractContextManager[object]] | None = None
    ) -> None:
        self.tracer = tracer
        self._around_call = around_call

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        try:
            message = inbound_message(ctx)
        except Exception:  # telemetry never breaks the host
            _logger.warning("shinzo_otel could not read %s", ctx.method, exc_info=True)
            return await call_next(ctx)
        operation = self.tracer.start(message)
        if operation is None:
            return await call_next(ctx)
        tokens = self.tracer.activate(operation)
        context_token = otel_context.attach(trace.set_span_in_context(operation.span))
        try:
            if self._around_call is None:
                result = await call_next(ctx)
            else:
                with self._around_call():
                    result = await call_next(ctx)
        except BaseException as error:
            self.tracer.finish(operation, outcome_of(error, message.modern))
            raise
        finally:
            otel_context.detach(context_token)
            self.tracer.deactivate(tokens)
        self.tracer.finish(operation, Outcome(result=result))
        return result


def install(server: Any, tracer: RequestTracer) -> Mcp2Middleware:
    """Put a `Mcp2Middleware` first in `server`'s chain, removing the SDK's built-in tracing.

    Raises:
        TypeError: `server` is not an mcp 2.x `Server`, `MCPServer` or FastMCP 4 server.
    """
    chain = server_middleware(server)
    middleware = Mcp2Middleware(tracer, _native_tracing_off(server))
    chain[:] = [m for m in chain if not isinstance(m, OpenTelemetryMiddleware)]
    chain.insert(0, middleware)
    return middleware


def uninstall(server: Any, middleware: object) -> None:
    """Remove `middleware` from `server`'s chain and put the SDK's built-in tracing back first."""
    chain = server_middleware(server)
    chain[:] = [m for m in chain if m is not middleware]
    chain.insert(0, OpenTelemetryMiddleware())


def check_server(server: Any) -> None:
    """Raise TypeError unless `server` is an mcp 2.x server this adapter instruments."""
    server_middleware(server)
