"""SessionTracker (seeds 001 and 003) on a real SDK TracerProvider, with the state file in tmp_path.

Mirrors the seed's 17 tests (initialization, start success / failure / unknown error / exception /
id format, end success / failure / unknown error / exception / metadata, validation, logging) and
adds not_found, idempotent starts and ends, unique ids within one second, and the restart case.
Expected values are worked out by hand from the event timestamps written here.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id

from shinzo_otel.admin import (
    EnvironmentInfo,
    SessionEndEvent,
    SessionStartEvent,
    SessionTracker,
    UserInfo,
)
from shinzo_otel.sessions import SessionManager
from shinzo_otel.store import SessionStore

pytestmark = pytest.mark.anyio

EVENT_ID = "550e8400-e29b-41d4-a716-446655440000"
START = "2026-02-06T12:34:56.789Z"
START_NS = 1_770_381_296_789_000_000
"""START in ns: 2026-02-06 is day 20490 since 1970-01-01 (20490 * 86400 = 1770336000 s), plus
12:34:56.789 = 45296.789 s."""
END = "2026-02-06T13:45:07.890Z"
END_NS = START_NS + 4_211_101_000_000
"""END - START = 1 h 10 min 11.101 s = 4211.101 s."""


def start_event(**changes: Any) -> dict[str, Any]:
    """Seed 001's example start event as the raw mapping a tool receives."""
    event: dict[str, Any] = {
        "event_version": "1.0",
        "event_id": EVENT_ID,
        "component_name": "mahavishnu",
        "shell_type": "MahavishnuShell",
        "timestamp": START,
        "pid": 12345,
        "user": {"username": "john", "home": "/home/john"},
        "hostname": "server01",
        "environment": {
            "python_version": "3.13.0",
            "platform": "Linux-6.5.0-x86_64",
            "cwd": "/home/john/projects",
        },
        "metadata": {"component_version": "1.0.0", "cli_enabled": True, "adapters": ["llamaindex", "agno"]},
    }
    event.update(changes)
    return event


class Lifecycle:
    """A seed 003 lifecycle manager that answers what it is told and records its calls."""

    def __init__(self, answer: Mapping[str, Any] | None = None, error: Exception | None = None) -> None:
        self.answer = {"success": True} if answer is None else answer
        self.error = error
        self.calls: list[tuple[str, str | None]] = []

    async def initialize_session(self, working_directory: str | None = None) -> Mapping[str, Any]:
        return self._respond("initialize_session", working_directory)

    async def end_session(self, working_directory: str | None = None) -> Mapping[str, Any]:
        return self._respond("end_session", working_directory)

    def _respond(self, name: str, working_directory: str | None) -> Mapping[str, Any]:
        self.calls.append((name, working_directory))
        if self.error is not None:
            raise self.error
        return self.answer


