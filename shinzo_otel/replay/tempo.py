"""Sessions from Grafana Tempo's HTTP API, with the work pushed down to Tempo.

Shapes followed (Tempo HTTP API reference, grafana/tempo `docs/sources/tempo/api_docs/_index.md`, and
the answers of a real Tempo 2.10.8 recorded in the project's fixtures):

- search: `GET /api/search?q=<TraceQL>&limit=<traces>&spss=<spans per spanset>&start=<unix s>&end=<unix
  s>` answers `{"traces": [{"traceID": "<hex, leading zeros stripped>", "startTimeUnixNano": "...",
  "spanSet": {"spans": [{"spanID", "name", "startTimeUnixNano", "durationNanos", "attributes": [...]}],
  "matched": N}}]}`. `select(...)` adds the selected fields to each span's attributes, keyed without
  their scope; the intrinsics `status` and `kind` come as strings (`"error"`, `"server"`); `name` fills
  the span's `name`; zero values (`durationNanos` of a zero-length span) are left out;
- TraceQL metrics: `GET /api/metrics/query_range?q=<TraceQL metrics>&start=&end=&step=<s>s` answers
  `{"series": [{"labels": [{"key", "value"}], "samples": [{"timestampMs", "value"}]}]}`; a sample at
  T counts the spans that started in the step ending at T, `value` is left out when 0, and a `by()`
  attribute a span lacks is the string `"nil"`;
- trace by id, v2: `GET /api/v2/traces/<id>` answers `{"trace": {"resourceSpans": [...]}}` (`{"trace":
  {}}` for an unknown id); v1 (older Tempo): `GET /api/traces/<id>` answers `{"batches": [...]}`, 404
  for an unknown id. Both carry base64 ids (proto3 JSON, grafana/tempo#5437).

What each question costs (DESIGN.md "Collector side and replay": never fetch every trace):

- `list_sessions` reads the session spans only: one search for `mcp.session` spans and
  `mcp.session.start` markers, with `select()` of the attributes a list shows, newest first
  (`most_recent=true`), paged backwards in time past the per-search `limit` and stopped as soon as
  the page to show is known (the default 50 newest: one search). The request counts and
  the last activity of the sessions shown (and, for the `active` / `abandoned` filter, of every
  session without an end) come from one more search per `IDS_PER_QUERY` sessions over their spans,
  selecting only the attributes that are counted. Whole traces are never fetched.
- `get_session` searches for the traces holding a span of the session (by `session.id`, whatever
  the trace: a client that propagates its context spreads a session over many traces) and fetches
  those whole: the only call that does.
- `list_requests` / `count_requests` search for SERVER spans with `mcp.method.name` and no
  `session.id`; `count_requests` asks an instant TraceQL metrics query (`count_over_time`, one per
  `metrics_max_seconds` of the window), or sums the searches' `matched` counts on a Tempo without
  TraceQL metrics.
- `analytics` asks TraceQL metrics (`/api/metrics/query_range`): a fixed number of queries per
  `metrics_max_seconds` of the window, whatever the number of sessions.

Limits: a search looks back `lookback_seconds` (7 days) when no start is given; paging needs the
`most_recent` hint (Tempo 2.7+), and more than `search_limit` matching traces starting within one
second cannot be paged (a warning says so); a session is listed by its `mcp.session` span or its
start marker (sessions recorded without both are not); list summaries carry the selected attributes
(`SESSION_ATTRIBUTES`), `sessions show` and `replay` all of them; a trace whose matching spans exceed
Tempo's `max_spans_per_span_set` gives partial counts (a warning says so); TraceQL metrics need the
metrics-generator's `local-blocks` processor for recent data, cover at most Tempo's
`query_frontend.metrics.max_duration` per query (3 h by default, hence the chunks), round the
window to whole steps, and give duration quantiles to Tempo's power-of-two buckets (see `analytics`).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

from shinzo_otel._semconv import (
    ADMIN_COMPONENT,
    CLIENT_NAME,
    CLIENT_VERSION,
    ERROR_TYPE,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_PROMPT_NAME,
    GEN_AI_TOOL_NAME,
    HOST_NAME,
    JSONRPC_REQUEST_ID,
    MCP_METHOD_NAME,
    MCP_PROTOCOL_VERSION,
    MCP_SESSION_ID,
    NETWORK_TRANSPORT,
    RESOURCE_UUID,
    SESSION_END_REASON,
    SESSION_ID,
    SESSION_IDLE_TIMEOUT,
    SESSION_ORIGIN,
    SESSION_SPAN_NAME,
    SESSION_START_SPAN_NAME,
    SESSION_TYPE,
    USER_NAME,
)
from shinzo_otel.replay._http import DEFAULT_TIMEOUT_SECONDS, BackendAnswerError, JsonApi
from shinzo_otel.replay._memory import SessionIndex
from shinzo_otel.replay.analytics import (
    COLUMNS,
    AnalyticsMetric,
    AnalyticsPeriod,
    AnalyticsReport,
    Cell,
    analyze,
    check_options,
    duration_cells,
    error_cells,
)
from shinzo_otel.replay.model import (
    RequestSummary,
    Session,
    SessionAccumulator,
    SessionSummary,
    SpanKindName,
    SpanRecord,
    StatusCodeName,
    TraceReplay,
)
from shinzo_otel.replay.otlp_json import attributes_from_json, parse_traces, span_records
from shinzo_otel.replay.source import (
    ProgressCallback,
    RequestFilter,
    SessionFilter,
    SessionNotFoundError,
    TraceNotFoundError,
    WarningCallback,
)

_logger = logging.getLogger(__name__)

DEFAULT_SEARCH_LIMIT: Final = 500
"""Traces asked of one Tempo search (its `limit` parameter; Tempo's own default is 20)."""
DEFAULT_SPANS_PER_SPANSET: Final = 100
"""Spans asked per trace of one search (`spss`): Tempo's default `max_spans_per_span_set`."""
DEFAULT_LOOKBACK_SECONDS: Final = 7 * 86_400
"""How far back a search looks when no start bound is given: 168 h, Tempo's default maximum search
duration (`query_frontend.search.max_duration`)."""
DEFAULT_METRICS_MAX_SECONDS: Final = 3 * 3_600
"""The longest window of one TraceQL metrics query: Tempo's default
`query_frontend.metrics.max_duration` (3 h). Longer windows are asked in chunks."""
IDS_PER_QUERY: Final = 50
"""Sessions whose spans one search asks for (`span.session.id = ... || ...`): the default page of
`sessions list`, and a URL of a few kB."""
_CLOCK_SKEW_SECONDS: Final = 60
_HOUR: Final = 3_600
_NS: Final = 1_000_000_000
_HEX_ID: Final = re.compile(r"[0-9a-fA-F]{1,32}")
_NIL: Final = "nil"
"""The label value TraceQL metrics give a `by()` attribute that a span lacks."""
_MOST_RECENT: Final = " with (most_recent=true)"

SESSION_ATTRIBUTES: Final = (
    SESSION_ID,
    MCP_SESSION_ID,
    SESSION_TYPE,
    SESSION_ORIGIN,
    SESSION_IDLE_TIMEOUT,
    SESSION_END_REASON,
    GEN_AI_CONVERSATION_ID,
    ADMIN_COMPONENT,
    USER_NAME,
    HOST_NAME,
    CLIENT_NAME,
    CLIENT_VERSION,
    MCP_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
    RESOURCE_UUID,
    ERROR_TYPE,
)
"""Span attributes `list_sessions` selects from session spans and start markers."""
REQUEST_ATTRIBUTES: Final = (
    MCP_METHOD_NAME,
    GEN_AI_TOOL_NAME,
    GEN_AI_PROMPT_NAME,
    ERROR_TYPE,
    JSONRPC_REQUEST_ID,
    MCP_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
)
"""Span attributes `list_requests` selects from request spans."""
_COUNTED_ATTRIBUTES: Final = (MCP_METHOD_NAME, GEN_AI_TOOL_NAME, ERROR_TYPE)
"""What `SessionCounts` reads from a span, besides its kind and status."""
_INTRINSICS: Final = frozenset({"status", "kind", "name"})
"""Intrinsics that `select()` adds to a span's attributes; not attributes of the span."""
_KINDS: Final[dict[str, SpanKindName]] = {
    "server": "SERVER",
    "client": "CLIENT",
    "producer": "PRODUCER",
    "consumer": "CONSUMER",
}
_STATUSES: Final[dict[str, StatusCodeName]] = {"error": "ERROR", "ok": "OK"}


def traceql_string(value: str) -> str:
    """`value` as a TraceQL string literal (double quotes; backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _equal(attribute: str, value: str | None) -> list[str]:
    return [] if value is None else [f"{attribute} = {traceql_string(value)}"]


def _spanset(conditions: Iterable[str]) -> str:
    return "{ " + " && ".join(conditions) + " }"


def _select(attributes: Iterable[str], *extra: str) -> str:
    return "select(" + ", ".join([*(f"span.{name}" for name in attributes), *extra]) + ")"


_SESSION_SPANS: Final = f'(name = "{SESSION_SPAN_NAME}" || name = "{SESSION_START_SPAN_NAME}")'
_REQUEST: Final = f"kind = server && span.{MCP_METHOD_NAME} != nil"
_FAILED: Final = f"(status = error || span.{ERROR_TYPE} != nil)"


def _session_conditions(filters: SessionFilter | None) -> list[str]:
    """Conditions the session span and start marker can answer: they both carry type, origin,
    component and user; the resource carries the service."""
    if filters is None:
        return []
    return [
        *_equal(f"span.{SESSION_TYPE}", filters.session_type),
        *_equal(f"span.{SESSION_ORIGIN}", filters.origin),
        *_equal(f"span.{ADMIN_COMPONENT}", filters.component),
        *_equal(f"span.{USER_NAME}", filters.user),
        *_equal(f"resource.{SERVICE_NAME}", filters.service),
    ]


def session_spans_query(filters: SessionFilter | None) -> str:
    """The TraceQL search `list_sessions` pages through: session spans and start markers narrowed by
    the filters they can answer (`_session_conditions`), selecting `SESSION_ATTRIBUTES`, the service,
    the status and the name."""
    conditions = [_SESSION_SPANS, f"span.{SESSION_ID} != nil", *_session_conditions(filters)]
    selected = _select(SESSION_ATTRIBUTES, f"resource.{SERVICE_NAME}", "status", "name")
    return f"{_spanset(conditions)} | {selected}"


def failing_query(service: str | None) -> str:
    """The TraceQL spanset of what makes a session failed (`SessionSummary.has_error`): a failed
    request of it (status ERROR or `error.type`) or its session span with status ERROR."""
    failed = f'(({_REQUEST} && {_FAILED}) || (name = "{SESSION_SPAN_NAME}" && status = error))'
    return _spanset([f"span.{SESSION_ID} != nil", failed, *_equal(f"resource.{SERVICE_NAME}", service)])


def session_activity_query(session_ids: Sequence[str]) -> str:
    """The TraceQL search for every span of `session_ids` (at most `IDS_PER_QUERY`), selecting only
    what `SessionCounts` counts: kind, status, method, tool and `error.type`."""
    ids = " || ".join(f"span.{SESSION_ID} = {traceql_string(session_id)}" for session_id in session_ids)
    return f"{{ {ids} }} | {_select(_COUNTED_ATTRIBUTES, 'kind', 'status')}"


def request_conditions(filters: RequestFilter | None) -> list[str]:
    """TraceQL conditions of the requests outside any session that `filters` selects: a SERVER span
    with `mcp.method.name` and no `session.id` (TraceQL `= nil`), narrowed by service, method, tool
    and outcome. The time window is the search's."""
    conditions = [_REQUEST, f"span.{SESSION_ID} = nil"]
    if filters is not None:
        conditions += _equal(f"resource.{SERVICE_NAME}", filters.service)
        conditions += _equal(f"span.{MCP_METHOD_NAME}", filters.method)
        if filters.tool is not None:
            conditions += [
                f'span.{MCP_METHOD_NAME} = "tools/call"',
                *_equal(f"span.{GEN_AI_TOOL_NAME}", filters.tool),
            ]
        if filters.has_error is True:
            conditions.append(_FAILED)
        elif filters.has_error is False:
            conditions.append(f"status != error && span.{ERROR_TYPE} = nil")
    return conditions


def traceql(filters: SessionFilter | None, session_id: str | None = None) -> str:
    """The TraceQL search that finds the traces of one session (`session_id`: any span with that
    `session.id`), or else the session spans `list_sessions` reads (`session_spans_query`)."""
    if session_id is not None:
        return _spanset([f"span.{SESSION_ID} = {traceql_string(session_id)}"])
    return session_spans_query(filters)


def _search_span(trace_id: str, span: Mapping[str, Any]) -> SpanRecord:
    """A span of a search answer as a `SpanRecord` holding what the search selected (no events,
    links or parent: a search does not return them)."""
    selected = attributes_from_json(span.get("attributes"))
    start_ns = int(span.get("startTimeUnixNano") or 0)
    service = selected.pop(SERVICE_NAME, None)
    attributes = {key: value for key, value in selected.items() if key not in _INTRINSICS}
    session_id = attributes.get(SESSION_ID)
    return SpanRecord(
        trace_id=trace_id,
        span_id=str(span["spanID"]).lower().zfill(16),
        parent_span_id=None,
        name=str(span.get("name") or ""),
        kind=_KINDS.get(str(selected.get("kind")), "INTERNAL"),
        start_ns=start_ns,
        end_ns=start_ns + int(span.get("durationNanos") or 0),
        status_code=_STATUSES.get(str(selected.get("status")), "UNSET"),
        status_message=None,
        session_id=None if session_id is None else str(session_id),
        service_name=None if service is None else str(service),
        attributes=attributes,
        events=[],
        links=[],
        resource={} if service is None else {SERVICE_NAME: service},
        scope=None,
    )


def _trace_id(trace: Mapping[str, Any]) -> str:
    # Search answers strip leading zeros (0284... -> 284...); trace bodies and the model keep 32 digits.
    return str(trace["traceID"]).lower().zfill(32)


def _spans(trace: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spanset = trace.get("spanSet") or {}
    return list(spanset.get("spans") or [])


class _Window:
    """A search window in whole seconds: `start` inclusive, `end` exclusive."""

    def __init__(self, after_ns: int | None, before_ns: int | None, lookback_seconds: int) -> None:
        now = time.time()
        self.start = int(now) - lookback_seconds if after_ns is None else after_ns // _NS
        end = int(now) + _CLOCK_SKEW_SECONDS if before_ns is None else math.ceil(before_ns / _NS)
        self.end = max(end, self.start + 1)


class TempoSource:
    """Sessions from Tempo's HTTP API (a `SessionSource`); see the module notes for what each method
    asks and the limits.

    Args:
        url: Tempo's query endpoint, e.g. `http://127.0.0.1:3200` (its `http_listen_port`); user and
            password in the URL are sent as HTTP basic auth.
        search_limit: traces asked of each search (`DEFAULT_SEARCH_LIMIT`); longer answers are paged.
        spans_per_spanset: spans asked per trace (`DEFAULT_SPANS_PER_SPANSET`); at most Tempo's
            `max_spans_per_span_set`.
        lookback_seconds: search window when the filter gives no start bound
            (`DEFAULT_LOOKBACK_SECONDS`).
        metrics_max_seconds: the longest window of one TraceQL metrics query
            (`DEFAULT_METRICS_MAX_SECONDS`, Tempo's `query_frontend.metrics.max_duration`; None when
            that is 0, no limit); a whole number of hours.
        timeout_seconds: per HTTP request.
        progress: called as `(traces fetched, traces found)` while a session is fetched.
        warn: called with a one-line message for each trace that cannot be decoded (it is skipped),
            each search that could not be paged to its end, and a Tempo without TraceQL metrics.

    Raises (every method): SourceUnavailableError when Tempo cannot be reached or answers an error;
    ValueError (constructor) for a `metrics_max_seconds` that is not a positive number of hours.
    """

    def __init__(
        self,
        url: str,
        *,
        search_limit: int = DEFAULT_SEARCH_LIMIT,
        spans_per_spanset: int = DEFAULT_SPANS_PER_SPANSET,
        lookback_seconds: int = DEFAULT_LOOKBACK_SECONDS,
        metrics_max_seconds: int | None = DEFAULT_METRICS_MAX_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        progress: ProgressCallback | None = None,
        warn: WarningCallback | None = None,
    ) -> None:
        if metrics_max_seconds is not None and (metrics_max_seconds <= 0 or metrics_max_seconds % _HOUR):
            raise ValueError(
                f"metrics_max_seconds must be a positive number of hours, not {metrics_max_seconds}"
            )
        self._api = JsonApi("Tempo", url, timeout_seconds)
        self._search_limit = search_limit
        self._spss = spans_per_spanset
        self._lookback_seconds = lookback_seconds
        self._metrics_max_seconds = metrics_max_seconds
        self._progress = progress
        self._warn = warn or _logger.warning
        self._v2 = True

    # --- search -------------------------------------------------------------------------------

    def _search(self, query: str, window: _Window) -> Iterator[Mapping[str, Any]]:
        """Every trace the search finds in `window`, newest start first, paged backwards in time: a
        full page moves the window's end to the second of its oldest trace (traces of that second
        come again and are skipped)."""
        end = window.end
        seen: set[str] = set()
        while True:
            params: dict[str, str | int] = {
                "q": query + _MOST_RECENT,
                "limit": self._search_limit,
                "spss": self._spss,
                "start": window.start,
                "end": end,
            }
            traces = list((self._api.get("/api/search", params) or {}).get("traces") or [])
            fresh = [trace for trace in traces if _trace_id(trace) not in seen]
            seen.update(_trace_id(trace) for trace in fresh)
            yield from fresh
            if len(traces) < self._search_limit:
                return
            oldest = min(int(trace.get("startTimeUnixNano") or 0) for trace in traces) // _NS + 1
            if oldest <= window.start:
                return
            if not fresh or oldest >= end:
                self._warn(
                    f"Tempo search {query!r}: more than {self._search_limit} traces start within one "
                    "second; the rest of that second is not read (raise search_limit)"
                )
                return
            end = oldest

    def _trace_spans(self, trace: Mapping[str, Any]) -> list[SpanRecord]:
        """The spans of one trace of a search answer; warns when Tempo returned fewer than matched."""
        trace_id = _trace_id(trace)
        spans = _spans(trace)
        matched = int((trace.get("spanSet") or {}).get("matched") or len(spans))
        if matched > len(spans):
            self._warn(
                f"Tempo trace {trace_id}: {matched} spans match but {len(spans)} were returned "
                "(Tempo's max_spans_per_span_set); counts from it are partial"
            )
        return [_search_span(trace_id, span) for span in spans]

    def _search_spans(self, query: str, window: _Window) -> Iterator[SpanRecord]:
        for trace in self._search(query, window):
            yield from self._trace_spans(trace)

    # --- sessions -----------------------------------------------------------------------------

    def _activity(
        self,
        accumulators: Mapping[str, SessionAccumulator],
        seen: set[tuple[str, str]],
        session_ids: Sequence[str],
        after_ns: int | None,
    ) -> None:
        """Fold the counted spans of `session_ids` (sessions started at or after `after_ns`) into their
        accumulators, skipping the spans in `seen` (the session spans and markers already added)."""
        window = _Window(after_ns, None, self._lookback_seconds)
        for first in range(0, len(session_ids), IDS_PER_QUERY):
            chunk = session_ids[first : first + IDS_PER_QUERY]
            for span in self._search_spans(session_activity_query(chunk), window):
                key = (span["trace_id"], span["span_id"])
                accumulator = accumulators.get(span["session_id"] or "")
                if accumulator is not None and key not in seen:
                    seen.add(key)
                    accumulator.add(span)

    def _failing(self, filters: SessionFilter) -> set[str]:
        """The sessions with a failed request or an ERROR session span since the window's start."""
        window = _Window(filters.after_ns, None, self._lookback_seconds)
        query = f"{failing_query(filters.service)} | select(span.{SESSION_ID})"
        return {span["session_id"] for span in self._search_spans(query, window) if span["session_id"]}

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """See `SessionSource.list_sessions` and the module notes: session spans first (every filter
        but `has_error` and the active/abandoned split is decided by them), the failing sessions for
        `has_error`, then the spans of the sessions shown (and, to tell `active` from `abandoned`, of
        the sessions without an end) for their counts and last activity."""
        filters = filters or SessionFilter()
        window = _Window(filters.after_ns, filters.before_ns, self._lookback_seconds)
        accumulators: dict[str, SessionAccumulator] = {}
        seen: set[tuple[str, str]] = set()
        now_ns = time.time_ns()
        early = filters.model_copy(update={"has_error": None, "status": None, "limit": None})
        # Traces come newest first and a session starts with its trace: once `limit` sessions pass
        # every filter the session spans decide, older pages cannot change the page shown.
        stop_at = (
            None
            if filters.has_error is not None or filters.status in ("active", "abandoned")
            else filters.limit
        )
        passing: set[str] = set()
        for trace in self._search(session_spans_query(filters), window):
            touched = set()
            for span in self._trace_spans(trace):
                key = (span["trace_id"], span["span_id"])
                if key not in seen and span["session_id"] is not None:
                    seen.add(key)
                    touched.add(span["session_id"])
                    accumulators.setdefault(span["session_id"], SessionAccumulator(span["session_id"])).add(
                        span
                    )
            for session_id in touched:
                summary = accumulators[session_id].summary(now_ns)
                if early.matches(summary, now_ns) and filters.status in (None, summary.status):
                    passing.add(session_id)
                else:
                    passing.discard(session_id)
            if stop_at is not None and len(passing) >= stop_at:
                break
        candidates = [a for a in accumulators.values() if early.matches(a.summary(now_ns), now_ns)]
        if filters.has_error is not None:
            failing = self._failing(filters)
            candidates = [a for a in candidates if (a.session_id in failing) == filters.has_error]
        fetched: list[str] = []
        if filters.status in ("active", "abandoned"):
            fetched = [a.session_id for a in candidates if a.end_ns is None]
            self._activity(accumulators, seen, fetched, filters.after_ns)
        if filters.status is not None:
            candidates = [a for a in candidates if a.summary(now_ns).status == filters.status]
        candidates.sort(key=lambda a: (a.start_ns or 0, a.session_id), reverse=True)
        page = candidates if filters.limit is None else candidates[: filters.limit]
        done = set(fetched)
        rest = [a.session_id for a in page if a.session_id not in done]
        self._activity(accumulators, seen, rest, filters.after_ns)
        return [accumulator.summary(now_ns) for accumulator in page]

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
            spans = list(span_records(parse_traces(document).resource_spans))
        except (ValueError, RecursionError) as error:
            self._warn(f"Tempo trace {trace_id}: skipped, not OTLP JSON ({str(error)[:200]})")
            return
        index.add(spans)

    def get_session(self, session_id: str) -> Session:
        """See `SessionSource.get_session`: the traces holding a span with this `session.id` within
        the lookback window, fetched whole."""
        window = _Window(None, None, self._lookback_seconds)
        trace_ids = [_trace_id(trace) for trace in self._search(traceql(None, session_id), window)]
        if not trace_ids:
            raise SessionNotFoundError(f"no session {session_id!r} in Tempo at {self._api.url}")
        return self._read(trace_ids).get_session(session_id, f"Tempo at {self._api.url}")

    # --- requests outside any session ---------------------------------------------------------

    def list_requests(self, filters: RequestFilter | None = None) -> list[RequestSummary]:
        """See `SessionSource.list_requests`: searches newest first and stops once the newest
        `limit` requests are read. Summaries carry `REQUEST_ATTRIBUTES` only."""
        filters = filters or RequestFilter()
        selected = _select(REQUEST_ATTRIBUTES, f"resource.{SERVICE_NAME}", "kind", "status", "name")
        query = f"{_spanset(request_conditions(filters))} | {selected}"
        requests: dict[tuple[str, str], RequestSummary] = {}
        for trace in self._search(
            query, _Window(filters.after_ns, filters.before_ns, self._lookback_seconds)
        ):
            for span in _spans(trace):
                request = RequestSummary.from_span(_search_span(_trace_id(trace), span))
                if filters.matches(request):
                    requests[(request.trace_id, request.span_id)] = request
            if filters.limit is not None and len(requests) >= filters.limit:
                break
        ordered = sorted(requests.values(), key=lambda r: (r.start_ns, r.trace_id, r.span_id), reverse=True)
        return ordered if filters.limit is None else ordered[: filters.limit]

    def count_requests(self, filters: RequestFilter | None = None) -> int:
        """See `SessionSource.count_requests`: one TraceQL metrics `count_over_time()` per
        `metrics_max_seconds` of the window (edges to the second); on a Tempo without TraceQL
        metrics, the sum of the searches' `matched` counts."""
        filters = filters or RequestFilter()
        window = _Window(filters.after_ns, filters.before_ns, self._lookback_seconds)
        conditions = _spanset(request_conditions(filters))
        try:
            return round(self._instant(f"{conditions} | count_over_time()", window))
        except BackendAnswerError as error:
            self._warn(f"Tempo has no TraceQL metrics here ({error}); counting with searches instead")
        return sum(
            int((trace.get("spanSet") or {}).get("matched") or 0)
            for trace in self._search(conditions, window)
        )

    def get_trace(self, trace_id: str) -> TraceReplay:
        """See `SessionSource.get_trace`: the trace fetched whole. Raises TraceNotFoundError, without
        asking Tempo, for an id that is not 1 to 32 hex digits."""
        where = f"Tempo at {self._api.url}"
        if not _HEX_ID.fullmatch(trace_id):
            raise TraceNotFoundError(f"no trace {trace_id!r} in {where}: a trace id is 1 to 32 hex digits")
        trace_id = trace_id.lower().zfill(32)
        return self._read([trace_id]).get_trace(trace_id, where)

    # --- TraceQL metrics ----------------------------------------------------------------------

    def _chunks(self, window: _Window, step: int) -> Iterator[tuple[int, int]]:
        start = window.start // step * step
        end = -(-window.end // step) * step
        size = end - start if self._metrics_max_seconds is None else self._metrics_max_seconds // step * step
        for chunk_start in range(start, end, max(size, step)):
            yield chunk_start, min(chunk_start + max(size, step), end)

    def _range(self, query: str, window: _Window, step: int) -> list[tuple[dict[str, Any], dict[int, float]]]:
        """A range query over `window` in `metrics_max_seconds` chunks: per series its labels and the
        non-zero values by the start (unix s) of the step they count. Series with the same labels in
        several chunks are merged."""
        series: dict[tuple[tuple[str, str], ...], tuple[dict[str, Any], dict[int, float]]] = {}
        for chunk_start, chunk_end in self._chunks(window, step):
            params: dict[str, str | int] = {
                "q": query,
                "start": chunk_start,
                "end": chunk_end,
                "step": f"{step}s",
            }
            answer = self._api.get("/api/metrics/query_range", params)
            if answer is None:
                raise BackendAnswerError(f"Tempo at {self._api.url} has no /api/metrics/query_range", 404)
            for entry in answer.get("series") or []:
                labels = attributes_from_json(entry.get("labels"))
                labels.pop("__name__", None)
                key = tuple(sorted((name, repr(value)) for name, value in labels.items()))
                values = series.setdefault(key, (labels, {}))[1]
                for sample in entry.get("samples") or []:
                    stamp = int(sample.get("timestampMs") or 0) // 1000
                    value = sample.get("value")
                    # A sample counts the step that ends at its timestamp; the first one can belong
                    # to the step before the chunk.
                    if value and chunk_start < stamp <= chunk_end:
                        values[stamp - step] = values.get(stamp - step, 0.0) + float(value)
        return list(series.values())

    def _instant(self, query: str, window: _Window) -> float:
        """The sum of every series of an instant query (`/api/metrics/query`, one value per series)
        over `window`, asked in chunks of `metrics_max_seconds` with the window's own edges."""
        size = self._metrics_max_seconds or (window.end - window.start)
        total = 0.0
        for chunk_start in range(window.start, window.end, size):
            params: dict[str, str | int] = {
                "q": query,
                "start": chunk_start,
                "end": min(chunk_start + size, window.end),
            }
            answer = self._api.get("/api/metrics/query", params)
            if answer is None:
                raise BackendAnswerError(f"Tempo at {self._api.url} has no /api/metrics/query", 404)
            total += sum(float(entry.get("value") or 0) for entry in answer.get("series") or [])
        return total

    def analytics(
        self,
        filters: SessionFilter | None,
        metric: AnalyticsMetric,
        period: AnalyticsPeriod | None = None,
        *,
        top: int = 10,
    ) -> AnalyticsReport:
        """`shinzo_otel.replay.analytics.analyze` answered by TraceQL metrics, a fixed number of
        queries per `metrics_max_seconds` of the window whatever the number of sessions.

        Sessions are counted by their start markers (type, origin, component, user and service
        filters are pushed down), ended sessions and durations by their `mcp.session` spans
        (`histogram_over_time`, `sum_over_time`, `max_over_time` of `duration`: median and p95 are
        the upper bounds of Tempo's power-of-two buckets, so up to twice the exact value), requests,
        failures and tool calls by the request spans that carry a `session.id`, in the step in which
        they started (not their session's). Per-period buckets are UTC hours or days of the step
        starts; the window is widened to whole hours.

        Filters the metrics cannot express (status, incomplete, has_error, min_duration_seconds,
        and for `error_rate` and `top_tools` anything but the service and the window), and a Tempo
        without TraceQL metrics (a warning says so), are answered from `list_sessions` instead: exact,
        but reading every session's spans.

        Raises:
            ValueError: `period` given for `peak_hours` or `top_tools`, or `top` < 1.
        """
        check_options(metric, period, top)
        filters = filters or SessionFilter()
        if not _pushable(filters, metric):
            return analyze(
                self.list_sessions(filters.model_copy(update={"limit": None})), metric, period, top=top
            )
        try:
            return _MetricsReport(self, filters, period).report(metric, top)
        except BackendAnswerError as error:
            self._warn(f"Tempo has no TraceQL metrics here ({error}); reading every session instead")
        return analyze(
            self.list_sessions(filters.model_copy(update={"limit": None})), metric, period, top=top
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._api.close()


def _pushable(filters: SessionFilter, metric: AnalyticsMetric) -> bool:
    if any(
        value is not None
        for value in (filters.status, filters.incomplete, filters.has_error, filters.min_duration_seconds)
    ):
        return False
    if metric in ("error_rate", "top_tools"):
        return all(
            value is None for value in (filters.session_type, filters.origin, filters.component, filters.user)
        )
    return True


def _label(period: AnalyticsPeriod | None, start: int) -> str:
    if period is None:
        return "all"
    return time.strftime("%Y-%m-%d" if period == "daily" else "%Y-%m-%dT%H:00Z", time.gmtime(start))


class _MetricsReport:
    """One `analytics` call answered by TraceQL metrics (see `TempoSource.analytics`)."""

    def __init__(self, source: TempoSource, filters: SessionFilter, period: AnalyticsPeriod | None) -> None:
        self._source = source
        self._period = period
        window = _Window(filters.after_ns, filters.before_ns, source._lookback_seconds)
        window.start = window.start // _HOUR * _HOUR
        window.end = -(-window.end // _HOUR) * _HOUR
        self._window = window
        conditions = _session_conditions(filters)
        self._markers = _spanset(
            [f'name = "{SESSION_START_SPAN_NAME}"', f"span.{SESSION_ID} != nil", *conditions]
        )
        self._ended = _spanset([f'name = "{SESSION_SPAN_NAME}"', f"span.{SESSION_ID} != nil", *conditions])
        self._filters = filters
        self._requests = [
            _REQUEST,
            f"span.{SESSION_ID} != nil",
            *_equal(f"resource.{SERVICE_NAME}", filters.service),
        ]

    def _by_bucket(self, query: str, step: int = _HOUR) -> list[tuple[dict[str, Any], dict[str, float]]]:
        """Series of a range query with their values summed per report bucket."""
        out = []
        for labels, values in self._source._range(query, self._window, step):
            buckets: dict[str, float] = defaultdict(float)
            for start, value in values.items():
                buckets[_label(self._period, start)] += value
            out.append((labels, dict(buckets)))
        return out

    def _totals(self, query: str) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for _, buckets in self._by_bucket(query):
            for bucket, value in buckets.items():
                totals[bucket] += value
        return totals

    def _distinct(self, query: str, attribute: str) -> dict[str, int]:
        """Per bucket, how many distinct values of `attribute` (not `nil`) have a non-zero count.
        Series labels carry the `by()` attribute's scoped name (`span.user.name`)."""
        distinct: dict[str, int] = defaultdict(int)
        for labels, buckets in self._by_bucket(query):
            if str(labels.get(f"span.{attribute}", _NIL)) != _NIL:
                for bucket in buckets:
                    distinct[bucket] += 1
        return distinct

    def report(self, metric: AnalyticsMetric, top: int) -> AnalyticsReport:
        sessions = self._totals(f"{self._markers} | count_over_time()")
        rows: list[dict[str, Cell]]
        if metric == "peak_hours":
            hours: Counter[int] = Counter()
            for labels_values in self._source._range(
                f"{self._markers} | count_over_time()", self._window, _HOUR
            ):
                for start, value in labels_values[1].items():
                    hours[time.gmtime(start).tm_hour] += round(value)
            ranked = sorted(hours.items(), key=lambda item: (-item[1], item[0]))
            rows = [{"hour_utc": f"{hour:02d}:00", "sessions": count} for hour, count in ranked]
        elif metric == "top_tools":
            rows = self._top_tools(top)
        else:
            extra = self._per_period(metric, sessions)
            rows = [
                {"period": bucket, "sessions": round(count), **extra(bucket, round(count))}
                for bucket, count in sorted(sessions.items())
            ]
        return AnalyticsReport(
            metric=metric,
            period=self._period,
            sessions=round(sum(sessions.values())),
            columns=COLUMNS[metric],
            rows=tuple(rows),
        )

    def _per_period(
        self, metric: AnalyticsMetric, sessions: Mapping[str, float]
    ) -> Callable[[str, int], dict[str, Cell]]:
        if metric == "count":
            return lambda bucket, count: {}
        if metric == "unique_users":
            users = self._distinct(f"{self._markers} | count_over_time() by (span.{USER_NAME})", USER_NAME)
            return lambda bucket, count: {"unique_users": users.get(bucket, 0)}
        if metric == "duration":
            return self._durations()
        requests = self._totals(f"{_spanset(self._requests)} | count_over_time()")
        failed = self._totals(f"{_spanset([*self._requests, _FAILED])} | count_over_time()")
        failing = f"{failing_query(self._filters.service)} | count_over_time() by (span.{SESSION_ID})"
        failed_sessions = self._distinct(failing, SESSION_ID)
        return lambda bucket, count: error_cells(
            count,
            failed_sessions.get(bucket, 0),
            round(requests.get(bucket, 0)),
            round(failed.get(bucket, 0)),
        )

    def _durations(self) -> Callable[[str, int], dict[str, Cell]]:
        histograms: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for labels, buckets in self._by_bucket(f"{self._ended} | histogram_over_time(duration)"):
            upper = _bucket_seconds(labels.get("__bucket"))
            for bucket, value in buckets.items():
                histograms[bucket][upper] += value
        sums = self._totals(f"{self._ended} | sum_over_time(duration)")
        maxima = self._maxima()

        def cells(bucket: str, count: int) -> dict[str, Cell]:
            histogram = histograms.get(bucket, {})
            ended = round(sum(histogram.values()))
            return duration_cells(
                count,
                ended,
                sums.get(bucket, 0.0) / ended if ended else None,
                _quantile(histogram, 0.5),
                _quantile(histogram, 0.95),
                maxima.get(bucket),
            )

        return cells

    def _maxima(self) -> dict[str, float]:
        # Per step, then the largest per bucket: _by_bucket would add the maxima of the steps up.
        maxima: dict[str, float] = {}
        for _, values in self._source._range(f"{self._ended} | max_over_time(duration)", self._window, _HOUR):
            for start, value in values.items():
                bucket = _label(self._period, start)
                maxima[bucket] = max(maxima.get(bucket, 0.0), value)
        return maxima

    def _top_tools(self, top: int) -> list[dict[str, Cell]]:
        tool_calls = _spanset([*self._requests, f"span.{GEN_AI_TOOL_NAME} != nil"])
        query = f"{tool_calls} | count_over_time() by (span.{GEN_AI_TOOL_NAME}, span.{SESSION_ID})"
        calls: Counter[str] = Counter()
        sessions: Counter[str] = Counter()
        for labels, buckets in self._by_bucket(query):
            tool = str(labels.get(f"span.{GEN_AI_TOOL_NAME}", _NIL))
            total = round(sum(buckets.values()))
            if tool != _NIL and total:
                calls[tool] += total
                sessions[tool] += 1
        ranked = sorted(calls.items(), key=lambda item: (-item[1], item[0]))[:top]
        return [{"tool": tool, "calls": count, "sessions": sessions[tool]} for tool, count in ranked]


def _bucket_seconds(value: Any) -> float:
    """The upper bound, in seconds, of a `histogram_over_time(duration)` bucket label: a float of
    seconds, or (older Tempo) the power of two of nanoseconds as an int."""
    if isinstance(value, float):
        return value
    return 2.0 ** int(value) / _NS if isinstance(value, int) else float(value)


def _quantile(histogram: Mapping[float, float], q: float) -> float | None:
    """The upper bound of the bucket that holds the `q` quantile (nearest rank), or None if empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1.0, math.ceil(q * total))
    seen = 0.0
    for upper in sorted(histogram):
        seen += histogram[upper]
        if seen >= rank:
            return upper
    return max(histogram)
