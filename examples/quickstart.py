"""The main job in one script: a real MCP session becomes OpenTelemetry spans and a replay.

1. Starts `weather_server.py` (an `MCPServer` instrumented with `instrument_server`) as a stdio
   subprocess; with no OTLP endpoint set, its spans go to the embedded store.
2. Drives it with a real `mcp` client in its default mode (the 2026-07-28 protocol era: the stdio
   stream is the session): several tool calls, one of which fails.
3. Closes the session (the server ends the session span on stdin EOF and flushes on shutdown).
4. Reads the session back from the store and prints it in time order.

Run it with `make demo`, or `.venv/bin/python examples/quickstart.py`. Set `OTEL_EXPORTER_OTLP_ENDPOINT`
to send the spans to a collector instead (the replay step then reads nothing locally).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from rich.console import Console

from shinzo_otel.replay import SessionFilter
from shinzo_otel.replay.render import print_replay
from shinzo_otel.store import SessionStore, default_store_path

SERVER = Path(__file__).resolve().parent / "weather_server.py"
SERVICE = "quickstart-weather"


async def drive_session() -> None:
    params = StdioServerParameters(command=sys.executable, args=[str(SERVER)], env=dict(os.environ))
    async with Client(params) as client:
        tools = await client.list_tools()
        print(f"connected; tools: {', '.join(tool.name for tool in tools.tools)}")
        for city, days in (("Paris", 1), ("Oslo", 3), ("Lima", 2)):
            result = await client.call_tool("forecast", {"city": city, "days": days})
            print(f"forecast {city}: {result.content[0].text}")  # type: ignore[union-attr]
        failed = await client.call_tool("alerts", {"region": "north"})
        print(f"alerts north: isError={failed.is_error}")


def main() -> None:
    anyio.run(drive_session)
    store_path = default_store_path()
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        print(f"spans were sent to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}; nothing to replay locally")
        return
    with SessionStore(store_path) as store:
        (summary,) = store.list_sessions(SessionFilter(service=SERVICE, limit=1))
        session = store.get_session(summary.session_id)
    console = Console()
    console.print()
    print_replay(session, console)
    console.print(f"\nstore: {store_path}\nagain: shinzo-otel replay {summary.session_id}")


if __name__ == "__main__":
    main()
