"""The request path, unaware of the mcp version: one SERVER span per inbound message, in its session.

An adapter per mcp major (`_mcp2`, and the 1.x one) turns what its SDK hands it into an
`InboundMessage` and the handler's outcome into an `Outcome`; everything here is shared. It does the
least it can per message: resolve the session (once per connection or stream), build the semconv
attributes, start the span (`_request_span`: without the SDK's per-attribute work), record the
outcome. Redaction, batching, export and the `mcp.server.operation.duration` metric (derived from
the finished span) happen later on the export thread (`ShinzoSpanProcessor`). Content (arguments,
results) is JSON-encoded only when argument collection is on, and then on the export thread too when
our processor is the provider's only one.

Session resolution follows DESIGN.md "Sessions":
1. the user's `session_resolver` key (origin `resolver`);
2. the protocol session (`Mcp-Session-Id`, SSE `session_id`; origin `protocol`, `mcp.session.id`);
3. a conversation id the client sent: in the 2026-07-28 era it is the session (origin
   `conversation`); on a handshake-era connection it is only an attribute (`gen_ai.conversation.id`);
4. the connection (handshake-era stdio, in-memory) or the 2026-07-28 duplex stream (origin
   `connection` / `stream`): one session each, minted id, ended when it closes;
5. the manual session of `enable_session_tracking`;
6. none: the request is its own trace (listed by `shinzo-otel requests list`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import Token
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import pydantic_core
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.trace import Link, Span, SpanContext, StatusCode
from opentelemetry.util.types import AttributeValue

from shinzo_otel import _semconv as sc
from shinzo_otel._request_span import ServerSpans, set_content
from shinzo_otel._routing import CURRENT_PROCESSOR, routes_alone
from shinzo_otel.processor import ShinzoSpanProcessor
from shinzo_otel.sessions import CURRENT_SESSION, LogicalSessions, Session, SessionManager, SessionOrigin

_logger = logging.getLogger(__name__)

_SESSION_STATE_KEY: Final = "shinzo_otel.session"
"""Key of our `Session` in a carrier's per-connection state."""
_CLIENT_INFO_META_KEY: Final = "io.modelcontextprotocol/clientInfo"
"""The 2026-07-28 per-request envelope's client identity (MCP spec, reserved `_meta` keys)."""
_BAGGAGE: Final = "baggage"
_RESOURCE_METHODS: Final = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
_NOT_SPAN_ERRORS: Final = frozenset({-32700, -32600, -32601, -32602, -32002})
"""JSON-RPC codes that do not make the operation an error on the server side (semconv gen-ai/mcp.md):
the span gets `rpc.response.status_code` only, no `error.type`, status UNSET."""
_REJECTED: Final = frozenset({-32601, -32602})
"""Answers that say the request never reached a handler (unknown method, invalid params)."""
OTHER: Final = "_OTHER"
"""Semconv fallback value for a method, tool or prompt name outside the bounded set."""
CANCELLED: Final = "cancelled"
"""`error.type` of a request cancelled by the client (`notifications/cancelled`) or cut off when its
connection closed: it did not complete, so it is never recorded as a success."""
_TARGET_NAMES_LIMIT: Final = 256
"""Distinct tool or prompt names kept per server beyond those the server lists; more are `_OTHER`."""

SPEC_METHODS: Final = frozenset(
    {
        "completion/complete",
        "initialize",
        "logging/setLevel",
        "notifications/cancelled",
        "notifications/initialized",
        "notifications/message",
        "notifications/progress",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
        "notifications/roots/list_changed",
        "notifications/tools/list_changed",
        "ping",
        "prompts/get",
        "prompts/list",
        "resources/list",
        "resources/read",
        "resources/subscribe",
        "resources/templates/list",
        "resources/unsubscribe",
        "roots/list",
        "sampling/createMessage",
        "elicitation/create",
        "tools/call",
        "tools/list",
        "server/discover",
        "subscriptions/listen",
        "tasks/get",
        "tasks/list",
        "tasks/cancel",
        "tasks/result",
        "notifications/tasks/status",
        "notifications/elicitation/complete",
    }
)
"""Client-to-server method names of the MCP spec (the semconv's well-known `mcp.method.name` values
and the 2026-07-28 additions); an adapter adds what its SDK and the server register."""


