"""Which exporter a config asks for: official OTLP (gRPC or HTTP/protobuf) or the embedded store."""

from __future__ import annotations

from urllib.parse import urlsplit

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from shinzo_otel.config import ShinzoConfig


def _http_signal_url(endpoint: str, signal: str) -> str:
    """`OTEL_EXPORTER_OTLP_ENDPOINT` semantics for a bare base URL (`/v1/{signal}` appended); a URL
    ending in `/v1/traces` gets the signal swapped in; any other path is used as given."""
    path = urlsplit(endpoint).path
    if path in ("", "/"):
        return f"{endpoint.rstrip('/')}/v1/{signal}"
    if path.endswith("/v1/traces"):
        return f"{endpoint[: -len('traces')]}{signal}"
    return endpoint


def build_span_exporter(config: ShinzoConfig) -> SpanExporter:
    """The exporter for `config`.

    With no endpoint in the config nor in `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, the embedded
    SQLite store. Otherwise the official OTLP exporter of the resolved protocol; when the endpoint
    comes from the environment it is passed as None so the exporter applies the OTel spec rules
    itself (`/v1/traces` appended to `OTEL_EXPORTER_OTLP_ENDPOINT`, TLS settings, ...).
    """
    if config.resolved_endpoint() is None:
        from shinzo_otel._store_schema import default_store_path
        from shinzo_otel._store_writer import SqliteSpanExporter

        return SqliteSpanExporter(config.store_path or default_store_path())
    headers = config.resolved_headers() or None
    timeout = config.export_timeout_millis / 1000 if config.export_timeout_millis else None
    if config.resolved_protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter(endpoint=config.exporter_endpoint, headers=headers, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    endpoint = _http_signal_url(config.exporter_endpoint, "traces") if config.exporter_endpoint else None
    return HttpSpanExporter(endpoint=endpoint, headers=headers, timeout=timeout)


def build_metric_exporter(config: ShinzoConfig) -> MetricExporter:
    """The official OTLP metric exporter for `config` (which must have an endpoint), with histograms
    aggregated as explicit buckets (the semconv buckets come as advisory boundaries)."""
    headers = config.resolved_headers() or None
    timeout = config.export_timeout_millis / 1000 if config.export_timeout_millis else None
    if config.resolved_protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        return GrpcMetricExporter(endpoint=config.exporter_endpoint, headers=headers, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    endpoint = _http_signal_url(config.exporter_endpoint, "metrics") if config.exporter_endpoint else None
    return HttpMetricExporter(endpoint=endpoint, headers=headers, timeout=timeout)
