"""The export pipeline: privacy on the SDK's batch worker, resilience on one sender thread that keeps
the worker's guarantees (STYLE.md items 1, 2, 14).

`ShinzoSpanProcessor` hands finished spans to the SDK's `BatchSpanProcessor` (worker thread, bounded
queue, restarted in a forked child, instrumentation suppressed while exporting), whose exporter is
this chain:

    BatchSpanProcessor worker
      -> ScrubbingExporter: the privacy rules applied to a copy of each span (fail closed)
      -> RetryingExporter: appends to a bounded retry buffer and returns at once
    sender thread (suppressed, restarted after fork, bounded by the buffer)
      -> circuit breaker -> the real exporter: official OTLP, or the embedded store

Why a second thread: the OTLP exporters retry a refused connection or a 503 with backoff for up to
their whole timeout (the OTLP spec's transient errors). Run on the batch worker, each such export
held the worker for ~7 s while the SDK's queue overflowed (1 243 spans lost in a 10 s outage in the
load benchmark). On the sender, the wait fills the retry buffer instead, whose bounds are the
user's (`retry_buffer_max_*`, default 8192 spans), never the request path's queue.

One retry layer, no duplicates: a chunk is sent again only when its export failed before the
timeout (the endpoint refused the connection or answered with an error: it stored nothing). An
export that runs into `export_timeout_millis` may have been stored by a slow endpoint: it is never
sent again, and its spans are counted as `export_timeout`. Within one export the OTLP exporter's own
retries stay bounded by `export_timeout_millis` and never follow a timeout either.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shinzo_otel._circuit_breaker import CircuitBreaker
from shinzo_otel.privacy import Scrubber

_logger = logging.getLogger(__name__)

DROP_QUEUE_FULL: Final = "queue_full"
DROP_BUFFER_FULL: Final = "buffer_full"
DROP_REDACTION_FAILURE: Final = "redaction_failure"
DROP_EXPORT_TIMEOUT: Final = "export_timeout"
DROP_SHUTDOWN: Final = "shutdown"
DROP_REASONS: Final = (
    DROP_QUEUE_FULL,
    DROP_BUFFER_FULL,
    DROP_REDACTION_FAILURE,
    DROP_EXPORT_TIMEOUT,
    DROP_SHUTDOWN,
)
"""Why a span was not exported (`error.type` of `otel.sdk.processor.span.processed`):

- `queue_full`: ended while `max_queue_size` spans were waiting for export;
- `buffer_full`: the oldest of the spans kept while the endpoint refused them, evicted beyond
  `retry_buffer_max_spans` / `retry_buffer_max_bytes`;
- `redaction_failure`: the privacy rules raised on it (fail closed: never exported raw);
- `export_timeout`: its export ran into `export_timeout_millis`; the endpoint may have stored it, and
  it is not sent again (no duplicates);