class Pipeline:
    """A real TracerProvider exporting synchronously to memory, and SessionManagers on it."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def manager(self) -> SessionManager:
        return SessionManager(self.provider.get_tracer("test"))

    def spans(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.exporter.get_finished_spans() if span.name == name]


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    pipeline = Pipeline()
    yield pipeline
    pipeline.provider.shutdown()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "admin-state.db"


@pytest.fixture
def tracker(pipeline: Pipeline, state: Path) -> Iterator[SessionTracker]:
    tracker = SessionTracker(pipeline=pipeline.manager(), state_path=state)
    yield tracker
    tracker.close()


# --- initialization (seed: 2 tests) --------------------------------------------------------------------


def test_initialization_with_custom_logger(pipeline: Pipeline, state: Path) -> None:
    logger = logging.getLogger("my_app")
    tracker = SessionTracker(Lifecycle(), pipeline=pipeline.manager(), logger=logger, state_path=state)
    assert tracker.logger is logger
    assert tracker.state_path == state
    assert not state.exists()  # nothing is written before the first event


def test_initialization_without_custom_logger(pipeline: Pipeline, state: Path) -> None:
    tracker = SessionTracker(pipeline=pipeline.manager(), state_path=state)
    assert tracker.logger.name == "shinzo_otel.admin.tracker"


def test_default_state_path_is_next_to_the_store(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHINZO_STORE_PATH", str(tmp_path / "spans" / "sessions.db"))
    assert SessionTracker(pipeline=pipeline.manager()).state_path == tmp_path / "spans" / "sessions.admin.db"


# --- session start (seed: 5 tests) ---------------------------------------------------------------------


async def test_start_success_opens_an_admin_shell_session(
    tracker: SessionTracker, pipeline: Pipeline
) -> None:
    result = await tracker.handle_session_start(start_event())
    assert (result.session_id, result.status, result.error) == ("mahavishnu-20260206-123456", "tracked", None)

    # The start marker is exported at once; the session span itself ends with the session.
    (marker,) = pipeline.spans("mcp.session.start")
    assert pipeline.spans("mcp.session") == []
    assert marker.start_time == START_NS
    assert dict(marker.attributes or {}) == {
        "session.id": "mahavishnu-20260206-123456",
        "shinzo.session.type": "admin_shell",
        "shinzo.session.origin": "admin_shell",
        "shinzo.session.idle_timeout": 86_400,  # a day: a shell is silent between start and end
        "shinzo.admin.component": "mahavishnu",
        "shinzo.admin.shell_type": "MahavishnuShell",
        "shinzo.admin.event_id": EVENT_ID,
        "process.pid": 12345,
        "user.name": "john",
        "shinzo.admin.home": "/home/john",
        "host.name": "server01",
        "process.runtime.version": "3.13.0",
        "os.description": "Linux-6.5.0-x86_64",
        "os.type": "linux",
        "process.working_directory": "/home/john/projects",
        "shinzo.session.metadata.component_version": "1.0.0",
        "shinzo.session.metadata.cli_enabled": True,
        "shinzo.session.metadata.adapters": ("llamaindex", "agno"),
    }


async def test_start_accepts_a_validated_event_object(tracker: SessionTracker) -> None:
    event = SessionStartEvent(
        event_version="1.0",
        event_id=EVENT_ID,
        component_name="test",
        shell_type="TestShell",
        timestamp="2026-02-06T12:34:56.789Z",  # type: ignore[arg-type]  # parsed by the model
        pid=12345,
        user=UserInfo(username="test", home="/home/test"),
        hostname="testhost",
        environment=EnvironmentInfo(python_version="3.13.0", platform="Linux", cwd="/home/test"),
    )
    result = await tracker.handle_session_start(event)
    assert result.status == "tracked"
    assert result.session_id == "test-20260206-123456"


async def test_start_initialization_failure(pipeline: Pipeline, state: Path) -> None:
    lifecycle = Lifecycle({"success": False, "error": "Working directory does not exist"})
    tracker = SessionTracker(lifecycle, pipeline=pipeline.manager(), state_path=state)
    result = await tracker.handle_session_start(start_event())
    assert (result.session_id, result.status) == (None, "error")
    assert result.error == "Session initialization failed: Working directory does not exist"
    assert lifecycle.calls == [("initialize_session", "/home/john/projects")]
    assert pipeline.exporter.get_finished_spans() == ()


async def test_start_unknown_error(pipeline: Pipeline, state: Path) -> None:
    tracker = SessionTracker(Lifecycle({"success": False}), pipeline=pipeline.manager(), state_path=state)
    result = await tracker.handle_session_start(start_event())
    assert result.status == "error"
    assert result.error == "Session initialization failed: Unknown initialization error"


async def test_start_exception_becomes_an_error_result(
    pipeline: Pipeline, state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = SessionTracker(
        Lifecycle(error=OSError("disk on fire")), pipeline=pipeline.manager(), state_path=state
    )
    with caplog.at_level(logging.ERROR):
        result = await tracker.handle_session_start(start_event())
    assert (result.session_id, result.status, result.error) == (
        None,
        "error",
        "Session start failed: disk on fire",
    )
    (record,) = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is OSError  # full traceback (seed 001)
    assert pipeline.exporter.get_finished_spans() == ()


async def test_start_with_lifecycle_success_tracks(pipeline: Pipeline, state: Path) -> None:
    lifecycle = Lifecycle({"success": True, "project": "test"})
    tracker = SessionTracker(lifecycle, pipeline=pipeline.manager(), state_path=state)
    result = await tracker.handle_session_start(start_event())
    assert result.status == "tracked"
    assert len(pipeline.spans("mcp.session.start")) == 1


async def test_session_id_format_and_uniqueness_within_one_second(tracker: SessionTracker) -> None:
    ids = []
    for event_id in (
        "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
        "7a2b3c4d-5e6f-4a70-9b8c-0d1e2f3a4b5c",
        "8b3c4d5e-6f70-4b81-ac9d-1e2f3a4b5c6d",
    ):
        # Same component, same second (the milliseconds differ).
        result = await tracker.handle_session_start(
            start_event(event_id=event_id, timestamp="2026-02-06T12:34:56.1Z")
        )
        ids.append(result.session_id)
    assert ids == [
        "mahavishnu-20260206-123456",
        "mahavishnu-20260206-123456-2",
        "mahavishnu-20260206-123456-3",
    ]


async def test_session_id_uses_the_utc_time_of_the_event(tracker: SessionTracker) -> None:
    # 01:30 at UTC+02:00 is 23:30 UTC on the day before.
    result = await tracker.handle_session_start(start_event(timestamp="2026-02-07T01:30:00+02:00"))
    assert result.session_id == "mahavishnu-20260206-233000"


async def test_repeated_start_with_the_same_event_id_is_idempotent(
    tracker: SessionTracker, pipeline: Pipeline, state: Path
) -> None:
    first = await tracker.handle_session_start(start_event())
    again = await tracker.handle_session_start(start_event())
    assert again == first
    assert len(pipeline.spans("mcp.session.start")) == 1
    # Also after the session ended, and in another tracker on the same state file.
    await tracker.handle_session_end({"session_id": first.session_id, "timestamp": END})
    other = SessionTracker(pipeline=pipeline.manager(), state_path=state)
    assert await other.handle_session_start(start_event()) == first
    assert len(pipeline.spans("mcp.session.start")) == 1
    other.close()


# --- session end (seed: 5 tests) -----------------------------------------------------------------------


async def test_end_success_ends_the_session_span(tracker: SessionTracker, pipeline: Pipeline) -> None:
    session_id = (await tracker.handle_session_start(start_event())).session_id
    assert session_id is not None
    result = await tracker.handle_session_end(
        {"session_id": session_id, "timestamp": END, "metadata": {"exit_reason": "user_exit"}}
    )
    assert (result.session_id, result.status, result.error) == (session_id, "ended", None)
    (session,) = pipeline.spans("mcp.session")
    assert (session.start_time, session.end_time) == (START_NS, END_NS)
    attributes = dict(session.attributes or {})
    assert attributes["session.id"] == session_id
    assert attributes["shinzo.session.end_reason"] == "user_exit"
    assert attributes["user.name"] == "john"
    assert [(event.name, event.timestamp) for event in session.events] == [
        ("session.start", START_NS),
        ("session.end", END_NS),
    ]
    (marker,) = pipeline.spans("mcp.session.start")
    assert marker.parent is not None and marker.parent.span_id == session.context.span_id


async def test_end_metadata_becomes_attributes_and_default_reason(
    tracker: SessionTracker, pipeline: Pipeline
) -> None:
    session_id = (await tracker.handle_session_start(start_event())).session_id
    result = await tracker.handle_session_end(
        SessionEndEvent(session_id=str(session_id), timestamp=END, metadata={"commands": 12})  # type: ignore[arg-type]
    )
    assert result.status == "ended"
    (session,) = pipeline.spans("mcp.session")
    attributes = dict(session.attributes or {})
    assert attributes["shinzo.session.end_reason"] == "session_end"
    assert attributes["shinzo.session.metadata.commands"] == 12


async def test_end_failure_keeps_the_session_open(pipeline: Pipeline, state: Path) -> None:
    lifecycle = Lifecycle()
    tracker = SessionTracker(lifecycle, pipeline=pipeline.manager(), state_path=state)
    session_id = (await tracker.handle_session_start(start_event())).session_id
    lifecycle.answer = {"success": False, "error": "Quality check failed"}
    result = await tracker.handle_session_end({"session_id": session_id, "timestamp": END})
    assert (result.session_id, result.status) == (session_id, "error")
    assert result.error == "Session end failed: Quality check failed"
    assert lifecycle.calls[-1] == ("end_session", "/home/john/projects")
    assert pipeline.spans("mcp.session") == []
    # A retry once the lifecycle manager agrees ends it.
    lifecycle.answer = {"success": True}
    assert (await tracker.handle_session_end({"session_id": session_id, "timestamp": END})).status == "ended"
    assert len(pipeline.spans("mcp.session")) == 1


async def test_end_unknown_error(pipeline: Pipeline, state: Path) -> None:
    lifecycle = Lifecycle()
    tracker = SessionTracker(lifecycle, pipeline=pipeline.manager(), state_path=state)
    session_id = (await tracker.handle_session_start(start_event())).session_id
    lifecycle.answer = {"success": False}
    result = await tracker.handle_session_end({"session_id": session_id, "timestamp": END})
    assert result.error == "Session end failed: Unknown session end error"


async def test_end_exception_becomes_an_error_result(
    pipeline: Pipeline, state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lifecycle = Lifecycle()
    tracker = SessionTracker(lifecycle, pipeline=pipeline.manager(), state_path=state)
    session_id = (await tracker.handle_session_start(start_event())).session_id
    lifecycle.error = RuntimeError("lifecycle crashed")
    with caplog.at_level(logging.ERROR):
        result = await tracker.handle_session_end({"session_id": session_id, "timestamp": END})
    assert (result.session_id, result.status, result.error) == (
        session_id,
        "error",
        "Session end failed: lifecycle crashed",
    )
    assert caplog.records[-1].exc_info is not None


async def test_end_of_an_unknown_session_is_not_found(tracker: SessionTracker, pipeline: Pipeline) -> None:
    result = await tracker.handle_session_end({"session_id": "mahavishnu-20260206-000000", "timestamp": END})
    assert (result.session_id, result.status, result.error) == (
        "mahavishnu-20260206-000000",
        "not_found",
        None,
    )
    assert pipeline.exporter.get_finished_spans() == ()


async def test_repeated_end_is_idempotent(tracker: SessionTracker, pipeline: Pipeline) -> None:
    session_id = (await tracker.handle_session_start(start_event())).session_id
    for _ in range(2):
        result = await tracker.handle_session_end({"session_id": session_id, "timestamp": END})
        assert result.status == "ended"
    assert len(pipeline.spans("mcp.session")) == 1


async def test_end_before_start_is_clamped_to_the_start(tracker: SessionTracker, pipeline: Pipeline) -> None:
    session_id = (await tracker.handle_session_start(start_event())).session_id
    await tracker.handle_session_end({"session_id": session_id, "timestamp": "2026-02-06T12:00:00Z"})
    (session,) = pipeline.spans("mcp.session")
    assert session.end_time == START_NS


# --- restart -------------------------------------------------------------------------------------------


async def test_end_after_a_restart_completes_the_original_session(pipeline: Pipeline, state: Path) -> None:
    before = SessionTracker(pipeline=pipeline.manager(), state_path=state)
    session_id = (await before.handle_session_start(start_event())).session_id
    (marker,) = pipeline.spans("mcp.session.start")
    before.close()  # the tracking server goes away with the session open

    after = SessionTracker(pipeline=pipeline.manager(), state_path=state)
    result = await after.handle_session_end({"session_id": session_id, "timestamp": END})
    assert result.status == "ended"
    (session,) = pipeline.spans("mcp.session")
    assert (session.start_time, session.end_time) == (START_NS, END_NS)
    attributes = dict(session.attributes or {})
    assert attributes["session.id"] == session_id
    assert attributes["shinzo.session.type"] == "admin_shell"
    assert attributes["shinzo.admin.component"] == "mahavishnu"
    assert attributes["shinzo.session.metadata.adapters"] == ("llamaindex", "agno")
    # The new span continues the original one, whose id the marker names as its parent.
    assert marker.parent is not None
    assert [format_span_id(link.context.span_id) for link in session.links] == [
        format_span_id(marker.parent.span_id)
    ]
    assert len(pipeline.spans("mcp.session.start")) == 1  # the marker is not exported again
    after.close()


# --- validation (seed: 2 integration tests) ------------------------------------------------------------


async def test_invalid_start_event_is_an_error_result(tracker: SessionTracker, pipeline: Pipeline) -> None:
    result = await tracker.handle_session_start(start_event(event_id="not-a-uuid", pid=0))
    assert (result.session_id, result.status) == (None, "error")
    assert result.error == (
        "Session start tracking failed: event_id: Invalid UUID v4 format: 'not-a-uuid'; "
        "pid: Input should be greater than or equal to 1"
    )
    assert pipeline.exporter.get_finished_spans() == ()


async def test_invalid_end_event_is_an_error_result(tracker: SessionTracker) -> None:
    result = await tracker.handle_session_end({"session_id": "x-20260206-123456", "timestamp": "2026-02-06"})
    assert (result.session_id, result.status) == ("x-20260206-123456", "error")
    assert result.error is not None and result.error.startswith(
        "Session end tracking failed: timestamp: Invalid ISO 8601 timestamp: '2026-02-06' (needs a date"
    )
    missing = await tracker.handle_session_end({"timestamp": END})
    assert (missing.session_id, missing.status) == ("", "error")
    assert missing.error == "Session end tracking failed: session_id: Field required"


async def test_a_non_mapping_event_is_an_error_result(tracker: SessionTracker) -> None:
    result = await tracker.handle_session_start("not an event")  # type: ignore[arg-type]
    assert result.status == "error"
    assert result.error is not None and result.error.startswith("Session start tracking failed: event: ")


# --- logging (seed: 3 tests) ---------------------------------------------------------------------------


async def test_start_is_logged_at_info_with_the_seed_fields(
    tracker: SessionTracker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="shinzo_otel.admin.tracker"):
        await tracker.handle_session_start(start_event())
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "Session started: session_id=mahavishnu-20260206-123456, component=mahavishnu, "
        "shell_type=MahavishnuShell, pid=12345, user=john, hostname=server01, cwd=/home/john/projects"
    )
    fields = {
        name: getattr(record, name) for name in ("session_id", "component", "shell_type", "pid", "user")
    }
    assert fields == {
        "session_id": "mahavishnu-20260206-123456",
        "component": "mahavishnu",
        "shell_type": "MahavishnuShell",
        "pid": 12345,
        "user": "john",
    }
    assert (record.hostname, record.cwd) == ("server01", "/home/john/projects")  # type: ignore[attr-defined]


async def test_end_is_logged_at_info_with_the_seed_fields(
    tracker: SessionTracker, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = (await tracker.handle_session_start(start_event())).session_id
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shinzo_otel.admin.tracker"):
        await tracker.handle_session_end({"session_id": session_id, "timestamp": END})
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert (
        record.getMessage()
        == f"Session ended: session_id={session_id}, timestamp=2026-02-06T13:45:07.890000Z"
    )
    assert (record.session_id, record.timestamp) == (session_id, "2026-02-06T13:45:07.890000Z")  # type: ignore[attr-defined]


async def test_failures_are_logged_at_error_with_the_seed_fields(
    pipeline: Pipeline, state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lifecycle = Lifecycle({"success": False, "error": "nope"})
    tracker = SessionTracker(lifecycle, pipeline=pipeline.manager(), state_path=state)
    with caplog.at_level(logging.ERROR, logger="shinzo_otel.admin.tracker"):
        await tracker.handle_session_start(start_event())
    (start_record,) = caplog.records
    assert start_record.levelno == logging.ERROR
    assert start_record.getMessage() == (
        "Session start failed: component=mahavishnu, shell_type=MahavishnuShell, pid=12345, "
        "error=Session initialization failed: nope"
    )
    assert not start_record.exc_info  # a refusal, not an exception: no traceback
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="shinzo_otel.admin.tracker"):
        await tracker.handle_session_end({"session_id": "gone", "timestamp": "bad"})
    (end_record,) = caplog.records
    assert end_record.getMessage().startswith(
        "Session end failed: session_id=gone, error=Session end tracking failed:"
    )
    assert (end_record.session_id, end_record.error) == (
        "gone",
        end_record.getMessage().split("error=", 1)[1],
    )  # type: ignore[attr-defined]


# --- seed 001/003 constructor forms (issue 13 item 12) ----------------------------------------------------


SEED_FORMS_SCRIPT = """
import asyncio, logging
from shinzo_otel.admin import SessionLifecycleManager, SessionTracker
from tests.test_admin_tracker import END, start_event

