"""Session replay: one session model, several readers (DESIGN.md "Collector side and replay").

Readers implement `SessionSource`: the embedded store (`shinzo_otel.store.SessionStore`), OTLP JSON
files (`otlp_json`), Tempo (`tempo`) and Jaeger (`jaeger`); `sources.open_source` opens one from a
`--source` spec. Renderers for the CLI live in `render` and analytics in `analytics`. None of those is
imported here, so that the exporter side loads neither rich nor HTTP clients.
"""

from shinzo_otel.replay.model import (
    EventRecord,
    LinkRecord,
    Session,
    SessionAccumulator,
    SessionCounts,
    SessionStatus,
    SessionSummary,
    SpanRecord,
    TimelineEntry,
    build_session,
)
from shinzo_otel.replay.source import (
    ReplayError,
    SessionFilter,
    SessionNotFoundError,
    SessionSource,
    SourceUnavailableError,
)

__all__ = [
    "EventRecord",
    "LinkRecord",
    "ReplayError",
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
    "build_session",
]
