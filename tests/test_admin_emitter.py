"""The shell side: a real SessionEventEmitter talking to a real tracking server over streamable HTTP
(JWT on and off) and over stdio, its timeout and circuit breaker against a server that is down and
then comes back, and the one-line shell integration (async context manager)."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import StdioServerParameters
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel.admin import AdminShell, AdminShellSession, SessionEventEmitter
from shinzo_otel.admin.server import TrackingServer
from shinzo_otel.replay.model import SessionSummary
from shinzo_otel.store import SessionStore
from tests.mcp_servers import serve_http
from tests.test_admin_tools import SECRET, seed_token

pytestmark = pytest.mark.anyio

EMITTER_LOGGER = "shinzo_otel.admin.emitter"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def tracking(store: Path, tracer_provider: TracerProvider) -> Callable[..., TrackingServer]:
    def make(**options: Any) -> TrackingServer:
        return TrackingServer(store_path=store, tracer_provider=tracer_provider, **options)

    return make


def emitter_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == EMITTER_LOGGER]


def stored_sessions(store: Path) -> dict[str, SessionSummary]:
    with SessionStore(store) as sessions:
        return {summary.session_id: summary for summary in sessions.list_sessions()}


@pytest.fixture(autouse=True)
def no_secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SHINZO_ADMIN_SECRET",
        "SESSION_BUDDY_SECRET",
        "SHINZO_ADMIN_ENDPOINT",
        "SESSION_BUDDY_MCP_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)


async def test_emitter_tracks_a_session_over_streamable_http(
    tracking: Callable[..., TrackingServer], store: Path
) -> None:
    server = tracking()
    async with serve_http(server.asgi_app()) as url:
        emitter = SessionEventEmitter("mahavishnu", endpoint=f"{url}/mcp")
        session_id = await emitter.emit_session_start("MahavishnuShell", {"component_version": "1.0.0"})
        assert session_id is not None and session_id.startswith("mahavishnu-")
        assert await emitter.emit_session_end(session_id, {"exit_reason": "user_exit"}) is True
        assert await emitter.emit_session_end("mahavishnu-19990101-000000") is False  # not_found
    # The app's shutdown flushed the spans to the store.
    session = stored_sessions(store)[session_id]
    assert (session.type, session.status, session.end_reason) == ("admin_shell", "ended", "user_exit")
    assert session.attributes["shinzo.admin.shell_type"] == "MahavishnuShell"
    assert session.attributes["shinzo.session.metadata.component_version"] == "1.0.0"
    assert session.attributes["process.pid"] == os.getpid()


async def test_emitter_with_jwt(
    tracking: Callable[..., TrackingServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = tracking(secret=SECRET)
    async with serve_http(server.asgi_app()) as url:
        minted = SessionEventEmitter("oneiric", endpoint=f"{url}/mcp", secret=SECRET)
        session_id = await minted.emit_session_start("OneiricShell")
        assert session_id is not None
        assert await minted.emit_session_end(session_id)

        given = SessionEventEmitter("oneiric", endpoint=f"{url}/mcp", token=seed_token())
        assert await given.emit_session_start("OneiricShell") is not None

        refused = SessionEventEmitter(
            "oneiric",
            endpoint=f"{url}/mcp",
            secret="wrong-secret-that-is-also-32-bytes-long",
            failure_threshold=1,
        )
        with caplog.at_level(logging.WARNING, logger=EMITTER_LOGGER):
            assert await refused.emit_session_start("OneiricShell") is None
        assert emitter_messages(caplog) == [
            "session start not tracked: ❌ Authentication failed: Invalid token signature"
        ]
        # A refusal is an answer, not an outage: the circuit stays closed.
        assert refused.available


async def test_emitter_reads_the_secret_from_the_environment(
    tracking: Callable[..., TrackingServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", SECRET)  # read by the server and by the emitter
    server = tracking()
    async with serve_http(server.asgi_app()) as url:
        assert (
            await SessionEventEmitter("oneiric", endpoint=f"{url}/mcp").emit_session_start("Shell")
            is not None
        )
        monkeypatch.delenv("SESSION_BUDDY_SECRET")
        assert await SessionEventEmitter("oneiric", endpoint=f"{url}/mcp").emit_session_start("Shell") is None


def test_endpoint_comes_from_argument_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SessionEventEmitter("c").endpoint == "http://localhost:8678/mcp"
    monkeypatch.setenv("SESSION_BUDDY_MCP_ENDPOINT", "http://buddy:1/mcp")
    assert SessionEventEmitter("c").endpoint == "http://buddy:1/mcp"
    monkeypatch.setenv("SHINZO_ADMIN_ENDPOINT", "http://shinzo:2/mcp")
    assert SessionEventEmitter("c").endpoint == "http://shinzo:2/mcp"
    assert SessionEventEmitter("c", endpoint="http://explicit:3/mcp").endpoint == "http://explicit:3/mcp"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"component_name": "bad name"}, "component_name 'bad name' must match"),
        ({"component_name": "c", "timeout_seconds": 0}, "timeout_seconds must be positive"),
        ({"component_name": "c", "failure_threshold": 0}, "failure_threshold must be at least 1"),
        ({"component_name": "c", "open_seconds": -1}, "open_seconds must not be negative"),
    ],
)
def test_bad_emitter_arguments_raise(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SessionEventEmitter(**arguments)


async def test_emitter_over_stdio_and_across_processes(store: Path) -> None:
    # Each call starts its own server process: the end is handled by a process that never saw the
    # start, which works only because open sessions are persisted.
    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("shinzo-otel")),
        args=["serve", "--transport", "stdio", "--store", str(store)],
    )
    emitter = SessionEventEmitter("oneiric", endpoint=params, timeout_seconds=20)
    session_id = await emitter.emit_session_start("OneiricShell")
    assert session_id is not None
    assert await emitter.emit_session_end(session_id, {"exit_reason": "user_exit"})
    session = stored_sessions(store)[session_id]
    assert (session.status, session.end_reason) == ("ended", "user_exit")


# --- timeout and circuit breaker -----------------------------------------------------------------------


@pytest.fixture
def reserved_socket() -> Iterator[socket.socket]:
    """A bound loopback socket that does not listen yet: connections to it are refused (a server
    that is down) until a server starts listening on it (the server comes back), on the same port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


