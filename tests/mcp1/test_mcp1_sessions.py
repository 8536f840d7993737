"""mcp 1.x: trace context, sessions and conversations, resolvers, the manual API, hooks per instance,
FastMCP 3's native span and zero-code instrumentation, through real 1.x clients and servers (what
tests/test_instrument_server.py, tests/test_sessions_every_client.py and tests/test_integrations.py
assert on mcp 2.x)."""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from importlib.metadata import version
from pathlib import Path

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.fastmcp import FastMCP
from mcp.server.lowlevel import Server
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as AsgiMiddleware
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import session_resolvers, uninstrument_server
from tests.loopback import by_session, instrument_to_receiver, serve_http, spans_named
from tests.mcp1.servers import (
    STDIO_SERVER,
    http_client,
    lowlevel_http_app,
    make_lowlevel,
    make_sdk_fastmcp,
    memory_client,
    session_over,
)
from tests.otlp_receiver import OtlpReceiver
from tests.shared_checks import (
    check_client_context_is_the_parent,
    check_manual_session,
    check_zero_code_session,
    client_meta,
    start_manual_session,
    zero_code_launch,
)

pytestmark = pytest.mark.anyio

_instrument = partial(instrument_to_receiver, server_name="sessions-1")
HERE = Path(__file__).resolve().parent


