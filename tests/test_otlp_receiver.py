"""Self-tests of the OTLP receiver fixture, driven by the official OTLP exporters and a real SDK.

Every expected value below was chosen here and written out by hand; none is read back from the receiver.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import grpc
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tests.otlp_receiver import AttributeValue, OtlpReceiver, ReceivedSpan

Transport = Literal["grpc", "http"]
TRANSPORTS: tuple[Transport, ...] = ("grpc", "http")

# Short enough that the fault-mode tests stay quick; the exporters' first retry backoff (about 1 s) is
# longer, so a refused export fails after one attempt.
FAST_TIMEOUT_S = 0.5
SERVICE_NAME = "otlp-receiver-selftest"


def _span_exporter(
    transport: Transport,
    receiver: OtlpReceiver,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    compression: Compression | None = None,
) -> SpanExporter:
    if transport == "grpc":
        return GrpcSpanExporter(
            endpoint=receiver.grpc_endpoint, insecure=True, headers=headers, timeout=timeout
        )
    return HttpSpanExporter(
        endpoint=f"{receiver.http_endpoint}/v1/traces",
        headers=headers,
        timeout=timeout,
        compression=compression,
    )


@contextmanager
def _tracer_provider(exporter: SpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider
    finally:
        provider.shutdown()  # also shuts the exporter down


def _finished_span(name: str) -> ReadableSpan:
    """A real SDK span, for calling an exporter's export() directly and reading its result."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("selftest").start_span(name).end()
    provider.shutdown()
    (span,) = memory.get_finished_spans()
    return span


def _direct_answer(transport: Transport, receiver: OtlpReceiver) -> str:
    """Send one empty trace export without an exporter's retries and report how it was answered:
    the HTTP status code or gRPC status name, or ``"timeout"`` when no answer came in time."""
    if transport == "http":
        try:
            response = httpx.post(
                f"{receiver.http_endpoint}/v1/traces",
                headers={"Content-Type": "application/x-protobuf"},
                content=b"",
                timeout=FAST_TIMEOUT_S,
            )
        except httpx.TimeoutException:
            return "timeout"
        return str(response.status_code)
    with grpc.insecure_channel(receiver.grpc_endpoint.removeprefix("http://")) as channel:
        try:
            stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]
            stub.Export(ExportTraceServiceRequest(), timeout=FAST_TIMEOUT_S)
        except grpc.RpcError as error:
            code = error.code()
            return "timeout" if code is grpc.StatusCode.DEADLINE_EXCEEDED else str(code.name)
    return "OK"


