"""mcp 1.x: server kind × transport through real 1.x clients, spans at the loopback OTLP receiver.

What tests/test_matrix.py and tests/test_transports.py assert on mcp 2.x, on the low-level `Server`
(seed 000's decorators), mcp 1.x's `FastMCP` and standalone FastMCP (2 or 3):

| transport      | clients | session                                               |
|----------------|---------|-------------------------------------------------------|
| memory         | 1       | minted at initialize, no mcp.session.id               |
| stdio          | 1       | minted at initialize, no mcp.session.id               |
| http-stateful  | 2       | the Mcp-Session-Id (mcp.session.id from initialize on) |
| http-stateless | 2       | none                                                  |
| sse            | 2       | the SSE session id (mcp.session.id from initialize on) |
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import instrument_server
from tests.loopback import serve_http, spans_named, wait_for_spans
from tests.mcp1.servers import KINDS, build, http_app, http_client, memory_client, stdio_client_of
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.anyio

TRANSPORTS = {"memory": 1, "stdio": 1, "http-stateful": 2, "http-stateless": 2, "sse": 2}
PROTOCOL_SESSIONS = ("http-stateful", "sse")
CALLS = 3
# Per client: the handshake, the calls, and the tools/list the 1.x client sends after its first call
# of a tool (it validates results against the tool's output schema).
MESSAGES = sorted(["initialize", "notifications/initialized", "tools/list", *["tools/call echo"] * CALLS])


@asynccontextmanager
async def _clients(
    kind: str, server: Any, transport: str, receiver: OtlpReceiver
) -> AsyncIterator[list[ClientSession]]:
    async with AsyncExitStack() as stack:
        if transport == "memory":
            yield [await stack.enter_async_context(memory_client(server))]
        elif transport == "stdio":
            yield [await stack.enter_async_context(stdio_client_of(kind, receiver.http_endpoint))]
        else:
            url = await stack.enter_async_context(serve_http(http_app(kind, server, transport)))
            yield [
                await stack.enter_async_context(http_client(url, transport))
                for _ in range(TRANSPORTS[transport])
            ]


def _client_of(span: ReceivedSpan) -> str | None:
    arguments = span.attributes.get("gen_ai.tool.call.arguments")
    return None if arguments is None else str(json.loads(str(arguments))["text"]).split("-")[0]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", KINDS)
async def test_matrix(kind: str, transport: str, receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = build(kind, stateless_http=transport == "http-stateless")
    observability = None
    if transport != "stdio":  # the stdio server instruments itself in its own process
        observability = instrument_server(
            server,
            {
                "server_name": kind,
                "exporter_endpoint": receiver.http_endpoint,
                "enable_argument_collection": True,
            },
            tracer_provider=tracer_provider,
        )
    clients_count = TRANSPORTS[transport]
    async with _clients(kind, server, transport, receiver) as clients:

        async def calls(index: int, client: ClientSession) -> None:
            for call in range(CALLS):
                result = await client.call_tool("echo", {"text": f"c{index}-{call}"})
                assert not result.isError

        async with anyio.create_task_group() as tg:  # the clients call concurrently
            for index, client in enumerate(clients):
                tg.start_soon(calls, index, client)
    if observability is not None:
        await observability.shutdown()  # ends what is still open, flushes
    stateless = transport == "http-stateless"

    def complete(spans: list[ReceivedSpan]) -> bool:
        done = len(spans_named(spans, "tools/call echo")) == CALLS * clients_count
        return done and (stateless or len(spans_named(spans, "mcp.session")) == clients_count)

    spans = await wait_for_spans(receiver, complete, timeout=30)
    requests = [span for span in spans if span.kind == "SERVER"]
    assert {span.scope_name for span in requests} == {"shinzo_otel"}
    # Exactly one SERVER span per inbound message, named by the semconv.
    assert sorted(span.name for span in requests) == sorted(MESSAGES * clients_count)
    ids = Counter((span.trace_id, span.attributes.get("jsonrpc.request.id")) for span in requests)
    assert all(count == 1 for (_, request_id), count in ids.items() if request_id is not None)
    _assert_attribute_types(requests, transport)

    sessions = spans_named(spans, "mcp.session")
    if stateless:
        assert not sessions and not any("session.id" in span.attributes for span in spans)
        return
    assert len(sessions) == clients_count
    by_session: dict[Any, list[ReceivedSpan]] = defaultdict(list)
    for span in requests:
        by_session[span.attributes["session.id"]].append(span)  # every SERVER span is in a session
    assert set(by_session) == {session.attributes["session.id"] for session in sessions}
    for session in sessions:
        members = by_session[session.attributes["session.id"]]
        assert sorted(span.name for span in members) == MESSAGES  # initialize included
        # All calls of one session come from one client.
        assert len({_client_of(span) for span in members if span.name == "tools/call echo"}) == 1
        assert session.attributes["shinzo.session.end_reason"] in ("connection_closed", "shutdown")
        if transport in PROTOCOL_SESSIONS:
            assert session.attributes["shinzo.session.origin"] == "protocol"
            session_id = session.attributes["mcp.session.id"]
            assert isinstance(session_id, str) and len(session_id) == 32
            assert session.attributes["session.id"] == session_id
            assert all(span.attributes["mcp.session.id"] == session_id for span in members)
        else:
            assert session.attributes["shinzo.session.origin"] == "connection"
            assert all("mcp.session.id" not in span.attributes for span in [session, *members])


def _assert_attribute_types(requests: list[ReceivedSpan], transport: str) -> None:
    for span in requests:
        assert span.attributes["mcp.method.name"] == span.name.split(" ")[0]
        assert span.attributes["mcp.protocol.version"] == "2025-11-25"
        if span.name != "notifications/initialized":
            request_id = span.attributes["jsonrpc.request.id"]
            assert isinstance(request_id, str) and request_id.isdigit()
        else:
            assert "jsonrpc.request.id" not in span.attributes
        if transport in ("memory", "stdio"):
            assert span.attributes["network.transport"] == "pipe"
        else:
            assert span.attributes["network.transport"] == "tcp"
            assert span.attributes["network.protocol.name"] == "http"
            assert span.attributes["client.address"] == "127.0.0.1"
            assert isinstance(span.attributes["client.port"], int)
    for span in spans_named(requests, "tools/call echo"):
        assert span.attributes["gen_ai.tool.name"] == "echo"
        assert span.attributes["gen_ai.operation.name"] == "execute_tool"
        assert span.status_code == "UNSET" and "error.type" not in span.attributes
        result = json.loads(str(span.attributes["gen_ai.tool.call.result"]))
        assert result["content"][0]["type"] == "text" and result["isError"] is False