async def test_session_story_and_user_spans(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    """One connection is one session: its span is a root, every span of it (the user's own too) carries
    `session.id` and lives in its trace."""
    server = make_lowlevel(tracer_provider.get_tracer("user.code"))
    observability = _instrument(server, receiver, tracer_provider)
    async with memory_client(server) as client:
        await client.call_tool("nested", {"text": "hi"})
    await observability.shutdown()
    spans = receiver.spans()
    (session,) = spans_named(spans, "mcp.session")
    assert session.parent_span_id is None
    assert [event.name for event in session.events] == ["session.start", "session.end"]
    assert session.attributes["shinzo.session.end_reason"] == "connection_closed"
    assert session.attributes["shinzo.client.name"] == "mcp"  # the handshake's clientInfo
    (user_span,) = spans_named(spans, "user.work")
    (nested,) = spans_named(spans, "tools/call nested")
    assert user_span.parent_span_id == nested.span_id
    for span in spans:
        assert span.attributes["session.id"] == session.attributes["session.id"], span.name
        assert span.trace_id == session.trace_id, span.name
    assert all(span.parent_span_id == session.span_id for span in spans if span.kind == "SERVER")


async def test_meta_trace_context_is_the_parent(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = make_lowlevel()
    observability = _instrument(server, receiver, tracer_provider)
    client_provider = TracerProvider()
    meta = client_meta(client_provider)
    async with memory_client(server) as client:
        await client.call_tool("echo", {"text": "hi"}, meta=meta)
    await observability.shutdown()
    check_client_context_is_the_parent(receiver.spans(), meta)
    client_provider.shutdown()


async def test_no_context_leaks_from_the_initialize_request(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    """Stateful HTTP behind the ASGI instrumentation: the session's server task starts inside the
    `initialize` POST; later requests are children of their session, never of that POST's span."""
    server = make_lowlevel()
    observability = _instrument(server, receiver, tracer_provider)
    app = AsgiMiddleware(lowlevel_http_app(server, stateless=False), tracer_provider=tracer_provider)
    async with serve_http(app) as url, http_client(url, "http-stateful") as client:
        await client.call_tool("echo", {"text": "a"})
        await client.call_tool("echo", {"text": "b"})
    await observability.shutdown()
    spans = receiver.spans()
    (session,) = spans_named(spans, "mcp.session")
    http_traces = {span.trace_id for span in spans if span.scope_name.endswith("asgi")}
    requests = [span for span in spans if span.kind == "SERVER" and span.scope_name == "shinzo_otel"]
    assert len(requests) == 5  # initialize, notifications/initialized, 2 calls, the client's tools/list
    for span in requests:
        assert span.trace_id == session.trace_id and span.trace_id not in http_traces, span.name
        assert span.parent_span_id == session.span_id
        assert span.attributes["mcp.session.id"] == session.attributes["mcp.session.id"]


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
async def test_conversation_ids(receiver: OtlpReceiver, tracer_provider: TracerProvider, stateless: bool):
    """A conversation id the client sends: on a connection with its own session only an attribute; on
    stateless HTTP (each request alone) the session (DESIGN.md "Sessions", step 3)."""
    server = make_lowlevel()
    observability = _instrument(server, receiver, tracer_provider)
    async with serve_http(lowlevel_http_app(server, stateless=stateless)) as url:
        for conversation in ("conv-A", "conv-B", "conv-A"):
            async with http_client(url, "http-stateful") as client:
                await client.call_tool("echo", {"text": "x"}, meta={"openai/session": conversation})
    await observability.shutdown()
    spans = receiver.spans()
    calls = spans_named(spans, "tools/call echo")
    assert sorted(str(span.attributes["gen_ai.conversation.id"]) for span in calls) == [
        "conv-A",
        "conv-A",
        "conv-B",
    ]
    sessions = spans_named(spans, "mcp.session")
    if stateless:
        assert {span.attributes["shinzo.session.origin"] for span in sessions} == {"conversation"}
        assert sorted(len(group) for group in by_session(calls).values()) == [1, 2]
    else:
        assert len(sessions) == 3
        assert {span.attributes["shinzo.session.origin"] for span in sessions} == {"protocol"}
        assert {span.attributes["gen_ai.conversation.id"] for span in sessions} == {"conv-A", "conv-B"}
    assert all(("mcp.session.id" in span.attributes) == (not stateless) for span in calls)


async def test_header_and_meta_key_resolvers(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    """The built-in resolvers read mcp 1.x's `RequestContext`; the resolver's key is never exported."""
    header_server = make_lowlevel()
    observability = _instrument(
        header_server, receiver, tracer_provider, session_resolver=session_resolvers.header("x-tenant-user")
    )
    async with serve_http(lowlevel_http_app(header_server, stateless=True)) as url:
        for user in ("user-ada@example.com", "user-bob@example.com", "user-ada@example.com"):
            async with http_client(url, "http-stateless", headers={"x-tenant-user": user}) as client:
                await client.call_tool("echo", {"text": "x"})
    await observability.shutdown()
    meta_server = make_lowlevel()
    observability = _instrument(
        meta_server, receiver, tracer_provider, session_resolver=session_resolvers.meta_key("com.example/key")
    )
    async with memory_client(meta_server) as client:
        for key in ("k1", "k2", "k1"):
            await client.call_tool("crash", {"text": "x"}, meta={"com.example/key": key})
    await observability.shutdown()
    spans = receiver.spans()
    origins = sorted(
        str(span.attributes["shinzo.session.origin"]) for span in spans_named(spans, "mcp.session")
    )
    # Two users, two keys; the in-memory handshake carries no key: its connection is its session.
    assert origins == ["connection", "resolver", "resolver", "resolver", "resolver"]
    for name in ("tools/call echo", "tools/call crash"):
        groups = by_session(spans_named(spans, name))
        assert None not in groups and sorted(len(group) for group in groups.values()) == [1, 2], name
    assert not any(
        "user-ada" in str(value) or value == "k1" for span in spans for value in span.attributes.values()
    )


class _Tokens:
    """A `TokenVerifier`: bearer `token-NAME` is the principal NAME."""

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token.startswith("token-"):
            return None
        name = token.removeprefix("token-")
        # mcp 1.x's AccessToken has no `subject`: the resolver then keys on the client id.
        return AccessToken(token=token, client_id=f"app-{name}", scopes=[], subject=name)


async def test_auth_subject_resolver_groups_by_principal(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = FastMCP(
        "authed",
        stateless_http=True,
        token_verifier=_Tokens(),
        auth=AuthSettings(issuer_url="https://auth.example.com", resource_server_url="http://127.0.0.1/mcp"),
    )

    @server.tool()
    def whoami() -> str:
        return "ok"

    observability = _instrument(
        server, receiver, tracer_provider, session_resolver=session_resolvers.auth_subject()
    )
    async with serve_http(server.streamable_http_app()) as url:
        for principal in ("alice", "bob", "alice", "alice"):
            async with http_client(
                url, "http-stateless", headers={"authorization": f"Bearer token-{principal}"}
            ) as c:
                await c.call_tool("whoami", {})
    await observability.shutdown()
    spans = receiver.spans()
    assert len(spans_named(spans, "mcp.session")) == 2
    groups = by_session(spans_named(spans, "tools/call whoami"))
    assert None not in groups and sorted(len(calls) for calls in groups.values()) == [1, 3]


async def test_manual_session_api(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    """Seed 000's API: stateless requests join the manual session; a connection keeps its own session
    and carries the manual session's resource uuid and metadata."""
    server = make_lowlevel()
    observability = _instrument(server, receiver, tracer_provider, enable_argument_collection=True)
    manual_id = (await start_manual_session(observability)).get_session_id()
    async with (
        serve_http(lowlevel_http_app(server, stateless=True)) as url,
        http_client(url, "http-stateless") as client,
    ):
        await client.call_tool("echo", {"text": "in-manual"})
    async with memory_client(server) as client:
        await client.call_tool("echo", {"text": "own-session"})
    await observability.instrumentation.complete_session()
    await observability.shutdown()
    check_manual_session(receiver.spans(), manual_id)


async def test_hooks_are_per_instance_and_uninstrument_restores(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    instrumented, other = make_lowlevel(), make_lowlevel()
    class_methods = (Server.run, Server._handle_message)
    observability = _instrument(instrumented, receiver, tracer_provider)
    assert {"run", "_handle_message"} <= set(vars(instrumented))
    assert not {"run", "_handle_message"} & set(vars(other))  # other servers untouched
    assert (Server.run, Server._handle_message) == class_methods  # and the class too
    for server in (instrumented, other):
        async with memory_client(server) as client:
            await client.call_tool("echo", {"text": "x"})
    uninstrument_server(instrumented)
    assert not {"run", "_handle_message"} & set(vars(instrumented))
    async with memory_client(instrumented) as client:
        await client.call_tool("echo", {"text": "after"})
    await observability.shutdown()
    assert len(spans_named(receiver.spans(), "tools/call echo")) == 1  # the instrumented server, before


async def test_fastmcp_native_span_off_only_for_the_instrumented_server(receiver: OtlpReceiver):
    await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, str(HERE / "fastmcp_native.py"), receiver.http_endpoint], check=True, timeout=60
        )
    )
    calls = [
        span
        for span in receiver.spans()
        if span.kind == "SERVER" and span.attributes.get("mcp.method.name") == "tools/call"
    ]
    ours = [span for span in calls if span.scope_name == "shinzo_otel"]
    assert len(ours) == 1 and ours[0].name == "tools/call echo" and "session.id" in ours[0].attributes
    native = [span for span in calls if span.scope_name == "fastmcp"]
    if int(version("fastmcp").split(".")[0]) >= 3:  # FastMCP 2 has no native tracing
        assert len(native) == 1 and native[0].attributes.get("fastmcp.server.name") == "plain"
    assert len(calls) == len(ours) + len(native) and len(native) <= 1


async def test_zero_code_opentelemetry_instrument(receiver: OtlpReceiver):
    command, args, env = zero_code_launch(receiver, str(STDIO_SERVER), "lowlevel", "plain")
    params = StdioServerParameters(command=command, args=args, env=env)
    async with stdio_client(params) as (read, write), session_over(read, write) as client:
        await client.call_tool("echo", {"text": "zero-code"})
    await check_zero_code_session(receiver, "echo", "lowlevel-server")


async def test_a_framework_is_instrumented_through_its_lowlevel_server(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_sdk_fastmcp()
    observability = _instrument(server, receiver, tracer_provider)
    assert _instrument(server._mcp_server, receiver, tracer_provider) is observability
    assert {"run", "_handle_message"} <= set(vars(server._mcp_server))
    await observability.shutdown()