def _json(value: Any) -> str:
    """Compact JSON of arguments and results (UTF-8, not ASCII-escaped; `str()` of a value JSON has no
    type for) by pydantic's encoder, the one the SDK writes the wire with: a few times cheaper than
    `json.dumps` on the request path. What pydantic refuses goes to `json.dumps`: a lone surrogate
    (which a client can send as a JSON escape) is recorded as before rather than losing the span; a
    circular reference raises there, as it always did."""
    try:
        return pydantic_core.to_json(value, fallback=str).decode()
    except pydantic_core.PydanticSerializationError:
        return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class Carrier:
    """A connection or stream that outlives one request, on which a session lives.

    Attributes:
        origin: `CONNECTION` (a handshake-era stdio or in-memory connection) or `STREAM` (a
            2026-07-28 duplex stream).
        state: scratch space that lives as long as the connection or stream.
        on_close: registers a callback run once when the connection or stream closes.
    """

    origin: SessionOrigin
    state: MutableMapping[str, Any]
    on_close: Callable[[Callable[[], None]], None]


@dataclass(slots=True)
class InboundMessage:
    """One inbound MCP request or notification, as an adapter sees it.

    Attributes:
        method: `mcp.method.name`.
        request_id: the JSON-RPC id as a string; None for notifications.
        params: the raw params (tool `name` / `arguments` before validation).
        meta: `params._meta` (trace context, envelope, vendor keys); empty when absent.
        protocol_version: the protocol version of the request or connection.
        modern: True in the 2026-07-28 era (per-request envelope, no handshake).
        attributes: transport attributes (`network.*`, `client.address`, `client.port`).
        headers: the HTTP request's headers (case-insensitive mapping), None off HTTP.
        protocol_session_id: `Mcp-Session-Id` or the SSE `session_id`, None without one.
        carrier: the connection or stream a session can live on, None when each request stands
            alone (stateless HTTP, in-process 2026-07-28 calls, an HTTP connection).
        client_info: the `initialize` request's `clientInfo`, None otherwise (the 2026 envelope's is
            read from `meta`).
        native: the SDK's request context, handed to the user's `session_resolver`.
    """

    method: str
    request_id: str | None
    params: Mapping[str, Any]
    meta: Mapping[str, Any]
    protocol_version: str | None
    modern: bool
    attributes: Mapping[str, AttributeValue]
    headers: Mapping[str, str] | None
    protocol_session_id: str | None
    carrier: Carrier | None
    client_info: Mapping[str, Any] | None
    native: Any


@dataclass(slots=True)
class Outcome:
    """How a message ended, as the wire said it.

    Attributes:
        result: the handler's result (success only): its JSON-RPC dict, or the SDK's pydantic model
            of it.
        error_code: the JSON-RPC error code the response carried, None on success.
        error_message: that error's message (recorded only with argument collection on).
        exception: the handler's exception, recorded on the span (its type always, message and
            stack trace only with argument collection on).
        cancelled: the request did not complete (client cancellation, connection closed).
    """

    result: Any = None
    error_code: int | None = None
    error_message: str | None = None
    exception: BaseException | None = None
    cancelled: bool = False


class Operation:
    """What the tracer keeps between the start and the end of one message. `target_kind` and
    `target` are set only while the target's name is undecided (`_TargetNames.decided`): the span
    is then named at its end."""

    __slots__ = ("method", "session", "span", "target", "target_kind")

    def __init__(
        self, method: str, span: Span, session: Session | None, target_kind: str | None, target: str | None
    ) -> None:
        self.method = method
        self.span = span
        self.session = session
        self.target_kind = target_kind
        self.target = target


