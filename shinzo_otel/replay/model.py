"""The one internal session model that every replay reader produces and every renderer consumes.

Readers (the embedded SQLite store, OTLP-JSON files, Tempo and Jaeger, see DESIGN.md "Collector side
and replay") turn their native data into `SpanRecord` dicts. Everything after that is
shared: `SessionAccumulator` folds the spans of one session, in any arrival order, into a
`SessionSummary`, and `build_session` lays the spans and their events out on a timeline.

The span shape follows the session model of DESIGN.md "Span model": a session span
(`SESSION_SPAN_NAME`) that carries the session's attributes and events and is exported when the session
ends, a zero-length start marker (`SESSION_START_SPAN_NAME`) exported when it starts, and one SERVER
span per MCP message; every span of a session carries `session.id`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypedDict

from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_MESSAGE, EXCEPTION_TYPE
from pydantic import BaseModel, ConfigDict, Field, computed_field

from shinzo_otel._semconv import (
    ADMIN_COMPONENT,
    ERROR_TYPE,
    EVENT_DURATION_MS,
    EVENT_ERROR,
    EVENT_INPUT,
    EVENT_OUTPUT,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_PROMPT_NAME,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_NAME,
    HOST_NAME,
    MCP_METHOD_NAME,
    MCP_RESOURCE_URI,
    SESSION_END_REASON,
    SESSION_IDLE_TIMEOUT,
    SESSION_ORIGIN,
    SESSION_SPAN_NAME,
    SESSION_START_SPAN_NAME,
    SESSION_TYPE,
    USER_NAME,
)

SpanKindName = Literal["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
"""`opentelemetry.trace.SpanKind` member names (not the OTLP enum numbers, which differ)."""
StatusCodeName = Literal["UNSET", "OK", "ERROR"]
"""`opentelemetry.trace.StatusCode` member names."""
SessionStatus = Literal["active", "abandoned", "ended", "error"]
"""`active`: no end recorded and active within its idle timeout; `abandoned`: no end recorded and
silent for longer than its idle timeout (`shinzo.session.idle_timeout`; its process most likely died,
DESIGN.md "Sessions"); `ended`: ended normally or was ended by hand; `error`: the session span ended
with status ERROR."""

_EXCEPTION_EVENT = "exception"
"""The span event name `Span.record_exception` uses (OTel trace spec, exceptions.md)."""
_NS_PER_SECOND = 1_000_000_000
_NS_PER_MS = 1_000_000


class EventRecord(TypedDict):
    """One span event: `timestamp_ns` is nanoseconds since the Unix epoch."""

    name: str
    timestamp_ns: int
    attributes: dict[str, Any]


class LinkRecord(TypedDict):
    """One span link; ids are lowercase hex (32 and 16 characters)."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


