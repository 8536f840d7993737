"""instrument_server end to end: a real mcp client talking to a real server, spans at a real OTLP receiver."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.server import Server
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.shared.exceptions import MCPError
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import ShinzoConfig, instrument_server
from shinzo_otel.sessions import SessionOrigin
from tests.loopback import instrument_to_receiver, server_spans
from tests.mcp_servers import make_lowlevel_server, make_mcpserver, spans_named
from tests.otlp_receiver import OtlpReceiver
from tests.shared_checks import check_client_context_is_the_parent, client_meta

pytestmark = pytest.mark.anyio

_instrument = partial(instrument_to_receiver, server_name="test-server")


async def test_legacy_session_spans_attributes_and_errors(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "hi"})
        await client.call_tool("nested", {"text": "hi"})
        failed = await client.call_tool("fail", {"reason": "no luck"})
        await client.get_prompt("greet", {"name": "Ada"})
        await client.read_resource("res://hello")
    assert failed.is_error
    assert observability.force_flush()
    spans = receiver.spans()

    # Exactly one SERVER span per inbound message: initialize, notifications/initialized, 3 tool
    # calls, the client's automatic tools/list after its first call, prompts/get, resources/read.
    methods = sorted(str(span.attributes["mcp.method.name"]) for span in server_spans(spans))
    assert methods == sorted(
        [
            "initialize",
            "notifications/initialized",
            "tools/call",
            "tools/call",
            "tools/call",
            "tools/list",
            "prompts/get",
            "resources/read",
        ]
    )

    (session_span,) = spans_named(spans, "mcp.session")
    (marker,) = spans_named(spans, "mcp.session.start")
    session_id = session_span.attributes["session.id"]
    assert isinstance(session_id, str) and len(session_id) == 32
    assert session_span.attributes["shinzo.session.type"] == "mcp"
    assert session_span.attributes["shinzo.session.end_reason"] == "connection_closed"
    assert session_span.parent_span_id is None
    assert [event.name for event in session_span.events] == ["session.start", "session.end"]
    assert marker.parent_span_id == session_span.span_id and marker.start_ns == marker.end_ns
    # Legacy in-memory has no protocol session id: no mcp.session.id anywhere.
    assert all("mcp.session.id" not in span.attributes for span in spans)

    # Every span of the session carries session.id, the user's own span included, one trace.
    (user_span,) = spans_named(spans, "user.work")
    for span in spans:
        assert span.attributes["session.id"] == session_id, span.name
        assert span.trace_id == session_span.trace_id, span.name
    (nested_call,) = spans_named(spans, "tools/call nested")
    assert user_span.parent_span_id == nested_call.span_id
    assert all(span.parent_span_id == session_span.span_id for span in server_spans(spans))

    (echo,) = spans_named(spans, "tools/call echo")
    assert echo.attributes["gen_ai.operation.name"] == "execute_tool"
    assert echo.attributes["gen_ai.tool.name"] == "echo"
    assert echo.attributes["mcp.protocol.version"] == "2025-11-25"
    assert echo.attributes["network.transport"] == "pipe"
    request_id = echo.attributes["jsonrpc.request.id"]
    assert isinstance(request_id, str) and int(request_id) > 0
    assert echo.status_code == "UNSET" and "error.type" not in echo.attributes
    # Argument collection is off by default: no content anywhere in what was sent.
    assert not any(key.startswith("gen_ai.tool.call.") for span in spans for key in span.attributes)
    assert not any(b"no luck" in body for body in receiver.raw_bytes)

    (fail,) = spans_named(spans, "tools/call fail")
    assert fail.attributes["error.type"] == "tool_error" and fail.status_code == "ERROR"
    (prompt,) = spans_named(spans, "prompts/get greet")
    assert prompt.attributes["gen_ai.prompt.name"] == "greet"
    assert not any(key.startswith("gen_ai.prompt.variable") for key in prompt.attributes)
    # The resource URI is an attribute, never part of the span name (cardinality).
    (resource,) = spans_named(spans, "resources/read")
    assert resource.attributes["mcp.resource.uri"] == "res://hello"
    await observability.shutdown()


async def test_argument_collection_on_records_json_content(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider, enable_argument_collection=True)
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "visible"})
        await client.get_prompt("greet", {"name": "Ada"})
    observability.force_flush()
    spans = receiver.spans()
    (echo,) = spans_named(spans, "tools/call echo")
    assert json.loads(str(echo.attributes["gen_ai.tool.call.arguments"])) == {"text": "visible"}
    result = json.loads(str(echo.attributes["gen_ai.tool.call.result"]))
    assert result["content"] == [{"type": "text", "text": "visible"}]
    assert result["isError"] is False
    (prompt,) = spans_named(spans, "prompts/get greet")
    assert prompt.attributes["gen_ai.prompt.variable.name"] == "Ada"
    await observability.shutdown()


async def test_recorded_result_is_the_wire_json_without_meta(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="weather", input_schema={"type": "object"})])

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text="42 °C")],
            structured_content={"celsius": 42},
            meta={"progress": "done"},
        )

    server = Server("meta-server", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
    observability = _instrument(server, receiver, tracer_provider, enable_argument_collection=True)
    async with Client(server, mode="legacy") as client:
        await client.call_tool("weather", {})
    observability.force_flush()
    (call,) = spans_named(receiver.spans(), "tools/call weather")
    # camelCase keys as on the wire, no `_meta` (protocol metadata, not the tool's result), no nulls.
    assert json.loads(str(call.attributes["gen_ai.tool.call.result"])) == {
        "content": [{"type": "text", "text": "42 °C"}],
        "structuredContent": {"celsius": 42},
        "isError": False,
    }
    await observability.shutdown()


async def test_2026_era_requests_get_spans_but_no_session(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server) as client:  # mode="auto": the stateless 2026-07-28 era
        await client.call_tool("echo", {"text": "hi"})
        await client.call_tool("echo", {"text": "again"})
    observability.force_flush()
    spans = receiver.spans()
    assert not spans_named(spans, "mcp.session") and not spans_named(spans, "mcp.session.start")
    calls = spans_named(spans, "tools/call echo")
    assert len(calls) == 2
    for span in calls:
        assert "session.id" not in span.attributes
        assert span.attributes["mcp.protocol.version"] == "2026-07-28"
        assert span.attributes["network.transport"] == "inproc"
    # Each request is its own trace: nothing pretends they belong together.
    assert calls[0].trace_id != calls[1].trace_id
    await observability.shutdown()


async def test_lowlevel_exceptions_recorded_and_reraised(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_lowlevel_server()
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("crash", {"text": "x"})
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("nope", {})
    observability.force_flush()
    spans = receiver.spans()
    (crash,) = spans_named(spans, "tools/call crash")
    # What the wire said: a handshake-era connection answers an unmapped exception with code 0.
    assert crash.attributes["error.type"] == "0"
    assert crash.attributes["rpc.response.status_code"] == "0"
    assert crash.status_code == "ERROR"
    # Capture is off: the exception type is recorded, its message is not.
    (event,) = crash.events
    assert event.name == "exception" and event.attributes == {"exception.type": "LowLevelCrash"}
    assert "low-level crash" not in crash.status_message
    assert raised.value.error.message  # the client still got the server's JSON-RPC error
    # -32601 (method not found) is recorded but is not an error of the server span (semconv): no
    # error.type, status UNSET. The server has no prompt "nope": the span name stays bounded.
    (prompt,) = spans_named(spans, "prompts/get _OTHER")
    assert missing.value.error.code == -32601
    assert prompt.attributes["rpc.response.status_code"] == "-32601"
    assert "error.type" not in prompt.attributes
    assert prompt.attributes["gen_ai.prompt.name"] == "_OTHER"
    assert prompt.attributes["shinzo.mcp.target.original"] == "nope"
    assert prompt.status_code == "UNSET"
    await observability.shutdown()


async def test_lowlevel_exception_message_recorded_when_collection_on(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_lowlevel_server()
    observability = _instrument(server, receiver, tracer_provider, enable_argument_collection=True)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError):
            await client.call_tool("crash", {"text": "x"})
    observability.force_flush()
    (crash,) = spans_named(receiver.spans(), "tools/call crash")
    (event,) = crash.events
    assert event.attributes["exception.message"] == "low-level crash"
    assert "LowLevelCrash" in str(event.attributes["exception.stacktrace"])
    assert crash.status_message == "low-level crash"
    await observability.shutdown()


async def test_trace_context_in_meta_is_the_parent(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    client_provider = TracerProvider()
    meta = client_meta(client_provider)
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "hi"}, meta=meta)
    observability.force_flush()
    check_client_context_is_the_parent(receiver.spans(), meta)
    client_provider.shutdown()
    await observability.shutdown()


async def test_instrument_twice_changes_nothing(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = make_mcpserver(tracer_provider)
    first = _instrument(server, receiver, tracer_provider)
    second = _instrument(server, receiver, tracer_provider, enable_argument_collection=True)
    assert second is first
    assert not any(isinstance(m, OpenTelemetryMiddleware) for m in server.middleware)
    shinzo = [m for m in server.middleware if type(m).__name__ == "Mcp2Middleware"]
    assert len(shinzo) == 1 and server.middleware[0] is shinzo[0]
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "hi"})
    first.force_flush()
    assert len(spans_named(receiver.spans(), "tools/call echo")) == 1
    await first.shutdown()


class _BrokenProcessor:
    """A span processor that raises in on_start: a telemetry failure inside span creation."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("telemetry is broken")

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