- `shutdown`: still waiting when `shutdown()` returned, or ended after it.
"""

_UNCONFIRMED_FRACTION: Final = 0.9
"""An export that fails after this fraction of its timeout ran into the timeout (see module doc)."""
_LOG_INTERVAL_SECONDS: Final = 60.0


class ExportStats:
    """Counters of one pipeline: spans exported, and spans dropped by reason; thread-safe.

    Drops are logged as they start, then at most once a minute; the processor logs the final summary
    once, at shutdown.
    """

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self._lock = threading.Lock()
        self._exported = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._logged_at: float | None = None

    @property
    def exported(self) -> int:
        return self._exported

    def dropped(self) -> dict[str, int]:
        """A copy of the drop counters, every reason included."""
        with self._lock:
            return dict(self._dropped)

    def add_exported(self, count: int) -> None:
        with self._lock:
            self._exported += count

    def add_dropped(self, reason: str, count: int) -> None:
        if count <= 0:
            return
        with self._lock:
            self._dropped[reason] += count
            now = time.monotonic()
            # Shutdown drops are reported by the one summary line the processor logs then.
            due = reason != DROP_SHUTDOWN and (
                self._logged_at is None or now - self._logged_at >= _LOG_INTERVAL_SECONDS
            )
            if due:
                self._logged_at = now
        if due:
            _logger.warning(
                "shinzo_otel is dropping spans for %s; so far: %s", self.destination, self.summary()
            )

    def summary(self) -> str:
        """`N exported, M dropped (reason=n, ...)`: one line for logs."""
        dropped = {reason: count for reason, count in self.dropped().items() if count}
        text = f"{self._exported} spans exported, {sum(dropped.values())} dropped"
        if dropped:
            text += " (" + ", ".join(f"{reason}={count}" for reason, count in dropped.items()) + ")"
        return text

    def reset(self) -> None:
        """Zero every counter (a forked child starts its own accounting)."""
        self._lock = threading.Lock()
        self._exported = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._logged_at = None


class ScrubbingExporter(SpanExporter):
    """Applies the privacy rules to a copy of every span, then passes the batch on (STYLE.md item 2).

    Args:
        exporter: the next exporter (the `RetryingExporter`).
        scrubber: the privacy rules.
        stats: where spans dropped by a failing rule are counted (`redaction_failure`).
        on_batch: called first with each raw batch (the processor's queue accounting and the metrics
            it derives from spans), on the export thread.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        scrubber: Scrubber,
        stats: ExportStats,
        on_batch: Callable[[Sequence[ReadableSpan]], None],
    ) -> None:
        self._exporter = exporter
        self._scrubber = scrubber
        self._stats = stats
        self._on_batch = on_batch

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._on_batch(spans)
        scrub = self._scrubber.scrub_span
        scrubbed: list[ReadableSpan] = []
        for span in spans:
            try:
                scrubbed.append(scrub(span))
            except Exception:
                # Fail closed (DESIGN.md "Privacy"): never export a span we could not redact.
                _logger.debug("redaction failed; span dropped", exc_info=True)
                self._stats.add_dropped(DROP_REDACTION_FAILURE, 1)
        return self._exporter.export(scrubbed) if scrubbed else SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._exporter.shutdown()


def _approximate_size(span: ReadableSpan) -> int:
    """Rough bytes a span holds, for the retry buffer's byte bound (not the wire size): its strings'
    lengths, and a fixed share for everything else (a key, a number, an event's frame)."""
    events = span.events
    size = 200 + len(span.name) + 64 * len(events)
    for attributes in (span.attributes, *(event.attributes for event in events)):
        if attributes:
            size += 32 * len(attributes) + sum(
                len(value) for value in attributes.values() if type(value) is str
            )
    return size


class _RetryBuffer:
    """Scrubbed spans waiting to be sent, oldest first, bounded in count and approximate bytes; the
    oldest are evicted beyond the bounds. Not locked: its owner holds the lock.

    Sizing a span walks its attributes (~3 µs), so a span is sized only once more than `sized_after`
    spans wait (one batch: the sender is falling behind, and memory is what the bound is about);
    spans that leave at the sender's pace are never sized. Entries are `[span, size]`, size 0 while
    unsized.
    """

    def __init__(self, max_spans: int, max_bytes: int, sized_after: int) -> None:
        self._max_spans = max_spans
        self._max_bytes = max_bytes
        self._sized_after = sized_after
        self._spans: collections.deque[list[Any]] = collections.deque()
        self._bytes = 0
        self._unsized = 0

    def __len__(self) -> int:
        return len(self._spans)

    def keep(self, spans: Iterable[ReadableSpan]) -> int:
        """Add the newest spans; returns how many of the oldest were evicted."""
        before = len(self._spans)
        self._spans.extend([span, 0] for span in spans)
        self._unsized += len(self._spans) - before
        return self._evict()

    def put_back(self, chunk: Sequence[list[Any]]) -> int:
        """Return a refused chunk to the front (it is the oldest); returns how many were evicted."""
        for entry in reversed(chunk):
            self._spans.appendleft(entry)
            self._bytes += entry[1]
            self._unsized += not entry[1]
        return self._evict()

    def take(self, count: int) -> list[list[Any]]:
        """Remove and return up to `count` of the oldest entries."""
        chunk = [self._spans.popleft() for _ in range(min(count, len(self._spans)))]
        for _, size in chunk:
            self._bytes -= size
            self._unsized -= not size
        return chunk

    def clear(self) -> int:
        """Forget every span; returns how many there were."""
        count = len(self._spans)
        self._spans.clear()
        self._bytes = self._unsized = 0
        return count

    def _evict(self) -> int:
        if self._unsized and len(self._spans) > self._sized_after:
            for entry in self._spans:
                if not entry[1]:
                    entry[1] = _approximate_size(entry[0])
                    self._bytes += entry[1]
            self._unsized = 0
        evicted = 0
        while self._spans and (len(self._spans) > self._max_spans or self._bytes > self._max_bytes):
            _, size = self._spans.popleft()
            self._bytes -= size
            self._unsized -= not size
            evicted += 1
        return evicted


