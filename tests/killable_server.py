"""Launched by the tests as a stdio MCP server that is killed with SIGKILL mid-session.

It writes its pid to `KILLABLE_PID_FILE`, records to the embedded store at `SHINZO_STORE_PATH`, and
ends idle sessions after `session_idle_timeout_millis` = 1000, so readers call a session abandoned
one second after its last activity.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
from mcp.server import MCPServer

from shinzo_otel import instrument_server


async def main() -> None:
    Path(os.environ["KILLABLE_PID_FILE"]).write_text(str(os.getpid()), encoding="utf-8")
    server = MCPServer("killable")

    @server.tool()
    def echo(text: str) -> str:
        return text

    observability = instrument_server(
        server, {"server_name": "killable", "session_idle_timeout_millis": 1000}
    )
    try:
        await server.run_stdio_async()
    finally:
        await observability.shutdown()


if __name__ == "__main__":
    anyio.run(main)