def _typed(value: AttributeValue) -> object:
    """Pair every value with its type name, so ``True`` cannot pass for ``1`` nor ``2`` for ``2.0``."""
    if isinstance(value, tuple):
        return tuple(_typed(item) for item in value)
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    return (value, type(value).__name__)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_spans_arrive_with_exact_values_types_and_headers(
    receiver: OtlpReceiver, transport: Transport
) -> None:
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    exporter = _span_exporter(transport, receiver, headers={"authorization": "Bearer x"})
    with _tracer_provider(exporter) as provider:
        tracer = provider.get_tracer("selftest.scope")
        parent = tracer.start_span(
            "parent",
            kind=SpanKind.SERVER,
            start_time=1_000_000_000,
            attributes={
                "s": "text",
                "i": 2**40,
                "f": 2.5,
                "b": True,
                "ls": ["a", "b"],
                "li": [1, 2],
                "lf": [0.5, 1.5],
                "lb": [True, False],
            },
        )
        parent.add_event("checkpoint", {"step": 3, "ok": False}, timestamp=1_500_000_000)
        child = tracer.start_span(
            "child",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            links=[Link(remote, {"link.reason": "retry"})],
            start_time=1_100_000_000,
        )
        child.set_status(Status(StatusCode.ERROR, "boom"))
        child.end(end_time=1_200_000_000)
        parent.end(end_time=2_000_000_000)
        sent_trace_id = format(parent.get_span_context().trace_id, "032x")
        sent_parent_id = format(parent.get_span_context().span_id, "016x")
        sent_child_id = format(child.get_span_context().span_id, "016x")

    by_name = {span.name: span for span in receiver.wait_for_spans(2)}
    assert sorted(by_name) == ["child", "parent"]
    got_parent, got_child = by_name["parent"], by_name["child"]

    assert _typed(got_parent.attributes) == {
        "s": ("text", "str"),
        "i": (1_099_511_627_776, "int"),
        "f": (2.5, "float"),
        "b": (True, "bool"),
        "ls": (("a", "str"), ("b", "str")),
        "li": ((1, "int"), (2, "int")),
        "lf": ((0.5, "float"), (1.5, "float")),
        "lb": ((True, "bool"), (False, "bool")),
    }
    assert (got_parent.kind, got_child.kind) == ("SERVER", "CLIENT")
    assert (got_parent.start_ns, got_parent.end_ns) == (1_000_000_000, 2_000_000_000)
    assert (got_child.start_ns, got_child.end_ns) == (1_100_000_000, 1_200_000_000)
    assert [(e.name, _typed(e.attributes), e.time_ns) for e in got_parent.events] == [
        ("checkpoint", {"step": (3, "int"), "ok": (False, "bool")}, 1_500_000_000)
    ]
    assert got_parent.links == ()
    assert got_child.events == ()
    assert got_child.links == (
        ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", {"link.reason": "retry"}),
    )

    assert got_parent.trace_id == got_child.trace_id == sent_trace_id
    assert (got_parent.span_id, got_child.span_id) == (sent_parent_id, sent_child_id)
    assert got_parent.parent_span_id is None
    assert got_child.parent_span_id == sent_parent_id

    assert (got_parent.status_code, got_parent.status_message) == ("UNSET", "")
    assert (got_child.status_code, got_child.status_message) == ("ERROR", "boom")
    assert got_parent.resource["service.name"] == SERVICE_NAME
    assert got_parent.scope_name == got_child.scope_name == "selftest.scope"

    # SimpleSpanProcessor exports each span on its own: two requests, each carrying the header.
    assert [headers.get("authorization") for headers in receiver.headers] == ["Bearer x", "Bearer x"]
    assert len(receiver.trace_requests) == 2
    assert any(b"boom" in body for body in receiver.raw_bytes)
    assert receiver.rejected_requests == 0


