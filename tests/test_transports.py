"""Sessions per transport: streamable HTTP (concurrent clients), stdio subprocess, SSE; gRPC export."""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import instrument_server
from tests.loopback import instrument_to_receiver
from tests.mcp_servers import EXAMPLES, make_mcpserver, serve_http, spans_named, wait_for_spans
from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.anyio

CLIENTS = 3
CALLS = 5


async def test_streamable_http_concurrent_sessions_never_mix(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = instrument_to_receiver(
        server, receiver, tracer_provider, server_name="http", enable_argument_collection=True
    )

    async def one_client(url: str, index: int) -> None:
        async with Client(f"{url}/mcp", mode="legacy") as client:
            for call in range(CALLS):
                await client.call_tool("echo", {"text": f"client-{index}-call-{call}"})

    async with serve_http(server.streamable_http_app()) as url:
        async with anyio.create_task_group() as tg:
            for index in range(CLIENTS):
                tg.start_soon(one_client, url, index)
        # Each client's exit sends DELETE, which closes its connection and ends its session.
        await wait_for_spans(receiver, lambda spans: len(spans_named(spans, "mcp.session")) == CLIENTS)
    spans = receiver.spans()

    sessions = spans_named(spans, "mcp.session")
    session_ids = {span.attributes["session.id"] for span in sessions}
    assert len(session_ids) == CLIENTS
    for session in sessions:
        # A protocol session: session.id is the Mcp-Session-Id.
        assert session.attributes["mcp.session.id"] == session.attributes["session.id"]
        assert session.attributes["shinzo.session.end_reason"] == "connection_closed"

    texts_by_session: dict[Any, set[str]] = defaultdict(set)
    for span in spans_named(spans, "tools/call echo"):
        assert span.attributes["session.id"] in session_ids
        assert span.attributes["mcp.session.id"] == span.attributes["session.id"]
        assert span.attributes["network.transport"] == "tcp"
        assert span.attributes["network.protocol.name"] == "http"
        assert span.attributes["client.address"] == "127.0.0.1"
        assert isinstance(span.attributes["client.port"], int)
        text = json.loads(str(span.attributes["gen_ai.tool.call.arguments"]))["text"]
        texts_by_session[span.attributes["session.id"]].add(text)
    assert len(texts_by_session) == CLIENTS
    for texts in texts_by_session.values():
        # All calls of one session come from one client, and all of that client's calls are there.
        clients = {text.split("-call-")[0] for text in texts}
        assert len(clients) == 1 and len(texts) == CALLS
    await observability.shutdown()


async def test_stdio_subprocess_session_honours_otel_env(receiver: OtlpReceiver):
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    params = StdioServerParameters(
        command=sys.executable, args=[str(EXAMPLES / "weather_server.py")], env=env
    )
    async with Client(params, mode="legacy") as client:
        await client.call_tool("forecast", {"city": "Oslo", "days": 2})
        failed = await client.call_tool("alerts", {"region": "north"})
    assert failed.is_error
    # The server flushes on shutdown after stdin closes; wait for its session span.
    spans = await wait_for_spans(receiver, lambda spans: bool(spans_named(spans, "mcp.session")), timeout=20)
    (session,) = spans_named(spans, "mcp.session")
    assert session.resource["service.name"] == "quickstart-weather"
    assert session.attributes["network.transport"] == "pipe"
    assert session.attributes["shinzo.session.end_reason"] == "connection_closed"
    (forecast,) = spans_named(spans, "tools/call forecast")
    assert forecast.attributes["session.id"] == session.attributes["session.id"]
    assert json.loads(str(forecast.attributes["gen_ai.tool.call.arguments"])) == {"city": "Oslo", "days": 2}
    (alerts,) = spans_named(spans, "tools/call alerts")
    assert alerts.attributes["error.type"] == "tool_error"


async def test_sse_session_uses_the_sse_session_id(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = make_mcpserver(tracer_provider)
    observability = instrument_to_receiver(server, receiver, tracer_provider, server_name="sse")
    async with serve_http(server.sse_app()) as url:
        async with Client(sse_client(f"{url}/sse"), mode="legacy") as client:
            await client.call_tool("echo", {"text": "a"})
            await client.call_tool("echo", {"text": "b"})
        spans = await wait_for_spans(receiver, lambda spans: bool(spans_named(spans, "mcp.session")))
    (session,) = spans_named(spans, "mcp.session")
    sse_id = session.attributes["mcp.session.id"]
    assert isinstance(sse_id, str) and len(sse_id) == 32
    calls = spans_named(spans, "tools/call echo")
    assert len(calls) == 2
    assert all(span.attributes["session.id"] == sse_id for span in calls)
    await observability.shutdown()


async def test_grpc_export_with_bearer_auth(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = make_mcpserver(tracer_provider)
    observability = instrument_server(
        server,
        {
            "server_name": "grpc",
            "exporter_endpoint": receiver.grpc_endpoint,
            "exporter_protocol": "grpc",
            "exporter_auth": {"type": "bearer", "token": "t0k3n"},
        },
        tracer_provider=tracer_provider,
    )
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "hi"})
    assert observability.force_flush()
    assert spans_named(receiver.spans(), "tools/call echo")
    assert any(headers.get("authorization") == "Bearer t0k3n" for headers in receiver.headers)
    await observability.shutdown()
