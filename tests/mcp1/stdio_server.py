"""Launched by the mcp 1.x tests as a stdio MCP server: `python tests/mcp1/stdio_server.py KIND [plain]`.

KIND is `lowlevel`, `sdk-fastmcp` or `fastmcp`. The low-level server is seed 000's example: handlers
registered with the decorators AFTER `instrument_server`, served with `server.run(read, write,
init_options)`. The server exports to `OTEL_EXPORTER_OTLP_ENDPOINT`, serves stdio until EOF, then
shuts down and flushes; argument collection is on. With `plain` it is not instrumented by code
(`opentelemetry-instrument` does).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from shinzo_otel import instrument_server
from tests.mcp1.servers import build, register_lowlevel_handlers

CONFIG = {"enable_argument_collection": True}


async def main(kind: str, plain: bool) -> None:
    if kind == "lowlevel":
        server: Server = Server("lowlevel-server")
        observability = None if plain else instrument_server(server, CONFIG | {"server_name": kind})
        register_lowlevel_handlers(server)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    else:
        app = build(kind)
        observability = None if plain else instrument_server(app, CONFIG | {"server_name": kind})
        if kind == "sdk-fastmcp":
            await app.run_stdio_async()
        else:
            await app.run_stdio_async(show_banner=False)
    if observability is not None:
        await observability.shutdown()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2:] == ["plain"])
