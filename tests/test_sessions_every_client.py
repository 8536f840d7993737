"""Sessions for every client: the default mode of each official client first, then the forced one.

Real clients talk to real servers (stdio subprocess, streamable HTTP on 127.0.0.1, in memory) and
the spans arrive at the loopback OTLP receiver. What a user sees (DESIGN.md "Sessions"):
- a 2026-07-28 duplex stream (stdio, FastMCP's in-memory client) is one session (origin `stream`);
- 2026-07-28 HTTP has no session, unless the client sends a conversation id (`_meta` vendor keys,
  W3C baggage) or the user resolves one (`session_resolvers`);
- a handshake-era connection keeps its own session and only gains `gen_ai.conversation.id`;
- `mcp.session.id` only ever names a protocol session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import EventType, SessionEvent, instrument_server, session_resolvers
from tests.loopback import by_session, instrument_to_receiver, server_spans
from tests.mcp_servers import (
    EXAMPLES,
    make_fastmcp,
    make_mcpserver,
    serve_http,
    spans_named,
    wait_for_spans,
)
from tests.otlp_receiver import OtlpReceiver
from tests.shared_checks import check_manual_session, start_manual_session

pytestmark = pytest.mark.anyio

_instrument = partial(instrument_to_receiver, server_name="every-client")

TESTS = Path(__file__).resolve().parent


async def test_stdio_default_client_is_one_stream_session(receiver: OtlpReceiver):
    """`mcp.Client(StdioServerParameters)` without `mode=` speaks the 2026-07-28 era: still exactly one
    session, holding every call of the stream, ended at EOF."""
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint}
    params = StdioServerParameters(
        command=sys.executable, args=[str(EXAMPLES / "weather_server.py")], env=env
    )
    async with Client(params) as client:
        await client.call_tool("forecast", {"city": "Oslo"})
        await client.call_tool("forecast", {"city": "Lima", "days": 2})
        assert (await client.call_tool("alerts", {"region": "north"})).is_error
    spans = await wait_for_spans(receiver, lambda spans: bool(spans_named(spans, "mcp.session")), timeout=30)
    (session,) = spans_named(spans, "mcp.session")
    attributes = session.attributes
    assert attributes["shinzo.session.origin"] == "stream"
    assert attributes["shinzo.session.type"] == "mcp"
    assert attributes["mcp.protocol.version"] == "2026-07-28"
    assert attributes["network.transport"] == "pipe"
    assert attributes["shinzo.client.name"] == "mcp"  # from the request envelope's clientInfo
    assert attributes["shinzo.session.end_reason"] == "connection_closed"
    assert "mcp.session.id" not in attributes
    requests = server_spans(spans)
    assert len(spans_named(spans, "tools/call forecast")) == 2 and spans_named(spans, "tools/call alerts")
    # Every message of the stream, server/discover and tools/list included, is in the one session.
    assert {span.attributes["session.id"] for span in requests} == {attributes["session.id"]}
    assert not any("mcp.session.id" in span.attributes for span in spans)


async def test_fastmcp_default_client_in_memory_is_one_stream_session(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    from fastmcp import Client as FastMCPClient

    server = make_fastmcp()
    observability = _instrument(server, receiver, tracer_provider)
    async with FastMCPClient(server) as client:
        await client.call_tool("echo", {"text": "a"})
        await client.call_tool("echo", {"text": "b"})
    await observability.shutdown()
    spans = receiver.spans()
    (session,) = spans_named(spans, "mcp.session")
    assert session.attributes["shinzo.session.origin"] == "stream"
    calls = spans_named(spans, "tools/call echo")
    assert len(calls) == 2
    assert {span.attributes["session.id"] for span in server_spans(spans)} == {
        session.attributes["session.id"]
    }


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
async def test_streamable_http_default_client_requests_stand_alone(
    receiver: OtlpReceiver, tracer_provider: TracerProvider, stateless: bool
):
    """A default client over streamable HTTP sends 2026-07-28 requests: no protocol session exists, so
    no session and no `mcp.session.id`; each request is its own trace."""
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    async with (
        serve_http(server.streamable_http_app(stateless_http=stateless)) as url,
        Client(f"{url}/mcp") as client,
    ):
        await client.call_tool("echo", {"text": "a"})
        await client.call_tool("echo", {"text": "b"})
    await observability.shutdown()
    spans = receiver.spans()
    calls = spans_named(spans, "tools/call echo")
    assert len(calls) == 2
    assert not spans_named(spans, "mcp.session") and not spans_named(spans, "mcp.session.start")
    assert all(
        "session.id" not in span.attributes and "mcp.session.id" not in span.attributes for span in spans
    )
    assert calls[0].trace_id != calls[1].trace_id
    assert {span.attributes["mcp.protocol.version"] for span in calls} == {"2026-07-28"}


def _meta_key(key: str) -> Any:
    def meta(conversation: str) -> tuple[dict[str, Any], dict[str, str]]:
        return {key: conversation}, {}

    return meta


def _meta_baggage(conversation: str) -> tuple[dict[str, Any], dict[str, str]]:
    return {"baggage": f"session.id={conversation},other=1"}, {}


def _header_baggage(conversation: str) -> tuple[dict[str, Any], dict[str, str]]:
    return {}, {"baggage": f"gen_ai.conversation.id={conversation}"}


CONVERSATION_CARRIERS = {
    "chatgpt": _meta_key("openai/session"),
    "vscode": _meta_key("vscode.conversationId"),
    "opencode": _meta_key("sessionID"),
    "baggage-meta": _meta_baggage,
    "baggage-header": _header_baggage,
}


@asynccontextmanager
async def _client(url: str, headers: Mapping[str, str], **kwargs: Any) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=dict(headers)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), **kwargs) as client,
    ):
        yield client


async def _interleave(url: str, carrier: Any, conversations: list[str], **kwargs: Any) -> None:
    """One client per conversation, calls alternating between them."""
    async with (
        _client(url, carrier(conversations[0])[1], **kwargs) as first,
        _client(url, carrier(conversations[1])[1], **kwargs) as second,
    ):
        for call in range(3):
            for client, conversation in ((first, conversations[0]), (second, conversations[1])):
                meta = carrier(conversation)[0] or None
                await client.call_tool("echo", {"text": f"{conversation}-{call}"}, meta=meta)


@pytest.mark.parametrize("carrier", CONVERSATION_CARRIERS.values(), ids=CONVERSATION_CARRIERS.keys())
async def test_conversations_become_sessions_in_the_2026_era(
    receiver: OtlpReceiver, tracer_provider: TracerProvider, carrier: Any
):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider, enable_argument_collection=True)
    async with serve_http(server.streamable_http_app(stateless_http=True)) as url:
        await _interleave(url, carrier, ["conv-A", "conv-B"])
    await observability.shutdown()  # ends the logical sessions (else they end when idle)
    spans = receiver.spans()
    sessions = {span.attributes["gen_ai.conversation.id"]: span for span in spans_named(spans, "mcp.session")}
    assert set(sessions) == {"conv-A", "conv-B"}
    for conversation, session in sessions.items():
        assert session.attributes["shinzo.session.origin"] == "conversation"
        assert session.attributes["shinzo.session.type"] == "logical"
        assert "mcp.session.id" not in session.attributes
        calls = [
            span
            for span in spans_named(spans, "tools/call echo")
            if span.attributes["session.id"] == session.attributes["session.id"]
        ]
        # The three calls of that conversation, and only they, whichever client sent them.
        assert sorted(str(span.attributes["gen_ai.tool.call.arguments"]) for span in calls) == [
            f'{{"text":"{conversation}-{call}"}}' for call in range(3)
        ]
        assert all(span.attributes["gen_ai.conversation.id"] == conversation for span in calls)
    assert not any("mcp.session.id" in span.attributes for span in spans)


async def test_conversation_on_a_legacy_connection_is_an_attribute(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    """Handshake era: the protocol session stays the session; the conversation id is only added."""
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider)
    async with serve_http(server.streamable_http_app()) as url:
        await _interleave(url, CONVERSATION_CARRIERS["chatgpt"], ["conv-A", "conv-B"], mode="legacy")
        spans = await wait_for_spans(receiver, lambda spans: len(spans_named(spans, "mcp.session")) == 2)
    await observability.shutdown()
    sessions = spans_named(spans, "mcp.session")
    assert {span.attributes["shinzo.session.origin"] for span in sessions} == {"protocol"}
    assert {span.attributes["gen_ai.conversation.id"] for span in sessions} == {"conv-A", "conv-B"}
    for session in sessions:
        assert session.attributes["mcp.session.id"] == session.attributes["session.id"]
    for span in spans_named(spans, "tools/call echo"):
        assert span.attributes["mcp.session.id"] == span.attributes["session.id"]
        assert span.attributes["gen_ai.conversation.id"] in ("conv-A", "conv-B")


async def test_conversation_keys_are_configurable(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(
        server,
        receiver,
        tracer_provider,
        conversation_meta_keys=("com.example/thread",),
        conversation_baggage_keys=(),
    )
    async with Client(server) as client:
        await client.call_tool("echo", {"text": "a"}, meta={"com.example/thread": "t-1"})
        await client.call_tool(
            "echo", {"text": "b"}, meta={"openai/session": "ignored", "baggage": "session.id=x"}
        )
    await observability.shutdown()
    spans = receiver.spans()
    (session,) = spans_named(spans, "mcp.session")
    assert session.attributes["gen_ai.conversation.id"] == "t-1"
    first, second = spans_named(spans, "tools/call echo")
    assert first.attributes["session.id"] == session.attributes["session.id"]
    assert "session.id" not in second.attributes and "gen_ai.conversation.id" not in second.attributes


async def test_header_resolver_wins_and_its_key_is_never_exported(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(
        server, receiver, tracer_provider, session_resolver=session_resolvers.header("x-tenant-user")
    )
    async with serve_http(server.streamable_http_app(stateless_http=True)) as url:
        for user in ("user-ada@example.com", "user-bob@example.com", "user-ada@example.com"):
            async with _client(url, {"x-tenant-user": user}) as client:
                # The resolver wins over the conversation id the client also sends.
                await client.call_tool("echo", {"text": "x"}, meta={"openai/session": "conv-1"})
    await observability.shutdown()
    spans = receiver.spans()
    sessions = spans_named(spans, "mcp.session")
    assert len(sessions) == 2
    assert {span.attributes["shinzo.session.origin"] for span in sessions} == {"resolver"}
    calls = spans_named(spans, "tools/call echo")
    assert sorted(len(group) for group in by_session(calls).values()) == [1, 2]
    assert {span.attributes["gen_ai.conversation.id"] for span in calls} == {"conv-1"}
    for span in spans:
        assert not any(
            "user-ada" in str(value) or "user-bob" in str(value) for value in span.attributes.values()
        )


class _Tokens:
    """A `TokenVerifier`: bearer `token-NAME` is the principal NAME."""

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token.startswith("token-"):
            return None
        return AccessToken(token=token, client_id="app", scopes=[], subject=token.removeprefix("token-"))


async def test_auth_subject_resolver_groups_by_principal(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = MCPServer(
        "authed",
        token_verifier=_Tokens(),
        auth=AuthSettings(
            issuer_url="https://auth.example.com",
            resource_server_url="http://127.0.0.1/mcp",
            validate_token_resource=False,  # the verifier above stands in for the audience check
        ),
    )

    @server.tool()
    def whoami() -> str:
        return "ok"

    observability = _instrument(
        server, receiver, tracer_provider, session_resolver=session_resolvers.auth_subject()
    )
    async with serve_http(server.streamable_http_app(stateless_http=True)) as url:
        for principal in ("alice", "bob", "alice", "alice"):
            async with _client(url, {"authorization": f"Bearer token-{principal}"}) as client:
                await client.call_tool("whoami", {})
    await observability.shutdown()
    spans = receiver.spans()
    assert len(spans_named(spans, "mcp.session")) == 2
    groups = by_session(spans_named(spans, "tools/call whoami"))
    assert None not in groups and sorted(len(calls) for calls in groups.values()) == [1, 3]


async def test_manual_session_api(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    """Seed 000's API: requests with nothing better join the manual session; a connection with its own
    session keeps it and carries the manual session's resource uuid and metadata."""
    server = make_mcpserver(tracer_provider)
    observability = _instrument(server, receiver, tracer_provider, enable_argument_collection=True)
    instrumentation = observability.instrumentation
    tracker = await start_manual_session(observability)
    manual_id = tracker.get_session_id()
    tracker.add_event(
        SessionEvent(
            timestamp=datetime(2026, 12, 1, tzinfo=timezone.utc),
            event_type=EventType.USER_INPUT,
            input_data={"question": "weather?"},
        )
    )
    async with Client(server) as client:  # in process, 2026-07-28: no session of its own
        await client.call_tool("echo", {"text": "in-manual"})
    async with Client(server, mode="legacy") as client:  # an in-memory connection: its own session
        await client.call_tool("echo", {"text": "own-session"})
    await instrumentation.complete_session()
    assert not tracker.is_session_active() and instrumentation.get_session_tracker() is None
    await observability.shutdown()
    manual = check_manual_session(receiver.spans(), manual_id)
    assert manual.attributes["shinzo.session.end_reason"] == "completed"
    (event,) = [event for event in manual.events if event.name == "shinzo.user_input"]
    assert event.attributes["shinzo.event.input"] == '{"question":"weather?"}'