async def test_circuit_breaker_against_a_server_that_is_down_then_comes_back(
    tracking: Callable[..., TrackingServer],
    reserved_socket: socket.socket,
    store: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = reserved_socket.getsockname()[1]
    emitter = SessionEventEmitter("mahavishnu", endpoint=f"http://127.0.0.1:{port}/mcp", open_seconds=0.5)
    with caplog.at_level(logging.DEBUG, logger=EMITTER_LOGGER):
        for attempt in range(3):
            assert emitter.available
            assert await emitter.emit_session_start("Shell") is None  # the shell goes on untracked
            opened = [
                record
                for record in caplog.records
                if record.getMessage().startswith("Circuit breaker opened")
            ]
            assert len(opened) == (1 if attempt == 2 else 0)
        assert opened[0].levelno == logging.WARNING
        assert not emitter.available
        caplog.clear()
        # While open, nothing is sent at all.
        assert await emitter.emit_session_end("mahavishnu-20260206-123456") is False
        assert emitter_messages(caplog) == [
            "session tracking paused (circuit breaker open): track_session_end not sent"
        ]

    server = tracking()
    async with serve_http(server.asgi_app(), reserved_socket):
        with anyio.fail_after(5):
            while not emitter.available:  # the open interval passes
                await anyio.sleep(0.05)
        session_id = await emitter.emit_session_start("Shell")
        assert session_id is not None
        assert emitter.available
        assert await emitter.emit_session_end(session_id)
    assert stored_sessions(store)[session_id].status == "ended"


async def test_a_silent_server_costs_at_most_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # connections are accepted by the kernel, never answered
        port = silent.getsockname()[1]
        emitter = SessionEventEmitter(
            "c", endpoint=f"http://127.0.0.1:{port}/mcp", timeout_seconds=0.3, failure_threshold=1
        )
        with caplog.at_level(logging.INFO, logger=EMITTER_LOGGER):
            with anyio.fail_after(10):  # a guard against hanging, not a timing assertion
                assert await emitter.emit_session_start("Shell") is None
    assert "TimeoutError" in emitter_messages(caplog)[0]
    assert not emitter.available


# --- shell integration -----------------------------------------------------------------------------------


async def test_async_context_manager_emits_start_and_end(
    tracking: Callable[..., TrackingServer], store: Path
) -> None:
    server = tracking()
    async with serve_http(server.asgi_app()) as url:
        emitter = SessionEventEmitter("mahavishnu", endpoint=f"{url}/mcp")
        async with AdminShellSession(
            "mahavishnu", shell_type="MahavishnuShell", metadata={"cli_enabled": True}, emitter=emitter
        ) as shell:
            clean_id = shell.session_id
            assert clean_id is not None
        assert shell.session_id is None
        with pytest.raises(KeyError):
            async with AdminShellSession("mahavishnu", emitter=emitter) as failing:
                failed_id = failing.session_id
                raise KeyError("boom")  # the shell's own exception passes through unchanged
    sessions = stored_sessions(store)
    assert (
        sessions[clean_id].end_reason,
        sessions[clean_id].attributes["shinzo.session.metadata.cli_enabled"],
    ) == (
        "user_exit",
        True,
    )
    assert failed_id is not None and sessions[failed_id].end_reason == "error"


async def test_shell_session_without_a_tracking_server_runs_untracked(reserved_socket: socket.socket) -> None:
    port = reserved_socket.getsockname()[1]
    emitter = SessionEventEmitter("mahavishnu", endpoint=f"http://127.0.0.1:{port}/mcp")
    async with AdminShellSession("mahavishnu", emitter=emitter) as shell:
        assert shell.session_id is None
    assert await shell.aend() is False


async def test_admin_shell_names_its_session_and_its_emitter(
    tracking: Callable[..., TrackingServer], store: Path
) -> None:
    """Issue 15 item 4: `session_emitter` is the emitter, `admin_session` the shell's session;
    `session_tracker` stays as seed 002's name for the emitter, replaceable as its tests do."""

    class NamedShell(AdminShell):
        component_name = "named"

    shell = NamedShell()
    assert isinstance(shell.admin_session, AdminShellSession)
    assert isinstance(shell.session_emitter, SessionEventEmitter)
    assert shell.session_tracker is shell.session_emitter is shell.admin_session.emitter
    server = tracking()
    async with serve_http(server.asgi_app()) as url:
        shell.session_tracker = SessionEventEmitter("named", endpoint=f"{url}/mcp")  # seed 002's test
        assert shell.session_emitter is shell.session_tracker
        assert shell.session_tracker.available  # seed 002's check
        session_id = await anyio.to_thread.run_sync(lambda: (shell.start(), shell.session_id)[1])
        assert session_id is not None and session_id.startswith("named-")
        await anyio.to_thread.run_sync(shell.exit)
    assert stored_sessions(store)[session_id].end_reason == "user_exit"
