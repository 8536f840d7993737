"""Bounded metadata (issue 13 item 9): a start or end event whose metadata is too large is answered
with an error that names the limit, and every accepted session reaches the store with its identity.

Real client -> real tracking server on 127.0.0.1 -> the embedded store, read back over /api/sessions.
Expected sizes are worked out by hand from the JSON texts written here. The server's TracerProvider
(`tracer_provider`) has the SDK's default span limits: 128 attributes.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from mcp import Client
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel.admin.server import TrackingServer
from tests.mcp_servers import serve_http
from tests.test_admin_tracker import END, start_event

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("private_store")]

START_FAILED = "Session start tracking failed: "
END_FAILED = "Session end tracking failed: "


def keys(count: int, prefix: str = "k") -> dict[str, Any]:
    return {f"{prefix}{index:05d}": index for index in range(count)}


async def admin_sessions(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{url}/api/sessions", params={"type": "admin_shell", "limit": 100})
    assert response.status_code == 200, response.text
    sessions = response.json()
    assert isinstance(sessions, list)
    return sessions


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        # The case: 116 keys used to be "tracked" and lost (session.id evicted).
        (keys(116), "metadata: at most 64 keys allowed, got 116"),
        (keys(65), "metadata: at most 64 keys allowed, got 65"),
        (keys(10_000), "metadata: at most 64 keys allowed, got 10000"),
        # {"blob":"x...x"}: 9 + 1_000_000 + 2 bytes.
        ({"blob": "x" * 1_000_000}, "metadata: at most 16384 bytes of JSON allowed, got 1000011"),
    ],
    ids=["116 keys", "65 keys", "10000 keys", "1 MB"],
)
async def test_too_much_start_metadata_is_an_error_naming_the_limit(
    tracer_provider: TracerProvider, caplog: pytest.LogCaptureFixture, metadata: dict[str, Any], error: str
) -> None:
    server = TrackingServer(tracer_provider=tracer_provider)
    async with serve_http(server.asgi_app()) as url, Client(f"{url}/mcp") as client:
        with caplog.at_level(logging.WARNING, logger="opentelemetry"):
            result = await client.call_tool("track_session_start", start_event(metadata=metadata))
        assert result.is_error
        assert result.structured_content == {
            "session_id": None,
            "status": "error",
            "error": START_FAILED + error,
        }
        assert server.observability.force_flush()
        assert await admin_sessions(url) == []  # nothing half-recorded
    # The SDK never saw the attributes: no dropped-attribute warnings (one per key before).
    assert [record for record in caplog.records if record.name.startswith("opentelemetry")] == []


async def test_metadata_at_the_limits_keeps_the_session_and_its_identity(
    tracer_provider: TracerProvider,
) -> None:
    start_metadata = keys(64, "s")
    end_metadata = {"exit_reason": "user_exit", **keys(15, "e")}  # 16 keys
    server = TrackingServer(tracer_provider=tracer_provider)
    async with serve_http(server.asgi_app()) as url, Client(f"{url}/mcp") as client:
        started = await client.call_tool("track_session_start", start_event(metadata=start_metadata))
        assert started.structured_content == {
            "session_id": "mahavishnu-20260206-123456",
            "status": "tracked",
            "error": None,
        }
        too_many = await client.call_tool(
            "track_session_end",
            {"session_id": "mahavishnu-20260206-123456", "timestamp": END, "metadata": keys(17)},
        )
        assert too_many.is_error
        assert (too_many.structured_content or {})["error"] == (
            END_FAILED + "metadata: at most 16 keys allowed, got 17"
        )
        ended = await client.call_tool(
            "track_session_end",
            {"session_id": "mahavishnu-20260206-123456", "timestamp": END, "metadata": end_metadata},
        )
        assert (ended.structured_content or {})["status"] == "ended"
        assert server.observability.force_flush()
        (session,) = await admin_sessions(url)
    assert (session["session_id"], session["status"], session["end_reason"]) == (
        "mahavishnu-20260206-123456",
        "ended",
        "user_exit",
    )
    assert (session["component_name"], session["username"], session["hostname"]) == (
        "mahavishnu",
        "john",
        "server01",
    )
    assert session["attributes"]["shinzo.session.type"] == "admin_shell"
    assert session["metadata"] == {**start_metadata, **keys(15, "e")}
    assert session["duration_seconds"] == pytest.approx(4211.101, abs=1e-9)