@pytest.mark.parametrize(
    ("compression", "encoding"), [(Compression.Gzip, "gzip"), (Compression.Deflate, "deflate")]
)
def test_http_content_encoding_is_undone(
    receiver: OtlpReceiver, compression: Compression, encoding: str
) -> None:
    exporter = _span_exporter("http", receiver, compression=compression)
    with _tracer_provider(exporter) as provider:
        provider.get_tracer("selftest").start_span("squeezed", attributes={"note": "plain-text-marker"}).end()

    (span,) = receiver.wait_for_spans(1)
    assert span.attributes == {"note": "plain-text-marker"}
    assert [headers.get("content-encoding") for headers in receiver.headers] == [encoding]
    # raw_bytes holds the decompressed protobuf, so a plain-text search works on it.
    assert b"plain-text-marker" in receiver.raw_bytes[0]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unavailable_mode_fails_the_export_until_ok_again(
    receiver: OtlpReceiver, transport: Transport
) -> None:
    exporter = _span_exporter(transport, receiver, timeout=FAST_TIMEOUT_S)
    try:
        receiver.set_mode("unavailable")
        assert _direct_answer(transport, receiver) == {"grpc": "UNAVAILABLE", "http": "503"}[transport]
        assert exporter.export([_finished_span("refused")]) is SpanExportResult.FAILURE
        assert receiver.spans() == []
        assert receiver.rejected_requests >= 1
        assert receiver.rejected_requests == len(receiver.raw_bytes)

        receiver.set_mode("ok")
        assert exporter.export([_finished_span("accepted")]) is SpanExportResult.SUCCESS
        assert [span.name for span in receiver.spans()] == ["accepted"]
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hang_mode_makes_the_export_time_out(receiver: OtlpReceiver, transport: Transport) -> None:
    exporter = _span_exporter(transport, receiver, timeout=FAST_TIMEOUT_S)
    try:
        receiver.set_mode("hang")
        assert _direct_answer(transport, receiver) == "timeout"
        assert exporter.export([_finished_span("stalled")]) is SpanExportResult.FAILURE
        assert receiver.rejected_requests >= 2

        receiver.set_mode("ok")  # releases the hung handler, which must not store the stalled request late
        assert exporter.export([_finished_span("accepted")]) is SpanExportResult.SUCCESS
        assert [span.name for span in receiver.spans()] == ["accepted"]
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stop_and_start_reopen_the_same_ports(receiver: OtlpReceiver, transport: Transport) -> None:
    endpoints = (receiver.grpc_endpoint, receiver.http_endpoint)
    exporter = _span_exporter(transport, receiver, timeout=FAST_TIMEOUT_S)
    try:
        assert exporter.export([_finished_span("before")]) is SpanExportResult.SUCCESS

        receiver.stop()
        assert exporter.export([_finished_span("while-down")]) is SpanExportResult.FAILURE

        receiver.start()
        assert (receiver.grpc_endpoint, receiver.http_endpoint) == endpoints
        assert exporter.export([_finished_span("after")]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [span.name for span in receiver.spans()] == ["before", "after"]
    assert len(receiver.raw_bytes) == 2  # the export while down never reached a socket


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_metrics_are_decoded(receiver: OtlpReceiver, transport: Transport) -> None:
    exporter: MetricExporter = (
        GrpcMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5.0)
        if transport == "grpc"
        else HttpMetricExporter(endpoint=f"{receiver.http_endpoint}/v1/metrics", timeout=5.0)
    )
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": SERVICE_NAME})
    )
    try:
        meter = provider.get_meter("selftest")
        histogram = meter.create_histogram(
            "selftest.duration", unit="s", explicit_bucket_boundaries_advisory=[0.3, 1.0]
        )
        for seconds in (0.25, 0.5, 0.75, 2.0):
            histogram.record(seconds, {"tool": "add"})
        counter = meter.create_counter("selftest.calls", unit="{call}")
        counter.add(3, {"tool": "add"})
        counter.add(4, {"tool": "add"})
        metrics_data = reader.get_metrics_data()
        assert metrics_data is not None
        assert exporter.export(metrics_data) is MetricExportResult.SUCCESS
    finally:
        provider.shutdown()
        exporter.shutdown()

    metrics = receiver.metrics()
    assert sorted(metrics) == ["selftest.calls", "selftest.duration"]
    (duration,) = metrics["selftest.duration"]
    assert (duration.kind, duration.unit, duration.attributes) == ("histogram", "s", {"tool": "add"})
    assert (duration.count, duration.sum) == (4, 3.5)
    # Buckets (-inf, 0.3], (0.3, 1.0], (1.0, +inf): 0.25 | 0.5, 0.75 | 2.0
    assert duration.bucket_counts == (1, 2, 1)
    assert duration.explicit_bounds == (0.3, 1.0)
    assert duration.value is None
    (calls,) = metrics["selftest.calls"]
    assert (calls.kind, calls.unit, calls.attributes) == ("sum", "{call}", {"tool": "add"})
    assert _typed(calls.value) == (7, "int")
    assert (calls.count, calls.sum, calls.bucket_counts) == (None, None, ())
    assert len(receiver.metric_requests) == 1
    assert receiver.trace_requests == []


