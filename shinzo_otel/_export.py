"""Which exporters a config asks for: official OTLP (gRPC or HTTP/protobuf) or the embedded store.

Endpoints, protocol, timeout and headers come resolved from `ShinzoConfig` (explicit > environment >
default); nothing here reads settings of its own. Metrics have their own endpoint; an endpoint that
does not take metrics (HTTP 404, gRPC UNIMPLEMENTED: Tempo, a traces-only gateway) is reported once
and our metrics stop, instead of failing every export period forever.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace.export import SpanExporter

from shinzo_otel.config import ShinzoConfig

_logger = logging.getLogger(__name__)

_PROBE_TIMEOUT_SECONDS = 5.0


def _http_signal_url(endpoint: str, signal: str) -> str:
    """A URL without a path gets `/v1/{signal}`; a URL ending in `/v1/traces` gets the signal swapped
    in (metrics next to traces); any other path is used as given."""
    path = urlsplit(endpoint).path
    if path in ("", "/"):
        return f"{endpoint.rstrip('/')}/v1/{signal}"
    if path.endswith("/v1/traces"):
        return f"{endpoint[: -len('traces')]}{signal}"
    return endpoint


def destination(config: ShinzoConfig) -> str:
    """Where `config` sends spans, for logs: the endpoint URL, or the embedded store."""
    if config.exporter_endpoint is None:
        from shinzo_otel._store_schema import default_store_path

        return f"the embedded store {config.store_path or default_store_path()}"
    endpoint = config.exporter_endpoint
    return endpoint if config.exporter_protocol == "grpc" else _http_signal_url(endpoint, "traces")


def span_exporter_factory(config: ShinzoConfig) -> Callable[[], SpanExporter]:
    """A zero-argument factory of the span exporter for `config` (so that a forked child builds its
    own): the embedded SQLite store when no endpoint is resolved, else the official OTLP exporter of
    the resolved protocol, with `export_timeout_millis` as its timeout."""
    if config.exporter_endpoint is None:
        from shinzo_otel._store_schema import default_store_path
        from shinzo_otel._store_writer import SqliteSpanExporter

        path = config.store_path or default_store_path()
        return lambda: SqliteSpanExporter(path)
    endpoint = config.exporter_endpoint
    headers = config.resolved_headers("traces") or None
    timeout = config.export_timeout_millis / 1000
    if config.exporter_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return lambda: Grpc(endpoint=endpoint, headers=headers, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    url = _http_signal_url(endpoint, "traces")
    return lambda: Http(endpoint=url, headers=headers, timeout=timeout)


def build_metric_exporter(config: ShinzoConfig) -> MetricExporter | None:
    """The official OTLP metric exporter for `config`'s metrics endpoint, or None when there is none
    or `metrics_exporter` is `none`. It stops for good, with one warning, once the endpoint turns out
    not to take metrics."""
    endpoint = config.metrics_endpoint
    if endpoint is None or config.metrics_exporter == "none":
        return None
    headers = config.resolved_headers("metrics")
    timeout = config.export_timeout_millis / 1000
    if config.exporter_protocol == "grpc":
        return _GrpcMetricExporter(endpoint=endpoint, headers=headers or None, timeout=timeout)
    url = _http_signal_url(endpoint, "metrics")
    return _HttpMetricExporter(endpoint=url, headers=headers or None, timeout=timeout)


class _StopsWhenRefused(MetricExporter):
    """Shared by our two metric exporters, placed before the official exporter in their bases: after a
    failed export, ask the endpoint (`_url`) once whether it takes OTLP metrics at all (`_refuses`, an
    empty export request); if not, stop."""

    _refused = False
    _url: str

    def export(self, metrics_data: MetricsData, *args: Any, **kwargs: Any) -> MetricExportResult:
        if self._refused:
            return MetricExportResult.FAILURE
        # The official exporter, next in the subclass's MRO, does the export.
        result = super().export(metrics_data, *args, **kwargs)  # type: ignore[safe-super]
        if result is MetricExportResult.FAILURE:
            with suppress_instrumentation():
                answer = self._refuses()
            if answer is not None:
                self._refused = True
                _logger.warning(
                    "%s does not take OTLP metrics (%s): shinzo_otel stops exporting metrics. Set "
                    "metrics_endpoint / OTEL_EXPORTER_OTLP_METRICS_ENDPOINT to a collector, or "
                    "OTEL_METRICS_EXPORTER=none.",
                    self._url,
                    answer,
                )
        return result

    @abstractmethod
    def _refuses(self) -> str | None:
        """What the endpoint answered to say it takes no metrics, or None if it may take them."""


class _HttpMetricExporter(_StopsWhenRefused, HttpMetricExporter):
    def __init__(self, *, endpoint: str, headers: Mapping[str, str] | None, timeout: float) -> None:
        super().__init__(endpoint=endpoint, headers=headers, timeout=timeout)
        self._url = endpoint
        self._probe_headers = {"Content-Type": "application/x-protobuf", **(headers or {})}

    def _refuses(self) -> str | None:
        """ "HTTP 404" when the URL has no OTLP metrics service; None for any other answer."""
        request = urllib.request.Request(self._url, data=b"", headers=self._probe_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT_SECONDS):
                return None
        except urllib.error.HTTPError as error:
            return "HTTP 404" if error.code == 404 else None
        except OSError:
            return None


class _GrpcMetricExporter(_StopsWhenRefused, GrpcMetricExporter):
    def __init__(self, *, endpoint: str, headers: Mapping[str, str] | None, timeout: float) -> None:
        super().__init__(endpoint=endpoint, headers=dict(headers) if headers else None, timeout=timeout)
        self._url = endpoint
        self._metadata = tuple((headers or {}).items())

    def _refuses(self) -> str | None:
        """ "gRPC UNIMPLEMENTED" when the endpoint serves no MetricsService; None otherwise."""
        import grpc
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub

        parts = urlsplit(self._url if "://" in self._url else f"//{self._url}")
        target = parts.netloc or self._url
        channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials())
            if parts.scheme == "https"
            else grpc.insecure_channel(target)
        )
        try:
            MetricsServiceStub(channel).Export(  # type: ignore[no-untyped-call]
                ExportMetricsServiceRequest(), timeout=_PROBE_TIMEOUT_SECONDS, metadata=self._metadata
            )
            return None
        except grpc.RpcError as error:
            return "gRPC UNIMPLEMENTED" if error.code() == grpc.StatusCode.UNIMPLEMENTED else None
        finally:
            channel.close()
