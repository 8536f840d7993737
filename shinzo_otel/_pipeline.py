"""The export side of `ShinzoSpanProcessor`: privacy, a bounded send buffer, a circuit breaker.

Two stages, so that the network never holds up anything else:

1. `export()` runs on the SDK batch worker thread: it applies the privacy rules to each span (which
   also drop content when argument collection is off; fail closed: a span whose redaction raises is
   dropped and counted, never exported raw) and appends the result to the send buffer, bounded in
   spans and approximate bytes (the oldest spans are dropped beyond it, `buffer_full`). It returns
   at once.
2. A sender thread sends the buffer oldest first, in chunks of the batch size. A chunk that fails
   goes back to the front and is sent again when the endpoint answers; a circuit breaker stops
   calling a dead endpoint (seed 002: 3 failures, open 60 s) and then lets one probe through.

So while the endpoint is down or slow, spans wait in the buffer whose size the user configured,
never in the request path's queue.
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

from shinzo_otel.privacy import Scrubber, attribute_dict

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
        return self.seconds_until_probe() > 0

    def seconds_until_probe(self) -> float:
        """0 when a call may be made now (closed, or open past its time: the probe)."""
        if self._open_until is None:
            return 0.0
        return max(0.0, self._open_until - self._clock())

    def allow(self) -> bool:
        """Whether a call may be made now."""
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
    """Rough bytes a span holds, for the buffer's byte bound (not the wire size)."""
    size = 200 + len(span.name)
    for key, value in attribute_dict(span.attributes).items():
        size += len(key) + (len(value) if isinstance(value, str) else 16)
    for event in span.events:
        size += 64 + len(event.name)
        for key, value in attribute_dict(event.attributes).items():
            size += len(key) + (len(value) if isinstance(value, str) else 16)
    return size


class _SendBuffer:
    """Spans waiting to be sent, oldest first, bounded in count and approximate bytes. Not locked:
    its owner holds the lock."""

    def __init__(self, max_spans: int, max_bytes: int) -> None:
        self._max_spans = max_spans
        self._max_bytes = max_bytes
        self._spans: collections.deque[tuple[ReadableSpan, int]] = collections.deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._spans)

    def append(self, spans: Sequence[ReadableSpan]) -> int:
        """Add the newest spans; returns how many of the oldest were evicted to stay in bounds."""
        for span in spans:
            self._push(span, _approximate_size(span), left=False)
        return self._evict()

    def put_back(self, spans: Sequence[tuple[ReadableSpan, int]]) -> int:
        """Return a chunk that failed to the front (it is the oldest); returns how many were evicted."""
        for span, size in reversed(spans):
            self._push(span, size, left=True)
        return self._evict()

    def take(self, count: int) -> list[tuple[ReadableSpan, int]]:
        """Remove and return up to `count` of the oldest spans (with their sizes)."""
        chunk = [self._spans.popleft() for _ in range(min(count, len(self._spans)))]
        self._bytes -= sum(size for _, size in chunk)
        return chunk

    def _push(self, span: ReadableSpan, size: int, left: bool) -> None:
        if left:
            self._spans.appendleft((span, size))
        else:
            self._spans.append((span, size))
        self._bytes += size

    def _evict(self) -> int:
        evicted = 0
        while self._spans and (len(self._spans) > self._max_spans or self._bytes > self._max_bytes):
            _, size = self._spans.popleft()
            self._bytes -= size
            evicted += 1
        return evicted


@dataclass
class PipelineSettings:
    """Resolved settings of the export pipeline (see `ShinzoConfig` for meanings and defaults)."""

    max_export_batch_size: int
    retry_buffer_max_spans: int
    retry_buffer_max_bytes: int
    circuit_breaker_failures: int
    circuit_breaker_open_seconds: float


