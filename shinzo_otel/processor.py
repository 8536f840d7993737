"""`ShinzoSpanProcessor`: session stamping on start; privacy, batching and resilient export after end.

Composition, not a new queue (STYLE.md items 1 and 14): `on_start` stamps the current session's
attributes on the span; `on_end` counts it and hands it to the SDK's `BatchSpanProcessor`, whose
worker thread (bounded queue, restarted in a forked child, instrumentation suppressed while
exporting) applies the privacy rules to a copy of each span and hands it to one sender thread with
the same guarantees, which exports through a circuit breaker, keeping refused spans in a bounded
buffer (`shinzo_otel._pipeline`). Nothing on the request path waits for the network.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

from shinzo_otel import _semconv as sc
from shinzo_otel._pipeline import (
    DROP_QUEUE_FULL,
    DROP_SHUTDOWN,
    ExportStats,
    RetryingExporter,
    ScrubbingExporter,
)
from shinzo_otel._request_span import RequestSpan
from shinzo_otel.config import ProcessorSettings
from shinzo_otel.privacy import Scrubber
from shinzo_otel.sessions import CURRENT_SESSION

_logger = logging.getLogger(__name__)

_COMPONENT_TYPE: Final = "shinzo_span_processor"
_OPERATION_ATTRIBUTES: Final = frozenset(sc.OPERATION_DURATION_ATTRIBUTES)


class ShinzoSpanProcessor(SpanProcessor):
    """Stamps `session.id` on every span; redacts, batches and exports without ever blocking.

    Args:
        exporter: where batches go (an OTLP exporter, or the embedded store's), or a zero-argument
            factory of one. With a factory, a forked child (gunicorn `--preload`, multiprocessing)
            builds its own exporter: a gRPC channel, an HTTP connection pool or a SQLite connection
            must not be shared with the parent. With an instance, the child uses the parent's.
        settings: a `ProcessorSettings` (a `ShinzoConfig` is one), or a dict of its keys
            (`enable_argument_collection`, `privacy`, `schedule_delay_millis`,
            `max_export_batch_size`, `max_queue_size`, `export_timeout_millis`,
            `retry_buffer_max_spans`, `retry_buffer_max_bytes`, `circuit_breaker_failures`,
            `circuit_breaker_open_millis`); every key defaults to its environment variable, then to
            the built-in default (see `ProcessorSettings`).
        meter_provider: where `mcp.server.operation.duration` (recorded on the export thread from our
            SERVER spans) and the processor's own metrics go; default the global MeterProvider.
        destination: how logs name where spans go (an endpoint URL, a file); default the exporter's
            class name.

    Raises:
        ValueError: a bad setting (the message names the key).

    `on_start` and `on_end` never raise, never block, and do no export work. Every span that is not
    exported is counted by reason (`dropped_spans`; `otel.sdk.processor.span.processed` with
    `error.type`). `shutdown()` returns within `export_timeout_millis`, even when the endpoint is dead
    or hangs, and logs one line: the destination, spans exported, spans dropped by reason.
    """

    def __init__(
        self,
        exporter: SpanExporter | Callable[[], SpanExporter],
        settings: ProcessorSettings | Mapping[str, Any] | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        destination: str | None = None,
    ) -> None:
        resolved = ProcessorSettings.coerce(settings if settings is not None else {})
        self._max_queue_size = resolved.max_queue_size
        self._shutdown_timeout = resolved.export_timeout_millis / 1000
        name = type(exporter).__name__ if isinstance(exporter, SpanExporter) else "exporter"
        self._stats = ExportStats(destination or name)
        self._retrying = RetryingExporter(
            exporter,
            self._stats,
            max_export_batch_size=resolved.max_export_batch_size,
            export_timeout_millis=resolved.export_timeout_millis,
            retry_buffer_max_spans=resolved.retry_buffer_max_spans,
            retry_buffer_max_bytes=resolved.retry_buffer_max_bytes,
            circuit_breaker_failures=resolved.circuit_breaker_failures,
            circuit_breaker_open_millis=resolved.circuit_breaker_open_millis,
        )
        scrubber = Scrubber(resolved.privacy, capture_content=resolved.enable_argument_collection)
        self._batch = BatchSpanProcessor(
            ScrubbingExporter(self._retrying, scrubber, self._stats, self._received),
            max_queue_size=resolved.max_queue_size,
            schedule_delay_millis=resolved.schedule_delay_millis,
            max_export_batch_size=resolved.max_export_batch_size,
            export_timeout_millis=resolved.export_timeout_millis,
        )
        # Straight into the batch worker's queue (`BatchSpanProcessor.on_end` would check the span is
        # sampled a second time); a private read of the SDK, `on_end` being the fallback.
        emit = getattr(getattr(self._batch, "_batch_processor", None), "emit", None)
        self._enqueue: Callable[[ReadableSpan], None] = emit if callable(emit) else self._batch.on_end
        self._lock = threading.Lock()
        self._waiting = 0  # ended and handed to the batch worker, not yet taken by our exporter
        self._closed = False
        self._register_metrics(meter_provider or metrics.get_meter_provider())
        if hasattr(os, "register_at_fork"):
            after_fork = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())

    # --- SpanProcessor --------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        session = CURRENT_SESSION.get()
        # Our own SERVER spans start with the stamp among their attributes (a sampler sees it).
        if session is not None and (span.attributes or {}).get(sc.SESSION_ID) != session.session_id:
            span.set_attributes(session.stamp)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        with self._lock:
            if self._closed:
                reason: str | None = DROP_SHUTDOWN
            elif self._waiting >= self._max_queue_size:
                reason = DROP_QUEUE_FULL
            else:
                reason = None
                self._waiting += 1
        if reason is None:
            self._enqueue(span)
        else:
            self._stats.add_dropped(reason, 1)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything waiting, the spans kept for retry included; blocks the caller.

        Returns:
            True when nothing is left waiting; False after shutdown, while the circuit breaker is
            open, or when the endpoint refused spans.
        """
        if self._closed:
            return False
        started = time.monotonic()
        flushed = bool(self._batch.force_flush(timeout_millis))
        remaining = max(0, timeout_millis - int((time.monotonic() - started) * 1000))
        return self._retrying.flush(remaining) and flushed and self._waiting == 0

    def shutdown(self) -> None:
        """Export what is waiting (one attempt, unless the endpoint is known to be down), then stop.

        Returns within `export_timeout_millis` even when the endpoint is dead or hangs. Spans still
        waiting then, and spans ended afterwards, are counted as dropped (`shutdown`). Logs one line:
        the destination, spans exported and spans dropped by reason. Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._retrying.start_closing()
        # The batch worker's last export is bounded by the exporter's timeout, and an export already
        # running may add its own; waiting on a helper thread keeps shutdown within one timeout.
        stopping = threading.Thread(target=self._batch.shutdown, name="ShinzoShutdown", daemon=True)
        stopping.start()
        stopping.join(self._shutdown_timeout)
        self._retrying.finish()
        with self._lock:
            waiting, self._waiting = self._waiting, 0
        self._stats.add_dropped(DROP_SHUTDOWN, waiting)
        dropped = sum(self._stats.dropped().values())
        _logger.log(
            logging.WARNING if dropped else logging.INFO,
            "shinzo_otel export to %s shut down: %s",
            self._stats.destination,
            self._stats.summary(),
        )

    # --- what users and tests read ---------------------------------------------------------------

    @property
    def dropped_spans(self) -> Mapping[str, int]:
        """Spans never exported, by reason: `queue_full`, `buffer_full`, `redaction_failure`,
        `export_timeout`, `shutdown` (see `shinzo_otel._pipeline.DROP_REASONS`)."""
        return self._stats.dropped()

    @property
    def exported_spans(self) -> int:
        """Spans the exporter accepted."""
        return self._stats.exported

    @property
    def queue_size(self) -> int:
        """Spans ended but not yet taken by the export thread."""
        return self._waiting

    @property
    def pending_retries(self) -> int:
        """Spans scrubbed and waiting for the sender: those the endpoint refused, kept to be sent
        again, and those not tried yet (bounded by `retry_buffer_max_spans`)."""
        return self._retrying.pending

    @property
    def circuit_open(self) -> bool:
        """True while the circuit breaker refuses exports."""
        return self._retrying.circuit_open

    # --- internals --------------------------------------------------------------------------------

    def _received(self, spans: Sequence[ReadableSpan]) -> None:
        """On the export thread, before privacy: queue accounting, the span limits of our SERVER
        spans (`RequestSpan.seal`) and the operation metric."""
        with self._lock:
            self._waiting = max(0, self._waiting - len(spans))
        for span in spans:
            if type(span) is RequestSpan:
                span.seal()
            scope = span.instrumentation_scope
            if span.kind is SpanKind.SERVER and scope is not None and scope.name == sc.INSTRUMENTATION_NAME:
                self._record_operation(span)

    def _record_operation(self, span: ReadableSpan) -> None:
        """`mcp.server.operation.duration` from one of our SERVER spans."""
        attributes = span.attributes or {}
        start, end = span.start_time, span.end_time
        if start is None or end is None or sc.MCP_METHOD_NAME not in attributes:
            return
        selected = {key: value for key, value in attributes.items() if key in _OPERATION_ATTRIBUTES}
        self._operation_duration.record((end - start) / 1e9, selected)

    def _after_fork(self) -> None:
        """In a forked child: its own accounting and retry state (the SDK restarts the worker)."""
        self._lock = threading.Lock()
        self._waiting = 0
        self._stats.reset()
        self._retrying.after_fork()

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
            yield Observation(self._stats.exported, component)
            for reason, count in self._stats.dropped().items():
                yield Observation(count, {**component, sc.ERROR_TYPE: reason})

        meter.create_observable_counter(
            sc.OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
            [processed],
            unit="{span}",
            description="Spans exported (no error.type) or dropped (error.type = the reason).",
        )
        meter.create_observable_up_down_counter(
            sc.OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE,
            [lambda _: [Observation(self._waiting, component)]],
            unit="{span}",
            description="Spans ended and waiting for the export thread.",
        )
        meter.create_observable_up_down_counter(
            sc.OTEL_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY,
            [lambda _: [Observation(self._max_queue_size, component)]],
            unit="{span}",
            description="Spans that may wait for the export thread before new ones are dropped.",
        )
