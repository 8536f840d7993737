"""Sessions from Grafana Tempo's HTTP API.

Shapes followed (Tempo HTTP API reference, grafana/tempo `docs/sources/tempo/api_docs/_index.md`):

- search: `GET /api/search?q=<TraceQL>&limit=<traces>&start=<unix s>&end=<unix s>` answers
  `{"traces": [{"traceID": "<hex>", "rootServiceName": ..., "startTimeUnixNano": "...", ...}], ...}`;
- trace by id, v2: `GET /api/v2/traces/<id>` answers `{"trace": {"resourceSpans": [...]}}`;
- trace by id, v1 (older Tempo has no v2 route): `GET /api/traces/<id>` answers
  `{"batches": [...]}`, the same OTLP JSON with `resourceSpans` named `batches`.

Both trace answers carry base64 ids (proto3 JSON, grafana/tempo#5437); `otlp_json.parse_traces`
accepts those as well as hex. Every trace found is fetched whole and its spans go through the shared
model (`SessionIndex`), so a Tempo replay is built by the same code as a replay from the embedded store.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

from shinzo_otel._semconv import ADMIN_COMPONENT, SESSION_ID, SESSION_TYPE, USER_NAME
from shinzo_otel.replay._http import DEFAULT_TIMEOUT_SECONDS, JsonApi
from shinzo_otel.replay._memory import SessionIndex
from shinzo_otel.replay.model import Session, SessionSummary
from shinzo_otel.replay.otlp_json import parse_traces, span_records
from shinzo_otel.replay.source import (
    ProgressCallback,
    SessionFilter,
    SessionNotFoundError,
    WarningCallback,
)

_logger = logging.getLogger(__name__)

DEFAULT_SEARCH_LIMIT: Final = 500
"""Traces asked of one Tempo search (its `limit` parameter; Tempo's own default is 20)."""
DEFAULT_LOOKBACK_SECONDS: Final = 7 * 86_400
"""How far back a search looks when no start bound is given: 168 h, Tempo's default maximum search
duration (`query_frontend.search.max_duration`)."""
_CLOCK_SKEW_SECONDS: Final = 60


def traceql_string(value: str) -> str:
    """`value` as a TraceQL string literal (double quotes; backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def traceql(filters: SessionFilter | None, session_id: str | None = None) -> str:
    """The TraceQL spanset filter that finds the traces of one session (`session_id`) or of the
    sessions `filters` may select: a span with `session.id`, narrowed by the filters that are plain
    attribute equalities (type, service, component, user; the session span and the start marker
    carry them all). The other filters are applied after reading."""
    conditions = [
        f"span.{SESSION_ID} = {traceql_string(session_id)}"
        if session_id is not None
        else f"span.{SESSION_ID} != nil"
    ]
    if filters is not None:
        for attribute, value in (
            (f"span.{SESSION_TYPE}", filters.session_type),
            (f"resource.{SERVICE_NAME}", filters.service),
            (f"span.{ADMIN_COMPONENT}", filters.component),
            (f"span.{USER_NAME}", filters.user),
        ):
            if value is not None:
                conditions.append(f"{attribute} = {traceql_string(value)}")
    return "{ " + " && ".join(conditions) + " }"


class TempoSource:
    """Sessions from Tempo's HTTP API (a `SessionSource`).

    Args:
        url: Tempo's query endpoint, e.g. `http://127.0.0.1:3200` (its `http_listen_port`); user and
            password in the URL are sent as HTTP basic auth.
        search_limit: traces asked of each search (`DEFAULT_SEARCH_LIMIT`); `list_sessions` sees the
            sessions of at most that many traces, and Tempo returns the first it finds, not the newest.
        lookback_seconds: search window when the filter gives no start bound
            (`DEFAULT_LOOKBACK_SECONDS`).
        timeout_seconds: per HTTP request.
        progress: called as `(traces fetched, traces found)`.
        warn: called with a one-line message for each trace that cannot be decoded (it is skipped).

    `list_sessions` searches for traces with `session.id` (see `traceql`), fetches each and builds
    the summaries from their spans; a request span that lives in another trace (the client propagated
    its own trace context) is counted by `get_session`, which searches by the session's id.

    Raises (every method): SourceUnavailableError when Tempo cannot be reached or answers an error.
    """

    def __init__(
        self,
        url: str,
        *,
        search_limit: int = DEFAULT_SEARCH_LIMIT,
        lookback_seconds: int = DEFAULT_LOOKBACK_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        progress: ProgressCallback | None = None,
        warn: WarningCallback | None = None,
    ) -> None:
        self._api = JsonApi("Tempo", url, timeout_seconds)
        self._search_limit = search_limit
        self._lookback_seconds = lookback_seconds
        self._progress = progress
        self._warn = warn or _logger.warning
        self._v2 = True

    def _search(self, query: str, filters: SessionFilter | None) -> list[str]:
        now = time.time()
        after_ns = None if filters is None else filters.after_ns
        before_ns = None if filters is None else filters.before_ns
        start = int(now) - self._lookback_seconds if after_ns is None else after_ns // 1_000_000_000
        end = int(now) + _CLOCK_SKEW_SECONDS if before_ns is None else math.ceil(before_ns / 1_000_000_000)
        answer = self._api.get(
            "/api/search",
            {"q": query, "limit": self._search_limit, "start": start, "end": max(end, start + 1)},
        )
        traces = (answer or {}).get("traces") or []
        return list(dict.fromkeys(str(trace["traceID"]) for trace in traces if trace.get("traceID")))

    def _trace(self, trace_id: str) -> Any | None:
        if self._v2:
            answer = self._api.get(f"/api/v2/traces/{trace_id}")
            if answer is not None:
                return answer.get("trace") or {}
        answer = self._api.get(f"/api/traces/{trace_id}")
        if answer is not None and self._v2:
            # A Tempo without the v2 route: stop asking it.
            self._v2 = False
        return answer

    def _read(self, trace_ids: Sequence[str]) -> SessionIndex:
        index = SessionIndex()
        for done, trace_id in enumerate(trace_ids, start=1):
            document = self._trace(trace_id)
            if document is None:
                self._warn(f"Tempo trace {trace_id}: found by the search but not returned; skipped")
            else:
                self._add(index, trace_id, document)
            if self._progress is not None:
                self._progress(done, len(trace_ids))
        return index

    def _add(self, index: SessionIndex, trace_id: str, document: Any) -> None:
        try:
            spans: Iterable[Any] = list(span_records(parse_traces(document).resource_spans))
        except (ValueError, RecursionError) as error:
            self._warn(f"Tempo trace {trace_id}: skipped, not OTLP JSON ({str(error)[:200]})")
            return
        index.add(spans)

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """See `SessionSource.list_sessions` and the class notes."""
        return self._read(self._search(traceql(filters), filters)).list_sessions(filters)

    def get_session(self, session_id: str) -> Session:
        """See `SessionSource.get_session`."""
        trace_ids = self._search(traceql(None, session_id), None)
        if not trace_ids:
            raise SessionNotFoundError(f"no session {session_id!r} in Tempo at {self._api.url}")
        return self._read(trace_ids).get_session(session_id, f"Tempo at {self._api.url}")

    def close(self) -> None:
        """Close the HTTP client."""
        self._api.close()
