"""Server kind × transport: one SERVER span per message, and the session behaviour the README promises.

| transport      | session                                   |
|----------------|-------------------------------------------|
| memory-legacy  | minted at initialize, no mcp.session.id   |
| inproc-2026    | none                                      |
| stdio          | minted at initialize, no mcp.session.id   |
| http-stateful  | the Mcp-Session-Id (mcp.session.id)       |
| http-stateless | none                                      |
| sse            | the SSE session id (mcp.session.id)       |

The low-level `Server` has no built-in SSE app, so (lowlevel, sse) is not in the matrix.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import instrument_server
from tests.mcp_servers import (
    make_fastmcp,
    make_lowlevel_server,
    make_mcpserver,
    serve_http,
    spans_named,
    wait_for_spans,
)
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.anyio

EXPECTED_SESSION = {
    "memory-legacy": "minted",
    "inproc-2026": None,
    "stdio": "minted",
    "http-stateful": "protocol",
    "http-stateless": None,
    "sse": "protocol",
}
KINDS = ("lowlevel", "mcpserver", "fastmcp")
CASES = [
    pytest.param(kind, transport, id=f"{kind}-{transport}")
    for kind in KINDS
    for transport in EXPECTED_SESSION
    if (kind, transport) != ("lowlevel", "sse")
]
STDIO_SERVER = Path(__file__).resolve().parent / "stdio_server.py"
CALLS = 3


def _build(kind: str) -> Any:
    return {"lowlevel": make_lowlevel_server, "mcpserver": make_mcpserver, "fastmcp": make_fastmcp}[kind]()


def _dispatch_target(kind: str, server: Any) -> Any:
    """What `mcp.Client` connects to in process (FastMCP 4 serves through its low-level server)."""
    return server._mcp_server if kind == "fastmcp" else server


def _http_app(kind: str, server: Any, transport: str) -> Any:
    if transport == "sse":
        return server.http_app(transport="sse") if kind == "fastmcp" else server.sse_app()
    stateless = transport == "http-stateless"
    if kind == "fastmcp":
        return server.http_app(path="/mcp", stateless_http=stateless)
    return server.streamable_http_app(stateless_http=stateless)


@asynccontextmanager
async def _client(kind: str, server: Any, transport: str, receiver: OtlpReceiver) -> AsyncIterator[Client]:
    if transport in ("memory-legacy", "inproc-2026"):
        mode = "legacy" if transport == "memory-legacy" else "auto"
        async with Client(_dispatch_target(kind, server), mode=mode) as client:
            yield client
    elif transport == "stdio":
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint}
        params = StdioServerParameters(command=sys.executable, args=[str(STDIO_SERVER), kind], env=env)
        async with Client(params, mode="legacy") as client:
            yield client
    else:
        async with serve_http(_http_app(kind, server, transport)) as url:
            target: Any = sse_client(f"{url}/sse") if transport == "sse" else f"{url}/mcp"
            async with Client(target, mode="legacy") as client:
                yield client


def _assert_one_server_span_per_message(spans: list[ReceivedSpan]) -> None:
    keys = Counter(
        (span.trace_id, span.attributes.get("jsonrpc.request.id"), span.attributes["mcp.method.name"])
        for span in spans
        if span.kind == "SERVER"
    )
    duplicates = {key: count for key, count in keys.items() if count > 1 and key[1] is not None}
    assert not duplicates
    assert all(span.scope_name == "shinzo_otel" for span in spans if span.kind == "SERVER")


@pytest.mark.parametrize(("kind", "transport"), CASES)
async def test_matrix(kind: str, transport: str, receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = _build(kind)
    observability = None
    if transport != "stdio":  # the stdio server instruments itself in its own process
        observability = instrument_server(
            server,
            {"server_name": kind, "exporter_endpoint": receiver.http_endpoint},
            tracer_provider=tracer_provider,
        )
    async with _client(kind, server, transport, receiver) as client:
        for index in range(CALLS):
            result = await client.call_tool("echo", {"text": f"t{index}"})
            assert not result.is_error
    expected = EXPECTED_SESSION[transport]

    def complete(spans: list[ReceivedSpan]) -> bool:
        calls = len(spans_named(spans, "tools/call echo")) == CALLS
        return calls and (expected is None or bool(spans_named(spans, "mcp.session")))

    if observability is not None:
        observability.force_flush()
    spans = await wait_for_spans(receiver, complete, timeout=20)
    _assert_one_server_span_per_message(spans)
    calls = spans_named(spans, "tools/call echo")
    sessions = spans_named(spans, "mcp.session")
    if expected is None:
        assert not sessions
        assert all("session.id" not in span.attributes for span in calls)
    else:
        (session,) = sessions
        session_id = session.attributes["session.id"]
        assert all(span.attributes["session.id"] == session_id for span in calls)
        if expected == "protocol":
            assert all(span.attributes["mcp.session.id"] == session_id for span in [session, *calls])
        else:
            assert all("mcp.session.id" not in span.attributes for span in [session, *calls])
    if observability is not None:
        await observability.shutdown()
