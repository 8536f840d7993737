"""Session replay: one session model, several readers (DESIGN.md "Collector side and replay").

Readers implement `SessionSource`; the embedded store's reader is `shinzo_otel.store.SessionStore`.
Renderers for the CLI live in `shinzo_otel.replay.render` (not imported here, so that the exporter
side does not load rich).
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