class SpanRecord(TypedDict):
    """One finished span in reader-neutral form, the input of the shared replay core.

    Ids are lowercase hex (trace 32, span 16 characters); times are nanoseconds since the Unix epoch;
    `end_ns` is None only if a reader got a span without an end time. `session_id` is the span's
    `session.id` attribute (None: the span belongs to no session); `service_name` is the resource's
    `service.name`; `resource` holds the resource attributes and `scope` the instrumentation scope name.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: SpanKindName
    start_ns: int
    end_ns: int | None
    status_code: StatusCodeName
    status_message: str | None
    session_id: str | None
    service_name: str | None
    attributes: dict[str, Any]
    events: list[EventRecord]
    links: list[LinkRecord]
    resource: dict[str, Any]
    scope: str | None


def _is_request(span: SpanRecord) -> bool:
    # One SERVER span per inbound MCP message, always with mcp.method.name (semconv gen-ai/mcp.md).
    return span["kind"] == "SERVER" and MCP_METHOD_NAME in span["attributes"]


def is_sessionless_request(span: SpanRecord) -> bool:
    """True for the SERVER span of an MCP message that belongs to no session (no `session.id`):
    stateless HTTP without a conversation id or resolver key, in-process 2026-07-28 calls. Such a
    request is its own trace; readers list it with `list_requests` and replay it with `get_trace`."""
    return span["session_id"] is None and _is_request(span)


def _span_activity_ns(span: SpanRecord) -> int:
    end_ns = span["end_ns"]
    return span["start_ns"] if end_ns is None else max(end_ns, span["start_ns"])


def session_status(
    recorded: SessionStatus, last_activity_ns: int, idle_timeout_ns: int | None, now_ns: int
) -> SessionStatus:
    """The status a reader shows: `recorded` (what the spans say), except that a session with no end
    (`active`) whose last activity is more than `idle_timeout_ns` before `now_ns` is `abandoned`.
    Without an idle timeout (data recorded before sessions carried one) a session stays `active`.

    Args:
        recorded: `active`, `ended` or `error` (the session span's verdict, or `active` before it).
        last_activity_ns: the latest start or end of any span of the session, ns since the epoch.
        idle_timeout_ns: the session's `shinzo.session.idle_timeout` in ns, or None.
        now_ns: now, ns since the epoch.
    """
    if recorded == "active" and idle_timeout_ns is not None and now_ns - last_activity_ns > idle_timeout_ns:
        return "abandoned"
    return recorded


def idle_timeout_ns(attributes: Mapping[str, Any]) -> int | None:
    """`shinzo.session.idle_timeout` (seconds) of session attributes, in ns; None if absent or bad."""
    value = attributes.get(SESSION_IDLE_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value * _NS_PER_SECOND)


class SessionCounts(BaseModel):
    """How many spans of a session were seen, and how many of them were MCP requests, tool calls and
    failed requests.

    A request is a SERVER span carrying `mcp.method.name`; a tool call is a request with
    `gen_ai.tool.name` (set only for `tools/call`, semconv gen-ai/mcp.md); a failed request has status
    ERROR or an `error.type` (semconv sets `error.type` on every failure, including protocol errors
    that do not mark the span as an error). `tools` counts the tool calls per tool name.
    """

    model_config = ConfigDict(frozen=True)

    spans: int = 0
    requests: int = 0
    tool_calls: int = 0
    errors: int = 0
    tools: dict[str, int] = Field(default_factory=dict)

    def add(self, span: SpanRecord) -> SessionCounts:
        """Return these counts with `span` added (the model is immutable)."""
        request = _is_request(span)
        attributes = span["attributes"]
        tool = attributes.get(GEN_AI_TOOL_NAME) if request else None
        tools = self.tools
        if tool is not None:
            tools = {**tools, str(tool): tools.get(str(tool), 0) + 1}
        # model_construct: every value is an int built here; validating each span would dominate the
        # cost of writing large stores.
        return SessionCounts.model_construct(
            spans=self.spans + 1,
            requests=self.requests + request,
            tool_calls=self.tool_calls + (tool is not None),
            errors=self.errors + (request and (span["status_code"] == "ERROR" or ERROR_TYPE in attributes)),
            tools=tools,
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _datetime(ns: int) -> datetime:
    # Integer arithmetic: a float of ns since 1970 is off by up to ~256 ns, enough to shift a microsecond.
    return _EPOCH + timedelta(microseconds=ns // 1000)


def datetime_to_ns(moment: datetime) -> int:
    """`moment` in nanoseconds since the Unix epoch, exact to the microsecond (integer arithmetic, unlike
    a float timestamp). A naive datetime is UTC, the rule of every filter and CLI option."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS_PER_SECOND + delta.microseconds * 1_000


class SessionSummary(BaseModel):
    """One session as a list shows it. Times are nanoseconds since the Unix epoch (`start`, `end`,
    `last_activity` and `duration_seconds` are derived from them); `end_ns` is None while no end is
    recorded (the session is running, or its process died before the session span was exported);
    `last_activity_ns` is the latest start or end of any of its spans. `status` is computed by the
    reader at read time (`session_status`: `abandoned` once silent past its idle timeout). `type` is
    `shinzo.session.type` and `service` the resource's `service.name` (None until a span carrying them
    arrives); `attributes` are the session span's (or, before it arrives, the start marker's), and
    `origin`, `conversation_id`, `component`, `user` and `host` are read from them."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    type: str | None
    service: str | None
    start_ns: int
    end_ns: int | None
    status: SessionStatus
    end_reason: str | None
    counts: SessionCounts
    attributes: dict[str, Any]
    last_activity_ns: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def start(self) -> datetime:
        """Session start, UTC (microsecond precision)."""
        return _datetime(self.start_ns)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def end(self) -> datetime | None:
        """Session end, UTC, or None when no end is recorded."""
        return None if self.end_ns is None else _datetime(self.end_ns)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def last_activity(self) -> datetime:
        """The latest start or end of any span of the session, UTC."""
        return _datetime(self.last_activity_ns)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def origin(self) -> str | None:
        """`shinzo.session.origin`: where the session's identity comes from (`protocol`,
        `connection`, `stream`, `conversation`, `resolver`, `manual`, `admin_shell`), else None."""
        return _optional_str(self.attributes.get(SESSION_ORIGIN))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def conversation_id(self) -> str | None:
        """`gen_ai.conversation.id` the client sent for this session, else None."""
        return _optional_str(self.attributes.get(GEN_AI_CONVERSATION_ID))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        """End minus start in seconds, or None when no end is recorded."""
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / _NS_PER_SECOND

    @computed_field  # type: ignore[prop-decorator]
    @property
    def component(self) -> str | None:
        """`shinzo.admin.component` of an admin shell session (seed 001 `component_name`), else None."""
        return _optional_str(self.attributes.get(ADMIN_COMPONENT))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def user(self) -> str | None:
        """`user.name` of the session span (admin shells: the login name, seed 001), else None."""
        return _optional_str(self.attributes.get(USER_NAME))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def host(self) -> str | None:
        """`host.name` of the session span (admin shells: the shell's host, seed 001), else None."""
        return _optional_str(self.attributes.get(HOST_NAME))

    @property
    def has_error(self) -> bool:
        """True if a request of the session failed or the session span ended with status ERROR."""
        return self.counts.errors > 0 or self.status == "error"


@dataclass
class SessionAccumulator:
    """Folds the spans of one session, arriving in any order and in any number of batches, into a
    `SessionSummary`.

    Rules (DESIGN.md "Span model"): the session span is authoritative for start, end, status, type,
    attributes and `shinzo.session.end_reason`; before it arrives the start marker gives start, type and
    attributes; before either arrives the session starts at its earliest span. The fields mirror the
    state a store must keep between batches; `source_rank` records which of the three sources set the
    start (0: earliest span, 1: start marker, 2: session span). `status` is the recorded one
    (`active`, `ended`, `error`); `summary` turns a silent `active` into `abandoned`.
    """

    session_id: str
    service: str | None = None
    type: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    status: SessionStatus = "active"
    end_reason: str | None = None
    counts: SessionCounts = field(default_factory=SessionCounts)
    attributes: dict[str, Any] = field(default_factory=dict)
    source_rank: int = 0
    last_activity_ns: int = 0

    def add(self, span: SpanRecord) -> None:
        """Fold in one span of this session (its `session_id` is not checked)."""
        self.counts = self.counts.add(span)
        self.service = self.service or span["service_name"]
        self.last_activity_ns = max(self.last_activity_ns, _span_activity_ns(span))
        attributes = span["attributes"]
        if span["name"] == SESSION_SPAN_NAME:
            self.source_rank = 2
            self.start_ns = span["start_ns"]
            self.end_ns = span["end_ns"]
            self.status = "error" if span["status_code"] == "ERROR" else "ended"
            self.end_reason = _optional_str(attributes.get(SESSION_END_REASON))
        elif span["name"] == SESSION_START_SPAN_NAME and self.source_rank < 1:
            self.source_rank = 1
            self.start_ns = span["start_ns"]
        elif self.source_rank == 0:
            self.start_ns = (
                span["start_ns"] if self.start_ns is None else min(self.start_ns, span["start_ns"])
            )
            return
        else:
            return
        self.type = _optional_str(attributes.get(SESSION_TYPE))
        self.attributes = dict(attributes)

    def summary(self, now_ns: int | None = None) -> SessionSummary:
        """The summary of the spans added so far, with the status shown at `now_ns` (ns since the
        epoch; default now, see `session_status`). Raises ValueError if no span was added."""
        if self.start_ns is None:
            raise ValueError(f"no span of session {self.session_id!r} was added")
        last_activity_ns = max(self.last_activity_ns, self.start_ns, self.end_ns or 0)
        status = session_status(
            self.status,
            last_activity_ns,
            idle_timeout_ns(self.attributes),
            time.time_ns() if now_ns is None else now_ns,
        )
        return SessionSummary(
            session_id=self.session_id,
            type=self.type,
            service=self.service,
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            status=status,
            end_reason=self.end_reason,
            counts=self.counts,
            attributes=self.attributes,
            last_activity_ns=last_activity_ns,
        )


class TimelineEntry(BaseModel):
    """One line of a replay: a span of the session, or an event on one of its spans.

    `offset_seconds` is the time from session start (may be negative if a span started before the
    recorded start); `duration_ms` is None for events and for spans without an end. `depth` counts the
    span's ancestors within the session (the session span itself is the root, at no depth); an event
    sits one level below its span, events of the session span at depth 0. `method`, `tool_name`,
    `prompt_name`, `resource_uri`, `error_type`, `arguments` and `result` come from the semconv
    attributes (`mcp.method.name`, `gen_ai.tool.name`, ..., `gen_ai.tool.call.arguments` /
    `.result`, or for manual session events `shinzo.event.input` / `.output`); `arguments` and `result`
    are present only when argument collection was on. `error_message` is the last recorded exception's
    message, else the status description, else `shinzo.event.error`.
    """

    model_config = ConfigDict(frozen=True)

    entry_type: Literal["span", "event"]
    name: str
    timestamp_ns: int
    offset_seconds: float
    duration_ms: float | None
    depth: int
    span_id: str
    parent_span_id: str | None
    span_kind: SpanKindName | None
    status: StatusCodeName
    method: str | None
    tool_name: str | None
    prompt_name: str | None
    resource_uri: str | None
    error_type: str | None
    error_message: str | None
    arguments: str | None
    result: str | None
    attributes: dict[str, Any]


class Session(BaseModel):
    """A whole session: its summary and its timeline in chronological order."""

    model_config = ConfigDict(frozen=True)

    summary: SessionSummary
    timeline: tuple[TimelineEntry, ...]


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _last_exception(events: Sequence[EventRecord]) -> Mapping[str, Any]:
    for event in events[::-1]:
        if event["name"] == _EXCEPTION_EVENT:
            return event["attributes"]
    return {}


def _span_entry(span: SpanRecord, depth: int, session_start_ns: int) -> TimelineEntry:
    attributes = span["attributes"]
    exception = _last_exception(span["events"])
    end_ns = span["end_ns"]
    return TimelineEntry(
        entry_type="span",
        name=span["name"],
        timestamp_ns=span["start_ns"],
        offset_seconds=(span["start_ns"] - session_start_ns) / _NS_PER_SECOND,
        duration_ms=None if end_ns is None else (end_ns - span["start_ns"]) / _NS_PER_MS,
        depth=depth,
        span_id=span["span_id"],
        parent_span_id=span["parent_span_id"],
        span_kind=span["kind"],
        status=span["status_code"],
        method=_optional_str(attributes.get(MCP_METHOD_NAME)),
        tool_name=_optional_str(attributes.get(GEN_AI_TOOL_NAME)),
        prompt_name=_optional_str(attributes.get(GEN_AI_PROMPT_NAME)),
        resource_uri=_optional_str(attributes.get(MCP_RESOURCE_URI)),
        error_type=_optional_str(attributes.get(ERROR_TYPE, exception.get(EXCEPTION_TYPE))),
        error_message=_optional_str(
            exception.get(EXCEPTION_MESSAGE, span["status_message"] or attributes.get(EVENT_ERROR))
        ),
        arguments=_optional_str(attributes.get(GEN_AI_TOOL_CALL_ARGUMENTS)),
        result=_optional_str(attributes.get(GEN_AI_TOOL_CALL_RESULT)),
        attributes=attributes,
    )


def _event_entry(event: EventRecord, span: SpanRecord, depth: int, session_start_ns: int) -> TimelineEntry:
    attributes = event["attributes"]
    duration_ms = attributes.get(EVENT_DURATION_MS)
    return TimelineEntry(
        entry_type="event",
        name=event["name"],
        timestamp_ns=event["timestamp_ns"],
        offset_seconds=(event["timestamp_ns"] - session_start_ns) / _NS_PER_SECOND,
        duration_ms=float(duration_ms) if isinstance(duration_ms, (int, float)) else None,
        depth=depth,
        span_id=span["span_id"],
        parent_span_id=span["parent_span_id"],
        span_kind=None,
        status="ERROR" if EVENT_ERROR in attributes else "UNSET",
        method=_optional_str(attributes.get(MCP_METHOD_NAME)),
        tool_name=_optional_str(attributes.get(GEN_AI_TOOL_NAME)),
        prompt_name=_optional_str(attributes.get(GEN_AI_PROMPT_NAME)),
        resource_uri=_optional_str(attributes.get(MCP_RESOURCE_URI)),
        error_type=_optional_str(attributes.get(ERROR_TYPE)),
        error_message=_optional_str(attributes.get(EVENT_ERROR)),
        arguments=_optional_str(attributes.get(EVENT_INPUT, attributes.get(GEN_AI_TOOL_CALL_ARGUMENTS))),
        result=_optional_str(attributes.get(EVENT_OUTPUT, attributes.get(GEN_AI_TOOL_CALL_RESULT))),
        attributes=attributes,
    )


def _depths(spans: Sequence[SpanRecord]) -> dict[tuple[str, str], int]:
    """Ancestors of each timeline span among the session's other timeline spans."""
    parents = {
        (span["trace_id"], span["span_id"]): span["parent_span_id"]
        for span in spans
        if span["name"] not in (SESSION_SPAN_NAME, SESSION_START_SPAN_NAME)
    }
    depths: dict[tuple[str, str], int] = {}
    for key in parents:
        chain: list[tuple[str, str]] = []
        current: tuple[str, str] | None = key
        # Walk up until a known depth or a parent outside the timeline (session span, remote client).
        while current is not None and current in parents and current not in depths and current not in chain:
            chain.append(current)
            parent = parents[current]
            current = None if parent is None else (current[0], parent)
        depth = -1 if current is None or current not in depths else depths[current]
        for ancestor in reversed(chain):
            depth += 1
            depths[ancestor] = depth
    return depths


def _timeline(spans: Sequence[SpanRecord], start_ns: int) -> tuple[TimelineEntry, ...]:
    """Timeline entries of `spans` with offsets from `start_ns`: every span but the session span and
    start marker, every event but `exception` events (which become their span's error fields); the
    session span's events at depth 0. Sorted by time, parents before children at equal times."""
    depths = _depths(spans)
    entries: list[TimelineEntry] = []
    for span in spans:
        is_session_span = span["name"] == SESSION_SPAN_NAME
        if is_session_span:
            event_depth = 0
        elif span["name"] == SESSION_START_SPAN_NAME:
            continue
        else:
            depth = depths[(span["trace_id"], span["span_id"])]
            entries.append(_span_entry(span, depth, start_ns))
            event_depth = depth + 1
        entries.extend(
            _event_entry(event, span, event_depth, start_ns)
            for event in span["events"]
            if is_session_span or event["name"] != _EXCEPTION_EVENT
        )
    entries.sort(key=lambda entry: (entry.timestamp_ns, entry.depth))
    return tuple(entries)


def build_session(spans: Iterable[SpanRecord], summary: SessionSummary | None = None) -> Session:
    """Build the replay of one session from its spans, in any order.

    Args:
        spans: every span of the session (readers select them by `session.id`).
        summary: the summary a store already keeps (it may hold a manual end, see
            `SessionStore.end_session`); None derives it from `spans` with `SessionAccumulator`.

    The session span and the start marker are not timeline entries (the summary holds what they say);
    every other span is, and so is every span event except `exception` events, which become the
    `error_type` / `error_message` of their span. Entries are sorted by time, parents before children
    at equal times.

    Raises:
        ValueError: `spans` is empty and no `summary` is given, or the spans belong to several sessions.
    """
    span_list = list(spans)
    if summary is None:
        session_ids = {span["session_id"] for span in span_list}
        if len(session_ids) != 1 or None in session_ids:
            raise ValueError(f"spans must belong to exactly one session, got {sorted(map(str, session_ids))}")
        accumulator = SessionAccumulator(session_id=str(session_ids.pop()))
        for span in span_list:
            accumulator.add(span)
        summary = accumulator.summary()
    return Session(summary=summary, timeline=_timeline(span_list, summary.start_ns))


# --- requests outside any session ---------------------------------------------------------------


class RequestSummary(BaseModel):
    """One MCP request that belongs to no session (its SERVER span has no `session.id`), as a list
    shows it. `trace_id` / `span_id` identify its SERVER span (lowercase hex); times are ns since the
    Unix epoch; `method` is `mcp.method.name`, `target` the tool or prompt name (`gen_ai.tool.name`,
    `gen_ai.prompt.name`), `error_type` its `error.type`; `attributes` are the span's."""

    model_config = ConfigDict(frozen=True)

    trace_id: str
    span_id: str
    name: str
    method: str
    target: str | None
    service: str | None
    start_ns: int
    end_ns: int | None
    status: StatusCodeName
    error_type: str | None
    attributes: dict[str, Any]

    @classmethod
    def from_span(cls, span: SpanRecord) -> RequestSummary:
        """The summary of a request's SERVER span (see `is_sessionless_request`)."""
        attributes = span["attributes"]
        target = attributes.get(GEN_AI_TOOL_NAME, attributes.get(GEN_AI_PROMPT_NAME))
        return cls(
            trace_id=span["trace_id"],
            span_id=span["span_id"],
            name=span["name"],
            method=str(attributes.get(MCP_METHOD_NAME)),
            target=_optional_str(target),
            service=span["service_name"],
            start_ns=span["start_ns"],
            end_ns=span["end_ns"],
            status=span["status_code"],
            error_type=_optional_str(attributes.get(ERROR_TYPE)),
            attributes=attributes,
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def start(self) -> datetime:
        """Request start, UTC (microsecond precision)."""
        return _datetime(self.start_ns)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        """End minus start in seconds, or None when the span has no end."""
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / _NS_PER_SECOND

    @property
    def has_error(self) -> bool:
        """True if the request failed: status ERROR or an `error.type` (as `SessionCounts.errors`)."""
        return self.status == "ERROR" or self.error_type is not None


class TraceReplay(BaseModel):
    """The replay of one trace: the requests outside any session it holds (usually one) and the
    timeline of all its spans, offsets from the trace's earliest span."""

    model_config = ConfigDict(frozen=True)

    trace_id: str
    requests: tuple[RequestSummary, ...]
    timeline: tuple[TimelineEntry, ...]


def build_trace(spans: Iterable[SpanRecord]) -> TraceReplay:
    """Build the replay of one trace from its spans, in any order.

    Raises:
        ValueError: `spans` is empty or the spans belong to several traces.
    """
    span_list = list(spans)
    trace_ids = {span["trace_id"] for span in span_list}
    if len(trace_ids) != 1:
        raise ValueError(f"spans must belong to exactly one trace, got {sorted(trace_ids)}")
    requests = sorted(
        (RequestSummary.from_span(span) for span in span_list if is_sessionless_request(span)),
        key=lambda request: request.start_ns,
    )
    start_ns = min(span["start_ns"] for span in span_list)
    return TraceReplay(
        trace_id=trace_ids.pop(), requests=tuple(requests), timeline=_timeline(span_list, start_ns)
    )
