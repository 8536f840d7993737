"""Sessions held in memory: the shared back half of every reader that is not the SQLite store.

Readers of OTLP-JSON files, Tempo and Jaeger turn what they fetch into `SpanRecord`s and add them here;
grouping, summaries (`SessionAccumulator`), filtering (`SessionFilter.matches`) and timelines
(`build_session`) are the same code the embedded store uses.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from shinzo_otel.replay.model import Session, SessionAccumulator, SessionSummary, SpanRecord, build_session
from shinzo_otel.replay.source import SessionFilter, SessionNotFoundError


class SessionIndex:
    """The spans of any number of sessions, deduplicated by (trace id, span id); the first copy of a
    span wins, as in the embedded store (a collector retry can write a batch twice)."""

    def __init__(self) -> None:
        self._spans: dict[str, dict[tuple[str, str], SpanRecord]] = {}

    def add(self, spans: Iterable[SpanRecord]) -> None:
        """Add spans; those without `session.id` are ignored."""
        for span in spans:
            session_id = span["session_id"]
            if session_id is not None:
                self._spans.setdefault(session_id, {}).setdefault((span["trace_id"], span["span_id"]), span)

    def summaries(self) -> list[SessionSummary]:
        """One summary per session, in no particular order."""
        summaries = []
        for session_id, spans in self._spans.items():
            accumulator = SessionAccumulator(session_id)
            for span in spans.values():
                accumulator.add(span)
            summaries.append(accumulator.summary())
        return summaries

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """`SessionSource.list_sessions` over the spans added so far."""
        filters = filters or SessionFilter()
        now_ns = time.time_ns()
        selected = [summary for summary in self.summaries() if filters.matches(summary, now_ns)]
        selected.sort(key=lambda summary: (summary.start_ns, summary.session_id), reverse=True)
        return selected if filters.limit is None else selected[: filters.limit]

    def get_session(self, session_id: str, where: str) -> Session:
        """The replay of one session. Raises SessionNotFoundError (naming `where`) if no span of it was
        added."""
        spans = self._spans.get(session_id)
        if not spans:
            raise SessionNotFoundError(f"no session {session_id!r} in {where}")
        return build_session(spans.values())