async def test_telemetry_failure_never_reaches_the_tool_call(receiver: OtlpReceiver):
    provider = TracerProvider()
    provider.add_span_processor(_BrokenProcessor())  # type: ignore[arg-type]
    server = make_mcpserver(provider)
    observability = _instrument(server, receiver, provider)
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("echo", {"text": "still served"})
    assert not result.is_error
    assert result.content[0].text == "still served"  # type: ignore[union-attr]
    await observability.shutdown()
    provider.shutdown()


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"server_name": "s", "exporter_protocl": "grpc"}, "exporter_protocl: unknown key"),
        ({"server_name": "s", "exporter_protocol": "udp"}, "exporter_protocol"),
        ({"server_name": "s", "exporter_auth": {"type": "bearer"}}, "exporter_auth"),
        ({"server_name": "s", "exporter_auth": {"type": "oauth", "token": "t"}}, "exporter_auth.type"),
        ({"server_name": "s", "enable_argument_collection": "perhaps"}, "enable_argument_collection"),
        ({"server_name": "s", "max_export_batch_size": 0}, "max_export_batch_size"),
        ({"server_version": "1"}, "server_name"),
        # A URL without its scheme fails only later in the exporters (HTTP: no adapter; gRPC: TLS).
        (
            {"server_name": "s", "exporter_endpoint": "localhost:4318"},
            "exporter_endpoint: Value error, 'localhost:4318' is not an http://",
        ),
        (
            {"server_name": "s", "exporter_endpoint": "127.0.0.1:4317", "exporter_protocol": "grpc"},
            "exporter_endpoint",
        ),
        ({"server_name": "s", "privacy": {"bogus": 1}}, "privacy: Value error, unknown key bogus"),
    ],
)
def test_bad_config_raises_value_error_naming_the_key(config: dict[str, Any], key: str):
    server = make_mcpserver()
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        instrument_server(server, config)
    assert not any(type(m).__name__ == "Mcp2Middleware" for m in server.middleware)


