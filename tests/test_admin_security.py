"""Who may read and report admin shell sessions (issue 13 items 8 and 10), on a real tracking server
served on 127.0.0.1 and called by real HTTP and MCP clients: `/api/sessions` guarded like `/mcp`
(Host/Origin checks, the same tokens), and refused calls visible to telemetry as tool errors."""

from __future__ import annotations

import httpx
import pytest
from mcp import Client
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel.admin import create_token
from shinzo_otel.admin.server import TrackingServer
from tests.mcp_servers import serve_http, spans_named, wait_for_spans
from tests.otlp_receiver import OtlpReceiver
from tests.test_admin_tools import SECRET, seed_token
from tests.test_admin_tracker import start_event

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("private_store")]

API = "/api/sessions"
AUTH_REFUSED = "❌ Authentication failed: "


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_sessions_api_needs_the_same_token_as_the_tools(tracer_provider: TracerProvider) -> None:
    server = TrackingServer(secret=SECRET, tracer_provider=tracer_provider)
    async with serve_http(server.asgi_app()) as url, httpx.AsyncClient(base_url=url) as http:
        missing = await http.get(API)
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="shinzo-otel-admin"'  # RFC 6750
        assert missing.json() == {"error": f"{AUTH_REFUSED}Token required (a secret is set)"}
        for token, reason in (
            ("not.a.jwt", "Invalid token: Invalid header padding"),
            (seed_token("another-secret-that-is-at-least-32-bytes"), "Invalid token signature"),
            (seed_token(issuer="someone-else"), "Invalid token issuer (expected 'session-buddy')"),
            (seed_token(expires_in=-3600), "Token has expired"),
        ):
            refused = await http.get(API, headers=bearer(token))
            assert (refused.status_code, refused.json()) == (401, {"error": f"{AUTH_REFUSED}{reason}"})
        # Basic credentials are not a bearer token.
        assert (await http.get(API, headers={"Authorization": f"Basic {SECRET}"})).status_code == 401

        # The token a shell uses for the tools reads the sessions too.
        async with Client(f"{url}/mcp") as client:
            started = await client.call_tool("track_session_start", {**start_event(), "token": seed_token()})
            assert (started.structured_content or {})["status"] == "tracked"
        assert server.observability.force_flush()
        accepted = await http.get(API, headers=bearer(create_token(SECRET)))
        assert accepted.status_code == 200, accepted.text
        assert [record["session_id"] for record in accepted.json() if record["type"] == "admin_shell"] == [
            "mahavishnu-20260206-123456"
        ]
        assert (await http.get("/health")).status_code == 200  # nothing to hide there


async def test_without_a_secret_the_sessions_api_is_open_on_loopback(tracer_provider: TracerProvider) -> None:
    # Seed 002's monitoring example reads it without credentials; `serve` keeps such a server on
    # loopback (tests/test_admin_serve.py).
    server = TrackingServer(tracer_provider=tracer_provider)
    async with serve_http(server.asgi_app()) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get(API)).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"Host": "evil.example.com"}, 421, id="a foreign Host (DNS rebinding)"),
        pytest.param({"Host": "evil.example.com:8678"}, 421, id="a foreign Host with a port"),
        pytest.param({"Origin": "http://evil.example.com"}, 403, id="a foreign Origin"),
        pytest.param({"Origin": "http://localhost:3000"}, None, id="a local page"),
        pytest.param({"Host": "localhost:8678"}, None, id="localhost by name"),
    ],
)
async def test_sessions_api_checks_host_and_origin_like_mcp(
    tracer_provider: TracerProvider, headers: dict[str, str], status: int | None
) -> None:
    server = TrackingServer(tracer_provider=tracer_provider)
    async with serve_http(server.asgi_app()) as url, httpx.AsyncClient(base_url=url) as http:
        api = await http.get(API, headers=headers)
        mcp = await http.post(
            "/mcp",
            headers={**headers, "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
    if status is None:
        assert api.status_code == 200, api.text
        assert mcp.status_code not in (403, 421), mcp.text
    else:
        assert (api.status_code, mcp.status_code) == (status, status)


async def test_a_refused_call_is_a_tool_error_that_telemetry_records(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
) -> None:
    server = TrackingServer(
        secret=SECRET, exporter_endpoint=receiver.http_endpoint, tracer_provider=tracer_provider
    )
    async with serve_http(server.asgi_app()) as url, Client(f"{url}/mcp") as client:
        refused = await client.call_tool("track_session_start", start_event())  # no token
        assert refused.is_error
        assert refused.structured_content == {
            "session_id": None,
            "status": "error",
            "error": f"{AUTH_REFUSED}Token required (a secret is set)",
        }
        refused_end = await client.call_tool(
            "track_session_end", {"session_id": "x-1", "timestamp": "2026-02-06T13:00:00Z", "token": "bad"}
        )
        assert refused_end.is_error
        accepted = await client.call_tool("track_session_start", {**start_event(), "token": seed_token()})
        assert not accepted.is_error
        spans = await wait_for_spans(
            receiver, lambda spans: len(spans_named(spans, "tools/call track_session_start")) == 2
        )
    starts = spans_named(spans, "tools/call track_session_start")
    assert sorted(str(span.attributes.get("error.type")) for span in starts) == ["None", "tool_error"]
    (end,) = spans_named(spans, "tools/call track_session_end")
    assert end.attributes["error.type"] == "tool_error"
