"""The MCP tools track_session_start / track_session_end (seed 004) on real servers over streamable
HTTP on 127.0.0.1, called by the SDK's real client, with real PyJWT tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from mcp import Client
from mcp.server import MCPServer, Server
from mcp.shared.exceptions import MCPError

from shinzo_otel.admin import SessionTracker, register_admin_tools
from shinzo_otel.sessions import SessionManager
from tests.mcp_servers import make_lowlevel_server, make_mcpserver, serve_http
from tests.test_admin_tracker import Pipeline, start_event

pytestmark = pytest.mark.anyio

SECRET = "a-shared-secret-that-is-at-least-32-bytes-long"
SEED_FIELDS = [
    "event_version",
    "event_id",
    "component_name",
    "shell_type",
    "timestamp",
    "pid",
    "user",
    "hostname",
    "environment",
]


def seed_token(secret: str = SECRET, *, expires_in: int = 86_400, issuer: str = "session-buddy") -> str:
    """A token made the way seed 004 shows, with PyJWT."""
    now = int(time.time())
    claims = {"user_id": "admin-shell", "exp": now + expires_in, "iat": now, "type": "access", "iss": issuer}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[SessionTracker]:
    pipeline = Pipeline()
    tracker = SessionTracker(
        pipeline=SessionManager(pipeline.provider.get_tracer("test")), state_path=tmp_path / "state.db"
    )
    yield tracker
    tracker.close()
    pipeline.provider.shutdown()


@asynccontextmanager
async def connected(server: MCPServer | Server[Any], mode: str = "auto") -> AsyncIterator[Client]:
    async with serve_http(server.streamable_http_app()) as url, Client(f"{url}/mcp", mode=mode) as client:
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The seed's result dict; answers are results, never protocol-level failures, and an "error"
    status is a tool execution error (`isError`), nothing else is."""
    result = await client.call_tool(tool, arguments)
    assert isinstance(result.structured_content, dict), result.content
    assert result.is_error is (result.structured_content["status"] == "error")
    return result.structured_content


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcpserver_tools_track_a_session(tracker: SessionTracker, mode: str) -> None:
    server = make_mcpserver()
    register_admin_tools(server, tracker, secret=None)
    async with connected(server, mode) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"echo", "track_session_start", "track_session_end"} <= set(listed)
        start_properties = listed["track_session_start"].input_schema["properties"]
        assert set(start_properties) == {*SEED_FIELDS, "event_type", "metadata", "token"}
        assert start_properties["pid"]["maximum"] == 4194304
        assert start_properties["user"]["properties"]["username"]["maxLength"] == 100
        assert set(listed["track_session_end"].input_schema["properties"]) == {
            "event_type",
            "session_id",
            "timestamp",
            "metadata",
            "token",
        }

        started = await call(client, "track_session_start", {**start_event(), "event_type": "session_start"})
        assert started == {"session_id": "mahavishnu-20260206-123456", "status": "tracked", "error": None}
        ended = await call(
            client,
            "track_session_end",
            {
                "session_id": started["session_id"],
                "timestamp": "2026-02-06T13:45:07.890Z",
                "event_type": "session_end",
                "metadata": {"exit_reason": "user_exit"},
            },
        )
        assert ended == {"session_id": "mahavishnu-20260206-123456", "status": "ended", "error": None}
        unknown = await call(
            client,
            "track_session_end",
            {"session_id": "nope-20260206-000000", "timestamp": "2026-02-06T13:00:00Z"},
        )
        assert unknown == {"session_id": "nope-20260206-000000", "status": "not_found", "error": None}


async def test_invalid_arguments_get_the_seed_error_shape(tracker: SessionTracker) -> None:
    server = make_mcpserver()
    register_admin_tools(server, tracker, secret=None)
    async with connected(server) as client:
        bad_id = await call(client, "track_session_start", start_event(event_id="12345"))
        assert bad_id == {
            "session_id": None,
            "status": "error",
            "error": "Session start tracking failed: event_id: Invalid UUID v4 format: '12345'",
        }
        # Wrong JSON types and missing fields are the tracker's to report too, not the SDK's.
        wrong_type = await call(client, "track_session_start", {**start_event(pid="many"), "hostname": None})
        assert wrong_type["status"] == "error"
        assert wrong_type["error"] == (
            "Session start tracking failed: pid: Input should be a valid integer, unable to parse string as"
            " an integer; hostname: Field required"
        )


