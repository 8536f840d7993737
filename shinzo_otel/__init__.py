"""shinzo_otel: OpenTelemetry instrumentation for MCP servers.

`instrument_server(server, config)` turns every MCP session and every message in it into OTel spans,
stamps `session.id` on every span created in a session, and exports through `ShinzoSpanProcessor`
over OTLP (or to the embedded store the `shinzo-otel` CLI reads).

The public names load on first use (PEP 562), so the `shinzo-otel` CLI, which reads stores and
backends, does not pay for importing the mcp SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "EventType": "shinzo_otel.sessions",
    "ExporterAuth": "shinzo_otel.config",
    "McpServerInstrumentation": "shinzo_otel.instrumentation",
    "Observability": "shinzo_otel.instrumentation",
    "SessionEvent": "shinzo_otel.sessions",
    "SessionTracker": "shinzo_otel.sessions",
    "SessionType": "shinzo_otel.sessions",
    "ShinzoConfig": "shinzo_otel.config",
    "ShinzoSpanProcessor": "shinzo_otel.processor",
    "instrument_server": "shinzo_otel.instrumentation",
    "session_resolvers": "shinzo_otel",
    "uninstrument_server": "shinzo_otel.instrumentation",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shinzo_otel' has no attribute {name!r}")
    value = importlib.import_module(f"shinzo_otel.{name}") if home == "shinzo_otel" else None
    if value is None:
        value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
