"""mcp 1.x: the semconv's error and cardinality rules and the capture switch, through real 1.x clients
(what tests/test_semconv_errors.py and tests/test_instrument_server.py assert on mcp 2.x).

The span says what the wire said: mcp 1.x answers a handler exception with code 0 (the server catches
it; the exception never leaves the SDK), an unregistered method with -32601, a request it cannot
validate (a missing tool name, an unknown method) with -32602, and a tool exception with an
`isError` result.
"""

from __future__ import annotations

from functools import partial

import anyio
import mcp.types as types
import pytest
from mcp.server.fastmcp import FastMCP
from mcp.shared.exceptions import McpError
from opentelemetry.sdk.trace import TracerProvider

from tests.loopback import instrument_to_receiver, operation_points, server_spans, spans_named
from tests.mcp1.servers import make_lowlevel, make_sdk_fastmcp, memory_client
from tests.otlp_receiver import OtlpReceiver
from tests.shared_checks import add_wait_forever, check_cancelled, check_invalid_requests_are_not_errors

pytestmark = pytest.mark.anyio

_instrument = partial(instrument_to_receiver, server_name="semconv-1")


@pytest.mark.parametrize("capture", [False, True], ids=["capture-off", "capture-on"])
async def test_handler_exception_is_the_wire_code_and_text_only_with_capture(
    receiver: OtlpReceiver, tracer_provider: TracerProvider, capture: bool
):
    server = make_lowlevel()
    observability = _instrument(server, receiver, tracer_provider, enable_argument_collection=capture)
    async with memory_client(server) as client:
        with pytest.raises(McpError) as raised:
            await client.get_prompt("nope", {"customer": "Ada"})
        crashed = await client.call_tool("crash", {"text": "secret-arg"})
        await client.call_tool("echo", {"text": "secret-arg"})
    await observability.shutdown()
    assert raised.value.error.code == 0
    spans = receiver.spans()
    (prompt,) = spans_named(spans, "prompts/get nope")  # it ran: the handler raised
    assert prompt.attributes["rpc.response.status_code"] == "0"
    assert prompt.attributes["error.type"] == "0"
    assert prompt.status_code == "ERROR"
    (point,) = [p for p in operation_points(receiver) if p.attributes["mcp.method.name"] == "prompts/get"]
    assert point.attributes["error.type"] == "0"
    # mcp 1.x's low-level call_tool decorator turns a tool's exception into an isError result.
    assert crashed.isError
    (crash,) = spans_named(spans, "tools/call crash")
    assert crash.attributes["error.type"] == "tool_error" and crash.status_code == "ERROR"
    assert "rpc.response.status_code" not in crash.attributes
    content_keys = {key for span in spans for key in span.attributes if key.startswith("gen_ai.tool.call.")}
    if capture:
        assert prompt.status_message == "no prompt nope for customer Ada Lovelace"
        assert prompt.attributes["gen_ai.prompt.variable.customer"] == "Ada"
        assert content_keys == {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}
    else:
        assert prompt.status_message == ""
        assert not content_keys and not any(
            key.startswith("gen_ai.prompt.variable") for key in prompt.attributes
        )
        assert not any(b"secret-arg" in body or b"Ada" in body for body in receiver.raw_bytes)


async def test_invalid_request_codes_are_not_errors(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    """-32601 (no handler) and -32602 (the session cannot validate the request): the status code only,
    no `error.type`, status UNSET, and the duration metric does not count them as errors."""
    server = make_lowlevel()
    observability = _instrument(server, receiver, tracer_provider)
    async with memory_client(server) as client:
        with pytest.raises(McpError) as missing:
            await client.list_resources()  # the server registered no resources/list handler
        nameless = types.CallToolRequest.model_construct(
            method="tools/call", params=types.CallToolRequestParams.model_construct(arguments={})
        )
        with pytest.raises(McpError) as invalid:
            await client.send_request(types.ClientRequest(nameless), types.EmptyResult)
    await observability.shutdown()
    assert missing.value.error.code == -32601 and invalid.value.error.code == -32602
    by_code = check_invalid_requests_are_not_errors(receiver)
    assert by_code["-32601"].name == "resources/list"
    assert by_code["-32602"].name == "tools/call"  # no tool name: named by the method only


async def test_request_cut_off_is_recorded_as_cancelled(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = FastMCP("slow")
    started = add_wait_forever(server)
    observability = _instrument(server, receiver, tracer_provider)
    async with memory_client(server) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "wait_forever", {})
        await started.wait()
        tg.cancel_scope.cancel()  # the client abandons the call; its connection then closes
    await observability.shutdown()
    check_cancelled(receiver)


async def test_client_input_cannot_grow_span_names_or_series(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    """Unknown tools and methods collapse into `_OTHER` (raw value on the span only); real tools keep
    their names and series."""
    server = make_sdk_fastmcp()
    observability = _instrument(server, receiver, tracer_provider)
    unknown = 40
    async with memory_client(server) as client:
        for index in range(unknown):
            result = await client.call_tool(f"no-such-tool-{index}", {})
            assert result.isError  # FastMCP answers an unknown tool with an isError result
            request = types.PingRequest.model_construct(method=f"x/unknown-{index}")
            with pytest.raises(McpError):
                await client.send_request(types.ClientRequest(request), types.EmptyResult)
        await client.call_tool("echo", {"text": "real"})
    await observability.shutdown()
    spans = server_spans(receiver.spans())
    names = {span.name for span in spans}
    assert names == {
        "initialize",
        "notifications/initialized",
        "tools/list",  # the 1.x client lists tools after each call of a tool it does not know
        "tools/call _OTHER",
        "_OTHER",
        "tools/call echo",
    }
    unknown_methods = [span for span in spans if span.name == "_OTHER"]
    assert len(unknown_methods) == unknown
    assert {span.attributes["mcp.method.name"] for span in unknown_methods} == {"_OTHER"}
    assert {span.attributes["rpc.response.status_code"] for span in unknown_methods} == {"-32602"}
    assert unknown_methods[7].attributes["shinzo.mcp.method.original"] == "x/unknown-7"
    other_tools = spans_named(spans, "tools/call _OTHER")
    assert other_tools[3].attributes["shinzo.mcp.target.original"] == "no-such-tool-3"
    series = {tuple(sorted(p.attributes.items())) for p in operation_points(receiver)}
    assert len(series) <= 7
    assert any(dict(s).get("gen_ai.tool.name") == "echo" for s in series)


async def test_semconv_metrics_reach_the_receiver(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = make_sdk_fastmcp()
    observability = _instrument(server, receiver, tracer_provider)
    async with memory_client(server) as client:
        await client.call_tool("echo", {"text": "a"})
        await client.call_tool("fail", {"reason": "b"})
    await observability.shutdown()
    metrics = receiver.metrics()
    calls = {
        point.attributes.get("error.type"): point
        for point in metrics["mcp.server.operation.duration"]
        if point.attributes.get("gen_ai.tool.name")
    }
    assert calls["tool_error"].count == 1 and calls[None].count == 1
    assert calls[None].attributes["mcp.method.name"] == "tools/call" and calls[None].unit == "s"
    for point in metrics["mcp.server.operation.duration"]:
        assert "session.id" not in point.attributes and "mcp.session.id" not in point.attributes
    (session,) = metrics["mcp.server.session.duration"]
    assert session.count == 1
    assert session.attributes == {"mcp.protocol.version": "2025-11-25", "network.transport": "pipe"}