class ExportPipeline(SpanExporter):
    """The exporter `BatchSpanProcessor` hands batches to: scrubs them into the send buffer, from
    which a sender thread exports them.

    Args:
        exporter: the real exporter (OTLP or the embedded store).
        scrubber: the privacy rules.
        settings: batching and resilience settings.
        on_received: called with each batch before it is scrubbed (the processor's queue accounting
            and the metrics it derives from spans).
        on_dropped: called with `(reason, count)` for spans that will never be exported.
        on_exported: called with the number of spans exported successfully.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        scrubber: Scrubber,
        settings: PipelineSettings,
        *,
        on_received: Callable[[Sequence[ReadableSpan]], None],
        on_dropped: Callable[[str, int], None],
        on_exported: Callable[[int], None],
    ) -> None:
        self._exporter = exporter
        self._scrubber = scrubber
        self._batch_size = settings.max_export_batch_size
        self._on_received = on_received
        self._on_dropped = on_dropped
        self._on_exported = on_exported
        self._breaker = CircuitBreaker(
            settings.circuit_breaker_failures, settings.circuit_breaker_open_seconds
        )
        self._buffer = _SendBuffer(settings.retry_buffer_max_spans, settings.retry_buffer_max_bytes)
        self._in_transit = 0
        self._failures = 0
        self._closing = False
        self._changed = threading.Condition()
        self._sender = threading.Thread(target=self._send_loop, name="ShinzoExportSender", daemon=True)
        self._sender.start()

    @property
    def circuit_open(self) -> bool:
        """True while the circuit breaker refuses exports."""
        return self._breaker.is_open

    @property
    def pending(self) -> int:
        """Spans scrubbed but not yet exported (waiting in the buffer or being sent)."""
        with self._changed:
            return len(self._buffer) + self._in_transit

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Scrub `spans` into the send buffer; never waits for the network."""
        self._on_received(spans)
        prepared = [span for span in map(self._prepare, spans) if span is not None]
        with self._changed:
            evicted = self._buffer.append(prepared)
            self._changed.notify_all()
        if evicted:
            self._on_dropped(DROP_BUFFER_FULL, evicted)
        return SpanExportResult.SUCCESS

    def flush(self, timeout_seconds: float) -> bool:
        """Wait until the buffer is sent; False when a send fails or the breaker is open meanwhile,
        or on timeout."""
        deadline = time.monotonic() + timeout_seconds
        with self._changed:
            failures = self._failures
            while len(self._buffer) or self._in_transit:
                remaining = deadline - time.monotonic()
                if self._failures != failures or self._breaker.is_open or remaining <= 0 or self._closing:
                    return False
                self._changed.wait(remaining)
            return True

    def shutdown(self) -> None:
        """One last attempt to send the buffer (unless the breaker is open), then stop; what is left
        is counted as dropped (`shutdown`)."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._sender.join()
        with self._changed:
            left = self._buffer.take(len(self._buffer))
        unsent = 0
        for start in range(0, len(left), self._batch_size):
            chunk = left[start : start + self._batch_size]
            if not self._breaker.allow() or not self._send(chunk):
                unsent += len(chunk)
        if unsent:
            self._on_dropped(DROP_SHUTDOWN, unsent)
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.flush(timeout_millis / 1000)

    def _prepare(self, span: ReadableSpan) -> ReadableSpan | None:
        try:
            return self._scrubber.scrub_span(span)
        except Exception:
            # Fail closed (DESIGN.md "Privacy"): never export a span we could not redact.
            _logger.debug("redaction failed; span dropped", exc_info=True)
            self._on_dropped(DROP_REDACTION_FAILURE, 1)
            return None

    def _send_loop(self) -> None:
        while True:
            with self._changed:
                while not self._closing and (not self._buffer or not self._breaker.allow()):
                    self._changed.wait(self._breaker.seconds_until_probe() if self._buffer else None)
                if self._closing:
                    return  # shutdown sends what is left
                chunk = self._buffer.take(self._batch_size)
                self._in_transit = len(chunk)
            sent = self._send(chunk)
            with self._changed:
                self._in_transit = 0
                evicted = 0 if sent else self._buffer.put_back(chunk)
                self._changed.notify_all()
            if evicted:
                self._on_dropped(DROP_BUFFER_FULL, evicted)

    def _send(self, chunk: list[tuple[ReadableSpan, int]]) -> bool:
        """Export one chunk (outside the lock: it may take the exporter's whole timeout)."""
        spans = [span for span, _ in chunk]
        try:
            success = self._exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception:
            _logger.debug("exporter raised", exc_info=True)
            success = False
        with self._changed:
            self._breaker.record(success)
            if not success:
                self._failures += 1
        if success:
            self._on_exported(len(spans))
        return success