async def test_lowlevel_server_keeps_its_tools_and_gains_ours(tracker: SessionTracker) -> None:
    server = make_lowlevel_server()
    register_admin_tools(server, tracker, secret=None)
    async with connected(server) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == {"echo", "crash", "track_session_start", "track_session_end"}
        assert listed["track_session_start"].input_schema["required"] == SEED_FIELDS
        assert listed["track_session_end"].input_schema["required"] == ["session_id", "timestamp"]
        echoed = await client.call_tool("echo", {"text": "still here"})
        assert echoed.content[0].text == "still here"  # type: ignore[union-attr]
        started = await call(client, "track_session_start", start_event())
        assert started["status"] == "tracked"


async def test_lowlevel_server_without_tools(tracker: SessionTracker) -> None:
    server: Server[Any] = Server("bare")
    register_admin_tools(server, tracker, secret=None)
    async with connected(server) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert names == ["track_session_start", "track_session_end"]
        assert (await call(client, "track_session_start", start_event()))["status"] == "tracked"
        with pytest.raises(MCPError, match="Unknown tool: echo") as caught:
            await client.call_tool("echo", {})
        assert (
            caught.value.code == -32602
        )  # JSON-RPC invalid params, as the MCP spec has it for unknown tools


def test_other_objects_are_refused(tracker: SessionTracker) -> None:
    with pytest.raises(TypeError, match="MCPServer or a low-level Server"):
        register_admin_tools(object(), tracker)  # type: ignore[arg-type]


# --- JWT authentication (seed 004) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "Token required (a secret is set)"),
        ("", "Token required (a secret is set)"),
        (seed_token(expires_in=-3600), "Token has expired"),
        (seed_token("another-secret-that-is-at-least-32-bytes"), "Invalid token signature"),
        (seed_token(issuer="someone-else"), "Invalid token issuer (expected 'session-buddy')"),
        ("not.a.jwt", "Invalid token: Invalid header padding"),
    ],
)
async def test_refused_tokens_get_the_seed_error_shape(
    tracker: SessionTracker, token: str | None, reason: str
) -> None:
    server = make_mcpserver()
    register_admin_tools(server, tracker, secret=SECRET)
    async with connected(server) as client:
        started = await call(client, "track_session_start", {**start_event(), "token": token})
        assert started == {
            "session_id": None,
            "status": "error",
            "error": f"❌ Authentication failed: {reason}",
        }
        ended = await call(
            client,
            "track_session_end",
            {"session_id": "m-1", "timestamp": "2026-02-06T13:00:00Z", "token": token},
        )
        assert ended == {
            "session_id": "m-1",
            "status": "error",
            "error": f"❌ Authentication failed: {reason}",
        }


async def test_a_valid_token_is_accepted_and_never_reaches_the_event(tracker: SessionTracker) -> None:
    server = make_lowlevel_server()
    register_admin_tools(server, tracker, secret=SECRET)
    async with connected(server) as client:
        started = await call(client, "track_session_start", {**start_event(), "token": seed_token()})
        assert started["status"] == "tracked"
        ended = await call(
            client,
            "track_session_end",
            {"session_id": started["session_id"], "timestamp": "2026-02-06T13:00:00Z", "token": seed_token()},
        )
        assert ended["status"] == "ended"


async def test_the_secret_comes_from_the_environment(
    tracker: SessionTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "seed-secret-that-is-at-least-32-bytes-long")
    monkeypatch.setenv("SHINZO_ADMIN_SECRET", SECRET)  # ours wins
    server = make_mcpserver()
    register_admin_tools(server, tracker)
    async with connected(server) as client:
        missing = await call(client, "track_session_start", start_event())
        assert missing["error"] == "❌ Authentication failed: Token required (SHINZO_ADMIN_SECRET is set)"
        accepted = await call(client, "track_session_start", {**start_event(), "token": seed_token(SECRET)})
        assert accepted["status"] == "tracked"


async def test_without_a_secret_any_token_is_accepted(
    tracker: SessionTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHINZO_ADMIN_SECRET", raising=False)
    monkeypatch.delenv("SESSION_BUDDY_SECRET", raising=False)
    server = make_mcpserver()
    register_admin_tools(server, tracker)
    async with connected(server) as client:
        started = await call(client, "track_session_start", {**start_event(), "token": "whatever"})
        assert started["status"] == "tracked"
