"""`ShinzoSpanProcessor`: session stamping on start, batching and privacy on export.

Composition, not a new queue (STYLE.md item 1): the SDK's `BatchSpanProcessor` does the batching
(worker thread, bounded deque, fork safety, instrumentation suppressed while exporting); what we add
wraps it: `on_start` stamps the current session's attributes on every span, and the exporter we hand
to the batcher transforms a copy of each span on the export thread before delegating (STYLE.md
item 2), so the request path pays only for a deque append.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from shinzo_otel import _semconv as sc
from shinzo_otel.sessions import current_session

_logger = logging.getLogger(__name__)

CONTENT_KEYS = frozenset(
    {sc.GEN_AI_TOOL_CALL_ARGUMENTS, sc.GEN_AI_TOOL_CALL_RESULT, sc.EVENT_INPUT, sc.EVENT_OUTPUT}
)
"""Attributes that carry tool content; dropped from every span when argument collection is off."""


class _ContentFilter(SpanExporter):
    """Runs on the export thread: drops content attributes any instrumentation set, then delegates."""

    def __init__(self, exporter: SpanExporter, capture_content: bool) -> None:
        self._exporter = exporter
        self._capture_content = capture_content

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._capture_content:
            spans = [_without_content(span) for span in spans]
        return self._exporter.export(spans)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def _is_content_key(key: str) -> bool:
    return key in CONTENT_KEYS or key.startswith(sc.GEN_AI_PROMPT_VARIABLE_PREFIX)


def _without_content(span: ReadableSpan) -> ReadableSpan:
    attributes = span.attributes or {}
    if not any(_is_content_key(key) for key in attributes):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={key: value for key, value in attributes.items() if not _is_content_key(key)},
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ShinzoSpanProcessor(SpanProcessor):
    """Stamps `session.id` on every span and exports batches through `exporter`.

    Args:
        exporter: where batches go (an OTLP exporter, or the embedded store's exporter).
        capture_content: argument collection (config `enable_argument_collection`); when False,
            content attributes are removed from every span, whoever set them. Default False.
        schedule_delay_millis: export at least this often (ms); default 5000 (seed 000).
        max_export_batch_size: export as soon as this many spans wait; default 512.
        max_queue_size: spans waiting for export before new ones are dropped; default 2048.
        export_timeout_millis: bound of one export (ms); default 10000.

    `on_start` and `on_end` never raise and never block.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        capture_content: bool = False,
        schedule_delay_millis: float = 5000,
        max_export_batch_size: int = 512,
        max_queue_size: int = 2048,
        export_timeout_millis: float = 10000,
    ) -> None:
        self._batch = BatchSpanProcessor(
            _ContentFilter(exporter, capture_content),
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout_millis,
        )
        self._flush_wanted = threading.Event()
        self._closed = False
        self._flusher = threading.Thread(target=self._flush_on_request, name="ShinzoFlush", daemon=True)
        self._flusher.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        session = current_session()
        if session is not None:
            span.set_attributes(session.stamp)

    def on_end(self, span: ReadableSpan) -> None:
        self._batch.on_end(span)

    def request_flush(self) -> None:
        """Ask for an export soon, without waiting for it (session start and end)."""
        self._flush_wanted.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued; blocks the caller. Returns False after shutdown."""
        return self._batch.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Export what is queued, then stop; later spans are dropped."""
        if self._closed:
            return
        self._closed = True
        self._flush_wanted.set()
        self._flusher.join(timeout=1)
        self._batch.shutdown()  # type: ignore[no-untyped-call]

    def _flush_on_request(self) -> None:
        while True:
            self._flush_wanted.wait()
            if self._closed:
                return
            self._flush_wanted.clear()
            try:
                self._batch.force_flush()
            except Exception:
                _logger.debug("requested flush failed", exc_info=True)
