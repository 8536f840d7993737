"""Session replay: one session model, several readers (DESIGN.md "Collector side and replay").

Readers implement `SessionSource`: the embedded store (`shinzo_otel.store.SessionStore`), OTLP JSON
files (`otlp_json`), Tempo (`tempo`) and Jaeger (`jaeger`); `sources.open_source` opens one from a
`--source` spec. Renderers for the CLI live in `render` and analytics in `analytics`. None of those is
imported here, so that the exporter side loads neither rich nor HTTP clients.
"""

from shinzo_otel.replay.model import (
    EventRecord,
    LinkRecord,
    RequestSummary,
    Session,
    SessionAccumulator,
    SessionCounts,
    SessionStatus,
    SessionSummary,
    SpanRecord,
    TimelineEntry,
    TraceReplay,
    build_session,
    build_trace,
)
from shinzo_otel.replay.source import (
    ReplayError,
    RequestFilter,
    SessionFilter,
    SessionNotFoundError,
    SessionSource,
    SourceUnavailableError,
    TraceNotFoundError,
)

__all__ = [
    "EventRecord",
    "LinkRecord",
    "ReplayError",
    "RequestFilter",
    "RequestSummary",
    "Session",
    "SessionAccumulator",
    "SessionCounts",
    "SessionFilter",
    "SessionNotFoundError",
    "SessionSource",
    "SessionStatus",
    "SessionSummary",
    "SourceUnavailableError",
    "SpanRecord",
    "TimelineEntry",
    "TraceNotFoundError",
    "TraceReplay",
    "build_session",
    "build_trace",
]
