"""README.md's Python snippets exactly as printed (mcp 2.x; tests/mcp1 runs the 1.x one), with a real
client in its default mode against the snippet's server, read back as a user would."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.server import MCPServer

from shinzo_otel import instrument_server
from shinzo_otel.replay import SessionFilter
from shinzo_otel.store import SessionStore
from tests.readme_snippets import python_snippet

pytestmark = pytest.mark.anyio


def _store_env(store: Path) -> dict[str, str]:
    env = {**os.environ, "SHINZO_STORE_PATH": str(store)}
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(variable, None)
    return env


async def test_the_use_snippet_records_a_session(tmp_path: Path):
    server_file = tmp_path / "server.py"
    server_file.write_text(python_snippet("mcp = MCPServer("), encoding="utf-8")
    store = tmp_path / "sessions.db"
    params = StdioServerParameters(command=sys.executable, args=[str(server_file)], env=_store_env(store))
    async with Client(params) as client:
        result = await client.call_tool("search", {"query": "otel"})
    assert result.structured_content == {"result": "Results for: otel"}
    with SessionStore(store) as sessions:
        (summary,) = sessions.list_sessions(SessionFilter(service="my-server"))
        assert summary.status == "ended" and summary.origin == "stream"
        assert summary.counts.tools == {"search": 1}


async def test_the_resolver_and_manual_api_snippets_run_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SHINZO_STORE_PATH", str(tmp_path / "sessions.db"))
    namespace: dict[str, Any] = {"mcp": MCPServer("my-server"), "instrument_server": instrument_server}
    exec(python_snippet("session_resolvers."), namespace)
    observability = instrument_server(namespace["mcp"], {"server_name": "other"})  # the snippet's handle
    assert observability.config.server_name == "my-server" and observability.config.session_resolver
    scope: dict[str, Any] = {"observability": observability}
    body = textwrap.indent(python_snippet("enable_session_tracking"), "    ")
    exec(f"async def manual_api():\n{body}", scope)
    await scope["manual_api"]()
    assert observability.instrumentation.get_session_tracker() is None  # completed
    await observability.shutdown()
    with SessionStore(tmp_path / "sessions.db") as sessions:
        (manual,) = sessions.list_sessions(SessionFilter(origin="manual"))
    assert manual.status == "ended" and manual.attributes["shinzo.session.metadata.user_id"] == "u-1"