class RetryingExporter(SpanExporter):
    """Keeps scrubbed spans in a bounded buffer that a sender thread exports through a circuit breaker.

    Args:
        exporter: the real exporter, or a zero-argument factory of it. With a factory, a forked child
            builds its own (a gRPC channel, an HTTP connection pool or a SQLite connection must not be
            shared with the parent); with an instance, the child uses the parent's.
        stats: where exports and drops are counted.
        max_export_batch_size: spans per call of the real exporter.
        export_timeout_millis: the real exporter's timeout (see the module doc for its use).
        retry_buffer_max_spans, retry_buffer_max_bytes: bound of the spans waiting to be sent.
        circuit_breaker_failures, circuit_breaker_open_millis: the breaker (seed 002: 3, 60000).

    The sender thread has the batch worker's guarantees: instrumentation suppressed for its whole
    life, a new thread in a forked child (`after_fork`), and memory bounded by the buffer.
    """

    def __init__(
        self,
        exporter: SpanExporter | Callable[[], SpanExporter],
        stats: ExportStats,
        *,
        max_export_batch_size: int,
        export_timeout_millis: int,
        retry_buffer_max_spans: int,
        retry_buffer_max_bytes: int,
        circuit_breaker_failures: int,
        circuit_breaker_open_millis: int,
    ) -> None:
        self._factory = None if isinstance(exporter, SpanExporter) else exporter
        self._exporter: SpanExporter | None = exporter if isinstance(exporter, SpanExporter) else None
        self._stats = stats
        self._batch_size = max_export_batch_size
        self._timeout = export_timeout_millis / 1000
        self._buffer_bounds = (retry_buffer_max_spans, retry_buffer_max_bytes)
        self._breaker_settings = (circuit_breaker_failures, circuit_breaker_open_millis / 1000)
        self._start()

    def _start(self) -> None:
        self._buffer = _RetryBuffer(*self._buffer_bounds, sized_after=self._batch_size)
        self._breaker = CircuitBreaker(*self._breaker_settings)
        self._changed = threading.Condition()
        self._in_flight = 0
        self._failures = 0
        self._last_failed = False
        self._closing = False
        self._finished = False
        self._exporter_shut_down = False
        self._sender = threading.Thread(target=self._send_loop, name="ShinzoExportSender", daemon=True)
        self._sender.start()

    @property
    def pending(self) -> int:
        """Spans waiting in the buffer (refused ones included), not counting a chunk being sent."""
        return len(self._buffer)

    @property
    def circuit_open(self) -> bool:
        return self._breaker.is_open

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Hand `spans` to the sender (on the batch worker); never waits for the network."""
        with self._changed:
            if self._finished:
                evicted, reason = len(spans), DROP_SHUTDOWN
            else:
                evicted, reason = self._buffer.keep(spans), DROP_BUFFER_FULL
                self._changed.notify_all()
        self._stats.add_dropped(reason, evicted)
        return SpanExportResult.SUCCESS

    def flush(self, timeout_millis: int) -> bool:
        """Wait until every waiting span is sent. False when an export fails meanwhile, the breaker is
        open, or `timeout_millis` passes."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._changed:
            failures = self._failures
            while self._buffer or self._in_flight:
                remaining = deadline - time.monotonic()
                if self._failures != failures or not self._may_send() or remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return not self._finished and self._failures == failures

    def start_closing(self) -> None:
        """From now on: no attempt after a failure, none while the breaker is open, and none if the
        last export failed. If it did, the real exporter is shut down at once, which cuts short the
        backoff of an export in progress: a dead endpoint does not hold shutdown up."""
        with self._changed:
            self._closing = True
            known_down = self._last_failed
            self._changed.notify_all()
        if known_down:
            self._shutdown_exporter()

    def finish(self) -> None:
        """Stop for good: spans still waiting or being sent are counted as dropped (`shutdown`); the
        sender stops; the real exporter is shut down. Idempotent; never waits for an export in
        progress (its spans are counted here, and its outcome ignored)."""
        with self._changed:
            if self._finished:
                return
            self._finished = True
            left = self._buffer.clear() + self._in_flight
            self._changed.notify_all()
        self._stats.add_dropped(DROP_SHUTDOWN, left)
        self._shutdown_exporter()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.flush(timeout_millis)

    def shutdown(self) -> None:
        """Called by the batch processor once its worker has handed over its last spans: the sender
        gets one export timeout to send them (see `start_closing`), then everything stops."""
        self.flush(int(self._timeout * 1000))
        self.finish()

    def after_fork(self) -> None:
        """In a forked child (the processor's `os.register_at_fork` hook): the parent's waiting spans
        are the parent's to send; a fresh buffer, breaker and sender thread; the real exporter is
        rebuilt in the child when a factory was given."""
        if self._factory is not None:
            self._exporter = None  # the parent's is abandoned, never shut down from here
        self._start()

    # --- the sender thread ----------------------------------------------------------------------

    def _may_send(self) -> bool:
        if self._finished or (self._closing and self._last_failed):
            return False
        return self._breaker.allow()

    def _send_loop(self) -> None:
        with suppress_instrumentation():  # our export calls are never traced, like the SDK worker's
            while True:
                with self._changed:
                    while not self._finished and (not self._buffer or not self._may_send()):
                        wait = (
                            self._breaker.seconds_until_probe()
                            if self._buffer and not self._closing
                            else None
                        )
                        self._changed.wait(wait)
                    if self._finished:
                        return
                    chunk = self._buffer.take(self._batch_size)
                    self._in_flight = len(chunk)
                settled = self._send([span for span, _ in chunk])
                with self._changed:
                    self._in_flight = 0
                    evicted = 0 if settled or self._finished else self._buffer.put_back(chunk)
                    self._changed.notify_all()
                self._stats.add_dropped(DROP_BUFFER_FULL, evicted)

    def _send(self, chunk: list[ReadableSpan]) -> bool:
        """Export one chunk. False when it was refused (keep it); True when it is settled: exported,
        or dropped after running into the timeout."""
        started = time.monotonic()
        try:
            if self._exporter is None:
                self._exporter = self._factory() if self._factory is not None else None
            success = self._exporter is not None and self._exporter.export(chunk) is SpanExportResult.SUCCESS
        except Exception:
            _logger.debug("exporter raised", exc_info=True)
            success = False
        elapsed = time.monotonic() - started
        with self._changed:
            if self._finished:  # shutdown stopped waiting and counted this chunk already
                return True
            self._last_failed = not success
            self._failures += not success
        if success:
            self._stats.add_exported(len(chunk))
            if self._breaker.record_success():
                _logger.info("%s reachable again; exporting", self._stats.destination)
            return True
        if self._breaker.record_failure():
            _logger.warning(
                "%d consecutive failed exports to %s; not exporting for %.0f s (spans are kept, up to "
                "retry_buffer_max_spans)",
                self._breaker.failure_threshold,
                self._stats.destination,
                self._breaker.open_seconds,
            )
        if elapsed >= _UNCONFIRMED_FRACTION * self._timeout:
            self._stats.add_dropped(DROP_EXPORT_TIMEOUT, len(chunk))
            return True
        return False

    def _shutdown_exporter(self) -> None:
        with self._changed:
            if self._exporter_shut_down or self._exporter is None:
                self._exporter_shut_down = True
                return
            self._exporter_shut_down = True
            exporter = self._exporter
        try:
            exporter.shutdown()
        except Exception:
            _logger.debug("exporter shutdown raised", exc_info=True)