class _TargetNames:
    """The bounded set of tool and prompt names that may name spans and metric series.

    When the server can tell (`lookup`: an `MCPServer`'s registry), a name is kept iff the server
    has it. Otherwise a name is kept when it appeared in the server's own `tools/list` /
    `prompts/list` answer, or when a call with it ran (it was not rejected as an invalid request,
    -32602, the answer to an unknown tool); at most `_TARGET_NAMES_LIMIT` names per kind are learned
    that way. Anything else is `_OTHER` (semconv), so client input cannot grow span names or metric
    series without bound.
    """

    def __init__(self, lookup: Callable[[str, str], bool | None]) -> None:
        self._lookup = lookup
        self._learned: dict[str, set[str]] = {"tool": set(), "prompt": set()}

    def learn(self, kind: str, names: list[str]) -> None:
        learned = self._learned[kind]
        for name in names:
            if len(learned) >= _TARGET_NAMES_LIMIT:
                return
            learned.add(name)

    def decided(self, kind: str, name: str) -> bool | None:
        """Whether the name is kept, when that is known before the call runs: True for a learned
        name or one the server has, False for one it has not, None when the outcome decides."""
        if name in self._learned[kind]:
            return True
        return self._lookup(kind, name)

    def kept(self, kind: str, name: str, ran: bool) -> bool:
        """Whether an undecided name is kept, now that the call `ran` or was rejected."""
        learned = self._learned[kind]
        if name in learned:
            return True
        if ran and len(learned) < _TARGET_NAMES_LIMIT:
            learned.add(name)
            return True
        return False


