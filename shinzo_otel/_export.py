"""Which exporter a config asks for: official OTLP (gRPC or HTTP/protobuf) or the embedded store."""

from __future__ import annotations

from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExporter

from shinzo_otel.config import ShinzoConfig


def _http_traces_url(endpoint: str) -> str:
    """`OTEL_EXPORTER_OTLP_ENDPOINT` semantics for a bare base URL, a full URL kept as given."""
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def build_span_exporter(config: ShinzoConfig) -> SpanExporter:
    """The exporter for `config`.

    With no endpoint in the config nor in `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, the embedded
    SQLite store. Otherwise the official OTLP exporter of the resolved protocol; when the endpoint
    comes from the environment it is passed as None so the exporter applies the OTel spec rules
    itself (`/v1/traces` appended to `OTEL_EXPORTER_OTLP_ENDPOINT`, TLS settings, ...).
    """
    if config.resolved_endpoint() is None:
        from shinzo_otel.store import SqliteSpanExporter, default_store_path

        return SqliteSpanExporter(config.store_path or default_store_path())
    headers = config.resolved_headers() or None
    timeout = config.export_timeout_millis / 1000
    if config.resolved_protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter(endpoint=config.exporter_endpoint, headers=headers, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    endpoint = _http_traces_url(config.exporter_endpoint) if config.exporter_endpoint else None
    return HttpSpanExporter(endpoint=endpoint, headers=headers, timeout=timeout)
