"""README.md's mcp 1.x snippet (the seed's low-level server) exactly as printed, served over stdio to
a real 1.x `ClientSession`, read back from the embedded store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from shinzo_otel.replay import SessionFilter
from shinzo_otel.store import SessionStore
from tests.readme_snippets import python_snippet

pytestmark = pytest.mark.anyio


async def test_the_mcp1_use_snippet_records_a_session(tmp_path: Path):
    server_file = tmp_path / "server.py"
    server_file.write_text(python_snippet("@server.call_tool()"), encoding="utf-8")
    store = tmp_path / "sessions.db"
    env = {**os.environ, "SHINZO_STORE_PATH": str(store)}
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(variable, None)
    params = StdioServerParameters(command=sys.executable, args=[str(server_file)], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("search", {"query": "otel"})
    assert result.content[0].text == "Results for: otel"  # type: ignore[union-attr]
    with SessionStore(store) as sessions:
        (summary,) = sessions.list_sessions(SessionFilter(service="my-server"))
    assert summary.status == "ended" and summary.origin == "connection"
    assert summary.counts.tools == {"search": 1}