seen = []
class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record.getMessage())

# Seed 001, "Initialization", as written.
lifecycle_mgr = SessionLifecycleManager()
tracker = SessionTracker(lifecycle_mgr)
logger = logging.getLogger("my_app")
logger.addHandler(Keep())
logger.setLevel(logging.INFO)
with_logger = SessionTracker(lifecycle_mgr, logger=logger)

async def main():
    for index, form in enumerate((SessionTracker(), tracker, with_logger)):
        event_id = f"00000000-0000-4000-8000-00000000000{index}"
        event = start_event(event_id=event_id, component_name=f"form{index}")
        started = await form.handle_session_start(event)
        ended = await form.handle_session_end({"session_id": started.session_id, "timestamp": END})
        print(started.status, started.session_id, ended.status)
        form.close()

asyncio.run(main())
print(seen[0].split(",")[0])
"""


def test_seed_constructor_forms_track_on_the_configured_pipeline(tmp_path: Path) -> None:
    """Issue 13 item 12: `SessionTracker()`, and seed 001's `SessionTracker(lifecycle_mgr)` and
    `SessionTracker(lifecycle_mgr, logger=logger)` with `lifecycle_mgr = SessionLifecycleManager()`,
    in a fresh interpreter configured by its environment only: each tracks a session into the store."""
    store = tmp_path / "sessions.db"
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SHINZO_"))
    }
    environment["SHINZO_STORE_PATH"] = str(store)
    completed = subprocess.run(
        [sys.executable, "-c", SEED_FORMS_SCRIPT],
        cwd=Path(__file__).resolve().parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "tracked form0-20260206-123456 ended",
        "tracked form1-20260206-123456 ended",
        "tracked form2-20260206-123456 ended",
        "Session started: session_id=form2-20260206-123456",  # the custom logger got the third only
    ]
    with SessionStore(store) as sessions:
        stored = {summary.session_id: summary for summary in sessions.list_sessions()}
    assert {session_id: summary.status for session_id, summary in stored.items()} == {
        f"form{index}-20260206-123456": "ended" for index in range(3)
    }
    assert store.with_suffix(".admin.db").is_file()  # the state file of the configured pipeline


def test_a_pipeline_passed_first_is_refused_with_the_seed_order(pipeline: Pipeline, state: Path) -> None:
    with pytest.raises(TypeError, match=r"first argument is the seed 003 lifecycle manager.*pipeline="):
        SessionTracker(pipeline.manager(), state_path=state)  # type: ignore[arg-type]
