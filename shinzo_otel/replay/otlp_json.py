"""OTLP JSON in, `SpanRecord`s out: the decoder every non-SQLite reader shares, and the file reader.

Decoding is done by the official protobuf classes (`opentelemetry-proto`) and
`google.protobuf.json_format.ParseDict`; only two things are adjusted before that, because the JSON
that tools write is not always proto3 JSON:

- ids: the OTLP specification encodes `traceId`, `spanId` and `parentSpanId` (spans and links) as hex
  strings (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding), which is what the
  Collector's file exporter and Jaeger write, while proto3 JSON (and so `ParseDict`, and Tempo's
  `/api/traces`, grafana/tempo#5437) uses base64. A value of exactly 32 (trace) or 16 (span) hex
  digits is hex; base64 of the same bytes has 24 or 12 characters, so the two cannot be confused.
- envelope names: Tempo's trace-by-id v1 answer calls `resourceSpans` `batches`, and OTLP before
  v0.15 called `scopeSpans` / `scope` `instrumentationLibrarySpans` / `instrumentationLibrary`.

Unknown fields are ignored, so data from a newer OTLP version still reads.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

from shinzo_otel._semconv import SESSION_ID
from shinzo_otel.replay._memory import SessionIndex
from shinzo_otel.replay.model import (
    EventRecord,
    LinkRecord,
    RequestSummary,
    Session,
    SessionSummary,
    SpanKindName,
    SpanRecord,
    StatusCodeName,
    TraceReplay,
)
from shinzo_otel.replay.source import (
    ProgressCallback,
    RequestFilter,
    SessionFilter,
    SourceUnavailableError,
    WarningCallback,
)

_logger = logging.getLogger(__name__)

_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_ID_BYTES: Final = {
    "traceId": 16,
    "trace_id": 16,
    "spanId": 8,
    "span_id": 8,
    "parentSpanId": 8,
    "parent_span_id": 8,
}
_RENAMES: Final = {
    "batches": "resourceSpans",
    "instrumentationLibrarySpans": "scopeSpans",
    "instrumentation_library_spans": "scopeSpans",
    "instrumentationLibrary": "scope",
    "instrumentation_library": "scope",
}
# The OTLP enums' numbers (trace.proto); UNSPECIFIED is read as INTERNAL, the API's default kind.
_KINDS: Final[dict[int, SpanKindName]] = {
    Span.SPAN_KIND_UNSPECIFIED: "INTERNAL",
    Span.SPAN_KIND_INTERNAL: "INTERNAL",
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
_STATUSES: Final[dict[int, StatusCodeName]] = {
    Status.STATUS_CODE_UNSET: "UNSET",
    Status.STATUS_CODE_OK: "OK",
    Status.STATUS_CODE_ERROR: "ERROR",
}


def _proto3_id(value: object, size: int) -> object:
    if isinstance(value, str) and len(value) == 2 * size and _HEX.fullmatch(value):
        return base64.b64encode(bytes.fromhex(value)).decode()
    return value


def _normalise(value: Any) -> Any:
    """A copy of decoded JSON with the envelope renamed and hex ids turned into proto3 base64."""
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if not isinstance(value, dict):
        return value
    normalised = {}
    for key, item in value.items():
        size = _ID_BYTES.get(key)
        normalised[_RENAMES.get(key, key)] = _normalise(item) if size is None else _proto3_id(item, size)
    return normalised


def parse_traces(data: Mapping[str, Any]) -> ExportTraceServiceRequest:
    """Decode one OTLP JSON traces document (an `ExportTraceServiceRequest` / `TracesData` object, or
    Tempo's `{"batches": [...]}`) with hex or base64 ids.

    Raises:
        ValueError: `data` is not such a document, or a span or link has an id of the wrong length
            (trace ids are 16 bytes, span ids 8, OTLP trace.proto).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(_normalise(data), request, ignore_unknown_fields=True)
    except json_format.Error as error:
        raise ValueError(str(error)) from error
    for batch in request.resource_spans:
        for scope_spans in batch.scope_spans:
            for span in scope_spans.spans:
                _check_ids(span)
    return request


def _check_ids(span: Any) -> None:
    ids = [(span.trace_id, 16), (span.span_id, 8)]
    ids += [pair for link in span.links for pair in ((link.trace_id, 16), (link.span_id, 8))]
    if span.parent_span_id:  # empty: a root span (trace.proto)
        ids.append((span.parent_span_id, 8))
    for value, size in ids:
        if len(value) != size:
            raise ValueError(f"span {span.name!r} has an id of {len(value)} bytes where {size} are required")


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        # JSON-safe, and the same text OTLP JSON itself uses for bytes.
        return base64.b64encode(value.bytes_value).decode()
    return None if kind is None else getattr(value, kind)


def _attributes(key_values: Any) -> dict[str, Any]:
    return {key_value.key: _value(key_value.value) for key_value in key_values}


def attributes_from_json(key_values: Any) -> dict[str, Any]:
    """A list of OTLP JSON `KeyValue`s (`[{"key": ..., "value": {"stringValue": ...}}]`, as Tempo's
    search answers carry them) as a plain dict, decoded like span attributes (`intValue` to int, arrays
    to lists, bytes to base64 text).

    Raises:
        ValueError: `key_values` is not such a list.
    """
    decoded = KeyValueList()
    try:
        json_format.ParseDict({"values": key_values or []}, decoded, ignore_unknown_fields=True)
    except json_format.Error as error:
        raise ValueError(str(error)) from error
    return _attributes(decoded.values)


def _record(span: Span, resource: dict[str, Any], service: str | None, scope: str | None) -> SpanRecord:
    attributes = _attributes(span.attributes)
    session_id = attributes.get(SESSION_ID)
    return SpanRecord(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        name=span.name,
        kind=_KINDS.get(span.kind, "INTERNAL"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano or None,
        status_code=_STATUSES.get(span.status.code, "UNSET"),
        status_message=span.status.message or None,
        session_id=None if session_id is None else str(session_id),
        service_name=service,
        attributes=attributes,
        events=[
            EventRecord(
                name=event.name, timestamp_ns=event.time_unix_nano, attributes=_attributes(event.attributes)
            )
            for event in span.events
        ],
        links=[
            LinkRecord(
                trace_id=link.trace_id.hex(),
                span_id=link.span_id.hex(),
                attributes=_attributes(link.attributes),
            )
            for link in span.links
        ],
        resource=resource,
        scope=scope,
    )


def span_records(resource_spans: Any) -> Iterator[SpanRecord]:
    """Every span of a sequence of OTLP `ResourceSpans` messages (for example
    `ExportTraceServiceRequest.resource_spans`) as a `SpanRecord`, with lowercase hex ids."""
    for batch in resource_spans:
        resource = _attributes(batch.resource.attributes)
        service = resource.get(SERVICE_NAME)
        service_name = None if service is None else str(service)
        for scope_spans in batch.scope_spans:
            scope = scope_spans.scope.name or None
            for span in scope_spans.spans:
                yield _record(span, dict(resource), service_name, scope)


class OtlpJsonFileSource:
    """Sessions from an OTLP JSON file: one `ExportTraceServiceRequest` per line, as the Collector's
    file exporter writes it (`format: json`, see collector_config/otelcol.yaml).

    Args:
        path: the file.
        progress: called as `(bytes read, file size)` while reading.
        warn: called with a one-line message ("FILE:LINE: ...") for each line that is not valid
            OTLP JSON; the line is skipped and the rest is read. Default: a logging warning.

    The whole file is read on the first call and kept in memory (a file holds what one collector
    wrote; every question is answered from memory after that). Blank lines are skipped silently.

    Raises:
        SourceUnavailableError: the file does not exist or cannot be read (at construction or on
            first read).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        warn: WarningCallback | None = None,
    ) -> None:
        self._path = Path(path)
        if not self._path.is_file():
            raise SourceUnavailableError(f"no OTLP JSON file at {self._path}")
        self._progress = progress
        self._warn = warn or _logger.warning
        self._index: SessionIndex | None = None

    def _read(self) -> SessionIndex:
        if self._index is not None:
            return self._index
        index = SessionIndex()
        try:
            total = self._path.stat().st_size
            with self._path.open("rb") as lines:
                done = 0
                for number, line in enumerate(lines, start=1):
                    done += len(line)
                    if line.strip():
                        self._read_line(index, line, number)
                    if self._progress is not None:
                        self._progress(done, total)
        except OSError as error:
            raise SourceUnavailableError(f"cannot read {self._path}: {error.strerror or error}") from error
        self._index = index
        return index

    def _read_line(self, index: SessionIndex, line: bytes, number: int) -> None:
        try:
            request = parse_traces(json.loads(line))
        except (ValueError, RecursionError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            self._warn(f"{self._path}:{number}: skipped, not an OTLP JSON trace request ({reason[:200]})")
            return
        index.add(span_records(request.resource_spans))

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """See `SessionSource.list_sessions`."""
        return self._read().list_sessions(filters)

    def get_session(self, session_id: str) -> Session:
        """See `SessionSource.get_session`."""
        return self._read().get_session(session_id, str(self._path))

    def list_requests(self, filters: RequestFilter | None = None) -> list[RequestSummary]:
        """See `SessionSource.list_requests`."""
        return self._read().list_requests(filters)

    def count_requests(self, filters: RequestFilter | None = None) -> int:
        """See `SessionSource.count_requests`."""
        return self._read().count_requests(filters)

    def get_trace(self, trace_id: str) -> TraceReplay:
        """See `SessionSource.get_trace`."""
        return self._read().get_trace(trace_id, str(self._path))

    def close(self) -> None:
        """Drop what was read."""
        self._index = None
