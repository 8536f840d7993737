"""Replay readers on data written by the real export path.

A real `MCPServer`, instrumented with `instrument_server`, serves two real client sessions; its spans go
over OTLP/HTTP to the loopback receiver (tests/otlp_receiver.py), which keeps the decoded
`ExportTraceServiceRequest`s, and, through a second processor on the same TracerProvider, into an
embedded store. The store's replay is the reference: every other reader must rebuild the same sessions
from the same spans as its backend would hand them out:

- a file as the Collector's file exporter writes it;
- a loopback HTTP stub answering as Tempo's HTTP API documents it;
- a loopback HTTP stub answering as Jaeger's query API does, v3 (OTLP JSON) and v1 (Jaeger's own JSON);
- a real Tempo when `TEMPO_BIN` points at a `tempo` binary (skipped otherwise).

Where each response shape comes from is said at the stub that produces it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from google.protobuf import json_format
from mcp import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from shinzo_otel import instrument_server
from shinzo_otel.replay import (
    RequestFilter,
    RequestSummary,
    Session,
    SessionFilter,
    SessionNotFoundError,
    SourceUnavailableError,
    SpanRecord,
    TraceNotFoundError,
    TraceReplay,
    build_session,
)
from shinzo_otel.replay.jaeger import JaegerSource, v1_trace_records
from shinzo_otel.replay.otlp_json import OtlpJsonFileSource, parse_traces
from shinzo_otel.replay.tempo import TempoSource, session_spans_query
from shinzo_otel.store import SessionStore, SqliteSpanExporter
from tests.http_stub import HttpStub, JsonRoute, json_route
from tests.mcp_servers import make_mcpserver
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

SERVICE = "readers-test"


@dataclass(frozen=True)
class Exported:
    """What one real export produced: the requests as the receiver decoded them, their spans, the
    store written from the same TracerProvider, and the two session ids (the first has a failed call)."""

    requests: tuple[ExportTraceServiceRequest, ...]
    spans: tuple[ReceivedSpan, ...]
    store: Path
    session_ids: tuple[str, str]

    def replay(self, session_id: str) -> Session:
        with SessionStore(self.store) as store:
            return store.get_session(session_id)

    def records(self, session_id: str) -> list[SpanRecord]:
        with SessionStore(self.store) as store:
            return store.spans_for_session(session_id)

    def summaries(self) -> list[Any]:
        with SessionStore(self.store) as store:
            return store.list_sessions(SessionFilter(limit=None))

    def requests_outside(self) -> list[RequestSummary]:
        with SessionStore(self.store) as store:
            return store.list_requests(RequestFilter(limit=None))

    def trace(self, trace_id: str) -> TraceReplay:
        with SessionStore(self.store) as store:
            return store.get_trace(trace_id)


async def two_sessions(provider: TracerProvider, endpoint: str) -> None:
    """Serve two client sessions on a real `MCPServer` exporting over OTLP/HTTP to `endpoint`: the first
    calls echo, fail (an error) and nested, the second echo. Then a client in its default mode (the
    2026-07-28 era, in process: no session at all) calls echo: requests outside any session."""
    server = make_mcpserver(provider)
    observability = instrument_server(
        server,
        {"server_name": SERVICE, "exporter_endpoint": endpoint, "enable_argument_collection": True},
        tracer_provider=provider,
    )
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "hi"})
        await client.call_tool("fail", {"reason": "boom"})
        await client.call_tool("nested", {"text": "x"})
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "again"})
    async with Client(server) as client:
        await client.call_tool("echo", {"text": "alone"})
    await observability.shutdown()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    store = tmp_path_factory.mktemp("export") / "sessions.db"
    with OtlpReceiver() as receiver:
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: SERVICE}))
        provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(store)))
        try:
            anyio.run(two_sessions, provider, receiver.http_endpoint)
        finally:
            provider.shutdown()
        requests, spans = tuple(receiver.trace_requests), tuple(receiver.spans())
    sessions = [span for span in spans if span.name == "mcp.session"]
    assert len(sessions) == 2
    first, second = sorted(sessions, key=lambda span: span.start_ns)
    return Exported(
        requests, spans, store, (str(first.attributes["session.id"]), str(second.attributes["session.id"]))
    )


def test_the_reference_store_holds_both_sessions(exported: Exported) -> None:
    summaries = {summary.session_id: summary for summary in exported.summaries()}
    first, second = (summaries[session_id] for session_id in exported.session_ids)
    # Worked out from what two_sessions does.
    assert (first.counts.tool_calls, first.counts.errors, first.counts.tools) == (
        3,
        1,
        {"echo": 1, "fail": 1, "nested": 1},
    )
    assert (second.counts.tool_calls, second.counts.errors, second.counts.tools) == (1, 0, {"echo": 1})
    assert {first.status, second.status, first.service} == {"ended", SERVICE}
    outside = exported.requests_outside()
    assert [(r.method, r.target) for r in outside if r.method == "tools/call"] == [("tools/call", "echo")]
    assert all(r.service == SERVICE for r in outside)


# --- OTLP JSON files -------------------------------------------------------------------------------


def _ids_to_hex(data: Any) -> Any:
    if isinstance(data, list):
        return [_ids_to_hex(item) for item in data]
    if isinstance(data, dict):
        return {
            key: base64.b64decode(value).hex()
            if key in ("traceId", "spanId", "parentSpanId") and value
            else _ids_to_hex(value)
            for key, value in data.items()
        }
    return data


def collector_file_line(request: ExportTraceServiceRequest) -> str:
    """One line as the Collector's file exporter writes a request with `format: json`: pdata's OTLP
    JSON marshaler (opentelemetry-collector `pdata/ptrace/json.go`), i.e. the OTLP specification's JSON
    encoding (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): hex trace and span
    ids, enums as numbers, 64-bit integers as strings, lowerCamelCase keys."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(_ids_to_hex(data), separators=(",", ":"))


