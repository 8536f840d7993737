"""`instrument_server`: one call that turns an MCP server's sessions and requests into OTel spans."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_DISABLED_INSTRUMENTATIONS
from opentelemetry.metrics import Histogram, MeterProvider
from opentelemetry.sdk.environment_variables import (
    OTEL_SDK_DISABLED,
    OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG,
)
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.util.types import AttributeValue

from shinzo_otel import _routing
from shinzo_otel import _semconv as sc
from shinzo_otel._adapter import adapter as _adapter
from shinzo_otel._export import build_metric_exporter, destination, span_exporter_factory
from shinzo_otel._tracing import RequestTracer
from shinzo_otel._version import version
from shinzo_otel.config import ShinzoConfig
from shinzo_otel.processor import ShinzoSpanProcessor
from shinzo_otel.sampling import SESSION_SAMPLER_NAME, session_sampler_from_arg
from shinzo_otel.sessions import LogicalSessions, SessionManager, SessionOrigin, SessionTracker

_logger = logging.getLogger(__name__)

_lock = threading.Lock()
_instrumented: weakref.WeakKeyDictionary[Any, Observability] = weakref.WeakKeyDictionary()
_MIN_METRICS_SHUTDOWN_MILLIS = 100
_created_providers: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
"""Providers `instrument_server` created; shut down when their last server shuts down."""


class McpServerInstrumentation:
    """The seed 000 session API of one instrumented server (`observability.instrumentation`)."""

    def __init__(self, sessions: SessionManager, requests: RequestTracer, capture_content: bool) -> None:
        self._sessions = sessions
        self._requests = requests
        self._capture_content = capture_content
        self._tracker: SessionTracker | None = None

    async def enable_session_tracking(
        self, resource_uuid: str, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Open the manual, process-level session (seed 000; DESIGN.md "Sessions").

        Requests with no protocol or connection session of their own (stdio, 2026-era stateless
        requests) belong to it; sessions that do have their own id get `resource_uuid` and
        `metadata` as attributes. A session already open is completed first. Never raises: a
        failure is logged and the server goes on without session tracking (seed 000).

        Args:
            resource_uuid: recorded as `shinzo.resource.uuid`.
            metadata: recorded as `shinzo.session.metadata.<key>` (values as strings).
        """
        try:
            await self.complete_session()
            stamp: dict[str, AttributeValue] = {sc.RESOURCE_UUID: str(resource_uuid)}
            for key, value in (metadata or {}).items():
                stamp[f"{sc.SESSION_METADATA_PREFIX}{key}"] = str(value)
            session = self._sessions.start(SessionOrigin.MANUAL, stamp=stamp)
            self._tracker = SessionTracker(self._sessions, session, self._capture_content)
            self._requests.manual_stamp = stamp
            self._requests.manual_session = session
        except Exception:
            _logger.warning("session tracking could not be enabled; serving without it", exc_info=True)

    def get_session_tracker(self) -> SessionTracker | None:
        """The tracker of the manual session, or None when none was enabled or it completed."""
        return self._tracker

    async def complete_session(self) -> None:
        """Complete the manual session (if any); its spans are exported within
        `schedule_delay_millis` (seed 000: a completed session is exported promptly)."""
        tracker, self._tracker = self._tracker, None
        self._requests.manual_session = None
        self._requests.manual_stamp = {}
        if tracker is not None:
            await tracker.complete()