class RequestTracer:
    """Starts and ends the SERVER span of every inbound message of one instrumented server.

    Args:
        tracer: tracer of the resolved TracerProvider.
        sessions: starts and ends session spans.
        capture_content: record arguments, results, prompt variables and error messages.
        session_resolver: the user's `(native request context) -> key | None`; wins over all.
        logical_sessions: the sessions of resolver keys and conversation ids (idle timeout).
        conversation_meta_keys / conversation_baggage_keys: where clients put conversation ids
            (config keys of the same names).
        method_known: True for methods outside `SPEC_METHODS` that the server handles; other
            unknown methods are recorded as `_OTHER`.
        target_lookup: `(kind, name) -> bool | None`, whether the server has this tool (`kind`
            "tool") or prompt ("prompt"); None when it cannot tell.
        processor: the server's own `ShinzoSpanProcessor`: every span started while one of its
            messages is handled (session spans included) goes through it, with its privacy rules,
            even when servers share a TracerProvider (`_routing`).

    `start` and `finish` never raise: a failure is logged and the message served untraced.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        sessions: SessionManager,
        *,
        capture_content: bool,
        logical_sessions: LogicalSessions,
        session_resolver: Callable[[Any], str | None] | None = None,
        conversation_meta_keys: tuple[str, ...] = (),
        conversation_baggage_keys: tuple[str, ...] = (),
        method_known: Callable[[str], bool] = lambda method: False,
        target_lookup: Callable[[str, str], bool | None] = lambda kind, name: None,
        processor: ShinzoSpanProcessor | None = None,
    ) -> None:
        self._spans = ServerSpans(tracer, processor, routes_alone)
        self._sessions = sessions
        self._capture_content = capture_content
        self._logical_sessions = logical_sessions
        self._session_resolver = session_resolver
        self._meta_keys = conversation_meta_keys
        self._baggage_keys = conversation_baggage_keys
        self._method_known = method_known
        self._targets = _TargetNames(target_lookup)
        self._processor = processor
        self.manual_session: Session | None = None
        """The process-level session of `enable_session_tracking`, set by the instrumentation."""
        self.manual_stamp: Mapping[str, AttributeValue] = {}
        """Its `resource_uuid` and metadata, added to sessions that have their own id."""

    # --- start ------------------------------------------------------------------------------------

    def start(self, message: InboundMessage) -> Operation | None:
        """Resolve the message's session and start its SERVER span; None if that failed."""
        token = CURRENT_PROCESSOR.set(self._processor)
        try:
            return self._start(message)
        except Exception:  # telemetry never breaks the host: serve the request untraced
            _logger.warning("shinzo_otel could not trace %s", message.method, exc_info=True)
            return None
        finally:
            CURRENT_PROCESSOR.reset(token)

    def activate(self, operation: Operation | None) -> tuple[Token[Any], Token[Any]]:
        """Make the operation's session and this server's processor current while its handler runs
        (spans the handler starts carry the session's attributes and go through this server's
        pipeline); undo with `deactivate`. The adapter sets the OTel context itself."""
        return CURRENT_PROCESSOR.set(self._processor), CURRENT_SESSION.set(
            None if operation is None else operation.session
        )

    @staticmethod
    def deactivate(tokens: tuple[Token[Any], Token[Any]]) -> None:
        """Undo `activate`."""
        CURRENT_SESSION.reset(tokens[1])
        CURRENT_PROCESSOR.reset(tokens[0])

    def _start(self, message: InboundMessage) -> Operation:
        method = message.method
        name = method
        attributes: dict[str, AttributeValue] = {sc.MCP_METHOD_NAME: method}
        if method not in SPEC_METHODS and not self._method_known(method):
            attributes[sc.MCP_METHOD_NAME] = name = OTHER
            attributes[sc.METHOD_ORIGINAL] = method
        if message.protocol_version is not None:
            attributes[sc.MCP_PROTOCOL_VERSION] = message.protocol_version
        if message.request_id is not None:
            attributes[sc.JSONRPC_REQUEST_ID] = message.request_id
        kind, target = self._target_attributes(method, message.params, attributes)
        if kind is not None and target is not None:
            kept = self._targets.decided(kind, target)
            if kept is not None:
                if not kept:
                    attributes[sc.TARGET_ORIGINAL] = target
                    target = OTHER
                attributes[sc.GEN_AI_TOOL_NAME if kind == "tool" else sc.GEN_AI_PROMPT_NAME] = target
                name = f"{method} {target}"
                kind = target = None  # decided: nothing left for the end
        attributes.update(message.attributes)
        conversation_id = self._conversation_id(message)
        if conversation_id is not None:
            attributes[sc.GEN_AI_CONVERSATION_ID] = conversation_id

        session = self._resolve_session(message, conversation_id, attributes)
        if session is not None:
            attributes.update(session.stamp)
            if message.protocol_session_id is not None:
                attributes[sc.MCP_SESSION_ID] = message.protocol_session_id
        client = _client_context(message.meta) if "traceparent" in message.meta else None
        links: list[Link] = []
        ambient = trace.get_current_span().get_span_context()
        parent: otel_context.Context | None
        if client is not None:
            parent, parent_span = client
            if session is not None:
                links.append(Link(session.span_context))
        elif session is not None:
            parent, parent_span = session.parent_context, session.span_context
        else:
            parent, parent_span = None, ambient
        if (
            parent is not None
            and ambient.is_valid
            and (ambient.span_id != parent_span.span_id or ambient.trace_id != parent_span.trace_id)
        ):
            # An enclosing span that is not our parent (e.g. the ASGI HTTP server span) is linked; an
            # in-process client's span, current here and our parent too, is not linked twice.
            links.append(Link(ambient))
        # An undecided target is named when the outcome shows whether the server has it.
        span = self._spans.start(name, parent, parent_span, attributes, links)
        if self._capture_content and method == "tools/call" and "arguments" in message.params:
            set_content(span, sc.GEN_AI_TOOL_CALL_ARGUMENTS, _json, message.params["arguments"])
        return Operation(method, span, session, kind, target)

    def _target_attributes(
        self, method: str, params: Mapping[str, Any], attributes: dict[str, AttributeValue]
    ) -> tuple[str | None, str | None]:
        """Add the method's target attributes; return the target's kind and raw name."""
        name = params.get("name")
        target = name if isinstance(name, str) else None
        if method == "tools/call":
            attributes[sc.GEN_AI_OPERATION_NAME] = sc.EXECUTE_TOOL
            return "tool", target
        if method == "prompts/get":
            arguments = params.get("arguments")
            if self._capture_content and isinstance(arguments, Mapping):
                for key, value in arguments.items():
                    attributes[f"{sc.GEN_AI_PROMPT_VARIABLE_PREFIX}{key}"] = str(value)
            return "prompt", target
        if method in _RESOURCE_METHODS and isinstance(params.get("uri"), str):
            attributes[sc.MCP_RESOURCE_URI] = params["uri"]
        return None, None

    def _conversation_id(self, message: InboundMessage) -> str | None:
        """The first conversation id the client sent: a vendor `_meta` key, then W3C baggage in
        `_meta`, then the HTTP `baggage` header (notes/clients.md)."""
        meta = message.meta
        if meta:
            for key in self._meta_keys:
                value = meta.get(key)
                if isinstance(value, str) and value:
                    return value
        if not self._baggage_keys:
            return None
        for carrier in (meta, message.headers):
            raw = carrier.get(_BAGGAGE) if carrier else None
            if isinstance(raw, str) and raw:
                entries = baggage.get_all(W3CBaggagePropagator().extract({_BAGGAGE: raw}))
                for key in self._baggage_keys:
                    value = entries.get(key)
                    if isinstance(value, str) and value:
                        return value
        return None

    # --- sessions ---------------------------------------------------------------------------------

    def _resolve_session(
        self, message: InboundMessage, conversation_id: str | None, attributes: Mapping[str, AttributeValue]
    ) -> Session | None:
        """The message's session, in the order of the module docstring."""
        resolver = self._session_resolver
        key = None if resolver is None else _resolver_key(resolver, message)
        if key is not None:
            return self._logical_sessions.session_for(
                f"resolver:{key}",
                SessionOrigin.RESOLVER,
                lambda: (_session_attributes(message, attributes), self.manual_stamp),
            )
        carrier = message.carrier
        if message.protocol_session_id is not None or (carrier is not None and not message.modern):
            # The handshake era: the protocol session or the connection is the session.
            return self._carried_session(message, conversation_id, attributes)
        if conversation_id is not None:
            return self._logical_sessions.session_for(
                f"conversation:{conversation_id}",
                SessionOrigin.CONVERSATION,
                lambda: (
                    _session_attributes(message, attributes),
                    {**self.manual_stamp, sc.GEN_AI_CONVERSATION_ID: conversation_id},
                ),
            )
        if carrier is not None:
            return self._carried_session(message, None, attributes)
        return self.manual_session

    def _carried_session(
        self, message: InboundMessage, conversation_id: str | None, attributes: Mapping[str, AttributeValue]
    ) -> Session | None:
        """The session of the message's protocol session, connection or stream (started once)."""
        carrier = message.carrier
        if carrier is None:
            return self.manual_session  # a protocol session id without its connection: nothing ends it
        session = carrier.state.get(_SESSION_STATE_KEY)
        if not isinstance(session, Session):
            protocol_session_id = message.protocol_session_id
            session = self._sessions.start(
                SessionOrigin.PROTOCOL if protocol_session_id is not None else carrier.origin,
                protocol_session_id=protocol_session_id,
                attributes=_session_attributes(message, attributes),
                stamp=self.manual_stamp,
            )
            carrier.state[_SESSION_STATE_KEY] = session
            # Fires on stdio EOF, in-memory client exit, HTTP DELETE, idle timeout, SSE disconnect,
            # the end of a 2026-07-28 stream.
            carrier.on_close(partial(self._sessions.end, session, "connection_closed"))
        if session.ended:
            return None
        if conversation_id is not None and sc.GEN_AI_CONVERSATION_ID not in session.attributes:
            session.attributes[sc.GEN_AI_CONVERSATION_ID] = conversation_id
            session.span.set_attribute(sc.GEN_AI_CONVERSATION_ID, conversation_id)
        return session

    # --- finish -----------------------------------------------------------------------------------

    def finish(self, operation: Operation, outcome: Outcome) -> None:
        """Record the outcome of `operation` and end its span (never raises)."""
        span = operation.span
        try:
            if outcome.error_code is not None or outcome.cancelled or outcome.exception is not None:
                self._record_error(span, outcome)
            else:
                self._record_result(operation, outcome)
            target = operation.target
            if operation.target_kind is not None and target is not None:  # named now, by the outcome
                ran = not outcome.cancelled and outcome.error_code not in _REJECTED
                if not self._targets.kept(operation.target_kind, target, ran):
                    span.set_attribute(sc.TARGET_ORIGINAL, target)
                    target = OTHER
                key = sc.GEN_AI_TOOL_NAME if operation.target_kind == "tool" else sc.GEN_AI_PROMPT_NAME
                span.set_attribute(key, target)
                span.update_name(f"{operation.method} {target}")
        except Exception:
            _logger.warning("shinzo_otel could not record the outcome of %s", operation.method, exc_info=True)
        finally:
            span.end()  # its duration metric is recorded from it on the export thread

    def _record_error(self, span: Span, outcome: Outcome) -> None:
        """`error.type` with status ERROR for what the semconv counts as a failure,
        `rpc.response.status_code` for every error answer, and the exception event."""
        error_type: str | None = None
        if outcome.cancelled:
            error_type = CANCELLED
        elif outcome.error_code is not None:
            span.set_attribute(sc.RPC_RESPONSE_STATUS_CODE, str(outcome.error_code))
            if outcome.error_code not in _NOT_SPAN_ERRORS:
                error_type = str(outcome.error_code)
        if error_type is not None:
            span.set_attribute(sc.ERROR_TYPE, error_type)
            # Capture off: codes and types only; an error message may quote arguments or data.
            description = outcome.error_message if self._capture_content and not outcome.cancelled else None
            span.set_status(StatusCode.ERROR, description)
        exception = outcome.exception
        if isinstance(exception, Exception):
            if self._capture_content:
                span.record_exception(exception)
            else:
                span.add_event("exception", {"exception.type": type(exception).__qualname__})

    def _record_result(self, operation: Operation, outcome: Outcome) -> None:
        """Tool results: `tool_error` for `isError: true`, content when collection is on; list
        results teach the target names."""
        method = operation.method
        result = outcome.result
        if result is None:
            return
        if method in ("tools/list", "prompts/list"):
            kind = "tool" if method == "tools/list" else "prompt"
            self._targets.learn(kind, _listed_names(result, "tools" if kind == "tool" else "prompts"))
            return
        if method != "tools/call":
            return
        span = operation.span
        is_error = getattr(result, "is_error", None)  # the SDK's model; a wire dict says it by key
        if is_error is None and (type(result) is dict or isinstance(result, Mapping)):
            is_error = result.get("isError")
        if is_error is True:
            span.set_attribute(sc.ERROR_TYPE, sc.TOOL_ERROR)
            span.set_status(StatusCode.ERROR)
        if self._capture_content:
            set_content(span, sc.GEN_AI_TOOL_CALL_RESULT, _content_json, result)


