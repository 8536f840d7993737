"""Run by test_integrations in a subprocess (it sets the global TracerProvider, once per process).

Two FastMCP 4 servers in one process, only one instrumented, both serving a tool call; every span of
the global provider goes to the OTLP endpoint in argv[1] through our processor.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shinzo_otel import instrument_server
from tests.mcp_servers import make_fastmcp


async def main(endpoint: str) -> None:
    trace.set_tracer_provider(TracerProvider())
    instrumented, plain = make_fastmcp("instrumented"), make_fastmcp("plain")
    observability = instrument_server(
        instrumented, {"server_name": "instrumented", "exporter_endpoint": endpoint}
    )
    for server in (instrumented, plain):
        async with Client(server._mcp_server, mode="legacy") as client:
            await client.call_tool("echo", {"text": "x"})
    await observability.shutdown()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
