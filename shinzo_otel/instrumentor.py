"""Zero-code instrumentation: `opentelemetry-instrument python server.py` instruments every MCP server.

`McpInstrumentor` is registered under the `opentelemetry_instrumentor` entry point `shinzo_mcp`
(STYLE.md item 8). It wraps the mcp low-level `Server.__init__`, so every server the program
creates (`Server`, and the frameworks that build one: `MCPServer` and FastMCP 4 on mcp 2.x, `FastMCP`
and FastMCP 2 / 3 on mcp 1.x) goes through `instrument_server`
with a config from the environment: `server_name` is the server's name, the exporter comes from the
`OTEL_EXPORTER_OTLP_*` variables (the embedded store when none is set), and
`SHINZO_ENABLE_ARGUMENT_COLLECTION=true` turns content capture on.

When an OpenTelemetry distro has already configured the SDK with its own exporter, set
`OTEL_TRACES_EXPORTER=none` so that spans are exported once, by our processor, with the privacy
rules applied.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Collection
from typing import Any

import wrapt  # type: ignore[import-untyped]
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from shinzo_otel.instrumentation import instrument_server, uninstrument_server

_logger = logging.getLogger(__name__)


_TARGET_MODULE = "mcp.server.lowlevel.server"
_TARGET = "Server.__init__"


class McpInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every mcp server (1.x or 2.x) created after `instrument()`.

    Keyword arguments of `instrument()`: `config` (a `ShinzoConfig` or dict; `server_name` defaults
    to each server's name), `tracer_provider`, `meter_provider`. `uninstrument()` restores
    `Server.__init__` and removes our hooks from the servers it instrumented.
    """

    def __init__(self) -> None:
        self._servers: weakref.WeakSet[Any] = weakref.WeakSet()

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("mcp >= 1.24, != 2.0.*, != 2.1.*, != 2.2.*, < 3",)

    def _instrument(self, **kwargs: Any) -> None:
        config = dict(kwargs.get("config") or {})  # SHINZO_ENABLE_ARGUMENT_COLLECTION: read by the config
        providers = {key: kwargs[key] for key in ("tracer_provider", "meter_provider") if kwargs.get(key)}
        servers = self._servers

        def after_init(wrapped: Callable[..., None], instance: Any, args: Any, init_kwargs: Any) -> None:
            wrapped(*args, **init_kwargs)
            try:
                instrument_server(instance, {"server_name": instance.name, **config}, **providers)
                servers.add(instance)
            except Exception:  # telemetry never breaks the host: the server runs uninstrumented
                _logger.warning("could not instrument MCP server %r", instance, exc_info=True)

        wrapt.wrap_function_wrapper(_TARGET_MODULE, _TARGET, after_init)

    def _uninstrument(self, **kwargs: Any) -> None:
        import mcp.server.lowlevel.server as target

        unwrap(target.Server, "__init__")
        for server in list(self._servers):
            uninstrument_server(server)
        self._servers.clear()