def _resolver_key(resolver: Callable[[Any], str | None], message: InboundMessage) -> str | None:
    """The user's `session_resolver` key for the message; None (logged) when it raises."""
    try:
        return resolver(message.native)
    except Exception:
        _logger.debug("session resolver raised; request left without its session", exc_info=True)
        return None


def _field(value: Any, name: str) -> Any:
    """`name` of a wire dict or of the SDK's pydantic model of it (both majors hand either)."""
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


def _listed_names(result: Any, key: str) -> list[str]:
    """The names in a `tools/list` / `prompts/list` result, without serialising the result."""
    items = _field(result, key)
    if not isinstance(items, list):
        return []
    return [name for name in (_field(item, "name") for item in items) if isinstance(name, str)]


def _content_json(result: Any) -> str | None:
    """A tool result as the JSON text of its wire form without `_meta` (`gen_ai.tool.call.result`):
    pydantic's own encoder for a model (one pass, the wire's field names), else `_json`."""
    if isinstance(result, Mapping):
        if "_meta" in result or not isinstance(result, dict):
            result = {key: value for key, value in result.items() if key != "_meta"}
        return _json(result)
    dump_json = getattr(result, "model_dump_json", None)
    if callable(dump_json):
        return str(dump_json(by_alias=True, exclude_none=True, exclude={"meta"}))
    return None


