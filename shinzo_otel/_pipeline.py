"""The export thread's half of `ShinzoSpanProcessor`: privacy, retry buffer, circuit breaker.

Everything here runs on the batch worker thread (or the processor's flush thread), never on the
request path. Order per batch: scrub with the privacy rules, which also drop content when argument
collection is off (fail closed: a span whose redaction raises is dropped and counted, never exported
raw), then send in chunks; a chunk that fails goes to a bounded retry buffer and is sent again before newer
spans. A circuit breaker stops calling a dead endpoint (seed 002: 3 failures, open 60 s) and then
lets one probe through.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shinzo_otel.privacy import Scrubber

_logger = logging.getLogger(__name__)

DROP_QUEUE_FULL = "queue_full"
DROP_BUFFER_FULL = "buffer_full"
DROP_REDACTION_FAILURE = "redaction_failure"
DROP_SHUTDOWN = "shutdown"
DROP_REASONS = (DROP_QUEUE_FULL, DROP_BUFFER_FULL, DROP_REDACTION_FAILURE, DROP_SHUTDOWN)
"""Why a span was not exported (`error.type` of `otel.sdk.processor.span.processed`)."""


class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failures -> one probe after `open_seconds`.

    Args:
        failure_threshold: consecutive failures that open the circuit (seed 002: 3).
        open_seconds: how long the circuit stays open before a probe (seed 002: 60).
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self, failure_threshold: int, open_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None

    @property
    def is_open(self) -> bool:
        """True while calls are refused (before the probe time)."""
        return self._open_until is not None and self._clock() < self._open_until

    def allow(self) -> bool:
        """Whether a call may be made now (closed, or open past its time: the probe)."""
        return not self.is_open

    def record(self, success: bool) -> None:
        """Record the outcome of an allowed call."""
        if success:
            if self._open_until is not None:
                _logger.info("OTLP endpoint reachable again; circuit closed")
            self._failures = 0
            self._open_until = None
            return
        self._failures += 1
        if self._failures >= self._threshold:
            if self._open_until is None:
                _logger.warning(
                    "%d consecutive export failures; not exporting for %.0f s",
                    self._failures,
                    self._open_seconds,
                )
            self._open_until = self._clock() + self._open_seconds


def _approximate_size(span: ReadableSpan) -> int:
    """Rough bytes a span holds, for the retry buffer's byte bound (not the wire size)."""
    size = 200 + len(span.name)
    for key, value in (span.attributes or {}).items():
        size += len(key) + (len(value) if isinstance(value, str) else 16)
    for event in span.events:
        size += 64 + len(event.name)
        for key, value in (event.attributes or {}).items():
            size += len(key) + (len(value) if isinstance(value, str) else 16)
    return size


class _RetryBuffer:
    """Spans whose export failed, oldest first, bounded in count and approximate bytes."""

    def __init__(self, max_spans: int, max_bytes: int) -> None:
        self._max_spans = max_spans
        self._max_bytes = max_bytes
        self._spans: collections.deque[tuple[ReadableSpan, int]] = collections.deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._spans)

    def put_back(self, spans: Sequence[ReadableSpan]) -> int:
        """Keep `spans` for a later attempt; returns how many of the oldest had to be evicted."""
        for span in spans:
            size = _approximate_size(span)
            self._spans.append((span, size))
            self._bytes += size
        evicted = 0
        while self._spans and (len(self._spans) > self._max_spans or self._bytes > self._max_bytes):
            _, size = self._spans.popleft()
            self._bytes -= size
            evicted += 1
        return evicted

    def take_all(self) -> list[ReadableSpan]:
        spans = [span for span, _ in self._spans]
        self._spans.clear()
        self._bytes = 0
        return spans


@dataclass
class PipelineSettings:
    """Resolved settings of the export pipeline (see `ShinzoConfig` for meanings and defaults)."""

    max_export_batch_size: int
    retry_buffer_max_spans: int
    retry_buffer_max_bytes: int
    circuit_breaker_failures: int
    circuit_breaker_open_seconds: float


class ExportPipeline(SpanExporter):
    """The exporter `BatchSpanProcessor` hands batches to: transforms, then exports with retries.

    Args:
        exporter: the real exporter (OTLP or the embedded store).
        scrubber: the privacy rules.
        settings: batching and resilience settings.
        on_received: called with the number of spans each batch brings (the processor's
            in-flight accounting).
        on_dropped: called with `(reason, count)` for spans that will never be exported.
        on_exported: called with the number of spans exported successfully.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        scrubber: Scrubber,
        settings: PipelineSettings,
        *,
        on_received: Callable[[int], None],
        on_dropped: Callable[[str, int], None],
        on_exported: Callable[[int], None],
    ) -> None:
        self._exporter = exporter
        self._scrubber = scrubber
        self._settings = settings
        self._on_received = on_received
        self._on_dropped = on_dropped
        self._on_exported = on_exported
        self._breaker = CircuitBreaker(
            settings.circuit_breaker_failures, settings.circuit_breaker_open_seconds
        )
        self._retry = _RetryBuffer(settings.retry_buffer_max_spans, settings.retry_buffer_max_bytes)
        self._lock = threading.Lock()

    @property
    def circuit_open(self) -> bool:
        """True while the circuit breaker refuses exports."""
        return self._breaker.is_open

    @property
    def pending_retries(self) -> int:
        """Spans waiting in the retry buffer."""
        return len(self._retry)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Transform `spans`, then send them after whatever the retry buffer holds."""
        self._on_received(len(spans))
        prepared = [span for span in map(self._prepare, spans) if span is not None]
        with self._lock:
            return self._send(prepared)

    def retry_pending(self) -> bool:
        """Send what the retry buffer holds, if the breaker allows; True when nothing is left."""
        with self._lock:
            if len(self._retry) and self._breaker.allow():
                self._send([])
            return not len(self._retry)

    def shutdown(self) -> None:
        """One last attempt for the retry buffer, then count what is left as dropped."""
        with self._lock:
            if len(self._retry) and self._breaker.allow():
                self._send([])
            left = self._retry.take_all()
        if left:
            self._on_dropped(DROP_SHUTDOWN, len(left))
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.retry_pending() and self._exporter.force_flush(timeout_millis)

    def _prepare(self, span: ReadableSpan) -> ReadableSpan | None:
        try:
            return self._scrubber.scrub_span(span)
        except Exception:
            # Fail closed (DESIGN.md "Privacy"): never export a span we could not redact.
            _logger.debug("redaction failed; span dropped", exc_info=True)
            self._on_dropped(DROP_REDACTION_FAILURE, 1)
            return None

    def _send(self, spans: list[ReadableSpan]) -> SpanExportResult:
        pending = self._retry.take_all() + spans
        size = self._settings.max_export_batch_size
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            if not self._breaker.allow() or not self._export_chunk(chunk):
                evicted = self._retry.put_back(pending[start:])
                if evicted:
                    self._on_dropped(DROP_BUFFER_FULL, evicted)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _export_chunk(self, chunk: list[ReadableSpan]) -> bool:
        try:
            success = self._exporter.export(chunk) is SpanExportResult.SUCCESS
        except Exception:
            _logger.debug("exporter raised", exc_info=True)
            success = False
        self._breaker.record(success)
        if success:
            self._on_exported(len(chunk))
        return success
