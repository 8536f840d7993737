"""Launched by the tests: a host whose global SDK TracerProvider is set, so the mcp client opens a
recording CLIENT span per request, calls `echo` once on an instrumented low-level server in the same
process (legacy in-memory transport), exporting over OTLP/HTTP to `OTLP_ENDPOINT`.

In memory the server handles the request in the client's context: the client's CLIENT span is current
in the handler, and it is also the parent the client sent in `_meta`.
"""

from __future__ import annotations

import os

import anyio
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import instrument_server
from tests.mcp_servers import make_lowlevel_server


async def main() -> None:
    client_provider = TracerProvider()
    trace.set_tracer_provider(client_provider)
    server = make_lowlevel_server()
    observability = instrument_server(
        server,
        {"server_name": "in-process", "exporter_endpoint": os.environ["OTLP_ENDPOINT"]},
        tracer_provider=TracerProvider(),
    )
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "hi"})
    await observability.shutdown()
    client_provider.shutdown()


if __name__ == "__main__":
    anyio.run(main)
