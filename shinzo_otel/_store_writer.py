"""The embedded store's writer: an OTel span exporter that writes finished spans to SQLite.

The exporter side of the store: it imports the shared schema (`shinzo_otel._store_schema`) and the span
model, never the read side, rich or HTTP clients (layer order: `shinzo_otel._layers`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from shinzo_otel._semconv import SESSION_ID
from shinzo_otel._sqlite import ForkSafeConnection, transaction
from shinzo_otel._store_schema import (
    INSERT_SPAN,
    SESSION_COLUMNS,
    UPSERT_SESSION,
    create_schema,
    default_store_path,
    session_accumulator,
    session_row,
    span_row,
)
from shinzo_otel.replay.model import (
    EventRecord,
    LinkRecord,
    SessionAccumulator,
    SpanKindName,
    SpanRecord,
    StatusCodeName,
)

_logger = logging.getLogger(__name__)

_KIND_NAMES: Final[dict[SpanKind, SpanKindName]] = {
    SpanKind.INTERNAL: "INTERNAL",
    SpanKind.SERVER: "SERVER",
    SpanKind.CLIENT: "CLIENT",
    SpanKind.PRODUCER: "PRODUCER",
    SpanKind.CONSUMER: "CONSUMER",
}
_STATUS_NAMES: Final[dict[StatusCode, StatusCodeName]] = {
    StatusCode.UNSET: "UNSET",
    StatusCode.OK: "OK",
    StatusCode.ERROR: "ERROR",
}


def _span_record(span: ReadableSpan) -> SpanRecord | None:
    context = span.context
    if context is None or span.start_time is None:
        return None
    attributes = dict(span.attributes or {})
    session_id = attributes.get(SESSION_ID)
    service_name = span.resource.attributes.get(SERVICE_NAME)
    return SpanRecord(
        trace_id=format_trace_id(context.trace_id),
        span_id=format_span_id(context.span_id),
        parent_span_id=None if span.parent is None else format_span_id(span.parent.span_id),
        name=span.name,
        kind=_KIND_NAMES[span.kind],
        start_ns=span.start_time,
        end_ns=span.end_time,
        status_code=_STATUS_NAMES[span.status.status_code],
        status_message=span.status.description,
        session_id=None if session_id is None else str(session_id),
        service_name=None if service_name is None else str(service_name),
        attributes=attributes,
        events=[
            EventRecord(
                name=event.name, timestamp_ns=event.timestamp, attributes=dict(event.attributes or {})
            )
            for event in span.events
        ],
        links=[
            LinkRecord(
                trace_id=format_trace_id(link.context.trace_id),
                span_id=format_span_id(link.context.span_id),
                attributes=dict(link.attributes or {}),
            )
            for link in span.links
        ],
        resource=dict(span.resource.attributes),
        scope=None if span.instrumentation_scope is None else span.instrumentation_scope.name,
    )


def _prepare_for_writing(connection: sqlite3.Connection) -> None:
    # NORMAL is durable against application crashes in WAL mode; only power loss can drop the last
    # transactions, an acceptable trade for telemetry.
    connection.execute("PRAGMA synchronous = NORMAL")
    create_schema(connection)


class SqliteSpanExporter(SpanExporter):
    """An OTel `SpanExporter` that writes finished spans to the embedded SQLite store.

    Args:
        path: the database file; None (the default) means `default_store_path()`. Missing parent
            directories and the schema are created on the first export; a file of an older schema
            version is migrated then.

    Use it like any exporter, preferably behind a `BatchSpanProcessor` (one transaction per batch).
    `export` is safe to call from any thread (the SDK calls it from its worker thread): one
    connection, opened lazily and reopened after a fork, is guarded by a lock. It never raises: a
    failure is logged and reported as `SpanExportResult.FAILURE`. Re-exporting a span (a retry) is
    ignored, so session counts stay exact. Every span is stored; those with `session.id` also
    update their session's row, and requests outside any session are indexed for `requests list`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path is not None else default_store_path()
        self._lock = threading.Lock()
        self._connection = ForkSafeConnection(self._path, _prepare_for_writing)
        self._shutdown = False

    @property
    def path(self) -> Path:
        """The database file this exporter writes to."""
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Store `spans` in one transaction; SUCCESS or FAILURE, never an exception."""
        try:
            records = [record for record in map(_span_record, spans) if record is not None]
        except Exception:
            _logger.exception("failed to convert %d spans for the session store %s", len(spans), self._path)
            return SpanExportResult.FAILURE
        return self.export_records(records)

    def export_records(self, records: Sequence[SpanRecord]) -> SpanExportResult:
        """Store spans already in the replay model's form (`SpanRecord`, for example read back from
        an OTLP JSON file or made in bulk by a benchmark) in one transaction, with exactly the rules
        of `export`. SUCCESS or FAILURE, never an exception."""
        if self._shutdown:
            _logger.warning("SqliteSpanExporter.export called after shutdown")
            return SpanExportResult.FAILURE
        try:
            with self._lock:
                connection = self._connection.get()
                with transaction(connection):
                    self._write(connection, records)
        except Exception:
            _logger.exception("failed to export %d spans to the session store %s", len(records), self._path)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    @staticmethod
    def _write(connection: sqlite3.Connection, records: Sequence[SpanRecord]) -> None:
        sessions: dict[str, SessionAccumulator] = {}
        for record in records:
            session_id = record["session_id"]
            if connection.execute(INSERT_SPAN, span_row(record)).rowcount == 0 or session_id is None:
                continue
            session = sessions.get(session_id)
            if session is None:
                row = connection.execute(
                    f"SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                session = SessionAccumulator(session_id) if row is None else session_accumulator(row)
                sessions[session_id] = session
            session.add(record)
        connection.executemany(UPSERT_SESSION, [session_row(session) for session in sessions.values()])

    def shutdown(self) -> None:
        """Close the connection; later exports fail."""
        with self._lock:
            self._shutdown = True
            self._connection.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here (each export commits), so this returns True at once."""
        return True
