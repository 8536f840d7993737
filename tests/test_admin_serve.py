"""`shinzo-otel serve` as a real subprocess: /health, a session tracked by the emitter and read back
from /api/sessions, the synchronous shell integrations, and the atexit hook of a shell process that
exits without ending its session.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest

from shinzo_otel.admin import AdminShell, AdminShellSession, SessionEventEmitter

SECRETS_AND_ENDPOINTS = (
    "SHINZO_ADMIN_SECRET",
    "SESSION_BUDDY_SECRET",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def _serve_command() -> list[str]:
    return [str(Path(sys.executable).with_name("shinzo-otel")), "serve"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in SECRETS_AND_ENDPOINTS}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = tmp_path_factory.mktemp("serve") / "sessions.db"
    port = _free_port()
    command = [*_serve_command(), "--host", "127.0.0.1", "--port", str(port), "--store", str(store)]
    process = subprocess.Popen(command, env=_environment(), stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"server exited: {process.stderr.read() if process.stderr else ''}"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not answer /health"
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # a graceful stop flushes and exits 0
        try:
            returncode = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        assert returncode == 0, process.stderr.read() if process.stderr else ""


def wait_for_session(url: str, predicate: Callable[[dict[str, Any]], bool], **params: Any) -> dict[str, Any]:
    """Poll /api/sessions (spans reach the store off the request path) until a session matches."""
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(f"{url}/api/sessions", params=params, timeout=5)
        assert response.status_code == 200, response.text
        matching = [session for session in response.json() if predicate(session)]
        if matching:
            return matching[0]
        assert time.monotonic() < deadline, f"no matching session in {response.json()}"
        time.sleep(0.1)


def test_health(server_url: str) -> None:
    response = httpx.get(f"{server_url}/health")
    assert (response.status_code, response.json()) == (200, {"status": "healthy"})


def test_session_tracked_by_the_emitter_is_read_back_from_the_api(server_url: str) -> None:
    emitter = SessionEventEmitter("mahavishnu", endpoint=f"{server_url}/mcp")
    session_id = anyio.run(emitter.emit_session_start, "MahavishnuShell")
    assert session_id is not None
    active = wait_for_session(server_url, lambda s: s["session_id"] == session_id, type="admin_shell")
    assert (active["status"], active["end_time"]) == ("active", None)
    assert (active["component_name"], active["shell_type"], active["pid"]) == (
        "mahavishnu",
        "MahavishnuShell",
        os.getpid(),
    )
    assert active["hostname"] == socket.gethostname()
    assert active["working_directory"] == os.getcwd()

    assert anyio.run(emitter.emit_session_end, session_id, {"exit_reason": "user_exit"})
    ended = wait_for_session(
        server_url, lambda s: s["session_id"] == session_id and s["status"] == "ended", component="mahavishnu"
    )
    assert ended["end_reason"] == "user_exit"
    assert ended["duration_seconds"] >= 0


def test_sync_context_manager_and_base_class(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"{server_url}/mcp"
    with AdminShellSession("ctxshell", emitter=SessionEventEmitter("ctxshell", endpoint=endpoint)) as tracked:
        session_id = tracked.session_id
        assert session_id is not None and session_id.startswith("ctxshell-")
    assert tracked.session_id is None
    assert wait_for_session(server_url, lambda s: s["status"] == "ended", component="ctxshell")[
        "end_reason"
    ] == ("user_exit")

    class MahavishnuShell(AdminShell):
        component_name = "basedshell"
        session_metadata: ClassVar[Mapping[str, Any]] = {"component_version": "2.0"}

    monkeypatch.setenv("SHINZO_ADMIN_ENDPOINT", endpoint)  # the base class configures itself from it
    shell = MahavishnuShell()
    shell.start()
    assert shell.session_id is not None and shell.session_tracker.available
    started = wait_for_session(server_url, lambda s: True, component="basedshell")
    assert (started["shell_type"], started["metadata"]) == ("MahavishnuShell", {"component_version": "2.0"})
    shell.exit()
    assert shell.session_id is None
    wait_for_session(server_url, lambda s: s["status"] == "ended", component="basedshell")


@pytest.mark.anyio
async def test_sync_start_from_async_code_does_not_deadlock(server_url: str) -> None:
    tracked = AdminShellSession(
        "asyncsync", emitter=SessionEventEmitter("asyncsync", endpoint=f"{server_url}/mcp")
    )
    assert tracked.start() is not None  # runs on a helper thread: this loop cannot be re-entered
    assert tracked.end() is True


def test_atexit_ends_a_session_the_shell_forgot(server_url: str) -> None:
    script = (
        "from shinzo_otel.admin import AdminShellSession, SessionEventEmitter\n"
        f"emitter = SessionEventEmitter('forgetful', endpoint='{server_url}/mcp')\n"
        "print(AdminShellSession('forgetful', emitter=emitter).start())\n"
    )
    shell = subprocess.run(
        [sys.executable, "-c", script], env=_environment(), capture_output=True, text=True, timeout=60
    )
    assert shell.returncode == 0, shell.stderr
    session_id = shell.stdout.strip()
    assert session_id.startswith("forgetful-")
    ended = wait_for_session(
        server_url, lambda s: s["session_id"] == session_id and s["status"] == "ended", component="forgetful"
    )
    assert ended["end_reason"] == "process_exit"


def test_the_example_shell_is_tracked(server_url: str) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "admin_shell.py"
    environment = {**_environment(), "SHINZO_ADMIN_ENDPOINT": f"{server_url}/mcp"}
    shell = subprocess.run(
        [sys.executable, str(example)],
        input="print(6 * 7)\n",
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0, shell.stderr
    assert ">>> 42" in shell.stdout  # the prompt, then the result
    session_id = shell.stderr.split("Session tracking: enabled (session ", 1)[1].split(")", 1)[0]
    ended = wait_for_session(server_url, lambda s: s["session_id"] == session_id and s["status"] == "ended")
    assert (ended["component_name"], ended["shell_type"], ended["end_reason"]) == (
        "demo",
        "DemoShell",
        "user_exit",
    )
    assert ended["metadata"] == {"component_version": "1.0.0"}
