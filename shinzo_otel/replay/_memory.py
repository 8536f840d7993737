"""Spans held in memory: the shared back half of every reader that is not the SQLite store.

Readers of OTLP-JSON files, Tempo and Jaeger turn what they fetch into `SpanRecord`s and add them here;
grouping, summaries (`SessionAccumulator`), filtering (`SessionFilter.matches`,
`RequestFilter.matches`) and timelines (`build_session`, `build_trace`) are the same code the embedded
store uses.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from shinzo_otel.replay.model import (
    RequestSummary,
    Session,
    SessionAccumulator,
    SessionSummary,
    SpanRecord,
    TraceReplay,
    build_session,
    build_trace,
    is_sessionless_request,
)
from shinzo_otel.replay.source import (
    RequestFilter,
    SessionFilter,
    SessionNotFoundError,
    TraceNotFoundError,
)

SpanKey = tuple[str, str]
"""(trace id, span id), both lowercase hex."""


class SessionIndex:
    """Spans of any number of sessions and traces, deduplicated by (trace id, span id); the first copy
    of a span wins, as in the embedded store (a collector retry can write a batch twice)."""

    def __init__(self) -> None:
        self._spans: dict[SpanKey, SpanRecord] = {}
        self._sessions: dict[str, list[SpanKey]] = {}
        self._traces: dict[str, list[SpanKey]] = {}

    def add(self, spans: Iterable[SpanRecord]) -> None:
        """Add spans; a span already added (same trace and span id) is ignored."""
        for span in spans:
            key = (span["trace_id"], span["span_id"])
            if key in self._spans:
                continue
            self._spans[key] = span
            self._traces.setdefault(span["trace_id"], []).append(key)
            if span["session_id"] is not None:
                self._sessions.setdefault(span["session_id"], []).append(key)

    def summaries(self, now_ns: int | None = None) -> list[SessionSummary]:
        """One summary per session, status as seen at `now_ns` (default now), in no particular order."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        summaries = []
        for session_id, keys in self._sessions.items():
            accumulator = SessionAccumulator(session_id)
            for key in keys:
                accumulator.add(self._spans[key])
            summaries.append(accumulator.summary(now_ns))
        return summaries

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """`SessionSource.list_sessions` over the spans added so far."""
        filters = filters or SessionFilter()
        now_ns = time.time_ns()
        selected = [summary for summary in self.summaries(now_ns) if filters.matches(summary, now_ns)]
        selected.sort(key=lambda summary: (summary.start_ns, summary.session_id), reverse=True)
        return selected if filters.limit is None else selected[: filters.limit]

    def get_session(self, session_id: str, where: str) -> Session:
        """The replay of one session. Raises SessionNotFoundError (naming `where`) if no span of it was
        added."""
        keys = self._sessions.get(session_id)
        if not keys:
            raise SessionNotFoundError(f"no session {session_id!r} in {where}")
        return build_session(self._spans[key] for key in keys)

    def _requests(self, filters: RequestFilter) -> list[RequestSummary]:
        requests = (
            RequestSummary.from_span(span) for span in self._spans.values() if is_sessionless_request(span)
        )
        return [request for request in requests if filters.matches(request)]

    def list_requests(self, filters: RequestFilter | None = None) -> list[RequestSummary]:
        """`SessionSource.list_requests` over the spans added so far (newest first, ties by trace and
        span id)."""
        filters = filters or RequestFilter()
        selected = self._requests(filters)
        selected.sort(key=lambda request: (request.start_ns, request.trace_id, request.span_id), reverse=True)
        return selected if filters.limit is None else selected[: filters.limit]

    def count_requests(self, filters: RequestFilter | None = None) -> int:
        """`SessionSource.count_requests` over the spans added so far."""
        return len(self._requests(filters or RequestFilter()))

    def get_trace(self, trace_id: str, where: str) -> TraceReplay:
        """The replay of one trace (`trace_id` in hex, any case, leading zeros optional). Raises
        TraceNotFoundError (naming `where`) if no span of it was added."""
        keys = self._traces.get(trace_id.lower().zfill(32))
        if not keys:
            raise TraceNotFoundError(f"no trace {trace_id!r} in {where}")
        return build_trace(self._spans[key] for key in keys)
