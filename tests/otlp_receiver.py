"""A real OTLP receiver on 127.0.0.1 for integration tests.

`OtlpReceiver` listens on two ephemeral loopback ports at once: OTLP/gRPC (grpcio serving the generated
``TraceService`` and ``MetricsService`` servicers of ``opentelemetry-proto``) and OTLP/HTTP with binary
protobuf bodies (stdlib ``ThreadingHTTPServer``, ``POST /v1/traces`` and ``POST /v1/metrics``). It keeps
every request body and header set it receives, decodes the protobuf with ``opentelemetry-proto`` (never
by hand), and turns spans and metric points into plain Python values whose types match what the sender
put on the wire, so tests can assert both values and types.

Fault modes (``set_mode``) and a real ``stop()``/``start()`` on the same ports let resilience tests play
a collector that refuses, stalls, or goes away and comes back. The protocol rules followed here are
those of the OTLP specification (https://opentelemetry.io/docs/specs/otlp/): HTTP 503 and gRPC
UNAVAILABLE are the retryable "try later" answers; a success carries an empty ``Export*ServiceResponse``.

Usage::

    with OtlpReceiver() as rx:
        exporter = OTLPSpanExporter(endpoint=rx.grpc_endpoint, insecure=True)
        ...
        spans = rx.wait_for_spans(2)
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, NamedTuple, TypeAlias, get_args

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = [
    "AttributeValue",
    "MetricKind",
    "Mode",
    "OtlpReceiver",
    "ReceivedDataPoint",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedSpan",
]

AttributeValue: TypeAlias = (
    "str | bool | int | float | bytes | tuple[AttributeValue, ...] | dict[str, AttributeValue] | None"
)
"""A decoded OTLP ``AnyValue``: scalars keep their wire type, arrays become tuples, key/value lists
become dicts, bytes stay bytes, and an empty ``AnyValue`` becomes ``None``."""

Mode = Literal["ok", "unavailable", "hang"]
"""Fault mode of the receiver; see `OtlpReceiver.set_mode`."""

MetricKind = Literal["gauge", "sum", "histogram", "exponential_histogram", "summary"]
"""Which OTLP ``Metric.data`` field carried a data point."""

_Signal = Literal["traces", "metrics"]
# What happened to one request: a fault mode, or "malformed" when the body could not be decoded.
_Outcome = Literal["ok", "unavailable", "hang", "malformed"]
_Receive = Callable[[_Signal, bytes, dict[str, str], bool], _Outcome]

_MODES: Final[frozenset[str]] = frozenset(get_args(Mode))
_HTTP_PATHS: Final[dict[str, _Signal]] = {"/v1/traces": "traces", "/v1/metrics": "metrics"}
_PROTOBUF_CONTENT_TYPE: Final = "application/x-protobuf"
_EMPTY_RESPONSE_BYTES: Final[dict[_Signal, bytes]] = {
    "traces": ExportTraceServiceResponse().SerializeToString(),
    "metrics": ExportMetricsServiceResponse().SerializeToString(),
}
# A hung handler gives up after this long even if nobody releases it, so a forgotten "hang" mode cannot
# pin a thread for the rest of the test session.
_MAX_HANG_S: Final = 60.0
# Socket timeout of an HTTP connection: a client that connects and sends nothing cannot keep a handler
# thread (and therefore close()) waiting for longer than this.
_HTTP_SOCKET_TIMEOUT_S: Final = 5.0
# serve_forever() checks for shutdown this often; small so that stop() returns promptly.
_HTTP_POLL_INTERVAL_S: Final = 0.05
_GRPC_MAX_WORKERS: Final = 8


class ReceivedEvent(NamedTuple):
    """A span event as received: ``(name, attributes, time_ns)``; ``time_ns`` is Unix epoch nanoseconds."""

    name: str
    attributes: dict[str, AttributeValue]
    time_ns: int


class ReceivedLink(NamedTuple):
    """A span link as received: ``(trace_id, span_id, attributes)``; ids are lowercase hex (32, 16 chars)."""

    trace_id: str
    span_id: str
    attributes: dict[str, AttributeValue]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span decoded from an ``ExportTraceServiceRequest``.

    Attributes:
        name: Span name.
        kind: ``"INTERNAL"``, ``"SERVER"``, ``"CLIENT"``, ``"PRODUCER"``, ``"CONSUMER"`` (or
            ``"UNSPECIFIED"`` when the sender left it unset).
        trace_id: 32 lowercase hex characters.
        span_id: 16 lowercase hex characters.
        parent_span_id: 16 lowercase hex characters, or ``None`` for a root span.
        start_ns: Start time, Unix epoch nanoseconds.
        end_ns: End time, Unix epoch nanoseconds.
        attributes: Span attributes, see `AttributeValue` for the value types.
        events: Span events in the order sent.
        links: Span links in the order sent.
        status_code: ``"UNSET"``, ``"OK"`` or ``"ERROR"``.
        status_message: Status description, ``""`` when none.
        resource: Attributes of the span's resource.
        scope_name: Name of the instrumentation scope (the tracer name).
    """

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]
    events: tuple[ReceivedEvent, ...]
    links: tuple[ReceivedLink, ...]
    status_code: str
    status_message: str
    resource: dict[str, AttributeValue]
    scope_name: str


