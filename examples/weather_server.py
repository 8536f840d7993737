"""A small MCP server instrumented with shinzo_otel, served over stdio.

Run by `examples/quickstart.py` (and the test suite) as a subprocess. With no OTLP endpoint in the
environment its spans go to the embedded store (`SHINZO_STORE_PATH`, default
`~/.local/share/shinzo-otel/sessions.db`); set `OTEL_EXPORTER_OTLP_ENDPOINT` (and optionally
`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`) to send them to a collector instead.
"""

from __future__ import annotations

import logging

import anyio
from mcp.server import MCPServer

from shinzo_otel import instrument_server

mcp = MCPServer("quickstart-weather")

_FORECASTS = {"paris": "sunny, 21°C", "oslo": "snow, -3°C", "lima": "cloudy, 18°C"}


@mcp.tool()
def forecast(city: str, days: int = 1) -> str:
    """The weather forecast for a city."""
    outlook = _FORECASTS.get(city.lower(), "fog, 12°C")
    return f"{city}: {outlook} for the next {days} day(s)"


@mcp.tool()
def alerts(region: str) -> str:
    """Weather alerts for a region (there is no alert feed: this tool always fails)."""
    raise LookupError(f"no alert feed for region {region!r}")


async def main() -> None:
    # `alerts` fails on purpose; keep the SDK's traceback of it out of the demo's terminal.
    logging.getLogger("mcp.server.mcpserver").setLevel(logging.CRITICAL)
    observability = instrument_server(
        mcp,
        {"server_name": "quickstart-weather", "server_version": "1.0.0", "enable_argument_collection": True},
    )
    try:
        await mcp.run_stdio_async()
    finally:
        await observability.shutdown()


if __name__ == "__main__":
    anyio.run(main)
