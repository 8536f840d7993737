"""Sessions as OpenTelemetry spans.

A session is one INTERNAL span (`mcp.session`) from start to end, with `session.start` and
`session.end` events, plus a zero-length `mcp.session.start` child exported at once so that a session
whose process dies still shows up. While a session is current (a contextvar set around each request
of that session), `ShinzoSpanProcessor.on_start` stamps its attributes (`session.id`, and
`mcp.session.id` for protocol sessions) on every span, whoever creates it.

Also here: the seed 000 manual API, `SessionTracker`, `SessionEvent`, `EventType`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import Link, Span, SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from shinzo_otel import _semconv as sc

_logger = logging.getLogger(__name__)


class SessionType(str, Enum):
    """What kind of session this is (attribute `shinzo.session.type`); `SessionOrigin` says more
    precisely where its identity comes from."""

    MCP = "mcp"
    """A protocol session (`Mcp-Session-Id`, SSE), a connection's or a 2026-07-28 stream's lifetime."""
    MANUAL = "manual"
    """Opened by `enable_session_tracking` (seed 000): the process-level logical session."""
    LOGICAL = "logical"
    """A grouping of stateless requests: by a client's conversation id or a session resolver's key."""
    ADMIN_SHELL = "admin_shell"
    """Reported by an admin shell (seeds 001-004)."""


class SessionOrigin(str, Enum):
    """Where a session's identity comes from (attribute `shinzo.session.origin`, DESIGN.md
    "Sessions"), so that nobody mistakes a grouping we made for a protocol fact."""

    PROTOCOL = "protocol"
    """The transport's protocol session: `Mcp-Session-Id` (stateful streamable HTTP) or the SSE
    `session_id`; also exported as `mcp.session.id`."""
    CONNECTION = "connection"
    """A handshake-era connection without a protocol session id (stdio, in-memory): id minted."""
    STREAM = "stream"
    """A 2026-07-28 duplex stream (stdio): every request of the stream, id minted, ends at EOF."""
    CONVERSATION = "conversation"
    """A conversation id the client sent (`_meta` vendor keys, W3C baggage) on 2026-07-28 traffic."""
    RESOLVER = "resolver"
    """The key of the user's `session_resolver`."""
    MANUAL = "manual"
    """`enable_session_tracking` (seed 000)."""
    ADMIN_SHELL = "admin_shell"
    """Reported by an admin shell (seeds 001-004)."""

    @property
    def session_type(self) -> SessionType:
        """The `SessionType` of sessions of this origin."""
        return _TYPE_OF_ORIGIN[self]


_TYPE_OF_ORIGIN = {
    SessionOrigin.PROTOCOL: SessionType.MCP,
    SessionOrigin.CONNECTION: SessionType.MCP,
    SessionOrigin.STREAM: SessionType.MCP,
    SessionOrigin.CONVERSATION: SessionType.LOGICAL,
    SessionOrigin.RESOLVER: SessionType.LOGICAL,
    SessionOrigin.MANUAL: SessionType.MANUAL,
    SessionOrigin.ADMIN_SHELL: SessionType.ADMIN_SHELL,
}


class Session:
    """One open session: its span and the attributes stamped on every span created in it.

    Created by `SessionManager.start`; ended once by `SessionManager.end`.
    """

    __slots__ = (
        "_lock",
        "attributes",
        "ended",
        "parent_context",
        "session_id",
        "span",
        "span_context",
        "stamp",
        "start_ns",
    )

    def __init__(
        self,
        session_id: str,
        span: Span,
        attributes: dict[str, AttributeValue],
        stamp: dict[str, AttributeValue],
        start_ns: int,
    ) -> None:
        self.session_id = session_id
        self.span = span
        self.attributes = attributes
        self.stamp = stamp
        self.start_ns = start_ns
        self.span_context = span.get_span_context()
        """The session span's context (read once: requests are its children or link to it)."""
        self.parent_context = trace.set_span_in_context(span, otel_context.Context())
        self.ended = False
        self._lock = threading.Lock()

    def add_event(
        self, name: str, attributes: Mapping[str, AttributeValue], timestamp_ns: int | None = None
    ) -> None:
        """Add a span event to the session span (ignored once the session has ended)."""
        if not self.ended:
            self.span.add_event(name, attributes, timestamp=timestamp_ns)

    def _claim_end(self) -> bool:
        with self._lock:
            if self.ended:
                return False
            self.ended = True
            return True


