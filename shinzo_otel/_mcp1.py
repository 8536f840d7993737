"""The mcp 1.x adapter: the only module that reads mcp 1.x (and FastMCP 2 / 3) internals.

mcp 1.x has no middleware. `install` sets two instance attributes on the one low-level `Server`
being instrumented, so other servers in the process (and the `Server` class) stay untouched and
`uninstall` only deletes them:

- `run`: every transport calls `Server.run(read_stream, write_stream, ...)` once per connection
  (stdio, in memory, SSE, stateful streamable HTTP) or per HTTP request (`stateless=True`); FastMCP 2
  and 3 override it and the instance attribute still wins. The wrapper puts a proxy on both streams.
  The read side sees every inbound JSON-RPC message before the session validates it (so `initialize`,
  `notifications/cancelled` and invalid requests, which the session answers itself, get their span
  too) and starts its SERVER span; the write side sees each response and ends the span of its request
  with what the wire said (error code, result, or the cancellation answer). A notification's span
  ends as soon as it is read: nothing answers it.
- `_handle_message(message, session, lifespan_context, raise_exceptions)`: runs each request's
  handler with its span current and its session entered, in a fresh OTel context: the server task of
  a stateful HTTP session was started inside the `initialize` POST, whose context must not leak into
  later requests.

Other private reads, each with a fallback:
- the `StreamableHTTPServerTransport` among the locals of `Server.run`'s caller (the session
  manager's server task): its `mcp_session_id`, because the `initialize` POST carries no
  `mcp-session-id` header yet (fallback: the header of later requests; `initialize` then goes without);
- `fastmcp.server.server.server_span` (FastMCP 3): its native SERVER span, replaced by the current
  span while an instrumented server handles a message (other servers keep theirs);
- `FastMCP._tool_manager` / `._prompt_manager` (mcp 1.x `FastMCP`): whether a tool or prompt exists.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from types import FrameType
from typing import Any, get_args

import anyio
from mcp import types
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport

# Absent from mcp 2.x, where mypy checks this module too.
from mcp.shared.context import RequestContext  # type: ignore[attr-defined]
from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS  # type: ignore[import-not-found]
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from shinzo_otel import _semconv as sc
from shinzo_otel._tracing import Carrier, InboundMessage, Operation, Outcome, RequestTracer
from shinzo_otel._transport import http_attributes, sse_session_id
from shinzo_otel.sessions import SessionOrigin

_logger = logging.getLogger(__name__)

_CANCELLED = "notifications/cancelled"
_SESSION_HEADER = "mcp-session-id"
_VERSION_HEADER = "mcp-protocol-version"
_CALLER_FRAMES = 3
"""How far up from `Server.run` the stateful HTTP transport is looked for (the SDK's session manager
calls it directly; FastMCP's subclass adds no frame)."""
_HOOKED = ("run", "_handle_message")


def _methods(union_model: Any) -> frozenset[str]:
    """The `method` literals of an mcp 1.x `ClientRequest` / `ClientNotification` union."""
    members = get_args(union_model.model_fields["root"].annotation)
    return frozenset(get_args(member.model_fields["method"].annotation)[0] for member in members)


_SDK_METHODS = _methods(types.ClientRequest) | _methods(types.ClientNotification)
"""Every method mcp 1.x dispatches; anything else is rejected before a handler sees it."""


def lowlevel_server(server: Any) -> Any:
    """The low-level `Server` behind `server`: itself, or the `_mcp_server` of mcp 1.x's `FastMCP` and
    of standalone FastMCP 2 / 3."""
    inner = getattr(server, "_mcp_server", None)
    return server if inner is None else inner


def check_server(server: Any) -> None:
    """Raise TypeError unless `server` is an mcp 1.x `Server` or a FastMCP server built on one."""
    if not isinstance(lowlevel_server(server), Server):
        raise TypeError(
            f"instrument_server expects an mcp Server or FastMCP server, not {type(server).__name__}"
        )


def method_known(server: Any) -> Callable[[str], bool]:
    """mcp 1.x validates every message against its own method list: custom methods never reach a
    server, so only the SDK's methods outside the spec's list are known."""
    return _SDK_METHODS.__contains__


def target_lookup(server: Any) -> Callable[[str, str], bool | None]:
    """Whether mcp 1.x's `FastMCP` has a tool or prompt of that name; None for other servers (their
    tools are learned from their `tools/list` answers)."""
    get_tool = getattr(getattr(server, "_tool_manager", None), "get_tool", None)
    get_prompt = getattr(getattr(server, "_prompt_manager", None), "get_prompt", None)
    if not callable(get_tool) or not callable(get_prompt):
        return lambda kind, name: None

    def lookup(kind: str, name: str) -> bool | None:
        return (get_tool if kind == "tool" else get_prompt)(name) is not None

    return lookup


# --- FastMCP 3's native SERVER span ---------------------------------------------------------------

_NATIVE_SPANS = (("fastmcp.server.server", "server_span"),)
"""Where FastMCP 3 opens its native SERVER span (module, function). FastMCP 2 has none."""
_native_off: ContextVar[bool] = ContextVar("shinzo_otel_fastmcp_native_off", default=False)
_native_originals: dict[tuple[str, str], Any] = {}
_native_users = 0


def _gate(original: Callable[..., AbstractContextManager[Any]]) -> Callable[..., AbstractContextManager[Any]]:
    @contextmanager
    def server_span(*args: Any, **kwargs: Any) -> Iterator[Any]:
        if _native_off.get():
            yield trace.get_current_span()  # ours: FastMCP sets its attributes on nothing else
        else:
            with original(*args, **kwargs) as span:
                yield span

    return server_span


def _native_spans(on: bool) -> None:
    """Count FastMCP servers instrumented; gate FastMCP's span functions while there are any."""
    global _native_users
    _native_users += 1 if on else -1
    for module_name, name in _NATIVE_SPANS:
        module = sys.modules.get(module_name)
        if module is None or not hasattr(module, name):
            continue
        if _native_users == 1 and on and (module_name, name) not in _native_originals:
            _native_originals[module_name, name] = getattr(module, name)
            setattr(module, name, _gate(_native_originals[module_name, name]))
        elif _native_users == 0 and (module_name, name) in _native_originals:
            setattr(module, name, _native_originals.pop((module_name, name)))


@contextmanager
def _native_tracing_off() -> Iterator[None]:
    token = _native_off.set(True)
    try:
        yield
    finally:
        _native_off.reset(token)


def _is_fastmcp(server: Any) -> bool:
    return type(server).__module__.startswith("fastmcp")


# --- connections ----------------------------------------------------------------------------------


class _Connection:
    """One `Server.run` call: a connection, or one stateless HTTP request."""

    __slots__ = ("cancelled", "carrier", "closers", "in_flight", "protocol_session_id", "protocol_version")

    def __init__(self, stateless: bool, protocol_session_id: str | None) -> None:
        self.protocol_session_id = protocol_session_id
        self.protocol_version: str | None = None
        self.in_flight: dict[Any, Operation] = {}
        """Requests read and not answered yet, by JSON-RPC id."""
        self.cancelled: set[Any] = set()
        """Ids of in-flight requests the client cancelled (`notifications/cancelled`)."""
        self.closers: list[Callable[[], None]] = []
        # A stateless HTTP request stands alone: no session lives on it.
        self.carrier = None if stateless else Carrier(SessionOrigin.CONNECTION, {}, self.closers.append)


_current: ContextVar[tuple[_Hook, _Connection] | None] = ContextVar(
    "shinzo_otel_mcp1_connection", default=None
)
"""The hook and connection of the `Server.run` whose tasks run in this context."""


def _http_session_id() -> str | None:
    """The `mcp_session_id` of the stateful streamable HTTP transport whose server task is calling
    `Server.run` (see the module docstring), or None."""
    frame: FrameType | None = sys._getframe(2)  # above `_http_session_id` and the `run` wrapper
    for _ in range(_CALLER_FRAMES):
        if frame is None:
            return None
        for value in frame.f_locals.values():
            if isinstance(value, StreamableHTTPServerTransport):
                session_id = value.mcp_session_id
                return session_id if isinstance(session_id, str) else None
        frame = frame.f_back
    return None


def _negotiated_version(requested: Any) -> str:
    """The version `ServerSession` answers `initialize` with."""
    if isinstance(requested, str) and requested in SUPPORTED_PROTOCOL_VERSIONS:
        return requested
    return str(types.LATEST_PROTOCOL_VERSION)


def _native_context(request_id: Any, meta: Mapping[str, Any], request: Any) -> Any:
    """The mcp 1.x `RequestContext` a `session_resolver` receives (`request_id`, `meta`, `request`).
    The message has not reached the server yet: `session` and `lifespan_context` are None."""
    parsed = types.RequestParams.Meta.model_validate(meta) if meta else None  # type: ignore[attr-defined]
    return RequestContext(
        request_id=request_id, meta=parsed, session=None, lifespan_context=None, request=request
    )


class _Hook:
    """The wrappers installed on one low-level `Server`."""

    def __init__(self, server: Any, tracer: RequestTracer) -> None:
        self.server = server
        self.tracer = tracer
        self.fastmcp = _is_fastmcp(server)
        self.previous: dict[str, Any] = {}

    # -- inbound -----------------------------------------------------------------------------------

    def inbound(self, connection: _Connection, item: Any) -> None:
        """Start the span of one message read from the transport (never raises)."""
        root: Any = getattr(getattr(item, "message", None), "root", None)
        is_request = isinstance(root, types.JSONRPCRequest)
        if not is_request and not isinstance(root, types.JSONRPCNotification):
            return  # a response to the server's own request, or a transport error
        message = self._message(connection, root, getattr(item, "metadata", None), is_request)
        # The reading task may run in the context of the request that opened the connection.
        token = otel_context.attach(otel_context.Context())
        try:
            operation = self.tracer.start(message)
        finally:
            otel_context.detach(token)
        if operation is None:
            return
        if is_request:
            earlier = connection.in_flight.pop(root.id, None)
            if earlier is not None:  # a client reusing the id of an unanswered request
                self.tracer.finish(earlier, Outcome(cancelled=True))
            connection.in_flight[root.id] = operation
            return
        if root.method == _CANCELLED:
            cancelled_id = message.params.get("requestId")
            if cancelled_id in connection.in_flight:
                connection.cancelled.add(cancelled_id)
        self.tracer.finish(operation, Outcome())

    def _message(self, connection: _Connection, root: Any, metadata: Any, is_request: bool) -> InboundMessage:
        params: Mapping[str, Any] = root.params if isinstance(root.params, Mapping) else {}
        raw_meta = params.get("_meta")
        meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
        request = getattr(metadata, "request_context", None)
        headers = getattr(request, "headers", None)
        if not isinstance(headers, Mapping):
            headers = None
        if connection.protocol_session_id is None and request is not None:
            session_id = sse_session_id(request)
            if session_id is None and connection.carrier is not None and headers is not None:
                session_id = headers.get(_SESSION_HEADER)
            connection.protocol_session_id = session_id
        client_info = None
        if root.method == "initialize":
            connection.protocol_version = _negotiated_version(params.get("protocolVersion"))
            client_info = params.get("clientInfo")
        version = connection.protocol_version
        if version is None and headers is not None:
            version = headers.get(_VERSION_HEADER)
        request_id = root.id if is_request else None
        attributes: dict[str, AttributeValue] = (
            {sc.NETWORK_TRANSPORT: "pipe"} if request is None else http_attributes(request)
        )
        return InboundMessage(
            method=root.method,
            request_id=None if request_id is None else str(request_id),
            params=params,
            meta=meta,
            protocol_version=version,
            modern=False,  # mcp 1.x only speaks the handshake era
            attributes=attributes,
            headers=headers,
            protocol_session_id=connection.protocol_session_id,
            carrier=connection.carrier,
            client_info=client_info if isinstance(client_info, Mapping) else None,
            native=_native_context(request_id, meta, request),
        )

    # -- outbound ----------------------------------------------------------------------------------

    def outbound(self, connection: _Connection, item: Any) -> None:
        """End the span of the request a response answers (never raises)."""
        root = getattr(getattr(item, "message", None), "root", None)
        if isinstance(root, types.JSONRPCResponse):
            outcome = Outcome(result=root.result)
        elif isinstance(root, types.JSONRPCError):
            outcome = Outcome(error_code=root.error.code, error_message=root.error.message)
        else:
            return
        operation = connection.in_flight.pop(root.id, None)
        if operation is None:
            return
        if root.id in connection.cancelled:
            connection.cancelled.discard(root.id)
            outcome = Outcome(cancelled=True)  # the session's "Request cancelled" answer
        self.tracer.finish(operation, outcome)

    # -- the wrappers ------------------------------------------------------------------------------

    def wrap_run(self, run: Callable[..., Any]) -> Callable[..., Any]:
        async def traced_run(read_stream: Any, write_stream: Any, *args: Any, **kwargs: Any) -> Any:
            # run(read_stream, write_stream, initialization_options, raise_exceptions, stateless)
            stateless = bool(kwargs.get("stateless", args[2] if len(args) > 2 else False))
            connection = _Connection(stateless, None if stateless else _http_session_id())
            token = _current.set((self, connection))
            try:
                return await run(
                    _ReadStream(read_stream, self, connection),
                    _WriteStream(write_stream, self, connection),
                    *args,
                    **kwargs,
                )
            finally:
                _current.reset(token)
                self.close(connection)

        return traced_run

    def close(self, connection: _Connection) -> None:
        """End what is left of a connection: unanswered requests did not complete, then its session."""
        in_flight = list(connection.in_flight.values())
        connection.in_flight.clear()
        for operation in in_flight:
            self.tracer.finish(operation, Outcome(cancelled=True))
        for closer in connection.closers:
            closer()

    def wrap_handle_message(self, handle_message: Callable[..., Any]) -> Callable[..., Any]:
        async def traced_handle_message(message: Any, *args: Any, **kwargs: Any) -> Any:
            current = _current.get()
            operation = None
            if current is not None and current[0] is self:
                operation = current[1].in_flight.get(getattr(message, "request_id", None))
            context = otel_context.Context()
            if operation is not None:
                context = trace.set_span_in_context(operation.span, context)
            context_token = otel_context.attach(context)
            tokens = self.tracer.activate(operation)
            try:
                with _native_tracing_off() if self.fastmcp else nullcontext():
                    return await handle_message(message, *args, **kwargs)
            finally:
                self.tracer.deactivate(tokens)
                otel_context.detach(context_token)

        return traced_handle_message


def _guarded(hook: Callable[[Any], None], item: Any) -> None:
    try:
        hook(item)
    except Exception:  # telemetry never breaks the host: the message goes on untraced
        _logger.warning("shinzo_otel could not trace an mcp message", exc_info=True)


class _StreamProxy:
    """A transport stream that behaves as itself, with a hook around its messages."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aenter__(self) -> _StreamProxy:
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._stream.__aexit__(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _ReadStream(_StreamProxy):
    """The transport's read stream; every message read is handed to `_Hook.inbound` first."""

    def __init__(self, stream: Any, hook: _Hook, connection: _Connection) -> None:
        super().__init__(stream)
        self._inbound = lambda item: hook.inbound(connection, item)

    async def receive(self) -> Any:
        item = await self._stream.receive()
        _guarded(self._inbound, item)
        return item

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class _WriteStream(_StreamProxy):
    """The transport's write stream; every message sent is handed to `_Hook.outbound` after."""

    def __init__(self, stream: Any, hook: _Hook, connection: _Connection) -> None:
        super().__init__(stream)
        self._outbound = lambda item: hook.outbound(connection, item)

    async def send(self, item: Any) -> None:
        await self._stream.send(item)
        _guarded(self._outbound, item)


def install(server: Any, tracer: RequestTracer) -> _Hook:
    """Wrap `run` and `_handle_message` of `server`'s low-level `Server` instance.

    Raises:
        TypeError: `server` is not an mcp 1.x `Server` or a FastMCP server built on one.
    """
    check_server(server)
    inner = lowlevel_server(server)
    hook = _Hook(inner, tracer)
    for name, wrap in (("run", hook.wrap_run), ("_handle_message", hook.wrap_handle_message)):
        if name in vars(inner):  # someone else's per-instance wrapper: ours goes around it
            hook.previous[name] = vars(inner)[name]
        setattr(inner, name, wrap(getattr(inner, name)))
    if hook.fastmcp:
        _native_spans(on=True)
    return hook


def uninstall(server: Any, installed: object) -> None:
    """Remove the wrappers `install` set (connections already running keep theirs until they end)."""
    if not isinstance(installed, _Hook):
        return
    inner = installed.server
    for name in _HOOKED:
        if name in installed.previous:
            setattr(inner, name, installed.previous[name])
        else:
            vars(inner).pop(name, None)
    if installed.fastmcp:
        _native_spans(on=False)