def write_collector_file(path: Path, requests: Sequence[ExportTraceServiceRequest]) -> Path:
    path.write_text("".join(f"{collector_file_line(request)}\n" for request in requests), encoding="utf-8")
    return path


def test_file_reader_replays_what_the_store_recorded(exported: Exported, tmp_path: Path) -> None:
    source = OtlpJsonFileSource(write_collector_file(tmp_path / "sessions.jsonl", exported.requests))
    try:
        assert source.list_sessions(SessionFilter(limit=None)) == exported.summaries()
        for session_id in exported.session_ids:
            assert source.get_session(session_id) == exported.replay(session_id)
        with pytest.raises(SessionNotFoundError, match="no session 'nope'"):
            source.get_session("nope")
        assert_requests_outside(source, exported)
    finally:
        source.close()


def assert_requests_outside(source: Any, exported: Exported) -> None:
    """`source` lists, counts, filters and replays the requests outside any session as the store."""
    expected = exported.requests_outside()
    assert source.list_requests(RequestFilter(limit=None)) == expected
    assert source.count_requests(RequestFilter(limit=None)) == len(expected)
    assert source.list_requests(RequestFilter(tool="echo")) == [r for r in expected if r.target == "echo"]
    assert source.list_requests(RequestFilter(has_error=True)) == []
    [call] = [r for r in expected if r.method == "tools/call"]
    assert source.get_trace(call.trace_id) == exported.trace(call.trace_id)
    with pytest.raises(TraceNotFoundError):
        source.get_trace("0123456789abcdef0123456789abcdef")


def test_file_reader_takes_proto3_json_with_base64_ids(exported: Exported, tmp_path: Path) -> None:
    # json_format's own output: base64 ids and enum names, as proto3 JSON (not OTLP JSON) has them.
    path = tmp_path / "proto3.jsonl"
    path.write_text("".join(json_format.MessageToJson(r, indent=None) + "\n" for r in exported.requests))
    source = OtlpJsonFileSource(path)
    assert source.get_session(exported.session_ids[0]) == exported.replay(exported.session_ids[0])