@dataclass(frozen=True)
class ReceivedDataPoint:
    """One metric data point decoded from an ``ExportMetricsServiceRequest``.

    Attributes:
        kind: Which OTLP data field carried the point (``"gauge"``, ``"sum"``, ``"histogram"``,
            ``"exponential_histogram"`` or ``"summary"``).
        unit: The metric's unit as sent (UCUM, e.g. ``"s"``).
        attributes: Point attributes, see `AttributeValue`.
        time_ns: Point timestamp, Unix epoch nanoseconds.
        value: For gauges and sums, the int or float value as sent; otherwise ``None``.
        count: For histograms and summaries, the number of recorded values; otherwise ``None``.
        sum: For histograms and summaries, the sum of the values, ``None`` when absent.
        bucket_counts: For explicit-bucket histograms, one count per bucket (``len(explicit_bounds) + 1``).
        explicit_bounds: For explicit-bucket histograms, the bucket upper bounds.
    """

    kind: MetricKind
    unit: str
    attributes: dict[str, AttributeValue]
    time_ns: int
    value: int | float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()


class OtlpReceiver:
    """An OTLP/gRPC and OTLP/HTTP-protobuf receiver on 127.0.0.1 that stores and decodes what it gets.

    Use it as a context manager; entering starts both servers on ephemeral ports, leaving closes them::

        with OtlpReceiver() as rx:
            ...  # export to rx.grpc_endpoint or rx.http_endpoint + "/v1/traces"
            rx.wait_for_spans(1)

    Every stored value survives `stop`/`start`. All methods are thread-safe; accessors return snapshots.
    HTTP accepts only ``Content-Type: application/x-protobuf`` (OTLP JSON is answered with 415) and
    undoes ``Content-Encoding`` ``gzip`` and ``deflate``; gRPC compression is handled by grpcio.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._raw: list[bytes] = []
        self._headers: list[dict[str, str]] = []
        self._trace_requests: list[ExportTraceServiceRequest] = []
        self._metric_requests: list[ExportMetricsServiceRequest] = []
        self._rejected = 0
        self._generation = 0
        self._mode: Mode = "ok"
        # Set whenever nothing may hang: hung handlers wait on it.
        self._hang_released = threading.Event()
        self._hang_released.set()

        # Serialises start/stop/close; never held while the data lock is wanted by a handler.
        self._lifecycle = threading.Lock()
        self._closed = False
        self._grpc_port: int | None = None
        self._http_port: int | None = None
        self._grpc_server: grpc.Server | None = None
        self._grpc_executor: ThreadPoolExecutor | None = None
        self._http_server: _OtlpHttpServer | None = None
        self._http_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> OtlpReceiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Open both listening sockets and serve; a no-op when already running.

        The first start picks ephemeral ports; later starts (after `stop`) bind the same ports again, so
        endpoints handed to exporters stay valid.

        Raises:
            RuntimeError: The receiver was closed, or grpcio could not bind its port.
            OSError: The HTTP port could not be bound (for example, taken by another process meanwhile).
        """
        with self._lifecycle:
            if self._closed:
                raise RuntimeError("OtlpReceiver is closed; create a new one")
            if self._grpc_server is not None:
                return
            with self._lock:
                if self._mode == "hang":
                    self._hang_released.clear()
            self._start_grpc()
            try:
                self._start_http()
            except BaseException:
                self._stop_servers()
                raise

    def stop(self) -> None:
        """Close both listening sockets, as a collector that goes down would; a no-op when stopped.

        In-flight gRPC calls are cancelled, hung handlers are released, and every server thread has ended
        when this returns. Stored data is kept; `start` re-opens the same ports.
        """
        with self._lifecycle:
            self._stop_servers()

    def close(self) -> None:
        """Stop for good (see `stop`); `start` afterwards raises ``RuntimeError``. Idempotent."""
        with self._lifecycle:
            self._closed = True
            self._stop_servers()

    def _start_grpc(self) -> None:
        executor = ThreadPoolExecutor(max_workers=_GRPC_MAX_WORKERS, thread_name_prefix="otlp-receiver-grpc")
        # SO_REUSEPORT (grpcio's default) would let a second server share our port after a restart.
        server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
        # The generated registration helpers carry no annotations.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceServicer(self._receive), server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _MetricsServicer(self._receive), server
        )
        try:
            port: int = server.add_insecure_port(f"127.0.0.1:{self._grpc_port or 0}")
        except RuntimeError:
            executor.shutdown(wait=True)
            raise
        if port == 0:  # older grpcio reports a failed bind this way instead of raising
            executor.shutdown(wait=True)
            raise RuntimeError(f"grpcio could not bind 127.0.0.1:{self._grpc_port or 0}")
        server.start()
        self._grpc_port, self._grpc_server, self._grpc_executor = port, server, executor

    def _start_http(self) -> None:
        server = _OtlpHttpServer(("127.0.0.1", self._http_port or 0), self._receive)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _HTTP_POLL_INTERVAL_S},
            name="otlp-receiver-http",
            daemon=True,
        )
        thread.start()
        self._http_port, self._http_server, self._http_thread = server.server_address[1], server, thread

    def _stop_servers(self) -> None:
        # Release hung handlers first: they hold worker threads that the shutdowns below wait for.
        self._hang_released.set()
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=0).wait()
            self._grpc_server = None
        if self._grpc_executor is not None:
            self._grpc_executor.shutdown(wait=True)
            self._grpc_executor = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()  # joins the handler threads (daemon_threads is off)
            self._http_server = None
        if self._http_thread is not None:
            self._http_thread.join()
            self._http_thread = None

    # -- endpoints ---------------------------------------------------------------------------------

    @property
    def grpc_endpoint(self) -> str:
        """OTLP/gRPC endpoint, ``"http://127.0.0.1:PORT"`` (pass ``insecure=True`` to the exporter).

        Raises:
            RuntimeError: The receiver has never been started.
        """
        return _endpoint(self._grpc_port)

    @property
    def http_endpoint(self) -> str:
        """OTLP/HTTP base URL ``"http://127.0.0.1:PORT"``; traces go to ``+ "/v1/traces"``, metrics to
        ``+ "/v1/metrics"``.

        Raises:
            RuntimeError: The receiver has never been started.
        """
        return _endpoint(self._http_port)

    # -- fault modes -------------------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        """Choose how later export requests (both transports, both signals) are answered.

        Args:
            mode: ``"ok"`` stores the request and answers success. ``"unavailable"`` answers gRPC
                ``UNAVAILABLE`` / HTTP 503, the OTLP "retry later" codes. ``"hang"`` blocks the handler
                without answering until the mode changes, the receiver stops, or 60 s pass, then answers
                as ``"unavailable"``; the client should time out first. Requests refused by either fault
                mode are kept in `raw_bytes` and `headers`, counted in `rejected_requests`, and never
                decoded into `trace_requests` / `metric_requests`, even once released.

        Raises:
            ValueError: ``mode`` is not one of the three names.
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
        with self._lock:
            self._mode = mode
            if mode == "hang":
                self._hang_released.clear()
            else:
                self._hang_released.set()

    # -- stored data -------------------------------------------------------------------------------

    @property
    def raw_bytes(self) -> list[bytes]:
        """Body of every export request received, accepted or not, in arrival order.

        HTTP bodies are stored after their ``Content-Encoding`` is undone, so a secret can be searched for
        as plain bytes; a body that fails to decompress is stored as received. grpcio hands the servicer a
        parsed message, so a gRPC body is that message serialised again: the same fields and values
        (unknown fields included), not necessarily the identical byte sequence.
        """
        with self._lock:
            return list(self._raw)

    @property
    def headers(self) -> list[dict[str, str]]:
        """Headers (HTTP) or invocation metadata (gRPC) of every request, lowercase keys, aligned with
        `raw_bytes`. Binary gRPC metadata (``*-bin`` keys) is decoded as Latin-1, one char per byte."""
        with self._lock:
            return [dict(h) for h in self._headers]

    @property
    def trace_requests(self) -> list[ExportTraceServiceRequest]:
        """Accepted trace export requests, decoded, in arrival order. Treat them as read-only."""
        with self._lock:
            return list(self._trace_requests)

    @property
    def metric_requests(self) -> list[ExportMetricsServiceRequest]:
        """Accepted metric export requests, decoded, in arrival order. Treat them as read-only."""
        with self._lock:
            return list(self._metric_requests)

    @property
    def rejected_requests(self) -> int:
        """Number of requests not accepted: refused by a fault mode, or undecodable (HTTP 400/415)."""
        with self._lock:
            return self._rejected

    def clear(self) -> None:
        """Forget everything received and reset `rejected_requests` to 0; mode and ports are unchanged."""
        with self._changed:
            self._raw.clear()
            self._headers.clear()
            self._trace_requests.clear()
            self._metric_requests.clear()
            self._rejected = 0
            self._generation += 1
            self._changed.notify_all()

    def spans(self) -> list[ReceivedSpan]:
        """All spans of the accepted trace requests, in arrival order (within a request, as sent)."""
        with self._lock:
            requests = list(self._trace_requests)
        return _decode_spans(requests)

    def metrics(self) -> dict[str, list[ReceivedDataPoint]]:
        """Data points of the accepted metric requests by metric name, in arrival order.

        A cumulative metric exported twice yields two points for the same series; take the last one.
        """
        points: dict[str, list[ReceivedDataPoint]] = {}
        with self._lock:
            requests = list(self._metric_requests)
        for request in requests:
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        points.setdefault(metric.name, []).extend(_data_points(metric))
        return points

    def wait_for_spans(
        self,
        predicate_or_count: int | Callable[[list[ReceivedSpan]], bool],
        timeout: float = 10.0,
    ) -> list[ReceivedSpan]:
        """Wait until enough spans have arrived and return all spans received so far (see `spans`).

        Args:
            predicate_or_count: Either a minimum number of spans, or a callable that gets the list of all
                spans received so far and returns ``True`` when it is satisfied, e.g.
                ``lambda spans: any(s.name == "tools/call add" for s in spans)``. The callable runs on the
                calling thread, once now and once after each newly accepted trace request.
            timeout: Seconds to wait at most; default 10.

        Raises:
            AssertionError: Not satisfied within ``timeout``; the message lists the span names received.
        """

        def satisfied(spans: list[ReceivedSpan]) -> bool:
            if isinstance(predicate_or_count, int):
                return len(spans) >= predicate_or_count
            return predicate_or_count(spans)

        description = (
            f"{predicate_or_count} span(s)"
            if isinstance(predicate_or_count, int)
            else f"spans satisfying {getattr(predicate_or_count, '__name__', predicate_or_count)!r}"
        )

        deadline = time.monotonic() + timeout
        seen = -1
        while True:
            with self._changed:
                while self._generation == seen and (remaining := deadline - time.monotonic()) > 0:
                    self._changed.wait(remaining)
                seen = self._generation
                requests = list(self._trace_requests)
                rejected = self._rejected
            spans = _decode_spans(requests)
            if satisfied(spans):
                return spans
            if time.monotonic() >= deadline:
                names = [span.name for span in spans]
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {description}; received {len(spans)} span(s): "
                    f"{names}; rejected requests: {rejected}"
                )

    # -- request handling (called from server threads) ---------------------------------------------

    def _receive(self, signal: _Signal, body: bytes, headers: dict[str, str], readable: bool) -> _Outcome:
        """Record one export request and decide its outcome; blocks while the mode is ``"hang"``.

        ``readable`` is False when the transport already knows the body is not OTLP protobuf.
        """
        with self._changed:
            self._raw.append(body)
            self._headers.append(headers)
            outcome: _Outcome = self._mode
            if outcome == "ok":
                outcome = self._store(signal, body) if readable else "malformed"
            if outcome != "ok":
                self._rejected += 1
        if outcome == "hang":
            self._hang_released.wait(_MAX_HANG_S)
        return outcome

    def _store(self, signal: _Signal, body: bytes) -> _Outcome:
        # Caller holds self._changed.
        try:
            if signal == "traces":
                self._trace_requests.append(ExportTraceServiceRequest.FromString(body))
                self._generation += 1
                self._changed.notify_all()
            else:
                self._metric_requests.append(ExportMetricsServiceRequest.FromString(body))
        except DecodeError:
            return "malformed"
        return "ok"


