"""Sessions from Jaeger's query service: its OTLP JSON API (`/api/v3`, Jaeger v2 and v1.35+) or its
older JSON API (`/api/traces`, every Jaeger).

Shapes followed:

- v3 (jaegertracing/jaeger-idl `proto/api_v3/query_service.proto`, and the HTTP gateway
  jaegertracing/jaeger `cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/http_gateway.go`):
  `GET /api/v3/services` answers `{"services": [...]}`; `GET /api/v3/traces?query.service_name=..&
  query.operation_name=..&query.attributes=<JSON map>&query.start_time_min=<RFC 3339>&
  query.start_time_max=..&query.search_depth=N` answers `{"result": {"resourceSpans": [...]}}` (OTLP
  JSON, hex ids), or 404 when no trace matches.
- v1 (jaegertracing/jaeger `model/json/model.go`): `GET /api/services` answers `{"data": [...]}`;
  `GET /api/traces?service=..&operation=..&tags=<JSON map>&start=<unix µs>&end=..&limit=N` answers
  `{"data": [{"traceID", "spans": [{"traceID", "spanID", "operationName", "references": [{"refType",
  "traceID", "spanID"}], "startTime" (µs), "duration" (µs), "tags": [{"key", "type", "value"}], "logs":
  [{"timestamp", "fields"}], "processID"}], "processes": {"p1": {"serviceName", "tags"}}}], "errors": ..}`.
  OTel data reaches that model through the Collector's translator
  (opentelemetry-collector-contrib `pkg/translator/jaeger/traces_to_jaegerproto.go`), whose
  conventions are undone here: span kind in the `span.kind` tag, status in `otel.status_code` /
  `otel.status_description` (plus `error=true`), the scope in `otel.scope.name` (formerly
  `otel.library.name`), the parent as the first CHILD_OF reference and links as FOLLOWS_FROM
  references, events as logs named by their `event` field. The v1 model keeps microseconds, no link
  attributes, and turns array attributes into strings: v3 is preferred whenever it answers.

Jaeger searches need a service name, so without one every service is searched in turn.

What each question costs, within what Jaeger's API offers (no span-level select, no aggregation, no
"attribute absent" condition; every search answers whole traces):

- `list_sessions` searches each service for traces holding a start marker (`mcp.session.start`),
  narrowed by type, origin, component and user as attributes; summaries, counts and the last
  activity come from those traces. Request spans that live in other traces (a client that
  propagates its context) are counted by `get_session`, not by the list.
- `get_session` searches by the `session.id` attribute, whatever the trace.
- `list_requests` / `count_requests` search each service (narrowed by `mcp.method.name` and
  `gen_ai.tool.name` when filtered) and keep the SERVER spans without `session.id`: Jaeger cannot
  search for a missing attribute, so this reads the traces of sessions too.
- `get_trace` fetches one trace by id.

Limits: a search looks back `lookback_seconds` (7 days) when no start is given; each search asks
for `search_limit` traces and pages backwards in time from the oldest trace of a full answer (the
storage backends return the newest traces first); `analytics` reads every matching session.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Final, Literal

from opentelemetry.semconv.attributes.otel_attributes import (
    OTEL_SCOPE_NAME,
    OTEL_SCOPE_VERSION,
    OTEL_STATUS_CODE,
    OTEL_STATUS_DESCRIPTION,
)
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

from shinzo_otel._semconv import (
    ADMIN_COMPONENT,
    GEN_AI_TOOL_NAME,
    MCP_METHOD_NAME,
    SESSION_ID,
    SESSION_ORIGIN,
    SESSION_START_SPAN_NAME,
    SESSION_TYPE,
    USER_NAME,
)
from shinzo_otel.replay._http import DEFAULT_TIMEOUT_SECONDS, JsonApi
from shinzo_otel.replay._memory import SessionIndex
from shinzo_otel.replay.model import (
    EventRecord,
    LinkRecord,
    RequestSummary,
    Session,
    SessionSummary,
    SpanKindName,
    SpanRecord,
    StatusCodeName,
    TraceReplay,
)
from shinzo_otel.replay.otlp_json import parse_traces, span_records
from shinzo_otel.replay.source import (
    ProgressCallback,
    RequestFilter,
    SessionFilter,
    TraceNotFoundError,
    WarningCallback,
)

_logger = logging.getLogger(__name__)

JaegerApi = Literal["auto", "v3", "v1"]
"""Which query API to use; `auto` asks `/api/v3/services` once and falls back to v1 on 404."""

DEFAULT_SEARCH_LIMIT: Final = 500
"""Traces asked of one search per service (`query.search_depth` / `limit`)."""
DEFAULT_LOOKBACK_SECONDS: Final = 7 * 86_400
"""How far back a search looks when no start bound is given."""
_CLOCK_SKEW_SECONDS: Final = 60

# Tag and field names of the Collector's OTLP -> Jaeger translator (module docstring).
_SPAN_KIND_TAG: Final = "span.kind"
_ERROR_TAG: Final = "error"
_EVENT_FIELD: Final = "event"
_TRACE_STATE_TAG: Final = "w3c.tracestate"
_LEGACY_SCOPE_NAME: Final = "otel.library.name"
_LEGACY_SCOPE_VERSION: Final = "otel.library.version"
_KINDS: Final[dict[str, SpanKindName]] = {
    "internal": "INTERNAL",
    "server": "SERVER",
    "client": "CLIENT",
    "producer": "PRODUCER",
    "consumer": "CONSUMER",
}
_CHILD_OF: Final = "CHILD_OF"
_NS_PER_US: Final = 1_000
_NS_PER_S: Final = 1_000_000_000


def _tag_value(tag: Mapping[str, Any]) -> Any:
    value = tag.get("value")
    kind = tag.get("type", "string")
    if kind == "int64":
        return int(value)  # type: ignore[arg-type]
    if kind == "float64":
        return float(value)  # type: ignore[arg-type]
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value


def _tags(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {str(tag["key"]): _tag_value(tag) for tag in tags or ()}


def _status(tags: dict[str, Any]) -> tuple[StatusCodeName, str | None]:
    code = tags.pop(OTEL_STATUS_CODE, None)
    message = tags.pop(OTEL_STATUS_DESCRIPTION, None)
    failed = tags.get(_ERROR_TAG) is True
    if failed:
        del tags[_ERROR_TAG]
    if code in ("OK", "ERROR"):
        return code, None if message is None else str(message)
    return ("ERROR" if failed else "UNSET"), None if message is None else str(message)


def _v1_span(span: Mapping[str, Any], processes: Mapping[str, Any]) -> SpanRecord:
    trace_id = str(span["traceID"]).lower().zfill(32)
    process = span.get("process") or processes.get(str(span.get("processID")), {})
    resource = {SERVICE_NAME: process.get("serviceName"), **_tags(process.get("tags"))}
    tags = _tags(span.get("tags"))
    kind = _KINDS.get(str(tags.pop(_SPAN_KIND_TAG, "internal")).lower(), "INTERNAL")
    status_code, status_message = _status(tags)
    scope = tags.pop(OTEL_SCOPE_NAME, None) or tags.pop(_LEGACY_SCOPE_NAME, None)
    for key in (OTEL_SCOPE_VERSION, _LEGACY_SCOPE_VERSION, _LEGACY_SCOPE_NAME, _TRACE_STATE_TAG):
        tags.pop(key, None)
    parent: str | None = None
    links: list[LinkRecord] = []
    for reference in span.get("references") or ():
        reference_trace = str(reference["traceID"]).lower().zfill(32)
        reference_span = str(reference["spanID"]).lower().zfill(16)
        if parent is None and reference.get("refType") == _CHILD_OF and reference_trace == trace_id:
            parent = reference_span
        else:
            links.append(LinkRecord(trace_id=reference_trace, span_id=reference_span, attributes={}))
    events = []
    for log in span.get("logs") or ():
        fields = _tags(log.get("fields"))
        name = fields.pop(_EVENT_FIELD, "log")
        events.append(
            EventRecord(name=str(name), timestamp_ns=int(log["timestamp"]) * _NS_PER_US, attributes=fields)
        )
    start_ns = int(span["startTime"]) * _NS_PER_US
    session_id = tags.get(SESSION_ID)
    service = resource.get(SERVICE_NAME)
    return SpanRecord(
        trace_id=trace_id,
        span_id=str(span["spanID"]).lower().zfill(16),
        parent_span_id=parent,
        name=str(span["operationName"]),
        kind=kind,
        start_ns=start_ns,
        end_ns=start_ns + int(span.get("duration") or 0) * _NS_PER_US,
        status_code=status_code,
        status_message=status_message,
        session_id=None if session_id is None else str(session_id),
        service_name=None if service is None else str(service),
        attributes=tags,
        events=events,
        links=links,
        resource=resource,
        scope=None if scope is None else str(scope),
    )


def v1_trace_records(trace: Mapping[str, Any]) -> list[SpanRecord]:
    """The spans of one trace of Jaeger's v1 JSON API (`data[]` of `/api/traces`) as `SpanRecord`s,
    with the OTLP -> Jaeger translation undone (module docstring).

    Raises:
        ValueError: a span lacks a required field or has a malformed one.
    """
    processes = trace.get("processes") or {}
    try:
        return [_v1_span(span, processes) for span in trace.get("spans") or ()]
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"malformed Jaeger span ({type(error).__name__}: {error})") from error


def _rfc3339(ns: int) -> str:
    # Nanosecond precision: Jaeger's gateway parses RFC 3339 with fractional seconds.
    seconds, fraction = divmod(ns, _NS_PER_S)
    return (
        datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"
    )


class JaegerSource:
    """Sessions from Jaeger's query service (a `SessionSource`).

    Args:
        url: the query service, e.g. `http://127.0.0.1:16686`; user and password in the URL are sent
            as HTTP basic auth.
        api: see `JaegerApi`.
        search_limit: traces asked of each search (`DEFAULT_SEARCH_LIMIT`).
        lookback_seconds: search window when the filter gives no start bound.
        timeout_seconds: per HTTP request.
        progress: called as `(services searched, services to search)`.
        warn: called with a one-line message for each trace that cannot be decoded or error Jaeger
            reports beside its answer.

    See the module notes for what each method asks and the limits. Every span found goes through
    the shared model.

    Raises (every method): SourceUnavailableError when Jaeger cannot be reached or answers an error.
    """

    def __init__(
        self,
        url: str,
        *,
        api: JaegerApi = "auto",
        search_limit: int = DEFAULT_SEARCH_LIMIT,
        lookback_seconds: int = DEFAULT_LOOKBACK_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        progress: ProgressCallback | None = None,
        warn: WarningCallback | None = None,
    ) -> None:
        self._api = JsonApi("Jaeger", url, timeout_seconds)
        self._version: JaegerApi = api
        self._search_limit = search_limit
        self._lookback_seconds = lookback_seconds
        self._progress = progress
        self._warn = warn or _logger.warning

    def _v3(self) -> bool:
        if self._version == "auto":
            self._version = "v3" if self._api.get("/api/v3/services") is not None else "v1"
        return self._version == "v3"

    def _services(self, service: str | None) -> list[str]:
        if service is not None:
            return [service]
        if self._v3():
            answer = self._api.get("/api/v3/services") or {}
            services = answer.get("services")
        else:
            answer = self._api.get("/api/services") or {}
            services = answer.get("data")
        return sorted(str(service) for service in services or ())

    def _window(self, after_ns: int | None, before_ns: int | None) -> tuple[int, int]:
        """The search window in ns since the epoch: start inclusive, end exclusive."""
        now_ns = time.time_ns()
        start = now_ns - self._lookback_seconds * _NS_PER_S if after_ns is None else after_ns
        end = now_ns + _CLOCK_SKEW_SECONDS * _NS_PER_S if before_ns is None else before_ns
        return start, max(end, start + _NS_PER_US)

    def _search_v3(
        self, service: str, operation: str | None, attributes: Mapping[str, str], window: tuple[int, int]
    ) -> list[SpanRecord]:
        params: dict[str, str | int] = {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(window[0]),
            "query.start_time_max": _rfc3339(window[1]),
            "query.search_depth": self._search_limit,
        }
        if operation is not None:
            params["query.operation_name"] = operation
        if attributes:
            params["query.attributes"] = json.dumps(attributes, separators=(",", ":"))
        answer = self._api.get("/api/v3/traces", params)
        if answer is None:
            return []
        try:
            return list(span_records(parse_traces(answer.get("result") or {}).resource_spans))
        except (ValueError, RecursionError, AttributeError) as error:
            self._warn(f"Jaeger answer for service {service!r}: skipped, not OTLP JSON ({str(error)[:200]})")
            return []

    def _search_v1(
        self, service: str, operation: str | None, tags: Mapping[str, str], window: tuple[int, int]
    ) -> list[SpanRecord]:
        params: dict[str, str | int] = {
            "service": service,
            "start": window[0] // _NS_PER_US,
            "end": window[1] // _NS_PER_US,
            "limit": self._search_limit,
        }
        if operation is not None:
            params["operation"] = operation
        if tags:
            params["tags"] = json.dumps(tags, separators=(",", ":"))
        answer = self._api.get("/api/traces", params) or {}
        for error in answer.get("errors") or ():
            self._warn(f"Jaeger reported for service {service!r}: {error}")
        records: list[SpanRecord] = []
        for trace in answer.get("data") or ():
            try:
                records += v1_trace_records(trace)
            except ValueError as error:
                self._warn(f"Jaeger trace {trace.get('traceID')!r}: skipped, {error}")
        return records

    def _search(
        self,
        service: str | None,
        window: tuple[int, int],
        operation: str | None,
        attributes: Mapping[str, str],
    ) -> SessionIndex:
        """Every trace matching the search in `window`, each service in turn, paged backwards: a
        full answer (`search_limit` traces) moves the window's end to its oldest trace's start."""
        services = self._services(service)
        search = self._search_v3 if self._v3() else self._search_v1
        index = SessionIndex()
        for done, name in enumerate(services, start=1):
            end = window[1]
            seen: set[str] = set()
            while True:
                records = search(name, operation, attributes, (window[0], end))
                index.add(records)
                starts: dict[str, int] = {}
                for record in records:
                    trace = record["trace_id"]
                    starts[trace] = min(starts.get(trace, record["start_ns"]), record["start_ns"])
                fresh = set(starts) - seen
                seen |= fresh
                if len(starts) < self._search_limit or not fresh:
                    break
                # Jaeger's window bounds are microseconds: traces of the oldest one come again.
                end = min(starts.values()) + _NS_PER_US
                if end <= window[0]:
                    break
            if self._progress is not None:
                self._progress(done, len(services))
        return index

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """See `SessionSource.list_sessions` and the module notes."""
        filters = filters or SessionFilter()
        attributes = {
            key: value
            for key, value in (
                (SESSION_TYPE, filters.session_type),
                (SESSION_ORIGIN, filters.origin),
                (ADMIN_COMPONENT, filters.component),
                (USER_NAME, filters.user),
            )
            if value is not None
        }
        window = self._window(filters.after_ns, filters.before_ns)
        return self._search(filters.service, window, SESSION_START_SPAN_NAME, attributes).list_sessions(
            filters
        )

    def get_session(self, session_id: str) -> Session:
        """See `SessionSource.get_session`."""
        index = self._search(None, self._window(None, None), None, {SESSION_ID: session_id})
        return index.get_session(session_id, f"Jaeger at {self._api.url}")

    def _requests(self, filters: RequestFilter) -> SessionIndex:
        attributes = {
            key: value
            for key, value in ((MCP_METHOD_NAME, filters.method), (GEN_AI_TOOL_NAME, filters.tool))
            if value is not None
        }
        return self._search(
            filters.service, self._window(filters.after_ns, filters.before_ns), None, attributes
        )

    def list_requests(self, filters: RequestFilter | None = None) -> list[RequestSummary]:
        """See `SessionSource.list_requests` and the module notes."""
        filters = filters or RequestFilter()
        return self._requests(filters).list_requests(filters)

    def count_requests(self, filters: RequestFilter | None = None) -> int:
        """See `SessionSource.count_requests` and the module notes."""
        filters = filters or RequestFilter()
        return self._requests(filters).count_requests(filters)

    def get_trace(self, trace_id: str) -> TraceReplay:
        """See `SessionSource.get_trace`: `/api/v3/traces/<id>`, or `/api/traces/<id>` on v1."""
        where = f"Jaeger at {self._api.url}"
        index = SessionIndex()
        if self._v3():
            answer = self._api.get(f"/api/v3/traces/{trace_id}")
            if answer is not None:
                try:
                    index.add(span_records(parse_traces(answer.get("result") or {}).resource_spans))
                except (ValueError, RecursionError, AttributeError) as error:
                    self._warn(f"Jaeger trace {trace_id!r}: skipped, not OTLP JSON ({str(error)[:200]})")
        else:
            for trace in (self._api.get(f"/api/traces/{trace_id}") or {}).get("data") or ():
                try:
                    index.add(v1_trace_records(trace))
                except ValueError as error:
                    self._warn(f"Jaeger trace {trace_id!r}: skipped, {error}")
        try:
            return index.get_trace(trace_id, where)
        except TraceNotFoundError:
            raise TraceNotFoundError(f"no trace {trace_id!r} in {where}") from None

    def close(self) -> None:
        """Close the HTTP client."""
        self._api.close()
