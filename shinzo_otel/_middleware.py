"""The mcp 2.x server middleware: one SERVER span per inbound message, in its session.

Runs on the request path of every message, so it does the least it can: it resolves the session
(once per connection), builds the semconv attributes, starts the span, and records the outcome.
Redaction, batching, export and the `mcp.server.operation.duration` metric (derived from the
finished span) happen later on the export thread (`ShinzoSpanProcessor`). Content (arguments,
results) is JSON-encoded here only when argument collection is on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue
from pydantic import ValidationError

from shinzo_otel import _semconv as sc
from shinzo_otel._mcp_internals import DIRECT_TRANSPORT_KIND, connection_of, transport_kind
from shinzo_otel.session_resolvers import SessionResolver
from shinzo_otel.sessions import _CURRENT_SESSION, LogicalSessions, Session, SessionManager, SessionType

_logger = logging.getLogger(__name__)

_SESSION_STATE_KEY = "shinzo_otel.session"
"""Key of our `Session` in `Connection.state` (per-connection scratch space)."""

_NOT_SPAN_ERRORS = frozenset({-32700, -32600, -32601, -32602, -32002})
"""JSON-RPC codes that SHOULD NOT mark a server span as an error (semconv gen-ai/mcp.md)."""

_RESOURCE_METHODS = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})


def _json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


class _Operation:
    """What the middleware keeps between the start and the end of one message."""

    __slots__ = ("method", "session", "span")

    def __init__(self, method: str, span: Span, session: Session | None):
        self.method = method
        self.span = span
        self.session = session


class ShinzoMiddleware:
    """`ServerMiddleware` (mcp 2.x) emitting the request spans; installed by `instrument_server`.

    Args:
        tracer: tracer of the resolved TracerProvider.
        sessions: starts and ends session spans.
        capture_content: record arguments, results, prompt variables and tool error messages.
        session_resolver: maps requests without a session of their own to a logical session key.
        logical_sessions: the logical sessions of `session_resolver` (required with it).
        around_call: a context manager entered around the rest of the chain (FastMCP 4: its
            `suppress_fastmcp_telemetry`, so its native SERVER span does not double ours).
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        sessions: SessionManager,
        *,
        capture_content: bool,
        session_resolver: SessionResolver | None = None,
        logical_sessions: LogicalSessions | None = None,
        around_call: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        self._tracer = tracer
        self._sessions = sessions
        self._capture_content = capture_content
        self._session_resolver = session_resolver
        self._logical_sessions = logical_sessions
        self._around_call = around_call
        self.manual_session: Session | None = None
        """The process-level session of `enable_session_tracking`, set by the instrumentation."""
        self.manual_stamp: Mapping[str, AttributeValue] = {}
        """Its `resource_uuid` and metadata, added to sessions that have their own id."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        operation = self._start(ctx)
        if operation is None:
            return await call_next(ctx)
        session_token = _CURRENT_SESSION.set(operation.session)
        context_token = otel_context.attach(trace.set_span_in_context(operation.span))
        try:
            if self._around_call is None:
                result = await call_next(ctx)
            else:
                with self._around_call():
                    result = await call_next(ctx)
        except BaseException as exc:
            self._finish(operation, None, exc)
            raise
        finally:
            otel_context.detach(context_token)
            _CURRENT_SESSION.reset(session_token)
        self._finish(operation, result, None)
        return result

    # --- start ------------------------------------------------------------------------------------

    def _start(self, ctx: ServerRequestContext[Any, Any]) -> _Operation | None:
        try:
            return self._start_operation(ctx)
        except Exception:  # telemetry never breaks the host: serve the request untraced
            _logger.warning("shinzo_otel could not trace %s", ctx.method, exc_info=True)
            return None

    def _start_operation(self, ctx: ServerRequestContext[Any, Any]) -> _Operation:
        method = ctx.method
        params = ctx.params or {}
        attributes: dict[str, AttributeValue] = {
            sc.MCP_METHOD_NAME: method,
            sc.MCP_PROTOCOL_VERSION: ctx.protocol_version,
        }
        if ctx.request_id is not None:
            attributes[sc.JSONRPC_REQUEST_ID] = str(ctx.request_id)
        target = self._target_attributes(method, params, attributes)
        self._transport_attributes(ctx, attributes)

        session = self._resolve_session(ctx, attributes)
        if session is not None:
            attributes.update(session.stamp)
        parent = _client_context(ctx.meta)
        links: list[Link] = []
        if parent is None:
            parent = session.parent_context if session is not None else None
        elif session is not None:
            links.append(Link(session.span.get_span_context()))
        ambient = trace.get_current_span().get_span_context()
        if parent is not None and ambient.is_valid:
            # An enclosing span (e.g. the ASGI HTTP server span) that is not our parent is linked.
            links.append(Link(ambient))
        span = self._tracer.start_span(
            f"{method} {target}" if target else method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            links=links,
        )
        return _Operation(method, span, session)

    def _target_attributes(
        self, method: str, params: Mapping[str, Any], attributes: dict[str, AttributeValue]
    ) -> str | None:
        """Add the method's target attributes; return the span-name target (tool or prompt name)."""
        name = params.get("name")
        target = name if isinstance(name, str) else None
        if method == "tools/call":
            attributes[sc.GEN_AI_OPERATION_NAME] = sc.EXECUTE_TOOL
            if target is not None:
                attributes[sc.GEN_AI_TOOL_NAME] = target
            if self._capture_content and "arguments" in params:
                attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = _json(params["arguments"])
            return target
        if method == "prompts/get":
            if target is not None:
                attributes[sc.GEN_AI_PROMPT_NAME] = target
            arguments = params.get("arguments")
            if self._capture_content and isinstance(arguments, Mapping):
                for key, value in arguments.items():
                    attributes[f"{sc.GEN_AI_PROMPT_VARIABLE_PREFIX}{key}"] = str(value)
            return target
        if method in _RESOURCE_METHODS and isinstance(params.get("uri"), str):
            attributes[sc.MCP_RESOURCE_URI] = params["uri"]
        return None

    @staticmethod
    def _transport_attributes(
        ctx: ServerRequestContext[Any, Any], attributes: dict[str, AttributeValue]
    ) -> None:
        request = ctx.request
        if request is not None:
            attributes[sc.NETWORK_TRANSPORT] = "tcp"
            attributes[sc.NETWORK_PROTOCOL_NAME] = "http"
            scope = getattr(request, "scope", None)
            if isinstance(scope, Mapping) and isinstance(scope.get("http_version"), str):
                attributes[sc.NETWORK_PROTOCOL_VERSION] = scope["http_version"]
            client = getattr(request, "client", None)
            if client is not None:
                attributes[sc.CLIENT_ADDRESS] = client.host
                attributes[sc.CLIENT_PORT] = client.port
        else:
            attributes[sc.NETWORK_TRANSPORT] = (
                "inproc" if transport_kind(ctx) == DIRECT_TRANSPORT_KIND else "pipe"
            )

    # --- sessions ---------------------------------------------------------------------------------

    def _resolve_session(
        self, ctx: ServerRequestContext[Any, Any], attributes: Mapping[str, AttributeValue]
    ) -> Session | None:
        """The request's session, in the order of DESIGN.md "Sessions".

        1. the protocol session (`Connection.session_id`, SSE `session_id` query parameter);
        2. a connection-scoped session minted at the `initialize` handshake of a non-HTTP connection
           (stdio, in-memory), unless a manual session is open: that one is the client's session;
        3. a logical session from the session resolver (stateless traffic);
        4. the manual (process-level) session;
        5. none.
        """
        connection = connection_of(ctx)
        if connection is None:
            return self._session_without_connection(ctx, attributes)
        session = connection.state.get(_SESSION_STATE_KEY)
        if isinstance(session, Session):
            return None if session.ended else session
        protocol_session_id = connection.session_id or _sse_session_id(ctx)
        if protocol_session_id is None and not (ctx.method == "initialize" and ctx.request is None):
            return self._session_without_connection(ctx, attributes)
        if protocol_session_id is None and self.manual_session is not None:
            connection.state[_SESSION_STATE_KEY] = self.manual_session
            return self.manual_session
        session = self._start_connection_session(ctx, connection, protocol_session_id, attributes)
        connection.state[_SESSION_STATE_KEY] = session
        return session

    def _session_without_connection(
        self, ctx: ServerRequestContext[Any, Any], request_attributes: Mapping[str, AttributeValue]
    ) -> Session | None:
        if self._session_resolver is not None and self._logical_sessions is not None:
            try:
                key = self._session_resolver(ctx)
            except Exception:
                _logger.debug(
                    "session resolver raised; request left without a logical session", exc_info=True
                )
                key = None
            if key is not None:
                attributes = {
                    k: request_attributes[k]
                    for k in (sc.MCP_PROTOCOL_VERSION, sc.NETWORK_TRANSPORT)
                    if k in request_attributes
                }
                return self._logical_sessions.session_for(key, attributes, self.manual_stamp)
        return self.manual_session

    def _start_connection_session(
        self,
        ctx: ServerRequestContext[Any, Any],
        connection: Connection,
        protocol_session_id: str | None,
        request_attributes: Mapping[str, AttributeValue],
    ) -> Session:
        attributes: dict[str, AttributeValue] = {
            key: request_attributes[key]
            for key in (sc.MCP_PROTOCOL_VERSION, sc.NETWORK_TRANSPORT, sc.CLIENT_ADDRESS, sc.CLIENT_PORT)
            if key in request_attributes
        }
        client_info = (ctx.params or {}).get("clientInfo") if ctx.method == "initialize" else None
        if isinstance(client_info, Mapping):
            for key, field in ((sc.CLIENT_NAME, "name"), (sc.CLIENT_VERSION, "version")):
                if isinstance(client_info.get(field), str):
                    attributes[key] = client_info[field]
        session = self._sessions.start(
            SessionType.MCP,
            protocol_session_id=protocol_session_id,
            attributes=attributes,
            stamp=self.manual_stamp,
        )
        # Fires on stdio EOF, in-memory client exit, HTTP DELETE, idle timeout, SSE disconnect.
        connection.exit_stack.callback(self._sessions.end, session, "connection_closed")
        return session

    # --- finish -----------------------------------------------------------------------------------

    def _finish(self, operation: _Operation, result: HandlerResult, error: BaseException | None) -> None:
        try:
            if error is None:
                self._record_result(operation, result)
            else:
                self._record_error(operation, error)
        except Exception:
            _logger.warning("shinzo_otel could not record the outcome of %s", operation.method, exc_info=True)
        finally:
            operation.span.end()  # its duration metric is recorded from it on the export thread

    def _record_result(self, operation: _Operation, result: HandlerResult) -> None:
        if operation.method != "tools/call":
            return
        span = operation.span
        match result:
            case CallToolResult(is_error=True) | {"isError": True}:
                span.set_attribute(sc.ERROR_TYPE, sc.TOOL_ERROR)
                span.set_status(StatusCode.ERROR)
            case _:
                pass
        if self._capture_content and result is not None:
            wire = (
                result.model_dump(by_alias=True, mode="json", exclude_none=True)
                if not isinstance(result, dict)
                else result
            )
            content = {key: value for key, value in wire.items() if key != "_meta"}
            span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, _json(content))

    def _record_error(self, operation: _Operation, error: BaseException) -> None:
        span = operation.span
        if isinstance(error, MCPError):
            code = error.error.code
            span.set_attribute(sc.ERROR_TYPE, str(code))
            span.set_attribute(sc.RPC_RESPONSE_STATUS_CODE, str(code))
            if code not in _NOT_SPAN_ERRORS:
                span.set_status(StatusCode.ERROR, error.error.message)
        elif isinstance(error, ValidationError):
            # The wire answer is INVALID_PARAMS; pydantic's message echoes client input, keep it out.
            span.set_attribute(sc.ERROR_TYPE, str(INVALID_PARAMS))
            span.set_attribute(sc.RPC_RESPONSE_STATUS_CODE, str(INVALID_PARAMS))
        elif isinstance(error, Exception):
            span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
            if self._capture_content:
                span.record_exception(error)
                span.set_status(StatusCode.ERROR, str(error))
            else:
                # Capture off: the type only; the message and traceback may hold arguments.
                span.add_event("exception", {"exception.type": type(error).__qualname__})
                span.set_status(StatusCode.ERROR)


def _client_context(meta: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The trace context the client propagated in `params._meta` (W3C keys, unprefixed), if valid."""
    if not meta or "traceparent" not in meta:
        return None
    try:
        context = propagate.extract(meta)
    except (TypeError, ValueError):
        return None
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _sse_session_id(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The SSE transport's `?session_id=` of the POST that carried the message."""
    query_params = getattr(ctx.request, "query_params", None)
    value = query_params.get("session_id") if query_params is not None else None
    return value if isinstance(value, str) and value else None
