"""The tracking server in process: admin shell sessions exported through the same pipeline and checked
at a real loopback OTLP receiver, the restart case, /health and /api/sessions with its filters."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel.admin import SessionEventEmitter
from shinzo_otel.admin.server import TrackingServer
from shinzo_otel.replay.source import SessionFilter
from shinzo_otel.store import SessionStore
from tests.mcp_servers import serve_http, spans_named, wait_for_spans
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.test_admin_tracker import END, START, START_NS, start_event

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("private_store")]


@pytest.fixture
def provider() -> Iterator[Callable[[], TracerProvider]]:
    """New TracerProviders named like the real server's; one per server instance (one per process)."""
    made: list[TracerProvider] = []

    def make() -> TracerProvider:
        made.append(TracerProvider(resource=Resource.create({SERVICE_NAME: "shinzo-otel-admin"})))
        return made[-1]

    yield make
    for tracer_provider in made:
        tracer_provider.shutdown()


def admin_session_span(spans: list[ReceivedSpan], session_id: str) -> ReceivedSpan | None:
    return next(
        (span for span in spans_named(spans, "mcp.session") if span.attributes["session.id"] == session_id),
        None,
    )


async def test_admin_session_spans_at_an_otlp_receiver(
    receiver: OtlpReceiver, provider: Callable[[], TracerProvider]
) -> None:
    server = TrackingServer(exporter_endpoint=receiver.http_endpoint, tracer_provider=provider())
    async with serve_http(server.asgi_app()) as url:
        emitter = SessionEventEmitter("mahavishnu", endpoint=f"{url}/mcp")
        metadata = {"component_version": "1.0.0", "owner": "les@example.com", "adapters": ["prefect", "agno"]}
        session_id = await emitter.emit_session_start("MahavishnuShell", metadata)
        assert session_id is not None
        # The start is visible before the shell ends: its marker is exported at once.
        spans = await wait_for_spans(
            receiver,
            lambda spans: any(span.attributes.get("session.id") == session_id for span in spans),
        )
        (marker,) = spans_named(spans, "mcp.session.start")
        assert admin_session_span(spans, session_id) is None
        assert await emitter.emit_session_end(session_id, {"exit_reason": "user_exit"})
        spans = await wait_for_spans(
            receiver, lambda spans: admin_session_span(spans, session_id) is not None
        )

    session = admin_session_span(spans, session_id)
    assert session is not None
    assert session.kind == "INTERNAL"
    assert session.resource["service.name"] == "shinzo-otel-admin"
    assert marker.parent_span_id == session.span_id
    assert (session.start_ns, session.attributes["shinzo.session.end_reason"]) == (
        marker.start_ns,
        "user_exit",
    )
    attributes = session.attributes
    assert attributes["shinzo.session.type"] == "admin_shell"
    assert attributes["shinzo.admin.component"] == "mahavishnu"
    assert attributes["shinzo.admin.shell_type"] == "MahavishnuShell"
    assert attributes["process.pid"] == os.getpid() and isinstance(attributes["process.pid"], int)
    for key in (
        "user.name",
        "host.name",
        "process.runtime.version",
        "os.description",
        "process.working_directory",
    ):
        assert isinstance(attributes[key], str) and attributes[key], key
    assert attributes["os.type"] == "linux"
    assert attributes["shinzo.session.metadata.component_version"] == "1.0.0"
    assert attributes["shinzo.session.metadata.adapters"] == ("prefect", "agno")
    # The same privacy rules as every other span: the processor redacted the e-mail address.
    assert attributes["shinzo.session.metadata.owner"] == "[REDACTED]"
    assert "shinzo.session.metadata.owner" in attributes["shinzo.redacted_keys"]  # type: ignore[operator]
    assert [event.name for event in session.events] == ["session.start", "session.end"]
    # The emitter's calls are ordinary MCP requests of the instrumented server.
    calls = spans_named(spans, "tools/call track_session_start")
    assert len(calls) == 1 and calls[0].attributes["gen_ai.tool.name"] == "track_session_start"


async def test_an_admin_session_reported_inside_an_mcp_session_keeps_its_own_id(
    receiver: OtlpReceiver, provider: Callable[[], TracerProvider]
) -> None:
    server = TrackingServer(exporter_endpoint=receiver.http_endpoint, tracer_provider=provider())
    async with serve_http(server.asgi_app()) as url:
        # A legacy client has a protocol session: the tool call runs inside it.
        async with Client(f"{url}/mcp", mode="legacy") as client:
            result = await client.call_tool("track_session_start", start_event())
            session_id = (result.structured_content or {})["session_id"]
            await client.call_tool("track_session_end", {"session_id": session_id, "timestamp": END})
        spans = await wait_for_spans(
            receiver, lambda spans: admin_session_span(spans, session_id) is not None
        )
    session = admin_session_span(spans, session_id)
    assert session is not None
    assert "mcp.session.id" not in session.attributes
    (call,) = spans_named(spans, "tools/call track_session_start")
    assert call.attributes["session.id"] == call.attributes["mcp.session.id"] != session_id


