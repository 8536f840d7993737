"""`shinzo-otel serve` as a real subprocess: where it says it listens, /health, a session tracked by
the emitter and read back from /api/sessions (with the CLI's meaning of every field and filter), the
synchronous shell integrations, and the atexit hook of a shell process that exits without ending its
session.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from mcp import Client

from shinzo_otel.admin import AdminShell, AdminShellSession, SessionEventEmitter, create_token
from shinzo_otel.replay.model import SessionSummary
from tests.test_admin_tools import SECRET
from tests.test_admin_tracker import start_event

SECRETS_AND_ENDPOINTS = (
    "SHINZO_ADMIN_SECRET",
    "SESSION_BUDDY_SECRET",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
SUMMARY_FIELDS = frozenset({*SessionSummary.model_fields, *SessionSummary.model_computed_fields})
"""The fields of `shinzo-otel sessions list --format json`."""
LISTENING = re.compile(r"^shinzo-otel serve: listening on (?P<url>http://\S+) ")


def _cli() -> str:
    return str(Path(sys.executable).with_name("shinzo-otel"))


def _environment(**changes: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in SECRETS_AND_ENDPOINTS}
    return {**environment, **changes}


@dataclass
class Served:
    """A running `shinzo-otel serve`: the base URL it printed, and everything it wrote on stderr."""

    url: str
    process: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)


@contextmanager
def serving(*arguments: str, environment: Mapping[str, str] | None = None) -> Iterator[Served]:
    """`shinzo-otel serve --port 0 ARGUMENTS`, up once it printed where it listens; stopped with
    SIGINT at the end, which must exit 0 (a graceful stop flushes)."""
    process = subprocess.Popen(
        [_cli(), "serve", "--port", "0", *arguments],
        env=dict(environment) if environment is not None else _environment(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    listening = threading.Event()

    def drain() -> None:  # keep reading, so that a chatty server never blocks on a full pipe
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if LISTENING.match(line):
                listening.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not listening.wait(0.1):
            assert process.poll() is None, f"server exited: {''.join(lines)}"
            assert time.monotonic() < deadline, f"no listening line within 30 s: {''.join(lines)}"
        match = next(m for line in lines if (m := LISTENING.match(line)))
        yield Served(match["url"], process, lines)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            returncode = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        reader.join(timeout=5)
        assert returncode == 0, "".join(lines)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve") / "sessions.db"


@pytest.fixture(scope="module")
def server_url(store: Path) -> Iterator[str]:
    with serving("--store", str(store)) as served:
        yield served.url


def wait_for_session(url: str, predicate: Callable[[dict[str, Any]], bool], **params: Any) -> dict[str, Any]:
    """Poll /api/sessions (spans reach the store off the request path) until a session matches."""
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(f"{url}/api/sessions", params=params, timeout=5)
        # 503: the exporter is creating the store file, which has no schema for a moment.
        assert response.status_code in (200, 503), response.text
        matching = [s for s in response.json() if predicate(s)] if response.status_code == 200 else []
        if matching:
            return matching[0]
        assert time.monotonic() < deadline, f"no matching session in {response.json()}"
        time.sleep(0.1)


def test_health(server_url: str) -> None:
    response = httpx.get(f"{server_url}/health")
    assert (response.status_code, response.json()) == (200, {"status": "healthy"})


# --- where it listens, and who may listen in (issue 13 item 8) -----------------------------------------


def test_serve_prints_where_it_listens_and_whether_auth_is_on(store: Path) -> None:
    with serving("--store", str(store)) as served:
        port = int(served.url.rsplit(":", 1)[1])
        assert served.url == f"http://127.0.0.1:{port}" and port != 0  # the port really bound
        (line,) = [line for line in served.stderr if LISTENING.match(line)]
        assert f"MCP {served.url}/mcp" in line
        assert "authentication off" in line
        assert httpx.get(f"{served.url}/health").status_code == 200
    with serving("--store", str(store), environment=_environment(SHINZO_ADMIN_SECRET=SECRET)) as served:
        (line,) = [line for line in served.stderr if LISTENING.match(line)]
        assert "authentication on (SHINZO_ADMIN_SECRET)" in line


def test_serve_refuses_a_public_address_without_a_secret(store: Path) -> None:
    refused = subprocess.run(
        [_cli(), "serve", "--host", "0.0.0.0", "--port", "0", "--store", str(store)],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stderr  # a usage error: nothing listened
    assert "refusing to listen on 0.0.0.0 without authentication" in refused.stderr
    assert "SHINZO_ADMIN_SECRET" in refused.stderr and "--allow-unauthenticated" in refused.stderr
    assert not LISTENING.search(refused.stderr)

    # Said explicitly, it listens (and says authentication is off); with a secret it needs no flag.
    with serving("--host", "0.0.0.0", "--allow-unauthenticated", "--store", str(store)) as served:
        assert served.url.startswith("http://0.0.0.0:")
        assert "authentication off" in "".join(served.stderr)
    with serving(
        "--host", "0.0.0.0", "--store", str(store), environment=_environment(SESSION_BUDDY_SECRET=SECRET)
    ) as served:
        assert "authentication on (SESSION_BUDDY_SECRET)" in "".join(served.stderr)


def test_sessions_api_of_a_served_server_needs_the_token_and_its_own_host(store: Path) -> None:
    with serving("--store", str(store), environment=_environment(SHINZO_ADMIN_SECRET=SECRET)) as served:
        api = f"{served.url}/api/sessions"
        assert httpx.get(api).status_code == 401
        assert httpx.get(api, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
        token = create_token(SECRET)
        assert httpx.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # A page on a DNS name that points at 127.0.0.1 (DNS rebinding) gets what /mcp gives it.
        foreign = {"Authorization": f"Bearer {token}", "Host": "evil.example.com"}
        assert httpx.get(api, headers=foreign).status_code == 421
        assert httpx.post(f"{served.url}/mcp", headers=foreign, json={}).status_code == 421


def test_session_tracked_by_the_emitter_is_read_back_from_the_api(server_url: str) -> None:
    emitter = SessionEventEmitter("mahavishnu", endpoint=f"{server_url}/mcp")
    session_id = anyio.run(emitter.emit_session_start, "MahavishnuShell")
    assert session_id is not None
    active = wait_for_session(server_url, lambda s: s["session_id"] == session_id, type="admin_shell")
    # No end recorded, no duration: the CLI's meaning (issue 15 item 6), not "time so far".
    assert (active["status"], active["end_time"], active["duration_seconds"]) == ("active", None, None)
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


# --- /api/sessions and `shinzo-otel sessions list`: one filter, one meaning (issue 15 item 6) -----------


def _cli_list(store: Path, options: list[str]) -> list[dict[str, Any]]:
    listed = subprocess.run(
        [_cli(), "sessions", "list", "--store", str(store), "--format", "json", *options],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    result = json.loads(listed.stdout)
    assert isinstance(result, list)
    return result


PARITY_EVENTS = (
    # (start event changes, end timestamp or None): an open and an ended session of one shell.
    ({"event_id": "3a9e0c8f-0000-4000-8000-000000000000"}, None),
    ({"event_id": "3a9e0c8f-0001-4000-8000-000000000001"}, "2026-02-06T13:00:00Z"),
)


async def _report_parity_sessions(url: str) -> None:
    async with Client(f"{url}/mcp") as client:
        for changes, end in PARITY_EVENTS:
            event = start_event(
                component_name="parity", user={"username": "parity-user", "home": "/home/parity"}, **changes
            )
            started = await client.call_tool("track_session_start", event)
            session_id = (started.structured_content or {})["session_id"]
            if end is not None:
                await client.call_tool("track_session_end", {"session_id": session_id, "timestamp": end})


@pytest.mark.parametrize(
    ("options", "params"),
    [
        ([], {}),
        (["--type", "admin_shell"], {"type": "admin_shell"}),
        (["--incomplete"], {"incomplete": "true"}),
        (["--status", "abandoned"], {"status": "abandoned"}),  # started in February, silent since
        (["--origin", "admin_shell"], {"origin": "admin_shell"}),
        (["--duration-greater", "0"], {"duration_greater": 0}),
        (["--component", "parity", "--user", "parity-user"], {"component": "parity", "user": "parity-user"}),
        (["--after", "2026-02-06T00:00:00Z", "--limit", "3"], {"after": "2026-02-06T00:00:00Z", "limit": 3}),
    ],
)
def test_sessions_api_answers_what_the_cli_lists(
    server_url: str, store: Path, options: list[str], params: dict[str, Any]
) -> None:
    anyio.run(_report_parity_sessions, server_url)  # repeated event ids: the same two sessions each time
    wait_for_session(server_url, lambda s: s["status"] == "ended", component="parity")
    deadline = time.monotonic() + 15
    while True:  # sessions of earlier calls may still be arriving: compare at a quiet moment
        before = _cli_list(store, options)
        response = httpx.get(f"{server_url}/api/sessions", params=params)
        after = _cli_list(store, options)
        assert response.status_code == 200, response.text
        # Each API record is the CLI's record plus seed 002's fields.
        from_api = [
            {key: value for key, value in record.items() if key in SUMMARY_FIELDS}
            for record in response.json()
        ]
        if before == after == from_api:
            break
        assert time.monotonic() < deadline, (before, from_api, after)
        time.sleep(0.2)
    assert from_api, "something is listed"
    for record in response.json():
        assert (record["duration_seconds"] is None) is (record["end_time"] is None), record
