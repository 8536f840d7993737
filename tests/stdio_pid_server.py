"""Launched by the tests as a stdio MCP server that they kill with SIGKILL mid-session:
`python tests/stdio_pid_server.py PID_FILE [IDLE_TIMEOUT_MILLIS]`.

An `MCPServer` (the tools of `tests.mcp_servers.make_mcpserver`) that writes its process id to
PID_FILE before it serves, instrumented from the environment: OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`,
else the embedded store at `SHINZO_STORE_PATH`. Every setting is at its default but
`session_idle_timeout_millis`, IDLE_TIMEOUT_MILLIS when given (readers call a session abandoned that
long after its last activity).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shinzo_otel import instrument_server
from tests.mcp_servers import make_mcpserver


async def main(pid_file: str, *idle_timeout_millis: str) -> None:
    Path(pid_file).write_text(str(os.getpid()), encoding="utf-8")
    server = make_mcpserver()
    config: dict[str, Any] = {"server_name": "crash-test"}
    if idle_timeout_millis:
        config["session_idle_timeout_millis"] = int(idle_timeout_millis[0])
    observability = instrument_server(server, config)
    try:
        await server.run_stdio_async()
    finally:
        await observability.shutdown()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:])