async def test_a_session_survives_a_restart_of_the_tracking_server(
    receiver: OtlpReceiver, provider: Callable[[], TracerProvider], tmp_path: Path
) -> None:
    state = tmp_path / "admin.db"
    first = TrackingServer(
        exporter_endpoint=receiver.http_endpoint, tracer_provider=provider(), state_path=state
    )
    async with serve_http(first.asgi_app()) as url, Client(f"{url}/mcp") as client:
        started = await client.call_tool("track_session_start", start_event())
    session_id = (started.structured_content or {})["session_id"]
    marker_spans = await wait_for_spans(receiver, lambda spans: bool(spans_named(spans, "mcp.session.start")))
    (marker,) = spans_named(marker_spans, "mcp.session.start")
    # The first server has shut down (its app's lifespan ended) with the session still open.
    assert admin_session_span(receiver.spans(), session_id) is None

    second = TrackingServer(
        exporter_endpoint=receiver.http_endpoint, tracer_provider=provider(), state_path=state
    )
    async with serve_http(second.asgi_app()) as url, Client(f"{url}/mcp") as client:
        ended = await client.call_tool(
            "track_session_end",
            {"session_id": session_id, "timestamp": END, "metadata": {"exit_reason": "quit"}},
        )
        assert (ended.structured_content or {})["status"] == "ended"
        spans = await wait_for_spans(
            receiver, lambda spans: admin_session_span(spans, session_id) is not None
        )

    session = admin_session_span(spans, session_id)
    assert session is not None
    assert (session.start_ns, session.end_ns) == (START_NS, START_NS + 4_211_101_000_000)
    assert session.attributes["shinzo.session.end_reason"] == "quit"
    assert session.attributes["user.name"] == "john"  # the attributes recorded at start
    assert [(link.trace_id, link.span_id) for link in session.links] == [
        (marker.trace_id, marker.parent_span_id)
    ]
    assert len(spans_named(spans, "mcp.session.start")) == 1


async def test_restart_with_the_embedded_store_records_the_duration(
    provider: Callable[[], TracerProvider], private_store: Path
) -> None:
    for step in ("start", "end"):  # a new server for each event, as after a restart
        server = TrackingServer(tracer_provider=provider())
        async with serve_http(server.asgi_app()) as url, Client(f"{url}/mcp") as client:
            if step == "start":
                await client.call_tool("track_session_start", start_event())
            else:
                await client.call_tool(
                    "track_session_end", {"session_id": "mahavishnu-20260206-123456", "timestamp": END}
                )
    async with (
        serve_http(TrackingServer(tracer_provider=provider()).asgi_app()) as url,
        httpx.AsyncClient() as http,
    ):
        (session,) = (await http.get(f"{url}/api/sessions", params={"type": "admin_shell"})).json()
    assert session["session_id"] == "mahavishnu-20260206-123456"
    assert (session["status"], session["end_reason"]) == ("ended", "session_end")
    assert session["duration_seconds"] == pytest.approx(4211.101, abs=1e-9)
    assert (session["start_time"], session["end_time"]) == (
        "2026-02-06T12:34:56.789000Z",
        "2026-02-06T13:45:07.890000Z",
    )
    assert private_store.with_suffix(".admin.db").is_file()  # the state file sits next to the store


# --- /health and /api/sessions -----------------------------------------------------------------------------


def shell(component: str, username: str, event_id: str, timestamp: str = START) -> dict[str, Any]:
    return start_event(
        component_name=component,
        event_id=event_id,
        timestamp=timestamp,
        user={"username": username, "home": f"/home/{username}"},
    )


