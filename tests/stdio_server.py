"""Launched by the tests as a stdio MCP server: `python tests/stdio_server.py KIND`.

KIND is `lowlevel`, `mcpserver` or `fastmcp`. The server is instrumented with a config taken from
the environment (`OTEL_EXPORTER_OTLP_ENDPOINT`), serves stdio until EOF, then shuts down and flushes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shinzo_otel import instrument_server
from tests.mcp_servers import make_fastmcp, make_lowlevel_server, make_mcpserver


async def main(kind: str) -> None:
    if kind == "lowlevel":
        from mcp.server.stdio import stdio_server

        server = make_lowlevel_server()
        observability = instrument_server(server, {"server_name": kind})
        try:
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
        finally:
            await observability.shutdown()
        return
    app = make_mcpserver() if kind == "mcpserver" else make_fastmcp()
    observability = instrument_server(app, {"server_name": kind})
    try:
        await app.run_stdio_async()
    finally:
        await observability.shutdown()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