# -- gRPC transport ------------------------------------------------------------------------------------


def _grpc_export(receive: _Receive, signal: _Signal, request: Any, context: grpc.ServicerContext) -> None:
    """Shared body of both servicers' ``Export``: record, then abort unless accepted."""
    metadata = {
        key.lower(): value if isinstance(value, str) else value.decode("latin-1")
        for key, value in context.invocation_metadata()
    }
    outcome = receive(signal, request.SerializeToString(), metadata, True)
    if outcome in ("unavailable", "hang"):
        context.abort(grpc.StatusCode.UNAVAILABLE, f"OtlpReceiver fault mode: {outcome}")
    elif outcome == "malformed":
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "OtlpReceiver could not decode the request")


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receive: _Receive) -> None:
        self._receive = receive

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        _grpc_export(self._receive, "traces", request, context)
        return ExportTraceServiceResponse()


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receive: _Receive) -> None:
        self._receive = receive

    def Export(
        self, request: ExportMetricsServiceRequest, context: grpc.ServicerContext
    ) -> ExportMetricsServiceResponse:
        _grpc_export(self._receive, "metrics", request, context)
        return ExportMetricsServiceResponse()


# -- HTTP transport ------------------------------------------------------------------------------------


class _OtlpHttpServer(ThreadingHTTPServer):
    # Non-daemon handler threads are joined by server_close(), so stop() leaves no thread behind.
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], receive: _Receive) -> None:
        super().__init__(address, _OtlpHttpHandler)
        self.receive = receive


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    server: _OtlpHttpServer
    timeout = _HTTP_SOCKET_TIMEOUT_S

    def do_POST(self) -> None:
        signal = _HTTP_PATHS.get(self.path.split("?", 1)[0])
        if signal is None:
            self._reply(HTTPStatus.NOT_FOUND)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        is_protobuf = self.headers.get_content_type() == _PROTOBUF_CONTENT_TYPE
        try:
            body = _decompress(body, self.headers.get("Content-Encoding", ""))
            decompressed = True
        except (OSError, EOFError, zlib.error, ValueError):
            decompressed = False
        headers = {key.lower(): value for key, value in self.headers.items()}
        outcome = self.server.receive(signal, body, headers, is_protobuf and decompressed)
        if outcome == "ok":
            self._reply(HTTPStatus.OK, _EMPTY_RESPONSE_BYTES[signal])
        elif outcome == "malformed":
            self._reply(HTTPStatus.BAD_REQUEST if is_protobuf else HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        else:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE)

    def _reply(self, status: HTTPStatus, body: bytes = b"") -> None:
        # After a hang the client has usually hung up; writing to its socket then fails harmlessly.
        with contextlib.suppress(ConnectionError):
            self.send_response(status)
            self.send_header("Content-Type", _PROTOBUF_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep per-request access logs off stderr; the stored requests are the record."""


def _decompress(body: bytes, content_encoding: str) -> bytes:
    """Undo an HTTP ``Content-Encoding`` (``gzip``, ``deflate`` or none); ``ValueError`` for others."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")