async def test_stream_session_ends_when_the_stream_ends_not_at_shutdown(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    """Two FastMCP in-memory clients one after the other: two stream sessions, each ended by its own
    stream's EOF (`connection_closed`) while the server keeps running."""
    from fastmcp import Client as FastMCPClient

    server = make_fastmcp()
    observability = _instrument(server, receiver, tracer_provider)
    for text in ("first", "second"):
        async with FastMCPClient(server) as client:
            await client.call_tool("echo", {"text": text})
    spans = await wait_for_spans(receiver, lambda spans: len(spans_named(spans, "mcp.session")) == 2)
    assert {span.attributes["shinzo.session.end_reason"] for span in spans_named(spans, "mcp.session")} == {
        "connection_closed"
    }
    await observability.shutdown()
    await anyio.lowlevel.checkpoint()


# --- what the CLI shows: abandoned sessions, requests outside any session -------------------------

SHINZO = Path(sys.executable).with_name("shinzo-otel")


def _cli(*args: str, store: Path) -> str:
    done = subprocess.run(
        [str(SHINZO), *args, "--store", str(store)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _until(condition: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll `condition` (off the event loop) until it returns something truthy."""
    with anyio.fail_after(timeout):
        while not (value := await anyio.to_thread.run_sync(condition)):
            await anyio.sleep(0.1)
    return value


async def test_killed_server_leaves_an_abandoned_session(tmp_path: Path):
    """SIGKILL: the session span never ends, yet its start marker and the tool calls that ended just
    before are in the store; once silent past its idle timeout the CLI shows it as abandoned."""
    store, pid_file = tmp_path / "sessions.db", tmp_path / "server.pid"
    env = {**os.environ, "SHINZO_STORE_PATH": str(store)}
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(variable, None)
    # Idle timeout 1 s: the session is abandoned one second after its last activity.
    server = [str(TESTS / "stdio_pid_server.py"), str(pid_file), "1000"]
    params = StdioServerParameters(command=sys.executable, args=server, env=env)

    def listed() -> list[dict[str, Any]]:
        if not store.exists():
            return []
        return json.loads(_cli("sessions", "list", "--format", "json", store=store))

    async with Client(params) as client:
        for text in ("one", "two", "three"):
            await client.call_tool("echo", {"text": text})
        # The calls reach the store within moments of ending (no kill before they are there).
        await _until(lambda: [s for s in listed() if s["counts"]["tool_calls"] == 3])
        os.kill(int(pid_file.read_text(encoding="utf-8")), signal.SIGKILL)
    (session,) = await _until(lambda: [s for s in listed() if s["status"] == "abandoned"])
    assert session["end"] is None and session["origin"] == "stream"
    assert session["last_activity"] >= session["start"]
    table = _cli("sessions", "list", store=store)
    assert "abandoned" in table
    assert "echo" in _cli("replay", session["session_id"], store=store)


async def test_requests_outside_any_session_are_listed_and_replayed(
    tracer_provider: TracerProvider, tmp_path: Path
):
    store = tmp_path / "sessions.db"
    server = make_mcpserver(tracer_provider)
    observability = instrument_server(
        server, {"server_name": "stateless", "store_path": str(store)}, tracer_provider=tracer_provider
    )
    async with (
        serve_http(server.streamable_http_app(stateless_http=True)) as url,
        Client(f"{url}/mcp") as client,
    ):
        await client.call_tool("echo", {"text": "alone"})
        await client.call_tool("fail", {"reason": "boom"})
    await observability.shutdown()
    sessions = json.loads(_cli("sessions", "list", "--format", "json", store=store))
    assert sessions == []
    footer = subprocess.run(
        [str(SHINZO), "sessions", "list", "--store", str(store)], capture_output=True, text=True, timeout=60
    )
    requests = json.loads(_cli("requests", "list", "--format", "json", store=store))
    assert f"{len(requests)} requests outside any session" in footer.stdout + footer.stderr
    calls = {request["target"]: request for request in requests if request["method"] == "tools/call"}
    assert set(calls) == {"echo", "fail"}
    assert calls["fail"]["error_type"] == "tool_error"
    failed = json.loads(_cli("requests", "list", "--has-error", "--format", "json", store=store))
    assert [request["target"] for request in failed] == ["fail"]
    replay = _cli("requests", "show", calls["echo"]["trace_id"], store=store)
    assert "tools/call echo" in replay
