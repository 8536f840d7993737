"""FastMCP 4 native spans, zero-code instrumentation, ASGI context, logical sessions, coexistence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.server import MCPServer
from mcp.server._otel import OpenTelemetryMiddleware
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as AsgiMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shinzo_otel import instrument_server, session_resolvers, uninstrument_server
from tests.mcp_servers import EXAMPLES, make_mcpserver, serve_http, spans_named, wait_for_spans
from tests.otlp_receiver import OtlpReceiver
from tests.shared_checks import check_zero_code_session, client_meta, traceparent_ids, zero_code_launch

pytestmark = pytest.mark.anyio
TESTS = Path(__file__).resolve().parent


async def test_fastmcp_native_span_off_only_for_the_instrumented_server(receiver: OtlpReceiver):
    await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, str(TESTS / "fastmcp_native.py"), receiver.http_endpoint], check=True, timeout=60
        )
    )
    spans = receiver.spans()
    server_spans = [span for span in spans if span.kind == "SERVER"]
    calls = [span for span in server_spans if span.attributes.get("mcp.method.name") == "tools/call"]
    # The instrumented server: exactly one SERVER span per tools/call, ours; FastMCP's native one is off.
    ours = [span for span in calls if span.scope_name == "shinzo_otel"]
    assert len(ours) == 1 and ours[0].name == "tools/call echo"
    assert "session.id" in ours[0].attributes
    # The other server in the same process keeps FastMCP's native tracing.
    native = [span for span in calls if span.scope_name == "fastmcp"]
    assert len(native) == 1 and native[0].attributes.get("fastmcp.server.name") == "plain"
    assert len(calls) == 2  # nothing else produced a tools/call SERVER span


async def test_zero_code_opentelemetry_instrument(receiver: OtlpReceiver):
    command, args, env = zero_code_launch(receiver, str(EXAMPLES / "plain_server.py"))
    async with Client(StdioServerParameters(command=command, args=args, env=env), mode="legacy") as client:
        result = await client.call_tool("add", {"a": 2, "b": 3})
    assert result.structured_content == {"result": 5}
    await check_zero_code_session(receiver, "add", "plain-server")


async def test_asgi_span_is_linked_and_meta_context_is_parent(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = instrument_server(
        server,
        {"server_name": "asgi", "exporter_endpoint": receiver.http_endpoint},
        tracer_provider=tracer_provider,
    )
    app = AsgiMiddleware(server.streamable_http_app(), tracer_provider=tracer_provider)
    client_provider = TracerProvider()
    meta = client_meta(client_provider)
    async with serve_http(app) as url, Client(f"{url}/mcp", mode="legacy") as client:
        await client.call_tool("echo", {"text": "hi"}, meta=meta)
    observability.force_flush()
    spans = receiver.spans()
    (call,) = spans_named(spans, "tools/call echo")
    assert call.parent_span_id == traceparent_ids(meta)[1]
    http_spans = {
        span.span_id for span in spans if span.kind == "SERVER" and span.scope_name.endswith("asgi")
    }
    linked = {link.span_id for link in call.links}
    assert linked & http_spans, "the ASGI HTTP server span is linked"
    (session,) = spans_named(spans, "mcp.session")
    assert session.span_id in linked
    client_provider.shutdown()
    await observability.shutdown()


async def test_logical_sessions_from_a_meta_key_end_when_idle(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = instrument_server(
        server,
        {
            "server_name": "logical",
            "exporter_endpoint": receiver.http_endpoint,
            "session_resolver": session_resolvers.meta_key("com.example/conversation"),
            "session_idle_timeout_millis": 300,
        },
        tracer_provider=tracer_provider,
    )
    async with Client(server) as client:  # 2026-07-28 era: stateless, one connection per request
        for conversation in ("a", "a", "b"):
            await client.call_tool("echo", {"text": "x"}, meta={"com.example/conversation": conversation})
        await client.call_tool("echo", {"text": "no key"})
    spans = await wait_for_spans(receiver, lambda spans: len(spans_named(spans, "mcp.session")) == 2)
    sessions = spans_named(spans, "mcp.session")
    assert {span.attributes["shinzo.session.end_reason"] for span in sessions} == {"idle_timeout"}
    assert {span.attributes["shinzo.session.type"] for span in sessions} == {"logical"}
    calls = spans_named(spans, "tools/call echo")
    by_session: dict[Any, int] = {}
    for span in calls:
        key = span.attributes.get("session.id")
        by_session[key] = by_session.get(key, 0) + 1
    session_ids = [span.attributes["session.id"] for span in sessions]
    assert sorted(by_session.get(session_id, 0) for session_id in session_ids) == [1, 2]
    assert by_session.get(None) == 1  # the request without a key stays standalone
    # The key itself is never exported.
    assert not any(b"com.example/conversation" in body for body in receiver.raw_bytes)
    await observability.shutdown()


async def test_host_provider_and_processors_are_kept(receiver: OtlpReceiver):
    host = TracerProvider()
    host_spans = InMemorySpanExporter()
    host.add_span_processor(SimpleSpanProcessor(host_spans))
    first, second = make_mcpserver(host), make_mcpserver(host)
    config = {"server_name": "host", "exporter_endpoint": receiver.http_endpoint}
    observability = instrument_server(first, config, tracer_provider=host)
    other = instrument_server(second, config, tracer_provider=host)
    assert other.processor is not observability.processor  # one pipeline per server, each its own rules
    async with Client(first, mode="legacy") as client:
        await client.call_tool("echo", {"text": "x"})
    observability.force_flush()
    (host_call,) = [span for span in host_spans.get_finished_spans() if span.name == "tools/call echo"]
    assert host_call.attributes is not None and "session.id" in host_call.attributes
    assert spans_named(receiver.spans(), "tools/call echo")
    await observability.shutdown()
    await other.shutdown()
    host.shutdown()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_SDK_DISABLED", "true"), ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "fastapi, shinzo_mcp")],
)
async def test_disabled_by_environment_leaves_the_server_alone(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch, tracer_provider: TracerProvider
):
    monkeypatch.setenv(variable, value)
    server = make_mcpserver(tracer_provider)
    before = list(server.middleware)
    observability = instrument_server(server, {"server_name": "off"}, tracer_provider=tracer_provider)
    assert server.middleware == before and isinstance(server.middleware[0], OpenTelemetryMiddleware)
    assert observability.processor is None
    await observability.instrumentation.enable_session_tracking("uuid")  # the API still answers
    assert observability.force_flush()
    await observability.shutdown()


async def test_uninstrument_restores_the_builtin_middleware(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = instrument_server(
        server,
        {"server_name": "u", "exporter_endpoint": receiver.http_endpoint},
        tracer_provider=tracer_provider,
    )
    uninstrument_server(server)
    assert isinstance(server.middleware[0], OpenTelemetryMiddleware)
    assert not any(type(m).__name__ == "Mcp2Middleware" for m in server.middleware)
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "x"})
    observability.force_flush()
    assert not spans_named(receiver.spans(), "tools/call echo")
    await observability.shutdown()


def test_the_instrumentor_instruments_new_servers_until_uninstrumented(
    tracer_provider: TracerProvider, tmp_path: Path
):
    """`McpInstrumentor` in process (what `opentelemetry-instrument` loads by its entry point): servers
    created while it is on get our middleware; `uninstrument()` takes it off them and off new ones."""
    from shinzo_otel.instrumentor import McpInstrumentor

    def ours(server: MCPServer) -> bool:
        return any(type(m).__name__ == "Mcp2Middleware" for m in server._lowlevel_server.middleware)

    instrumentor = McpInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, config={"store_path": str(tmp_path / "s.db")})
    try:
        during = MCPServer("created-while-on")
        assert ours(during)
    finally:
        instrumentor.uninstrument()
    assert not ours(during)
    assert not ours(MCPServer("created-after"))
