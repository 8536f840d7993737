"""Launched by the crash test as a stdio MCP server: `python tests/stdio_pid_server.py`.

An `MCPServer` (tools of `tests.mcp_servers.make_mcpserver`, plus `pid`, which answers the server's
process id so the test can SIGKILL it), instrumented from the environment
(`OTEL_EXPORTER_OTLP_ENDPOINT`) with every other setting at its default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shinzo_otel import instrument_server
from tests.mcp_servers import make_mcpserver


async def main() -> None:
    server = make_mcpserver()

    @server.tool()
    def pid() -> int:
        return os.getpid()

    observability = instrument_server(server, {"server_name": "crash-test"})
    try:
        await server.run_stdio_async()
    finally:
        await observability.shutdown()


if __name__ == "__main__":
    anyio.run(main)
