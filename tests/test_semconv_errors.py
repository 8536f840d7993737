"""The MCP semantic conventions' error and cardinality rules, through real clients and the loopback
receiver (semantic-conventions-genai docs/gen-ai/mcp.md):

- the span says what the wire said: `rpc.response.status_code` whenever the answer carries an error
  code, `error.type` = that code for failures;
- `error.type` and status ERROR go together, and only for failures: -32601/-32602 are not;
- a cancelled request is recorded as such (`error.type=cancelled`), in the span and the metric;
- client input cannot grow span names or metric series: unknown methods, tools and prompts are
  `_OTHER` (raw value kept on the span only);
- the metrics carry `network.protocol.*` on HTTP;
- with argument collection off, no error message text is exported anywhere.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server import MCPServer, Server
from mcp.shared.exceptions import MCPError
from opentelemetry.sdk.trace import TracerProvider

from tests.loopback import instrument_to_receiver, operation_points, server_spans
from tests.mcp_servers import make_mcpserver, serve_http, spans_named
from tests.otlp_receiver import OtlpReceiver
from tests.shared_checks import add_wait_forever, check_cancelled, check_invalid_requests_are_not_errors

pytestmark = pytest.mark.anyio

_instrument = partial(instrument_to_receiver, server_name="semconv")


@pytest.mark.parametrize(("mode", "wire_code"), [("legacy", "0"), ("auto", "-32603")])
async def test_handler_exception_records_the_wire_code(
    receiver: OtlpReceiver, tracer_provider: TracerProvider, mode: str, wire_code: str
):
    """`prompts/get` of an unknown prompt on an `MCPServer`: the handler raises, the wire answers code 0
    (handshake era) or -32603 (2026-07-28 era); the span says exactly that."""
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        with pytest.raises(MCPError) as raised:
            await client.get_prompt("nope", {})
    await observability.shutdown()
    assert str(raised.value.error.code) == wire_code
    (span,) = spans_named(receiver.spans(), "prompts/get _OTHER")  # the server has no prompt "nope"
    assert span.attributes["rpc.response.status_code"] == wire_code
    assert span.attributes["error.type"] == wire_code
    assert span.status_code == "ERROR"
    assert span.status_message == ""  # capture off: no message text
    assert span.attributes["shinzo.mcp.target.original"] == "nope"
    (point,) = [p for p in operation_points(receiver) if p.attributes["mcp.method.name"] == "prompts/get"]
    assert point.attributes["error.type"] == wire_code and point.attributes["gen_ai.prompt.name"] == "_OTHER"


def _strict_server() -> Server[Any]:
    """A low-level server whose `add` tool takes typed params (the SDK validates them: -32602)."""

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])

    return Server("strict", on_call_tool=on_call_tool)


async def test_invalid_request_codes_are_not_errors(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    """-32601 (no such method) and -32602 (invalid params): `rpc.response.status_code` only; no
    `error.type`, status UNSET, and the duration metric does not count them as errors."""
    server = _strict_server()
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as missing:
            await client.list_prompts()  # the server registered no prompts/list handler
        with pytest.raises(MCPError) as invalid:
            await client.session.send_request(
                types.Request[Any, Any](method="tools/call", params={"arguments": {}}),  # no tool name
                types.EmptyResult,
            )
    await observability.shutdown()
    assert missing.value.error.code == -32601 and invalid.value.error.code == -32602
    check_invalid_requests_are_not_errors(receiver)


async def test_cancelled_request_is_recorded_as_cancelled(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = MCPServer("slow")
    started = add_wait_forever(server)
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server, mode="legacy") as client, anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "wait_forever", {})
        await started.wait()
        tg.cancel_scope.cancel()  # the client abandons the call: notifications/cancelled
    await observability.shutdown()
    check_cancelled(receiver)


async def test_client_input_cannot_grow_span_names_or_series(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    """300 unknown tool names and 300 unknown methods: they all collapse into `_OTHER`; the real
    tool keeps its name and series."""
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server, mode="legacy") as client:
        for index in range(300):
            await client.call_tool(f"no-such-tool-{index}", {})
            with pytest.raises(MCPError):
                await client.session.send_request(
                    types.Request[Any, Any](method=f"x/unknown-{index}", params={}), types.EmptyResult
                )
        await client.call_tool("echo", {"text": "real"})
    await observability.shutdown()
    spans = server_spans(receiver.spans())
    names = {span.name for span in spans}
    # tools/list: the client fetches the tool schemas after its first call.
    expected = {"initialize", "notifications/initialized", "tools/list", "tools/call _OTHER", "_OTHER"}
    assert names == {*expected, "tools/call echo"}
    unknown_methods = [span for span in spans if span.name == "_OTHER"]
    assert len(unknown_methods) == 300
    assert {span.attributes["mcp.method.name"] for span in unknown_methods} == {"_OTHER"}
    originals = {span.attributes["shinzo.mcp.method.original"] for span in unknown_methods}
    assert originals == {f"x/unknown-{index}" for index in range(300)}
    # One series per span name above, whatever the number of distinct names the client sent.
    series = {tuple(sorted(p.attributes.items())) for p in operation_points(receiver)}
    assert len(series) == len(names)
    assert any(dict(s).get("gen_ai.tool.name") == "echo" for s in series)


async def test_metrics_carry_the_http_protocol(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    async with serve_http(server.streamable_http_app()) as url, Client(f"{url}/mcp", mode="legacy") as client:
        await client.call_tool("echo", {"text": "a"})
    await observability.shutdown()
    metrics = receiver.metrics()
    (call,) = [p for p in metrics["mcp.server.operation.duration"] if p.attributes.get("gen_ai.tool.name")]
    assert call.attributes["network.protocol.name"] == "http"
    assert call.attributes["network.protocol.version"] == "1.1"
    assert call.attributes["network.transport"] == "tcp"
    (session,) = metrics["mcp.server.session.duration"]
    assert session.attributes["network.protocol.name"] == "http"


async def test_no_error_text_when_collection_is_off(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    """An `MCPError` a handler raises carries data in its message: with collection off neither the
    status description nor an event holds it; the code and the type are still there."""

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        raise MCPError(code=-32000, message="lookup failed for customer Ada Lovelace, account 4711")

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="lookup", input_schema={"type": "object"})])

    server = Server("private", on_call_tool=on_call_tool, on_list_tools=on_list_tools)
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server, mode="legacy") as client:
        await client.list_tools()
        with pytest.raises(MCPError):
            await client.call_tool("lookup", {})
    await observability.shutdown()
    (span,) = spans_named(receiver.spans(), "tools/call lookup")
    assert span.attributes["error.type"] == "-32000" and span.status_code == "ERROR"
    exported = repr((span.attributes, span.status_message, [(e.name, e.attributes) for e in span.events]))
    assert "Ada" not in exported and "4711" not in exported
