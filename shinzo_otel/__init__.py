"""shinzo_otel: OpenTelemetry instrumentation for MCP servers.

`instrument_server(server, config)` turns every MCP session and every message in it into OTel spans,
stamps `session.id` on every span created in a session, and exports through `ShinzoSpanProcessor`
over OTLP (or to the embedded store the `shinzo-otel` CLI reads).
"""

from shinzo_otel import session_resolvers
from shinzo_otel.config import ExporterAuth, ShinzoConfig
from shinzo_otel.instrumentation import (
    McpServerInstrumentation,
    Observability,
    instrument_server,
    uninstrument_server,
)
from shinzo_otel.processor import ShinzoSpanProcessor
from shinzo_otel.sessions import EventType, SessionEvent, SessionTracker, SessionType

__all__ = [
    "EventType",
    "ExporterAuth",
    "McpServerInstrumentation",
    "Observability",
    "SessionEvent",
    "SessionTracker",
    "SessionType",
    "ShinzoConfig",
    "ShinzoSpanProcessor",
    "instrument_server",
    "session_resolvers",
    "uninstrument_server",
]