def test_malformed_lines_are_reported_and_skipped(exported: Exported, tmp_path: Path) -> None:
    good = [collector_file_line(request) for request in exported.requests]
    bad_id = json.dumps(
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abcd", "spanId": "ab"}]}]}]}
    )
    lines = [
        good[0],
        "this is not JSON",
        '{"resourceSpans": 3}',
        bad_id,
        "",
        "[1, 2]",
        *good[1:],
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    warnings: list[str] = []
    progress: list[tuple[int, int]] = []
    source = OtlpJsonFileSource(
        path, warn=warnings.append, progress=lambda done, total: progress.append((done, total))
    )

    assert source.get_session(exported.session_ids[0]) == exported.replay(exported.session_ids[0])
    assert [warning.split(": ")[0] for warning in warnings] == [f"{path}:{line}" for line in (2, 3, 4, 6)]
    assert all("skipped, not an OTLP JSON trace request" in warning for warning in warnings)
    assert "has an id of 3 bytes where 16 are required" in warnings[2]
    size = path.stat().st_size
    assert progress[-1] == (size, size)
    assert all(total == size for _, total in progress)


def test_a_missing_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match="no OTLP JSON file at"):
        OtlpJsonFileSource(tmp_path / "missing.jsonl")


# --- loopback HTTP stubs ---------------------------------------------------------------------------


def backend_stub(route: JsonRoute) -> HttpStub:
    """A JSON HTTP server on 127.0.0.1 answering GETs with `route`; keeps every (path, query) asked."""
    return HttpStub(json_route(route))


def _traces(requests: Sequence[ExportTraceServiceRequest]) -> dict[str, ExportTraceServiceRequest]:
    """The exported spans regrouped by trace, as a backend stores them: trace id (hex) -> one request
    holding only that trace's spans, each with its own resource and scope."""
    traces: dict[str, ExportTraceServiceRequest] = defaultdict(ExportTraceServiceRequest)
    for request in requests:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    target = traces[span.trace_id.hex()].resource_spans.add()
                    target.resource.CopyFrom(resource_spans.resource)
                    scoped = target.scope_spans.add()
                    scoped.scope.CopyFrom(scope_spans.scope)
                    scoped.spans.add().CopyFrom(span)
    return dict(traces)