async def test_health_and_sessions_api(provider: Callable[[], TracerProvider]) -> None:
    server = TrackingServer(tracer_provider=provider())
    async with serve_http(server.asgi_app()) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/health")).json() == {"status": "healthy"}
        assert (await http.get("/api/sessions")).json() == []  # nothing recorded yet

        async with Client(f"{url}/mcp", mode="legacy") as client:  # also an MCP session of its own
            await client.call_tool(
                "track_session_start", shell("mahavishnu", "les", "11111111-1111-4111-8111-111111111111")
            )
            await client.call_tool(
                "track_session_start",
                shell("oneiric", "ann", "22222222-2222-4222-8222-222222222222", "2026-02-06T12:40:00Z"),
            )
            await client.call_tool(
                "track_session_end",
                {"session_id": "oneiric-20260206-124000", "timestamp": "2026-02-06T12:50:00Z"},
            )
        assert server.observability.force_flush()

        async def ids(**params: Any) -> list[str]:
            response = await http.get("/api/sessions", params=params)
            assert response.status_code == 200, response.text
            return [session["session_id"] for session in response.json()]

        admin = await ids(type="admin_shell")
        assert admin == ["oneiric-20260206-124000", "mahavishnu-20260206-123456"]  # newest first
        assert len(await ids()) == 3  # plus the legacy client's MCP session
        assert await ids(component="mahavishnu") == ["mahavishnu-20260206-123456"]
        assert await ids(user="ann") == ["oneiric-20260206-124000"]
        assert await ids(type="admin_shell", incomplete="true") == ["mahavishnu-20260206-123456"]
        assert await ids(type="admin_shell", limit=1) == ["oneiric-20260206-124000"]
        assert await ids(type="admin_shell", service="shinzo-otel-admin") == admin
        assert await ids(type="admin_shell", service="another-service") == []
        assert await ids(type="admin_shell", has_error="true") == []
        assert await ids(type="admin_shell", after="2026-02-06T12:35:00") == ["oneiric-20260206-124000"]
        assert await ids(type="admin_shell", before="2026-02-06T12:35:00Z") == ["mahavishnu-20260206-123456"]
        # The ended one lasted 600 s; the open one has been running since February 2026.
        assert await ids(type="admin_shell", duration_greater=599) == admin
        assert await ids(type="admin_shell", duration_greater=601) == ["mahavishnu-20260206-123456"]

        (record,) = (await http.get("/api/sessions", params={"component": "oneiric"})).json()
        assert {
            key: record[key] for key in ("component_name", "shell_type", "pid", "username", "hostname")
        } == {
            "component_name": "oneiric",
            "shell_type": "MahavishnuShell",
            "pid": 12345,
            "username": "ann",
            "hostname": "server01",
        }
        assert (record["python_version"], record["platform"], record["working_directory"]) == (
            "3.13.0",
            "Linux-6.5.0-x86_64",
            "/home/john/projects",
        )
        assert record["metadata"] == {
            "component_version": "1.0.0",
            "cli_enabled": True,
            "adapters": ["llamaindex", "agno"],
        }
        assert (record["duration_seconds"], record["type"], record["counts"]["spans"]) == (
            600.0,
            "admin_shell",
            2,
        )

        bad = await http.get("/api/sessions", params={"limit": 0, "colour": "red"})
        assert bad.status_code == 400
        problems = [
            "limit: Input should be greater than or equal to 1",
            "colour: Extra inputs are not permitted",
        ]
        assert bad.json() == {"error": "; ".join(problems)}


async def test_sessions_api_without_an_embedded_store(
    receiver: OtlpReceiver, provider: Callable[[], TracerProvider]
) -> None:
    server = TrackingServer(exporter_endpoint=receiver.http_endpoint, tracer_provider=provider())
    async with serve_http(server.asgi_app()) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/api/sessions")
    assert response.status_code == 501
    assert "OTLP" in response.json()["error"]


# --- concurrency and the session-duration metric ----------------------------------------------------


async def test_concurrent_starts_on_two_servers_sharing_the_state_get_unique_ids(
    provider: Callable[[], TracerProvider], tmp_path: Path, private_store: Path
) -> None:
    """Issue 13 item 11: 60 shells of one component starting in the same second, through two servers
    (two connections to one state file, as two processes) at once, each start sent twice (a retry):
    every shell gets its own id, a retry the same one, and every session reaches the store."""
    state = tmp_path / "admin.db"
    first, second = (TrackingServer(tracer_provider=provider(), state_path=state) for _ in range(2))
    answers: dict[str, set[str]] = {}
    async with serve_http(first.asgi_app()) as first_url, serve_http(second.asgi_app()) as second_url:

        async def start(url: str, event_id: str) -> None:
            async with Client(f"{url}/mcp") as client:
                result = await client.call_tool("track_session_start", start_event(event_id=event_id))
            payload = result.structured_content or {}
            assert payload["status"] == "tracked", payload
            answers.setdefault(event_id, set()).add(payload["session_id"])

        async with anyio.create_task_group() as group:
            for index in range(60):
                event_id = str(uuid.UUID(int=index + 1, version=4))
                group.start_soon(start, first_url, event_id)
                group.start_soon(start, second_url, event_id)
    assert all(len(ids) == 1 for ids in answers.values()), answers  # a retry gets the same id
    ids = sorted(next(iter(ids)) for ids in answers.values())
    base = "mahavishnu-20260206-123456"
    assert ids == sorted([base, *(f"{base}-{suffix}" for suffix in range(2, 61))])
    with SessionStore(private_store) as store:  # both servers flushed at shutdown
        stored = store.list_sessions(SessionFilter(session_type="admin_shell", limit=None))
    assert sorted(summary.session_id for summary in stored) == ids


async def test_admin_sessions_record_the_session_duration_metric(
    provider: Callable[[], TracerProvider],
) -> None:
    """Issue 15 item 3: admin sessions are the pipeline's sessions, metric included."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    server = TrackingServer(tracer_provider=provider(), meter_provider=meter_provider)
    async with serve_http(server.asgi_app()) as url, Client(f"{url}/mcp") as client:
        await client.call_tool("track_session_start", start_event())
        ended = await client.call_tool(
            "track_session_end", {"session_id": "mahavishnu-20260206-123456", "timestamp": END}
        )
        assert (ended.structured_content or {})["status"] == "ended"
        points = [
            point
            for resource in (reader.get_metrics_data() or MetricsData(resource_metrics=[])).resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "mcp.server.session.duration"
            for point in metric.data.data_points
        ]
    meter_provider.shutdown()
    # END - START = 4211.101 s, far longer than the connection's own MCP session, if it has one.
    assert max(point.max for point in points) == pytest.approx(4211.101, abs=1e-6)