CURRENT_SESSION: ContextVar[Session | None] = ContextVar("shinzo_otel_current_session", default=None)
"""The session of the request being handled in this context, if any: set (and reset with its token)
around each request's handler by the request tracer; `ShinzoSpanProcessor.on_start` stamps its
attributes on every span started meanwhile."""


class SessionManager:
    """Starts and ends session spans; one per instrumented server.

    Args:
        tracer: the tracer session spans are created with.
        session_duration: histogram `mcp.server.session.duration` (seconds), or None.
        idle_timeout_seconds: recorded on every session as `shinzo.session.idle_timeout`: readers
            show a session without an end that is silent for longer as `abandoned`. Default 1800
            (config `session_idle_timeout_millis`).
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        session_duration: Histogram | None = None,
        idle_timeout_seconds: float = 1800,
    ) -> None:
        self._tracer = tracer
        self._session_duration = session_duration
        self._idle_timeout_attribute = max(1, round(idle_timeout_seconds))
        self._open_sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(
        self,
        origin: SessionOrigin,
        *,
        session_id: str | None = None,
        protocol_session_id: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        stamp: Mapping[str, AttributeValue] | None = None,
        start_ns: int | None = None,
        links: Sequence[Link] = (),
        export_marker: bool = True,
        idle_timeout_seconds: float | None = None,
    ) -> Session:
        """Open a session span (a new trace root) and export its start marker.

        Args:
            origin: recorded as `shinzo.session.origin`, with its `shinzo.session.type`.
            session_id: `session.id`; defaults to `protocol_session_id`, else a new uuid4 hex.
            protocol_session_id: the transport's session id (`Mcp-Session-Id`), recorded as
                `mcp.session.id` on the session and on every span in it.
            attributes: extra attributes of the session span (client, transport, metadata, ...).
            stamp: extra attributes stamped on every span of the session.
            start_ns: start time in ns since the epoch; default now.
            links: links of the session span (a session resumed after a restart links to the span
                it continues).
            export_marker: export the `mcp.session.start` marker; False when resuming a session
                whose marker was exported before.
            idle_timeout_seconds: this session's `shinzo.session.idle_timeout`; default the
                manager's.

        The identity attributes (`session.id`, `mcp.session.id`, type, origin, idle timeout) are
        set after `attributes`: the SDK evicts the oldest attributes first when a span has more than
        its attribute limit, so identity survives any `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`.
        """
        session_id = session_id or protocol_session_id or uuid.uuid4().hex
        start_ns = start_ns if start_ns is not None else time.time_ns()
        session_stamp: dict[str, AttributeValue] = {sc.SESSION_ID: session_id}
        if protocol_session_id:
            session_stamp[sc.MCP_SESSION_ID] = protocol_session_id
        session_stamp.update(stamp or {})
        idle_timeout = (
            self._idle_timeout_attribute
            if idle_timeout_seconds is None
            else max(1, round(idle_timeout_seconds))
        )
        span_attributes: dict[str, AttributeValue] = {
            **(attributes or {}),
            **session_stamp,
            sc.SESSION_TYPE: origin.session_type.value,
            sc.SESSION_ORIGIN: origin.value,
            sc.SESSION_IDLE_TIMEOUT: idle_timeout,
        }
        # Not stamped by the session whose request may be starting this one (an admin shell reported
        # through a tool call): the new spans carry their own session's attributes.
        outer = CURRENT_SESSION.set(None)
        try:
            session = self._open(session_id, session_stamp, span_attributes, start_ns, links, export_marker)
        finally:
            CURRENT_SESSION.reset(outer)
        with self._lock:
            self._open_sessions[session_id] = session
        return session

    def _open(
        self,
        session_id: str,
        session_stamp: dict[str, AttributeValue],
        span_attributes: dict[str, AttributeValue],
        start_ns: int,
        links: Sequence[Link],
        export_marker: bool,
    ) -> Session:
        span = self._tracer.start_span(
            sc.SESSION_SPAN_NAME,
            context=otel_context.Context(),
            kind=SpanKind.INTERNAL,
            attributes=span_attributes,
            links=links,
            start_time=start_ns,
        )
        session = Session(session_id, span, span_attributes, session_stamp, start_ns)
        span.add_event(sc.SESSION_START_EVENT, {sc.SESSION_ID: session_id}, timestamp=start_ns)
        if export_marker:
            marker = self._tracer.start_span(
                sc.SESSION_START_SPAN_NAME,
                context=session.parent_context,
                kind=SpanKind.INTERNAL,
                attributes=span_attributes,
                start_time=start_ns,
            )
            marker.end(end_time=start_ns)
        return session

    def end(
        self, session: Session, reason: str, error_type: str | None = None, end_ns: int | None = None
    ) -> None:
        """End `session` once (later calls do nothing) and record its duration; its spans are exported
        within `schedule_delay_millis`.

        Args:
            reason: why it ended (`connection_closed`, `completed`, `shutdown`, ...), recorded as
                `shinzo.session.end_reason`.
            error_type: set when the session ended with an error (`error.type`, status ERROR).
            end_ns: end time in ns since the epoch; default now.
        """
        if not session._claim_end():
            return
        end_ns = end_ns if end_ns is not None else time.time_ns()
        with self._lock:
            self._open_sessions.pop(session.session_id, None)
        span = session.span
        span.add_event(sc.SESSION_END_EVENT, {sc.SESSION_ID: session.session_id}, timestamp=end_ns)
        span.set_attribute(sc.SESSION_END_REASON, reason)
        metric_attributes: dict[str, AttributeValue] = {
            key: session.attributes[key]
            for key in sc.SESSION_DURATION_ATTRIBUTES
            if key in session.attributes
        }
        if error_type is not None:
            span.set_attribute(sc.ERROR_TYPE, error_type)
            span.set_status(StatusCode.ERROR)
            metric_attributes[sc.ERROR_TYPE] = error_type
        span.end(end_time=end_ns)
        if self._session_duration is not None:
            self._session_duration.record(max(0, end_ns - session.start_ns) / 1e9, metric_attributes)

    def release(self, session: Session) -> None:
        """Forget an open session without ending it: its span is never ended nor exported here, and
        `end_all` (shutdown) leaves it alone. For sessions that outlive this process (an admin shell
        whose end a later tracking server records)."""
        if session._claim_end():
            with self._lock:
                self._open_sessions.pop(session.session_id, None)

    def get(self, session_id: str) -> Session | None:
        """The open session with this id, if any."""
        with self._lock:
            return self._open_sessions.get(session_id)

    def end_all(self, reason: str) -> None:
        """End every open session (used by `shutdown`)."""
        with self._lock:
            sessions = list(self._open_sessions.values())
        for session in sessions:
            self.end(session, reason)


# --- seed 000: the manual API -------------------------------------------------------------------


class EventType(str, Enum):
    """Kinds of manual session events (seed 000). Each becomes a span event `shinzo.<value>`."""

    TOOL_CALL = "tool_call"
    TOOL_RESPONSE = "tool_response"
    ERROR = "error"
    USER_INPUT = "user_input"
    SYSTEM_MESSAGE = "system_message"


@dataclass
class SessionEvent:
    """A manual session event (seed 000's dataclass, field for field).

    `input_data`, `output_data`, `error_data` and `metadata` are user-supplied payloads: they are
    recorded (as JSON strings) only when `enable_argument_collection` is on.
    """

    timestamp: datetime
    event_type: EventType
    tool_name: str | None = None
    input_data: dict[str, Any] | None = None
    output_data: dict[str, Any] | None = None
    error_data: dict[str, Any] | None = None
    duration_ms: int | None = None
    metadata: dict[str, Any] | None = None


_PAYLOAD_FIELDS = (
    (sc.EVENT_INPUT, "input_data"),
    (sc.EVENT_OUTPUT, "output_data"),
    (sc.EVENT_ERROR, "error_data"),
    (sc.EVENT_METADATA, "metadata"),
)


def event_attributes(event: SessionEvent, capture_content: bool) -> dict[str, AttributeValue]:
    """The span-event attributes of a `SessionEvent`; payloads only when `capture_content`."""
    attributes: dict[str, AttributeValue] = {sc.EVENT_TYPE: EventType(event.event_type).value}
    if event.tool_name is not None:
        attributes[sc.GEN_AI_TOOL_NAME] = event.tool_name
    if event.duration_ms is not None:
        attributes[sc.EVENT_DURATION_MS] = int(event.duration_ms)
    if capture_content:
        for key, field in _PAYLOAD_FIELDS:
            value = getattr(event, field)
            if value is not None:
                attributes[key] = json.dumps(value, default=str, separators=(",", ":"))
    return attributes


class SessionTracker:
    """The seed 000 handle on one manual session (from `get_session_tracker()`).

    Never raises: a failure to record an event is logged and the event dropped.
    """

    def __init__(self, manager: SessionManager, session: Session, capture_content: bool) -> None:
        self._manager = manager
        self._session = session
        self._capture_content = capture_content

    @property
    def session(self) -> Session:
        """The underlying session."""
        return self._session

    def add_event(self, event: SessionEvent) -> None:
        """Record `event` as a span event `shinzo.<event_type>` on the session span."""
        try:
            timestamp_ns = int(event.timestamp.timestamp() * 1e9)
            name = f"shinzo.{EventType(event.event_type).value}"
            self._session.add_event(name, event_attributes(event, self._capture_content), timestamp_ns)
        except Exception:
            _logger.warning("could not record session event %r", event.event_type, exc_info=True)

    def get_session_id(self) -> str:
        """The session's id (`session.id`)."""
        return self._session.session_id

    def is_session_active(self) -> bool:
        """True until the session is completed."""
        return not self._session.ended

    async def complete(self) -> None:
        """End the session (called by `complete_session`); its spans are exported within
        `schedule_delay_millis`."""
        self._manager.end(self._session, "completed")


class LogicalSessions:
    """Sessions that group requests by a key rather than a connection: a client's conversation id or
    a session resolver's key (DESIGN.md "Sessions"); each ends after `idle_timeout_seconds` without a
    request (`idle_timeout`).

    Args:
        manager: starts and ends the session spans.
        idle_timeout_seconds: a session with no request for this long ends.

    Keys are never exported (a resolver's key may be a user identity); each session gets a fresh
    `session.id`. A background thread, started with the first session, ends idle sessions; `close()`
    stops it. A forked child (gunicorn `--preload`, multiprocessing) starts with no logical session
    and its own thread (STYLE.md item 14): the parent's sessions stay the parent's.
    """

    def __init__(self, manager: SessionManager, idle_timeout_seconds: float) -> None:
        self._manager = manager
        self._idle_timeout = idle_timeout_seconds
        self._after_fork()
        if hasattr(os, "register_at_fork"):
            after_fork = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())

    def _after_fork(self) -> None:
        self._sessions: dict[str, tuple[Session, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def session_for(
        self,
        key: str,
        origin: SessionOrigin,
        describe: Callable[[], tuple[Mapping[str, AttributeValue], Mapping[str, AttributeValue]]],
    ) -> Session:
        """The open session of `key`, or a new one of `origin`; marks it active now. `describe`
        returns a new session's span attributes and its stamp (attributes of every span in it);
        it is called only when a session starts, not on every request of it."""
        now = time.monotonic()
        with self._lock:
            entry = self._sessions.get(key)
            if entry is not None and not entry[0].ended:
                session = entry[0]
            else:
                attributes, stamp = describe()
                session = self._manager.start(origin, attributes=attributes, stamp=stamp)
            self._sessions[key] = (session, now)
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="ShinzoIdleSessions", daemon=True)
                self._reaper.start()
        return session

    def close(self) -> None:
        """Stop ending idle sessions (the manager's `end_all` ends the open ones)."""
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=1)

    def _reap(self) -> None:
        interval = min(1.0, self._idle_timeout / 4)
        while not self._stop.wait(interval):
            deadline = time.monotonic() - self._idle_timeout
            with self._lock:
                idle = [key for key, (_, last) in self._sessions.items() if last <= deadline]
                expired = [self._sessions.pop(key)[0] for key in idle]
            for session in expired:
                self._manager.end(session, "idle_timeout")