def test_exporter_auth_becomes_headers():
    basic = ShinzoConfig.coerce(
        {"server_name": "s", "exporter_auth": {"type": "basic", "username": "ada", "password": "pw"}}
    )
    # base64("ada:pw") computed by hand: YWRhOnB3
    assert basic.resolved_headers() == {"authorization": "Basic YWRhOnB3"}
    api_key = ShinzoConfig.coerce({"server_name": "s", "exporter_auth": {"type": "apiKey", "api_key": "k1"}})
    assert api_key.resolved_headers() == {"x-api-key": "k1"}


def test_not_a_server_raises_type_error():
    with pytest.raises(TypeError, match="expects an mcp Server"):
        instrument_server(object(), {"server_name": "s"})


async def test_session_started_inside_another_sessions_request_keeps_its_own_id(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    """A tool that opens a session (as admin shell tracking does) must not stamp its caller's id on it."""
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)

    @server.tool()
    def open_session() -> str:
        return observability.sessions.start(SessionOrigin.ADMIN_SHELL, session_id="shell-1").session_id

    async with Client(server, mode="legacy") as client:
        await client.call_tool("open_session", {})
    await observability.shutdown()
    spans = receiver.spans()
    (shell,) = [
        span
        for span in spans_named(spans, "mcp.session")
        if span.attributes["shinzo.session.type"] == "admin_shell"
    ]
    (marker,) = [
        span for span in spans_named(spans, "mcp.session.start") if span.parent_span_id == shell.span_id
    ]
    assert shell.attributes["session.id"] == marker.attributes["session.id"] == "shell-1"
    (call,) = spans_named(spans, "tools/call open_session")
    assert call.attributes["session.id"] != "shell-1"


async def test_semconv_metrics_reach_the_receiver(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    """No host MeterProvider and an OTLP endpoint: our own MeterProvider exports the two histograms."""
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "a"})
        await client.call_tool("fail", {"reason": "b"})
    await observability.shutdown()  # flushes spans (the operation metric derives from them), then metrics
    metrics = receiver.metrics()
    operations = metrics["mcp.server.operation.duration"]
    calls = {
        point.attributes.get("error.type"): point
        for point in operations
        if point.attributes.get("gen_ai.tool.name")
    }
    assert calls["tool_error"].count == 1 and calls[None].count == 1
    assert calls[None].attributes["mcp.method.name"] == "tools/call"
    assert calls[None].unit == "s"
    assert calls[None].explicit_bounds == (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
    for point in operations:
        assert "session.id" not in point.attributes and "mcp.session.id" not in point.attributes
    (session,) = metrics["mcp.server.session.duration"]
    assert session.count == 1
    assert session.attributes == {"mcp.protocol.version": "2025-11-25", "network.transport": "pipe"}
    assert session.explicit_bounds[-1] == 604800  # extended past the semconv 300 s to a week
