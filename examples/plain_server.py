"""An MCP server with no instrumentation code at all, for zero-code instrumentation:

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 opentelemetry-instrument python examples/plain_server.py

`opentelemetry-instrument` finds shinzo_otel's `shinzo_mcp` instrumentor and instruments the server
when it is created; sessions and tool calls are exported as for `instrument_server`.
"""

from __future__ import annotations

from mcp.server import MCPServer

mcp = MCPServer("plain-server")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


if __name__ == "__main__":
    mcp.run()  # stdio