def _spans_of(trace: ExportTraceServiceRequest) -> list[tuple[dict[str, Any], Any]]:
    """(resource attributes, span) pairs with attributes decoded, for the stubs' search predicates."""
    return [
        ({kv.key: kv.value.string_value for kv in rs.resource.attributes}, span)
        for rs in trace.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def _attribute(span: Any, key: str) -> str | None:
    for kv in span.attributes:
        if kv.key == key:
            return str(json_format.MessageToDict(kv.value).popitem()[1])
    return None


_TRACEQL_SESSION = re.compile(r'span\.session\.id = "((?:[^"\\]|\\.)*)"')


def _search_span(resource: dict[str, Any], span: Any) -> dict[str, Any]:
    """A span as Tempo's search renders it with `select()` (tests/fixtures/tempo/README.md "Shapes
    worth knowing"): attributes unscoped, the resource's service among them, `kind` and `status` as
    lowercase strings, `name`, `durationNanos` left out when 0. This stub returns every attribute, a
    superset of what a `select()` returns."""
    attributes = [json_format.MessageToDict(kv) for kv in span.attributes]
    attributes.append({"key": "service.name", "value": {"stringValue": resource[SERVICE_NAME]}})
    kind = Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").lower()
    status = Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_").lower()
    attributes += [
        {"key": "kind", "value": {"stringValue": kind}},
        {"key": "status", "value": {"stringValue": status}},
    ]
    rendered = {
        "spanID": span.span_id.hex(),
        "name": span.name,
        "startTimeUnixNano": str(span.start_time_unix_nano),
        "attributes": attributes,
    }
    if span.end_time_unix_nano > span.start_time_unix_nano:
        rendered["durationNanos"] = str(span.end_time_unix_nano - span.start_time_unix_nano)
    return rendered


def _tempo_matches(query: str, span: Any) -> bool:
    """The four kinds of TraceQL search the reader sends, evaluated on one span."""
    session_id = _attribute(span, "session.id")
    if '(name = "mcp.session" || name = "mcp.session.start")' in query:
        return session_id is not None and span.name in ("mcp.session", "mcp.session.start")
    if "span.session.id = nil" in query:
        return (
            session_id is None
            and span.kind == Span.SPAN_KIND_SERVER
            and _attribute(span, "mcp.method.name") is not None
        )
    wanted = {json.loads(f'"{value}"') for value in _TRACEQL_SESSION.findall(query)}
    return session_id in wanted


def tempo_route(traces: dict[str, ExportTraceServiceRequest], *, v2: bool = True) -> JsonRoute:
    """Tempo's HTTP API as documented (grafana/tempo `docs/sources/tempo/api_docs/_index.md`) and as
    recorded from Tempo 2.10.8 (tests/fixtures/tempo):

    - `GET /api/search?q=&limit=&spss=&start=&end=` -> `{"traces": [{"traceID" (leading zeros
      stripped), "startTimeUnixNano", "spanSet": {"spans": [...], "matched"}, "spanSets": [...]}]}`;
    - `GET /api/v2/traces/<id>` -> `{"trace": {"resourceSpans": [...]}}` ("Query V2"), 404 on a Tempo
      older than v2.7 (`v2=False`);
    - `GET /api/traces/<id>` -> `{"batches": [...]}` ("Query": OTLP JSON with `resourceSpans` called
      `batches`).

    Trace bodies carry base64 ids: Tempo marshals the OTLP protobuf with jsonpb (grafana/tempo#5437).
    Of TraceQL this stub understands the searches the reader sends (`_tempo_matches`); the time window
    is ignored (every exported span is recent).
    """

    def route(path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/search":
            found = []
            for trace_id, trace in traces.items():
                spans = [
                    _search_span(r, span) for r, span in _spans_of(trace) if _tempo_matches(query["q"], span)
                ]
                if spans:
                    start = min(int(span["startTimeUnixNano"]) for span in spans)
                    spanset = {"spans": spans, "matched": len(spans)}
                    found.append(
                        {
                            "traceID": trace_id.lstrip("0"),
                            "rootServiceName": SERVICE,
                            "startTimeUnixNano": str(start),
                            "spanSet": spanset,
                            "spanSets": [spanset],
                        }
                    )
            found.sort(key=lambda trace: -int(trace["startTimeUnixNano"]))
            return 200, {
                "traces": found[: int(query.get("limit", "20"))],
                "metrics": {"inspectedTraces": len(traces)},
            }
        for prefix, version in (("/api/v2/traces/", 2), ("/api/traces/", 1)):
            if path.startswith(prefix) and (version == 1 or v2):
                trace = traces.get(path[len(prefix) :])
                if trace is None:
                    return (200, {"trace": {}}) if version == 2 else (404, {})
                body = json_format.MessageToDict(trace)  # base64 ids, as Tempo sends them
                return 200, {"trace": body} if version == 2 else {"batches": body["resourceSpans"]}
        return 404, {"error": "not found"}

    return route


@pytest.mark.parametrize("v2", [True, False], ids=["v2", "v1-only"])
def test_tempo_reader_replays_what_the_store_recorded(exported: Exported, v2: bool) -> None:
    with backend_stub(tempo_route(_traces(exported.requests), v2=v2)) as tempo:
        source = TempoSource(tempo.url, metrics_max_seconds=None)
        try:
            assert source.list_sessions(SessionFilter(limit=None)) == exported.summaries()
            listed_at = len(tempo.requests)
            for session_id in exported.session_ids:
                assert source.get_session(session_id) == exported.replay(session_id)
            with pytest.raises(SessionNotFoundError, match=f"no session 'nope' in Tempo at {tempo.url}"):
                source.get_session("nope")
            assert source.list_requests(RequestFilter(limit=None)) == exported.requests_outside()
            [call] = [r for r in exported.requests_outside() if r.method == "tools/call"]
            assert source.get_trace(call.trace_id) == exported.trace(call.trace_id)
        finally:
            source.close()
    # The list read session spans and their sessions' spans: searches only, no trace fetched.
    assert {path for path, _ in tempo.requests[:listed_at]} == {"/api/search"}
    searches = [query for path, query in tempo.requests if path == "/api/search"]
    assert searches[0]["q"] == session_spans_query(None) + " with (most_recent=true)"
    assert searches[2]["q"] == f'{{ span.session.id = "{exported.session_ids[0]}" }} with (most_recent=true)'
    assert all(int(query["end"]) > int(query["start"]) for query in searches)
    if not v2:
        # Once the v1 route answered, the reader stops asking v2.
        paths = [path for path, _ in tempo.requests]
        assert sum(path.startswith("/api/v2/") for path in paths) == 1


def test_tempo_search_narrows_by_attribute_filters() -> None:
    query = session_spans_query(
        SessionFilter(
            session_type="admin_shell", service="svc", component='a"b', user="les", origin="admin_shell"
        )
    )
    assert query.startswith(
        '{ (name = "mcp.session" || name = "mcp.session.start") && span.session.id != nil'
        ' && span.shinzo.session.type = "admin_shell" && span.shinzo.session.origin = "admin_shell"'
        ' && span.shinzo.admin.component = "a\\"b" && span.user.name = "les"'
        ' && resource.service.name = "svc" } | select(span.session.id, '
    )


def test_http_failures_are_one_line_errors(exported: Exported) -> None:
    with backend_stub(lambda path, query: (500, {"error": "boom\nsecond line"})) as broken:
        with pytest.raises(SourceUnavailableError) as error:
            TempoSource(broken.url).list_sessions()
        assert (
            str(error.value)
            == f'Tempo at {broken.url} answered 500 to GET /api/search: {{"error": "boom\\nsecond line"}}'
        )
        with pytest.raises(SourceUnavailableError, match=f"Jaeger at {broken.url} answered 500"):
            JaegerSource(broken.url).get_session("s")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(SourceUnavailableError, match=f"cannot reach Tempo at http://127.0.0.1:{port}"):
        TempoSource(f"127.0.0.1:{port}").get_session("s")


def test_tempo_traces_it_cannot_read_are_skipped_with_a_warning(exported: Exported) -> None:
    traces = _traces(exported.requests)
    good = tempo_route(traces)
    first, second = exported.session_ids
    broken = next(s.trace_id for s in exported.spans if s.attributes.get("session.id") == first)
    missing = next(s.trace_id for s in exported.spans if s.attributes.get("session.id") == second)

    def route(path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path.endswith(broken):
            return 200, {"trace": {"resourceSpans": "not a list"}}
        if path.endswith(missing):
            return 404, {"error": "trace not found"}
        return good(path, query)

    warnings: list[str] = []
    with backend_stub(route) as tempo:
        source = TempoSource(tempo.url, warn=warnings.append)
        for session_id in exported.session_ids:
            with pytest.raises(SessionNotFoundError):
                source.get_session(session_id)
    assert warnings == [
        f"Tempo trace {broken}: skipped, not OTLP JSON (Failed to parse resourceSpans field: "
        "repeated field resourceSpans must be in [] which is not a list at ExportTraceServiceRequest.)",
        f"Tempo trace {missing}: found by the search but not returned; skipped",
    ]


# --- Jaeger ----------------------------------------------------------------------------------------


def _matches(
    trace: ExportTraceServiceRequest, service: str, operation: str | None, attributes: dict[str, str]
) -> bool:
    """Jaeger's search semantics (api_v3 `TraceQueryParameters`): a trace matches when one span of
    `service` has the operation name and every attribute."""
    return any(
        resource.get(SERVICE_NAME) == service
        and operation in (None, span.name)
        and all(_attribute(span, key) == value for key, value in attributes.items())
        for resource, span in _spans_of(trace)
    )


def jaeger_v3_route(traces: dict[str, ExportTraceServiceRequest]) -> JsonRoute:
    """Jaeger's api_v3 over HTTP (jaegertracing/jaeger-idl `proto/api_v3/query_service.proto`, the gateway
    jaegertracing/jaeger `.../jaegerquery/internal/apiv3/http_gateway.go`, its snapshot
    `snapshots/FindTraces.json`): `GET /api/v3/services` -> `{"services": [...]}`; `GET /api/v3/traces`
    with `query.service_name`, `query.operation_name`, `query.attributes` (a JSON map),
    `query.start_time_min`/`max` (RFC 3339, both required: 400 otherwise) -> `{"result":
    {"resourceSpans": [...]}}` in OTLP JSON with hex ids and numeric enums, or 404 with a
    `GRPCGatewayError` when nothing matches."""
    services = sorted(
        {resource.get(SERVICE_NAME) for trace in traces.values() for resource, _ in _spans_of(trace)}
    )

    def route(path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/v3/services":
            return 200, {"services": services}
        if path.startswith("/api/v3/traces/"):
            # GetTrace: the same envelope, 404 for an unknown id (http_gateway.go).
            trace = traces.get(path.rsplit("/", 1)[1])
            if trace is None:
                return 404, {"error": {"httpCode": 404, "message": "trace not found"}}
            body = json_format.MessageToDict(trace, use_integers_for_enums=True)
            return 200, {"result": _ids_to_hex(body)}
        if path != "/api/v3/traces":
            return 404, {"error": {"httpCode": 404, "message": "not found"}}
        if not query.get("query.start_time_min") or not query.get("query.start_time_max"):
            message = "query.start_time_min and query.start_time_max are required"
            return 400, {"error": {"httpCode": 400, "message": message}}
        attributes = json.loads(query.get("query.attributes", "{}"))
        found = [
            trace
            for trace in traces.values()
            if _matches(
                trace, query.get("query.service_name", ""), query.get("query.operation_name"), attributes
            )
        ]
        if not found:
            return 404, {"error": {"httpCode": 404, "message": "No traces found"}}
        combined = ExportTraceServiceRequest()
        for trace in found:
            combined.resource_spans.extend(trace.resource_spans)
        return 200, {"result": _ids_to_hex(json_format.MessageToDict(combined, use_integers_for_enums=True))}

    return route


def _jaeger_trace_id(trace_id: str) -> str:
    # model.TraceID.String(): the high 64 bits are left out when they are zero.
    return trace_id[16:] if trace_id[:16] == "0" * 16 else trace_id


def _jaeger_tag(key: str, value: Any) -> dict[str, Any]:
    # The translator's attributeToJaegerProtoTag, as the v1 JSON model (model/json/model.go) writes it.
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, (tuple, dict)):
        return {"key": key, "type": "string", "value": json.dumps(value)}
    return {"key": key, "type": "string", "value": value}


def jaeger_v1_trace(spans: Sequence[ReceivedSpan]) -> dict[str, Any]:
    """One trace in Jaeger's v1 JSON (jaegertracing/jaeger `model/json/model.go`), translated from OTLP
    as the Collector's translator does (opentelemetry-collector-contrib
    `pkg/translator/jaeger/traces_to_jaegerproto.go`): service.name to the process, scope to
    `otel.scope.name`, kind to `span.kind`, status to `otel.status_code` / `otel.status_description` /
    `error`, parent as the first CHILD_OF reference and links as FOLLOWS_FROM, events as logs with an
    `event` field; times in microseconds."""
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[str, str] = {}
    out = []
    for span in spans:
        resource = dict(span.resource)
        service = resource.pop(SERVICE_NAME)
        key = json.dumps([service, resource], sort_keys=True)
        process_id = process_ids.setdefault(key, f"p{len(process_ids) + 1}")
        processes[process_id] = {
            "serviceName": service,
            "tags": [_jaeger_tag(name, value) for name, value in resource.items()],
        }
        tags = [{"key": "otel.scope.name", "type": "string", "value": span.scope_name}]
        tags += [_jaeger_tag(name, value) for name, value in span.attributes.items()]
        tags.append({"key": "span.kind", "type": "string", "value": span.kind.lower()})
        if span.status_code != "UNSET":
            tags.append({"key": "otel.status_code", "type": "string", "value": span.status_code})
        if span.status_code == "ERROR":
            tags.append({"key": "error", "type": "bool", "value": True})
        if span.status_message:
            tags.append({"key": "otel.status_description", "type": "string", "value": span.status_message})
        references = (
            []
            if span.parent_span_id is None
            else [
                {
                    "refType": "CHILD_OF",
                    "traceID": _jaeger_trace_id(span.trace_id),
                    "spanID": span.parent_span_id,
                }
            ]
        )
        references += [
            {"refType": "FOLLOWS_FROM", "traceID": _jaeger_trace_id(link.trace_id), "spanID": link.span_id}
            for link in span.links
        ]
        out.append(
            {
                "traceID": _jaeger_trace_id(span.trace_id),
                "spanID": span.span_id,
                "operationName": span.name,
                "references": references,
                "startTime": span.start_ns // 1000,
                "duration": (span.end_ns - span.start_ns) // 1000,
                "tags": tags,
                "logs": [
                    {
                        "timestamp": event.time_ns // 1000,
                        "fields": [{"key": "event", "type": "string", "value": event.name}]
                        + [_jaeger_tag(name, value) for name, value in event.attributes.items()],
                    }
                    for event in span.events
                ],
                "processID": process_id,
                "warnings": None,
            }
        )
    return {
        "traceID": _jaeger_trace_id(spans[0].trace_id),
        "spans": out,
        "processes": processes,
        "warnings": None,
    }


def jaeger_v1_route(spans: Sequence[ReceivedSpan]) -> JsonRoute:
    """Jaeger's v1 JSON API as the query service answers it (jaegertracing/jaeger `model/json/model.go`
    and `cmd/query/app/http_handler.go`): `GET /api/services` -> `{"data": [...]}`; `GET /api/traces`
    with `service` (required: 400 otherwise), `operation`, `tags` (a JSON map), `start`/`end`
    (microseconds), `limit` -> `{"data": [trace...], "total", "limit", "offset", "errors": null}`.
    No api_v3 (a Jaeger before 1.35): `/api/v3/*` answers 404."""
    by_trace: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    services = sorted({str(span.resource[SERVICE_NAME]) for span in spans})

    def route(path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/services":
            return 200, {"data": services, "total": len(services), "limit": 0, "offset": 0, "errors": None}
        if path != "/api/traces":
            return 404, {"data": None, "errors": [{"code": 404, "msg": "page not found"}]}
        if not query.get("service"):
            return 400, {"data": None, "errors": [{"code": 400, "msg": "parameter 'service' is required"}]}
        tags = json.loads(query.get("tags", "{}"))
        found = [
            jaeger_v1_trace(trace)
            for trace in by_trace.values()
            if any(
                span.resource[SERVICE_NAME] == query["service"]
                and query.get("operation") in (None, span.name)
                and all(str(span.attributes.get(key)) == value for key, value in tags.items())
                for span in trace
            )
        ]
        return 200, {"data": found, "total": len(found), "limit": 0, "offset": 0, "errors": None}

    return route


def test_jaeger_v3_reader_replays_what_the_store_recorded(exported: Exported) -> None:
    with backend_stub(jaeger_v3_route(_traces(exported.requests))) as jaeger:
        source = JaegerSource(jaeger.url)
        try:
            assert source.list_sessions(SessionFilter(limit=None)) == exported.summaries()
            for session_id in exported.session_ids:
                assert source.get_session(session_id) == exported.replay(session_id)
            with pytest.raises(SessionNotFoundError, match="no session 'nope' in Jaeger at"):
                source.get_session("nope")
            assert_requests_outside(source, exported)
        finally:
            source.close()
    searches = [query for path, query in jaeger.requests if path == "/api/v3/traces"]
    assert searches[0]["query.operation_name"] == "mcp.session.start"
    assert json.loads(searches[1]["query.attributes"]) == {"session.id": exported.session_ids[0]}
    assert {query["query.service_name"] for query in searches} == {SERVICE}


def _microseconds(span: SpanRecord) -> SpanRecord:
    """A span as Jaeger's v1 model keeps it: start and event times cut to microseconds, the duration
    too (model/json keeps µs)."""
    start_us = span["start_ns"] // 1000
    duration_us = (span["end_ns"] - span["start_ns"]) // 1000 if span["end_ns"] is not None else 0
    return {
        **span,
        "start_ns": start_us * 1000,
        "end_ns": (start_us + duration_us) * 1000,
        "events": [
            {**event, "timestamp_ns": event["timestamp_ns"] // 1000 * 1000} for event in span["events"]
        ],
    }


def test_jaeger_v1_reader_replays_the_store_to_the_microsecond(exported: Exported) -> None:
    with backend_stub(jaeger_v1_route(exported.spans)) as jaeger:
        source = JaegerSource(jaeger.url)
        try:
            for session_id in exported.session_ids:
                expected = build_session(map(_microseconds, exported.records(session_id)))
                assert source.get_session(session_id) == expected
            listed = source.list_sessions(SessionFilter(limit=None))
        finally:
            source.close()
    assert [summary.session_id for summary in listed] == [
        summary.session_id for summary in exported.summaries()
    ]
    assert [summary.counts for summary in listed] == [summary.counts for summary in exported.summaries()]
    paths = [path for path, _ in jaeger.requests]
    assert paths[0] == "/api/v3/services"  # probed once, then v1 only
    assert paths.count("/api/v3/services") == 1


def test_jaeger_v1_short_trace_ids_and_kinds() -> None:
    trace = {
        "traceID": "00000000000000ab",
        "spans": [
            {
                "traceID": "ab",
                "spanID": "1",
                "operationName": "tools/call x",
                "references": [{"refType": "CHILD_OF", "traceID": "ab", "spanID": "2"}],
                "startTime": 5,
                "duration": 2,
                "tags": [
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "error", "type": "bool", "value": True},
                    {"key": "n", "type": "int64", "value": 7},
                ],
                "processID": "p1",
            }
        ],
        "processes": {"p1": {"serviceName": "svc"}},
    }
    [record] = v1_trace_records(trace)
    assert (record["trace_id"], record["span_id"], record["parent_span_id"]) == (
        "0" * 30 + "ab",
        "0" * 15 + "1",
        "0" * 14 + "02",
    )
    assert (record["kind"], record["status_code"], record["attributes"]) == ("SERVER", "ERROR", {"n": 7})
    assert (record["start_ns"], record["end_ns"], record["service_name"]) == (5000, 7000, "svc")
    with pytest.raises(ValueError, match="malformed Jaeger span"):
        v1_trace_records({"spans": [{"spanID": "1"}]})


# --- a real Tempo ------------------------------------------------------------------------------------

TEMPO_BIN = os.environ.get("TEMPO_BIN")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_TEMPO_CONFIG = """\
stream_over_http_enabled: true
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc}
  log_level: warn
distributor:
  receivers:
    otlp:
      protocols:
        http:
          endpoint: 127.0.0.1:{otlp}
memberlist:
  bind_addr: [127.0.0.1]
  bind_port: {gossip}
ingester:
  lifecycler:
    address: 127.0.0.1
    ring:
      kvstore:
        store: inmemory
      replication_factor: 1
storage:
  trace:
    backend: local
    local:
      path: {data}/blocks
    wal:
      path: {data}/wal
usage_report:
  reporting_enabled: false
"""
"""A single-binary Tempo (v2.x monolithic mode) on loopback ports only, local storage in tmp_path."""


@pytest.fixture
def tempo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real Tempo started from `TEMPO_BIN`; yields (HTTP API URL, OTLP/HTTP traces URL)."""
    if not TEMPO_BIN or not shutil.which(TEMPO_BIN):
        pytest.skip("set TEMPO_BIN to a tempo binary to run against a real Tempo")
    ports = {name: _free_port() for name in ("http", "grpc", "otlp", "gossip")}
    config = tmp_path / "tempo.yaml"
    config.write_text(_TEMPO_CONFIG.format(data=tmp_path, **ports), encoding="utf-8")
    log = (tmp_path / "tempo.log").open("wb")
    process = subprocess.Popen([TEMPO_BIN, f"-config.file={config}", "-target=all"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{ports['http']}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "tempo.log").read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("Tempo did not become ready within 60 s")
        yield url, f"http://127.0.0.1:{ports['otlp']}/v1/traces"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_real_tempo_replays_a_session(exported: Exported, tempo: tuple[str, str]) -> None:
    url, otlp = tempo
    for request in exported.requests:
        response = httpx.post(
            otlp,
            content=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        assert response.status_code == HTTPStatus.OK, response.text
    session_id = exported.session_ids[0]
    expected = exported.replay(session_id)
    source = TempoSource(url)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                replayed = source.get_session(session_id)
                if replayed.summary.counts == expected.summary.counts:
                    break
            except SessionNotFoundError:
                pass
            assert time.monotonic() < deadline, "Tempo did not return the whole session within 60 s"
            time.sleep(1)
        assert replayed == expected
        assert session_id in [
            summary.session_id for summary in source.list_sessions(SessionFilter(limit=None))
        ]
    finally:
        source.close()


def test_parse_traces_rejects_what_is_not_a_traces_document() -> None:
    with pytest.raises(ValueError, match="expected a JSON object"):
        parse_traces([])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resourceSpans"):
        parse_traces({"resourceSpans": 3})
