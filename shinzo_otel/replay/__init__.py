"""Session replay: one session model, several readers (DESIGN.md "Collector side and replay").

Readers implement `SessionSource`: the embedded store (`shinzo_otel.store.SessionStore`), OTLP JSON
files (`otlp_json`), Tempo (`tempo`) and Jaeger (`jaeger`); `sources.open_source` opens one from a
`--source` spec. Renderers for the CLI live in `render` and analytics in `analytics`.

The public names below load on first use (PEP 562): the embedded store's exporter imports
`shinzo_otel.replay.model`, which runs this file first, and must load neither the read side
(`source`, the readers) nor rich or HTTP clients (layer order: `shinzo_otel._layers`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "EventRecord": "shinzo_otel.replay.model",
    "LinkRecord": "shinzo_otel.replay.model",
    "ReplayError": "shinzo_otel.replay.source",
    "RequestFilter": "shinzo_otel.replay.source",
    "RequestSummary": "shinzo_otel.replay.model",
    "Session": "shinzo_otel.replay.model",
    "SessionAccumulator": "shinzo_otel.replay.model",
    "SessionCounts": "shinzo_otel.replay.model",
    "SessionFilter": "shinzo_otel.replay.source",
    "SessionNotFoundError": "shinzo_otel.replay.source",
    "SessionSource": "shinzo_otel.replay.source",
    "SessionStatus": "shinzo_otel.replay.model",
    "SessionSummary": "shinzo_otel.replay.model",
    "SourceUnavailableError": "shinzo_otel.replay.source",
    "SpanRecord": "shinzo_otel.replay.model",
    "TimelineEntry": "shinzo_otel.replay.model",
    "TraceNotFoundError": "shinzo_otel.replay.source",
    "TraceReplay": "shinzo_otel.replay.model",
    "build_session": "shinzo_otel.replay.model",
    "build_trace": "shinzo_otel.replay.model",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shinzo_otel.replay' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