def _session_attributes(
    message: InboundMessage, request_attributes: Mapping[str, AttributeValue]
) -> dict[str, AttributeValue]:
    """The attributes a new session takes from the message that starts it: protocol version,
    transport, peer, client name and version (the handshake's `clientInfo` or the 2026 envelope's)."""
    attributes: dict[str, AttributeValue] = {
        key: request_attributes[key]
        for key in (
            sc.MCP_PROTOCOL_VERSION,
            sc.NETWORK_TRANSPORT,
            sc.NETWORK_PROTOCOL_NAME,
            sc.NETWORK_PROTOCOL_VERSION,
            sc.CLIENT_ADDRESS,
            sc.CLIENT_PORT,
        )
        if key in request_attributes
    }
    client_info = message.client_info or message.meta.get(_CLIENT_INFO_META_KEY)
    if isinstance(client_info, Mapping):
        for key, field in ((sc.CLIENT_NAME, "name"), (sc.CLIENT_VERSION, "version")):
            if isinstance(client_info.get(field), str):
                attributes[key] = client_info[field]
    return attributes


def _client_context(meta: Mapping[str, Any]) -> tuple[otel_context.Context, SpanContext] | None:
    """The trace context the client propagated in `params._meta` (W3C keys, unprefixed) and the span
    context in it, if valid (the caller has seen a `traceparent` key)."""
    try:
        context = propagate.extract(meta)
    except (TypeError, ValueError):
        return None
    span_context = trace.get_current_span(context).get_span_context()
    return (context, span_context) if span_context.is_valid else None
