"""Launched by the tests as a stdio MCP server whose host configured OpenTelemetry itself.

The host sets a global SDK TracerProvider (service.name `host-app`) with its own processor that
writes the name of every span it sees to the file `HOST_SPANS_FILE`, then calls `instrument_server`
without `tracer_provider=`, as a user of an existing OTel stack does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import anyio
from mcp.server import MCPServer
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from shinzo_otel import instrument_server


class _NamesToFile(SpanExporter):
    def __init__(self, path: str) -> None:
        self._path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self._path, "a", encoding="utf-8") as names:
            names.writelines(f"{span.name}\n" for span in spans)
        return SpanExportResult.SUCCESS


async def main() -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "host-app"}))
    provider.add_span_processor(SimpleSpanProcessor(_NamesToFile(os.environ["HOST_SPANS_FILE"])))
    trace.set_tracer_provider(provider)

    server = MCPServer("hosted")

    @server.tool()
    def echo(text: str) -> str:
        return text

    observability = instrument_server(server, {"server_name": "ignored-here"})
    try:
        await server.run_stdio_async()
    finally:
        await observability.shutdown()
        provider.shutdown()


if __name__ == "__main__":
    anyio.run(main)
