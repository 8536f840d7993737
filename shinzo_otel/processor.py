"""`ShinzoSpanProcessor`: session stamping on start; privacy, batching and resilient export after end.

Composition, not a new queue (STYLE.md item 1): the SDK's `BatchSpanProcessor` does the batching
(worker thread, bounded deque, fork safety, instrumentation suppressed while exporting). We wrap it:
`on_start` stamps the current session's attributes on every span; `on_end` only counts and appends;
the exporter handed to the batcher is an `ExportPipeline` that, on the export thread, drops content
when argument collection is off, applies the privacy rules to a copy (STYLE.md item 2), and exports
with a bounded retry buffer and a circuit breaker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_EXPORT_TIMEOUT,
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from shinzo_otel import _semconv as sc
from shinzo_otel._pipeline import (
    DROP_QUEUE_FULL,
    DROP_REASONS,
    DROP_SHUTDOWN,
    ExportPipeline,
    PipelineSettings,
)
from shinzo_otel.privacy import PrivacyRules, Scrubber, attribute_dict
from shinzo_otel.sessions import current_session

_logger = logging.getLogger(__name__)

SHINZO_RETRY_BUFFER_MAX_SPANS = "SHINZO_RETRY_BUFFER_MAX_SPANS"
"""Spans kept for retry after failed exports (default 8192)."""
SHINZO_RETRY_BUFFER_MAX_BYTES = "SHINZO_RETRY_BUFFER_MAX_BYTES"
"""Approximate bytes kept for retry after failed exports (default 33554432, 32 MiB)."""
SHINZO_CIRCUIT_BREAKER_FAILURES = "SHINZO_CIRCUIT_BREAKER_FAILURES"
"""Consecutive failed exports that open the circuit breaker (default 3, seed 002)."""
SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS = "SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS"
"""How long an open circuit refuses exports before one probe (default 60000, seed 002)."""

_DEFAULTS = {
    OTEL_BSP_SCHEDULE_DELAY: 5000,
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 512,
    OTEL_BSP_MAX_QUEUE_SIZE: 2048,
    OTEL_BSP_EXPORT_TIMEOUT: 10000,
    SHINZO_RETRY_BUFFER_MAX_SPANS: 8192,
    SHINZO_RETRY_BUFFER_MAX_BYTES: 32 * 1024 * 1024,
    SHINZO_CIRCUIT_BREAKER_FAILURES: 3,
    SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS: 60000,
}
_DROP_LOG_INTERVAL_SECONDS = 10.0
_COMPONENT_TYPE = "shinzo_span_processor"


def resolve_setting(explicit: int | None, variable: str) -> int:
    """Explicit value > environment variable > default (STYLE.md item 7).

    Raises:
        ValueError: an explicit value that is not a positive integer (naming `variable`'s setting).
    """
    if explicit is not None:
        if isinstance(explicit, bool) or not isinstance(explicit, int) or explicit <= 0:
            raise ValueError(f"{variable.lower()} must be a positive integer, not {explicit!r}")
        return explicit
    raw = os.environ.get(variable, "").strip()
    if raw:
        try:
            value = int(raw)
            if value > 0:
                return value
        except ValueError:
            pass
        _logger.warning(
            "Ignoring %s=%r (not a positive integer); using %d", variable, raw, _DEFAULTS[variable]
        )
    return _DEFAULTS[variable]


class ShinzoSpanProcessor(SpanProcessor):
    """Stamps `session.id` on every span; redacts, batches and exports without ever blocking.

    Args:
        exporter: where batches go (an OTLP exporter, or the embedded store's exporter).
        capture_content: argument collection (config `enable_argument_collection`); when False,
            content attributes are removed from every span, whoever set them. Default False.
        privacy: redaction rules; default `PrivacyRules.from_env()` (the default patterns plus
            `SHINZO_REDACT_*` variables).
        schedule_delay_millis: export at least this often; default `OTEL_BSP_SCHEDULE_DELAY`, else 5000
            (seed 000: every 5 s).
        max_export_batch_size: spans per export; default `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, else 512.
        max_queue_size: spans waiting for export; more are dropped (`queue_full`); default
            `OTEL_BSP_MAX_QUEUE_SIZE`, else 2048.
        export_timeout_millis: informational bound of one export (the OTLP exporters take their own
            timeout); default `OTEL_BSP_EXPORT_TIMEOUT`, else 10000.
        retry_buffer_max_spans / retry_buffer_max_bytes: bound of the retry buffer of failed exports;
            beyond it the oldest spans are dropped (`buffer_full`). Defaults: `SHINZO_RETRY_BUFFER_*`,
            else 8192 spans and 32 MiB.
        circuit_breaker_failures / circuit_breaker_open_millis: consecutive failures that open the
            breaker and how long it stays open before a probe. Defaults: `SHINZO_CIRCUIT_BREAKER_*`,
            else 3 and 60000 (seed 002).
        meter_provider: where `mcp.server.operation.duration` (recorded from our SERVER spans on the
            export thread, so sampled and queued spans only) and the processor's own metrics go;
            default the global MeterProvider.

    Raises:
        ValueError: a bad explicit setting (the message names it).

    `on_start` and `on_end` never raise and never block; every span not exported is counted by reason
    (`dropped_spans`) and logged at most every 10 s.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        capture_content: bool = False,
        privacy: PrivacyRules | None = None,
        schedule_delay_millis: int | None = None,
        max_export_batch_size: int | None = None,
        max_queue_size: int | None = None,
        export_timeout_millis: int | None = None,
        retry_buffer_max_spans: int | None = None,
        retry_buffer_max_bytes: int | None = None,
        circuit_breaker_failures: int | None = None,
        circuit_breaker_open_millis: int | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._max_queue_size = resolve_setting(max_queue_size, OTEL_BSP_MAX_QUEUE_SIZE)
        batch_size = resolve_setting(max_export_batch_size, OTEL_BSP_MAX_EXPORT_BATCH_SIZE)
        if batch_size > self._max_queue_size:
            if max_export_batch_size is not None:
                raise ValueError("max_export_batch_size must be <= max_queue_size")
            batch_size = self._max_queue_size  # a default never conflicts with an explicit queue size
        schedule_delay = resolve_setting(schedule_delay_millis, OTEL_BSP_SCHEDULE_DELAY)
        settings = PipelineSettings(
            max_export_batch_size=batch_size,
            retry_buffer_max_spans=resolve_setting(retry_buffer_max_spans, SHINZO_RETRY_BUFFER_MAX_SPANS),
            retry_buffer_max_bytes=resolve_setting(retry_buffer_max_bytes, SHINZO_RETRY_BUFFER_MAX_BYTES),
            circuit_breaker_failures=resolve_setting(
                circuit_breaker_failures, SHINZO_CIRCUIT_BREAKER_FAILURES
            ),
            circuit_breaker_open_seconds=resolve_setting(
                circuit_breaker_open_millis, SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS
            )
            / 1000,
        )
        self._lock = threading.Lock()
        self._in_flight = 0
        self._exported = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._last_drop_log = 0.0
        self._pipeline = ExportPipeline(
            exporter,
            Scrubber(
                privacy if privacy is not None else PrivacyRules.from_env(), capture_content=capture_content
            ),
            settings,
            on_received=self._received,
            on_dropped=self._count_dropped,
            on_exported=self._count_exported,
        )
        self._batch = BatchSpanProcessor(
            self._pipeline,
            max_queue_size=self._max_queue_size,
            schedule_delay_millis=schedule_delay,
            max_export_batch_size=batch_size,
            export_timeout_millis=resolve_setting(export_timeout_millis, OTEL_BSP_EXPORT_TIMEOUT),
        )
        self._register_metrics(meter_provider or metrics.get_meter_provider())
        self._flush_wanted = threading.Event()
        self._closed = False
        self._flusher = threading.Thread(target=self._flush_loop, name="ShinzoFlush", daemon=True)
        self._flusher.start()

    # --- SpanProcessor --------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        session = current_session()
        if session is not None:
            span.set_attributes(session.stamp)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        with self._lock:
            reason = DROP_SHUTDOWN if self._closed else None
            if reason is None and self._in_flight >= self._max_queue_size:
                reason = DROP_QUEUE_FULL
            if reason is None:
                self._in_flight += 1
            else:
                self._dropped[reason] += 1
        if reason is None:
            self._batch.on_end(span)
        else:
            self._log_drops()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued and retry the retry buffer; blocks the caller.

        Returns:
            True when nothing is left waiting; False after shutdown or when the endpoint still fails.
        """
        if self._closed:
            return False
        flushed = bool(self._batch.force_flush(timeout_millis))
        return self._pipeline.flush(timeout_millis / 1000) and flushed

    def shutdown(self) -> None:
        """Export what is queued (one last attempt for the retry buffer), then stop.

        Spans still unexported are counted as dropped (`shutdown`); later spans are dropped too.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._flush_wanted.set()
        self._flusher.join(timeout=1)
        self._batch.shutdown()  # type: ignore[no-untyped-call]
        self._log_drops(force=True)

    # --- what users and tests read ---------------------------------------------------------------

    def request_flush(self) -> None:
        """Ask for an export soon, without waiting for it (session start and end)."""
        self._flush_wanted.set()

    @property
    def dropped_spans(self) -> Mapping[str, int]:
        """Spans never exported, by reason: `queue_full`, `buffer_full`, `redaction_failure`, `shutdown`."""
        with self._lock:
            return dict(self._dropped)

    @property
    def exported_spans(self) -> int:
        """Spans the exporter accepted."""
        return self._exported

    @property
    def queue_size(self) -> int:
        """Spans ended but not yet handed to the exporter."""
        return self._in_flight

    @property
    def pending_retries(self) -> int:
        """Spans scrubbed and waiting to be sent (the send buffer while the endpoint is down)."""
        return self._pipeline.pending

    @property
    def circuit_open(self) -> bool:
        """True while the circuit breaker refuses exports."""
        return self._pipeline.circuit_open

    # --- internals --------------------------------------------------------------------------------

    def _received(self, spans: Sequence[ReadableSpan]) -> None:
        with self._lock:
            self._in_flight -= len(spans)
        for span in spans:
            scope = span.instrumentation_scope
            if span.kind is SpanKind.SERVER and scope is not None and scope.name == sc.INSTRUMENTATION_NAME:
                self._record_operation(span)

    def _record_operation(self, span: ReadableSpan) -> None:
        """`mcp.server.operation.duration` from one of our SERVER spans (off the request path)."""
        attributes = attribute_dict(span.attributes)
        if span.start_time is None or span.end_time is None or sc.MCP_METHOD_NAME not in attributes:
            return
        selected: dict[str, AttributeValue] = {
            key: attributes[key] for key in sc.OPERATION_DURATION_ATTRIBUTES if key in attributes
        }
        self._operation_duration.record((span.end_time - span.start_time) / 1e9, selected)

    def _count_dropped(self, reason: str, count: int) -> None:
        with self._lock:
            self._dropped[reason] += count
        self._log_drops()

    def _count_exported(self, count: int) -> None:
        with self._lock:
            self._exported += count

    def _log_drops(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_drop_log < _DROP_LOG_INTERVAL_SECONDS:
            return
        self._last_drop_log = now
        dropped = {reason: count for reason, count in self.dropped_spans.items() if count}
        if dropped:
            _logger.warning("shinzo_otel has dropped spans so far: %s", dropped)

    def _flush_loop(self) -> None:
        while True:
            self._flush_wanted.wait()
            if self._closed:
                return
            self._flush_wanted.clear()
            try:
                self._batch.force_flush()  # hands the queue to the pipeline's sender; no network wait
            except Exception:
                _logger.debug("requested flush failed", exc_info=True)

    def _register_metrics(self, meter_provider: MeterProvider) -> None:
        """The processor's own counters, under the OTel SDK self-observability names."""
        meter = meter_provider.get_meter(sc.INSTRUMENTATION_NAME)
        self._operation_duration = meter.create_histogram(
            sc.MCP_SERVER_OPERATION_DURATION,
            unit="s",
            description="Duration of one MCP request or notification as seen by the server.",
            explicit_bucket_boundaries_advisory=sc.OPERATION_DURATION_BUCKETS,
        )
        component = {
            sc.OTEL_COMPONENT_TYPE: _COMPONENT_TYPE,
            sc.OTEL_COMPONENT_NAME: f"{_COMPONENT_TYPE}/{id(self)}",
        }

        def processed(_: CallbackOptions) -> Iterable[Observation]:
            yield Observation(self._exported, component)
            for reason, count in self.dropped_spans.items():
                yield Observation(count, {**component, sc.ERROR_TYPE: reason})

        meter.create_observable_counter(
            sc.OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
            [processed],
            unit="{span}",
            description="Spans exported (no error.type) or dropped (error.type = the reason).",
        )
        meter.create_observable_up_down_counter(
            sc.OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE,
            [lambda _: [Observation(self._in_flight, component)]],
            unit="{span}",
            description="Spans waiting for export.",
        )
        meter.create_observable_up_down_counter(
            sc.OTEL_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY,
            [lambda _: [Observation(self._max_queue_size, component)]],
            unit="{span}",
            description="Spans the queue can hold.",
        )