# -- decoding ------------------------------------------------------------------------------------------


def _endpoint(port: int | None) -> str:
    if port is None:
        raise RuntimeError("OtlpReceiver has not been started; use it as a context manager or call start()")
    return f"http://127.0.0.1:{port}"


def _any_value(value: AnyValue) -> AttributeValue:
    field = value.WhichOneof("value")
    if field is None:
        return None
    if field == "array_value":
        return tuple(_any_value(item) for item in value.array_value.values)
    if field == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    scalar: AttributeValue = getattr(value, field)  # string_value, bool_value, int_value, ...
    return scalar


def _attributes(key_values: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    return {kv.key: _any_value(kv.value) for kv in key_values}


def _decode_spans(requests: Sequence[ExportTraceServiceRequest]) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for request in requests:
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                spans.extend(_span(span, resource, scope_spans.scope.name) for span in scope_spans.spans)
    return spans


def _span(span: Span, resource: dict[str, AttributeValue], scope_name: str) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        attributes=_attributes(span.attributes),
        events=tuple(
            ReceivedEvent(event.name, _attributes(event.attributes), event.time_unix_nano)
            for event in span.events
        ),
        links=tuple(
            ReceivedLink(link.trace_id.hex(), link.span_id.hex(), _attributes(link.attributes))
            for link in span.links
        ),
        status_code=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
        status_message=span.status.message,
        resource=dict(resource),
        scope_name=scope_name,
    )


def _data_points(metric: Metric) -> list[ReceivedDataPoint]:
    kind: MetricKind | None = metric.WhichOneof("data")
    if kind is None:
        return []
    is_number = kind in ("gauge", "sum")
    is_histogram = kind == "histogram"
    points: list[ReceivedDataPoint] = []
    for point in getattr(metric, kind).data_points:
        value_field = point.WhichOneof("value") if is_number else None
        # Histogram sums are proto3 `optional`; a summary's sum is a plain field that is always present.
        has_sum = kind == "summary" or (not is_number and point.HasField("sum"))
        points.append(
            ReceivedDataPoint(
                kind=kind,
                unit=metric.unit,
                attributes=_attributes(point.attributes),
                time_ns=point.time_unix_nano,
                value=getattr(point, value_field) if value_field else None,
                count=None if is_number else point.count,
                sum=point.sum if has_sum else None,
                bucket_counts=tuple(point.bucket_counts) if is_histogram else (),
                explicit_bounds=tuple(point.explicit_bounds) if is_histogram else (),
            )
        )
    return points