class Observability:
    """The handle `instrument_server` returns (seed 000).

    Attributes:
        instrumentation: the seed's session API.
        processor: our span processor on `tracer_provider`; None when instrumentation is disabled
            (`OTEL_SDK_DISABLED`, `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`): then nothing is recorded.
        tracer_provider: the host's provider, or the one we created when there was none.
        config: the validated configuration.
        sessions: starts and ends session spans on this pipeline (admin shell tracking uses it).
    """

    def __init__(
        self,
        config: ShinzoConfig,
        tracer_provider: trace.TracerProvider,
        meter_provider: MeterProvider | None,
        processor: ShinzoSpanProcessor | None,
        requests: RequestTracer,
        sessions: SessionManager,
        logical_sessions: LogicalSessions | None = None,
        installed: object = None,
    ) -> None:
        self.config = config
        self.tracer_provider = tracer_provider
        self.processor = processor
        self.instrumentation = McpServerInstrumentation(sessions, requests, config.enable_argument_collection)
        self.sessions = sessions
        self._owned_meter_provider = meter_provider
        self._installed = installed
        self._logical_sessions = logical_sessions

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export every finished span, then our metrics (the operation metric comes from the spans);
        blocks. False if spans are still waiting."""
        flushed = self.processor is None or self.processor.force_flush(timeout_millis)
        if isinstance(self._owned_meter_provider, SdkMeterProvider):
            self._owned_meter_provider.force_flush(timeout_millis)
        return flushed

    async def shutdown(self) -> None:
        """End every open session, flush, and stop this server's export (off the event loop); within
        `export_timeout_millis` even when the endpoint is dead.

        Other servers on the same TracerProvider keep exporting. The host's provider keeps running;
        a provider `instrument_server` created is shut down with the last server using it.
        """
        if self._logical_sessions is not None:
            self._logical_sessions.close()
        self.sessions.end_all("shutdown")
        await self.instrumentation.complete_session()
        provider, processor = self.tracer_provider, self.processor
        if processor is None or not isinstance(provider, TracerProvider):
            return
        started = time.monotonic()
        await anyio.to_thread.run_sync(processor.shutdown)
        if _routing.detach(provider, processor) and provider in _created_providers:
            await anyio.to_thread.run_sync(provider.shutdown)
        meter_provider = self._owned_meter_provider
        if isinstance(meter_provider, SdkMeterProvider):
            # After the spans (the operation metric comes from them), in what is left of the one
            # export timeout that bounds the whole shutdown.
            spent = (time.monotonic() - started) * 1000
            budget = max(_MIN_METRICS_SHUTDOWN_MILLIS, self.config.export_timeout_millis - spent)
            try:
                await anyio.to_thread.run_sync(lambda: meter_provider.shutdown(timeout_millis=budget))
            except Exception:  # telemetry never breaks the host
                _logger.warning("shinzo_otel metrics did not shut down cleanly", exc_info=True)


INSTRUMENTATION_ENTRY_POINT = "shinzo_mcp"
"""Our name in `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS` and the `opentelemetry_instrumentor` group."""


def _disabled() -> bool:
    """The OTel conventions: `OTEL_SDK_DISABLED=true`, or our name (or `*`) in
    `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS` (comma-separated)."""
    if os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true":
        return True
    names = {name.strip() for name in os.environ.get(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, "").split(",")}
    return INSTRUMENTATION_ENTRY_POINT in names or "*" in names


def _resolve_tracer_provider(
    config: ShinzoConfig, tracer_provider: TracerProvider | None
) -> tuple[TracerProvider, bool]:
    """The provider to use and whether we created it (STYLE.md item 9: never take over the host's)."""
    if tracer_provider is not None:
        return tracer_provider, False
    global_provider = trace.get_tracer_provider()
    if isinstance(global_provider, TracerProvider):
        return global_provider, False
    resource = Resource.create({SERVICE_NAME: config.server_name, SERVICE_VERSION: config.server_version})
    # The SDK reads OTEL_TRACES_SAMPLER's built-in names only; ours is an entry point that a distro's
    # configurator finds, and so do we for the provider we create.
    sampler = None
    if os.environ.get(OTEL_TRACES_SAMPLER, "").strip().lower() == SESSION_SAMPLER_NAME:
        sampler = session_sampler_from_arg(os.environ.get(OTEL_TRACES_SAMPLER_ARG))
    provider = TracerProvider(resource=resource, sampler=sampler)
    if isinstance(global_provider, trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    else:
        _logger.warning("the global TracerProvider is not the OTel SDK's; shinzo_otel uses a private one")
    return provider, True


def _resolve_meter_provider(
    config: ShinzoConfig, meter_provider: MeterProvider | None, resource: Resource
) -> tuple[MeterProvider, bool]:
    """The host's MeterProvider (passed in or the global SDK one), else ours over OTLP to the metrics
    endpoint (`ShinzoConfig.metrics_endpoint`; not made global: the host's metrics are the host's
    business), else the global no-op (no metrics endpoint, `OTEL_METRICS_EXPORTER=none`; the embedded
    store keeps traces only). Returns the provider and whether we created it."""
    if meter_provider is not None:
        return meter_provider, False
    global_provider = metrics.get_meter_provider()
    if isinstance(global_provider, SdkMeterProvider):
        return global_provider, False
    exporter = build_metric_exporter(config)
    if exporter is None:  # no metrics endpoint, or OTEL_METRICS_EXPORTER=none
        return global_provider, False
    reader = PeriodicExportingMetricReader(exporter)
    return SdkMeterProvider(resource=resource, metric_readers=[reader]), True


def _session_duration(meter_provider: MeterProvider) -> Histogram:
    return meter_provider.get_meter(sc.INSTRUMENTATION_NAME, version()).create_histogram(
        sc.MCP_SERVER_SESSION_DURATION,
        unit="s",
        description="Duration of one MCP session as seen by the server.",
        explicit_bucket_boundaries_advisory=sc.SESSION_DURATION_BUCKETS,
    )


def instrument_server(
    server: Any,
    config: ShinzoConfig | Mapping[str, Any],
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Observability:
    """Instrument an mcp 2.x `Server` or `MCPServer`: every session and message becomes OTel spans.

    Installs our middleware first in `server.middleware` in place of the SDK's built-in
    `OpenTelemetryMiddleware` (so each message gets exactly one SERVER span), and gives the server its own
    `ShinzoSpanProcessor` (its privacy rules and exporter), attached to the TracerProvider.

    Args:
        server: the server to instrument.
        config: the seed 000 config dict, or a `ShinzoConfig` (see its keys and defaults).
        tracer_provider: the provider to use. Default: the configured global SDK provider; when
            there is none, a new one (service.name = server_name) that is also made global.
        meter_provider: the provider of `mcp.server.operation.duration`,
            `mcp.server.session.duration` and the processor's own counters. Default: the global SDK
            one; when there is none and an OTLP endpoint is configured, one of ours exporting there.

    Returns:
        The `Observability` handle. A second call on the same server returns the first handle and
        changes nothing.

    Off switch: with `OTEL_SDK_DISABLED=true`, or `shinzo_mcp` in
    `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`, the server is left untouched and the handle records
    nothing.

    Raises:
        ValueError: the config has an unknown key or a bad value (the message names the key).
        TypeError: `server` is not an MCP server.
    """
    resolved = ShinzoConfig.coerce(config)
    _adapter.check_server(server)
    if _disabled():
        _logger.info("shinzo_otel instrumentation is disabled by the environment; %r left as is", server)
        sessions = SessionManager(trace.NoOpTracer())
        inert = RequestTracer(
            trace.NoOpTracer(), sessions, capture_content=False, logical_sessions=LogicalSessions(sessions, 1)
        )
        return Observability(resolved, trace.NoOpTracerProvider(), None, None, inert, sessions)
    key = _adapter.lowlevel_server(server)
    with _lock:
        existing = _instrumented.get(key)
        if existing is not None:
            return existing
        provider, owns_provider = _resolve_tracer_provider(resolved, tracer_provider)
        meter_provider, owns_meter_provider = _resolve_meter_provider(
            resolved, meter_provider, provider.resource
        )
        if owns_provider:
            _created_providers.add(provider)
        # One pipeline per server, even on a shared provider: its own privacy rules, exporter and
        # shutdown (the provider's router hands each span to the server whose request started it).
        processor = ShinzoSpanProcessor(
            span_exporter_factory(resolved),
            resolved,
            meter_provider=meter_provider,
            destination=destination(resolved),
        )
        _routing.attach(provider, processor)
        session_duration = _session_duration(meter_provider)
        tracer = provider.get_tracer(sc.INSTRUMENTATION_NAME, version())
        idle_timeout_seconds = resolved.session_idle_timeout_millis / 1000
        sessions = SessionManager(
            tracer,
            session_duration,
            idle_timeout_seconds=idle_timeout_seconds,
        )
        logical_sessions = LogicalSessions(sessions, idle_timeout_seconds)
        requests = RequestTracer(
            tracer,
            sessions,
            capture_content=resolved.enable_argument_collection,
            logical_sessions=logical_sessions,
            session_resolver=resolved.session_resolver,
            conversation_meta_keys=resolved.conversation_meta_keys,
            conversation_baggage_keys=resolved.conversation_baggage_keys,
            method_known=_adapter.method_known(server),
            target_lookup=_adapter.target_lookup(server),
            processor=processor,
        )
        installed = _adapter.install(server, requests)
        observability = Observability(
            resolved,
            provider,
            meter_provider if owns_meter_provider else None,
            processor,
            requests,
            sessions,
            logical_sessions,
            installed,
        )
        _instrumented[key] = observability
        return observability


def uninstrument_server(server: Any) -> None:
    """Remove our middleware from `server` and put the SDK's built-in one back; no-op if not instrumented."""
    with _lock:
        observability = _instrumented.pop(_adapter.lowlevel_server(server), None)
    if observability is None:
        return
    _adapter.uninstall(server, observability._installed)