def test_wait_for_spans_names_what_arrived_when_it_gives_up(receiver: OtlpReceiver) -> None:
    with _tracer_provider(_span_exporter("http", receiver)) as provider:
        provider.get_tracer("selftest").start_span("alpha").end()
    assert [span.name for span in receiver.wait_for_spans(1)] == ["alpha"]

    def has_beta(spans: list[ReceivedSpan]) -> bool:
        return any(span.name == "beta" for span in spans)

    with pytest.raises(AssertionError, match=r"has_beta.*1 span\(s\): \['alpha'\]"):
        receiver.wait_for_spans(has_beta, timeout=0.2)
    with pytest.raises(AssertionError, match=r"2 span\(s\).*\['alpha'\]"):
        receiver.wait_for_spans(2, timeout=0.2)


@pytest.mark.parametrize(
    ("path", "headers", "body", "status"),
    [
        ("/v1/logs", {"Content-Type": "application/x-protobuf"}, b"", 404),
        ("/v1/traces", {"Content-Type": "application/json"}, b'{"resourceSpans": []}', 415),
        (
            "/v1/traces",
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            b"not gzip",
            400,
        ),
        ("/v1/traces", {"Content-Type": "application/x-protobuf"}, b"\xff\xff\xff", 400),
        ("/v1/metrics", {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"}, b"", 400),
    ],
)
def test_http_refuses_what_it_cannot_decode(
    receiver: OtlpReceiver, path: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    response = httpx.post(f"{receiver.http_endpoint}{path}", headers=headers, content=body)
    assert response.status_code == status
    assert receiver.trace_requests == receiver.metric_requests == []
    # Only requests to an OTLP path count; a 404 never reached the receiver's store.
    expected_rejected = 0 if status == 404 else 1
    assert receiver.rejected_requests == expected_rejected
    assert len(receiver.raw_bytes) == expected_rejected


def test_http_accepts_a_hand_made_empty_gzip_request(receiver: OtlpReceiver) -> None:
    # An empty ExportTraceServiceRequest serialises to zero bytes (proto3), so b"" is a valid body.
    response = httpx.post(
        f"{receiver.http_endpoint}/v1/traces",
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        content=gzip.compress(b""),
    )
    assert (response.status_code, response.content) == (200, b"")
    assert len(receiver.trace_requests) == 1
    assert receiver.spans() == []


def test_set_mode_rejects_unknown_names(receiver: OtlpReceiver) -> None:
    with pytest.raises(ValueError, match="'broken'"):
        receiver.set_mode("broken")  # type: ignore[arg-type]


def test_clear_forgets_everything(receiver: OtlpReceiver) -> None:
    receiver.set_mode("unavailable")
    httpx.post(f"{receiver.http_endpoint}/v1/traces", headers={"Content-Type": "application/x-protobuf"})
    receiver.set_mode("ok")
    httpx.post(f"{receiver.http_endpoint}/v1/traces", headers={"Content-Type": "application/x-protobuf"})
    assert (len(receiver.raw_bytes), receiver.rejected_requests, len(receiver.trace_requests)) == (2, 1, 1)

    receiver.clear()
    assert (receiver.raw_bytes, receiver.headers, receiver.trace_requests, receiver.rejected_requests) == (
        [],
        [],
        [],
        0,
    )


def test_endpoints_need_a_started_receiver() -> None:
    receiver = OtlpReceiver()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = receiver.grpc_endpoint


def test_close_releases_hung_requests_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    receiver = OtlpReceiver()
    receiver.start()
    exporter = _span_exporter("http", receiver, timeout=FAST_TIMEOUT_S)
    try:
        receiver.set_mode("hang")
        assert exporter.export([_finished_span("stalled")]) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
        receiver.close()
    assert [thread.name for thread in set(threading.enumerate()) - before] == []
    with pytest.raises(RuntimeError, match="closed"):
        receiver.start()
