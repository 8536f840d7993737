"""`SessionTracker`: admin shell session events (seeds 001 and 003) as OpenTelemetry session spans.

Each admin shell session is one `mcp.session` span of type `admin_shell`, started and ended by the
pipeline's own `SessionManager` (`Observability.sessions`), so it goes through the same
`ShinzoSpanProcessor` (privacy rules, batching, exporter), lands in the same store and records the
same `mcp.server.session.duration` metric as every other session. Its start marker is exported at
once, so a session whose end never comes is still listed.

Open sessions are also written to a small SQLite file (`state.SessionStateStore`), so an end that
arrives after the tracking server restarted still ends the session: the session span is recreated
with the original start time and attributes, linked to the original span, and ended; the store keys
sessions by `session.id`, so this completes the original session and records its duration.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from opentelemetry.trace import Link, SpanContext, TraceFlags, format_span_id, format_trace_id
from opentelemetry.util.types import AttributeValue
from pydantic import ValidationError

from shinzo_otel import _semconv as sc
from shinzo_otel._store_schema import default_store_path
from shinzo_otel.admin.models import (
    SessionEndEvent,
    SessionEndResult,
    SessionStartEvent,
    SessionStartResult,
    describe_validation_error,
)
from shinzo_otel.admin.state import SessionRecord, SessionStateStore
from shinzo_otel.instrumentation import Observability, instrument_server
from shinzo_otel.sessions import Session, SessionManager, SessionOrigin

DEFAULT_SERVICE_NAME: Final = "shinzo-otel-admin"
"""`service.name` of the pipeline a tracker builds from the environment, and of `shinzo-otel serve`."""
DEFAULT_END_REASON: Final = "session_end"
"""End reason recorded when the end event's metadata has no `exit_reason`."""
ADMIN_IDLE_TIMEOUT_SECONDS: Final = 86_400
"""`shinzo.session.idle_timeout` of admin shell sessions: a shell reports nothing between its start
and its end, so only a shell silent for a day is shown as abandoned (seed 002 calls shells running
for more than 24 hours "potentially stuck"), not every shell open longer than the MCP idle timeout."""
_EXIT_REASON_KEY: Final = "exit_reason"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_OS_TYPES: Final = (
    # Prefixes of `platform.platform()` and `sys.platform` values -> semconv `os.type` values.
    ("linux", "linux"),
    ("darwin", "darwin"),
    ("macos", "darwin"),
    ("windows", "windows"),
    ("win32", "windows"),
    ("freebsd", "freebsd"),
    ("netbsd", "netbsd"),
    ("openbsd", "openbsd"),
    ("dragonfly", "dragonflybsd"),
    ("hp-ux", "hpux"),
    ("aix", "aix"),
    ("sunos", "solaris"),
    ("solaris", "solaris"),
)
_SCALARS: Final = (str, bool, int, float)
_T = TypeVar("_T")


class LifecycleManager(Protocol):
    """Seed 003's lifecycle manager role, optional: the tracker calls it before tracking a start and
    before ending a session. Each call answers a mapping with `"success": bool` and, on failure,
    `"error": str`; a failure or an exception becomes an error result and nothing is tracked or ended.
    Any object with these two coroutines fits (`SessionLifecycleManager` is a ready one).
    """

    async def initialize_session(self, working_directory: str | None = None) -> Mapping[str, Any]:
        """Prepare a session for the shell working in `working_directory`."""
        ...

    async def end_session(self, working_directory: str | None = None) -> Mapping[str, Any]:
        """Close the session of the shell that worked in `working_directory`."""
        ...


class SessionLifecycleManager:
    """Seed 001's `SessionLifecycleManager()`: a `LifecycleManager` that accepts every start and end,
    so that `SessionTracker(SessionLifecycleManager())` runs as the seed writes it. The OTel pipeline
    keeps the sessions; subclass and override a method to prepare or refuse a session."""

    async def initialize_session(self, working_directory: str | None = None) -> Mapping[str, Any]:
        """`{"success": True}`: nothing to prepare."""
        return {"success": True}

    async def end_session(self, working_directory: str | None = None) -> Mapping[str, Any]:
        """`{"success": True}`: nothing to close."""
        return {"success": True}


def _is_lifecycle_manager(candidate: object) -> bool:
    return all(callable(getattr(candidate, name, None)) for name in ("initialize_session", "end_session"))


def configured_pipeline() -> Observability:
    """The pipeline of a tracker given none: `instrument_server` on a private, never served
    `MCPServer` named `DEFAULT_SERVICE_NAME`, configured from the environment like any other
    (`OTEL_EXPORTER_OTLP_*`, else the embedded store at `SHINZO_STORE_PATH`; the host's global
    TracerProvider when there is one)."""
    return instrument_server(MCPServer(DEFAULT_SERVICE_NAME), {"server_name": DEFAULT_SERVICE_NAME})


def default_state_path(store_path: str | os.PathLike[str] | None = None) -> Path:
    """Where open admin sessions are kept when no path is given: next to the span store, named after
    it (`sessions.db` -> `sessions.admin.db`). `store_path` None means `default_store_path()`."""
    return Path(store_path or default_store_path()).with_suffix(".admin.db")


def _ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _os_type(platform: str) -> str | None:
    lowered = platform.lower()
    return next((value for prefix, value in _OS_TYPES if lowered.startswith(prefix)), None)


def _attribute_value(value: Any) -> AttributeValue:
    """OTel attribute values keep their type (scalars, homogeneous lists); anything else is JSON."""
    if isinstance(value, _SCALARS):
        return value
    if (
        isinstance(value, (list, tuple))
        and len({type(item) for item in value}) == 1
        and type(value[0]) in _SCALARS
    ):
        return list(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def _metadata_attributes(metadata: Mapping[str, Any]) -> dict[str, AttributeValue]:
    return {
        f"{sc.SESSION_METADATA_PREFIX}{key}": _attribute_value(value)
        for key, value in metadata.items()
        if value is not None
    }


def _session_attributes(event: SessionStartEvent) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        sc.ADMIN_COMPONENT: event.component_name,
        sc.ADMIN_SHELL_TYPE: event.shell_type,
        sc.ADMIN_EVENT_ID: event.event_id,
        sc.PROCESS_PID: event.pid,
        sc.USER_NAME: event.user.username,
        sc.ADMIN_HOME: event.user.home,
        sc.HOST_NAME: event.hostname,
        sc.PROCESS_RUNTIME_VERSION: event.environment.python_version,
        sc.OS_DESCRIPTION: event.environment.platform,
        sc.PROCESS_WORKING_DIRECTORY: event.environment.cwd,
    }
    os_type = _os_type(event.environment.platform)
    if os_type is not None:
        attributes[sc.OS_TYPE] = os_type
    attributes.update(_metadata_attributes(event.metadata))
    return attributes


def _field(event: object, name: str) -> Any:
    return event.get(name) if isinstance(event, Mapping) else None


class SessionTracker:
    """Handles admin shell session events (seed 001's `SessionTracker`) on an OTel pipeline.

    Seed 001's forms all work: `SessionTracker()`, `SessionTracker(lifecycle_mgr)`,
    `SessionTracker(lifecycle_mgr, logger=logger)`.

    Args:
        lifecycle_manager: optional seed 003 lifecycle manager (`LifecycleManager`, e.g. a
            `SessionLifecycleManager`); without one, the OTel pipeline is the whole lifecycle.
        logger: where start/end are logged (INFO) and failures (ERROR); default this module's logger.
            Every record also carries the seed 001 fields as attributes (`record.session_id`, ...).
        pipeline: the `Observability` of `instrument_server` whose sessions these are (its
            `SessionManager`, TracerProvider, processor, exporter and session-duration metric), or a
            `SessionManager` of your own. Default: `configured_pipeline()`, built from the environment,
            which the tracker then owns (`close()` flushes it).
        state_path: SQLite file of open sessions; default `default_state_path()` of the pipeline's
            store path (`ShinzoConfig.store_path`, else `default_store_path()`). Created on first use.

    Raises:
        TypeError: `lifecycle_manager` has no `initialize_session` / `end_session` (for instance a
            pipeline passed first, the order of earlier versions).

    `handle_session_start` / `handle_session_end` never raise (cancellation aside): every failure is
    logged and answered as a result with `status="error"` and a one-line `error`. Starts run
    concurrently; only the reservation of the id (one short SQLite transaction) is taken one at a
    time, which keeps ids unique across every process sharing the state file.

    A shell outlives a restart of its tracking server: `close()` lets go of the open sessions without
    ending them, so call it before the pipeline's `shutdown()` (which ends the sessions still open);
    the shell's end, handled by the next process, completes them.
    """

    def __init__(
        self,
        lifecycle_manager: LifecycleManager | None = None,
        *,
        logger: logging.Logger | None = None,
        pipeline: Observability | SessionManager | None = None,
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if lifecycle_manager is not None and not _is_lifecycle_manager(lifecycle_manager):
            raise TypeError(
                "SessionTracker's first argument is the seed 003 lifecycle manager (with initialize_session"
                f" and end_session), not {type(lifecycle_manager).__name__}; pass a pipeline as pipeline=..."
            )
        self._owned_pipeline = configured_pipeline() if pipeline is None else None
        pipeline = pipeline or self._owned_pipeline
        if isinstance(pipeline, Observability):
            self._sessions = pipeline.sessions
            store_path = pipeline.config.store_path
        else:
            assert pipeline is not None
            self._sessions = pipeline
            store_path = None
        self._lifecycle = lifecycle_manager
        self._logger = logger or logging.getLogger(__name__)
        self._state = SessionStateStore(
            state_path if state_path is not None else default_state_path(store_path)
        )
        # State calls wait here, not in worker threads: one thread at a time works the state file
        # (SQLite has one writer anyway) and a burst of starts never takes the whole thread pool.
        self._state_limiter = anyio.CapacityLimiter(1)
        self._open_sessions: dict[str, Session] = {}

    @property
    def logger(self) -> logging.Logger:
        """The logger events are logged to."""
        return self._logger

    @property
    def state_path(self) -> Path:
        """The SQLite file of open sessions."""
        return self._state.path

    def close(self) -> None:
        """Let go of the open sessions without ending them (they stay open in the state file; an end
        handled later, by this tracker or another process, completes them), close the state file
        (reopened if the tracker is used again) and flush the pipeline the tracker built itself."""
        for session in self._open_sessions.values():
            # The pipeline's shutdown (`SessionManager.end_all`) must leave the span unended and
            # unexported: the session goes on in the shell.
            self._sessions.release(session)
        self._open_sessions.clear()
        self._state.close()
        if self._owned_pipeline is not None:
            self._owned_pipeline.force_flush()

    async def _in_state_thread(self, function: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(function, limiter=self._state_limiter)

    # --- start ------------------------------------------------------------------------------------

    async def handle_session_start(self, event: SessionStartEvent | Mapping[str, Any]) -> SessionStartResult:
        """Track a shell's start as a new admin shell session.

        Args:
            event: a `SessionStartEvent`, or the raw mapping of seed 004's `track_session_start`
                arguments (validated here).

        Returns:
            `status="tracked"` with the session id (`{component_name}-{YYYYMMDD-HHMMSS}` of the event's
            UTC timestamp, `-2`, `-3`, ... when taken; the same id again for a repeated `event_id`),
            or `status="error"` when validation fails (`"Session start tracking failed: ..."`, e.g.
            `metadata: at most 64 keys allowed, got 116`), the lifecycle manager refuses
            (`"Session initialization failed: ..."`) or anything raises (`"Session start failed: ..."`).
        """
        try:
            start = event if isinstance(event, SessionStartEvent) else SessionStartEvent.model_validate(event)
        except ValidationError as error:
            return self._start_failed(
                _field(event, "component_name"),
                _field(event, "shell_type"),
                _field(event, "pid"),
                f"Session start tracking failed: {describe_validation_error(error)}",
            )
        try:
            return await self._start(start)
        except Exception as error:
            return self._start_failed(
                start.component_name,
                start.shell_type,
                start.pid,
                f"Session start failed: {error}",
                exc_info=True,
            )

    async def _start(self, event: SessionStartEvent) -> SessionStartResult:
        if self._lifecycle is not None:
            # A retried start must not initialize twice; without a lifecycle manager the reservation
            # below answers retries by itself.
            existing = await self._in_state_thread(partial(self._state.find_by_event, event.event_id))
            if existing is not None:
                return self._repeated_start(existing)
            answer = await self._lifecycle.initialize_session(working_directory=event.environment.cwd)
            if not (isinstance(answer, Mapping) and answer.get("success")):
                reason = answer.get("error") if isinstance(answer, Mapping) else None
                return self._start_failed(
                    event.component_name,
                    event.shell_type,
                    event.pid,
                    f"Session initialization failed: {reason or 'Unknown initialization error'}",
                )
        record, session = await self._in_state_thread(partial(self._open, event, _session_attributes(event)))
        if session is None:
            return self._repeated_start(record)
        self._open_sessions[record.session_id] = session
        fields = {
            "session_id": record.session_id,
            "component": event.component_name,
            "shell_type": event.shell_type,
            "pid": event.pid,
            "user": event.user.username,
            "hostname": event.hostname,
            "cwd": event.environment.cwd,
        }
        self._logger.info(
            "Session started: session_id=%s, component=%s, shell_type=%s, pid=%s, user=%s, hostname=%s,"
            " cwd=%s",
            *fields.values(),
            extra=fields,
        )
        return SessionStartResult(session_id=record.session_id, status="tracked")

    def _open(
        self, event: SessionStartEvent, attributes: dict[str, AttributeValue]
    ) -> tuple[SessionRecord, Session | None]:
        """On the state thread: reserve the id, start the span, remember its ids. The session, or None
        for a repeated start (the record is then the first start's)."""
        start_ns = _ns(event.timestamp)
        base_id = f"{event.component_name}-{event.timestamp:%Y%m%d-%H%M%S}"
        record, created = self._state.reserve(event.event_id, base_id, start_ns, attributes)
        if not created:
            return record, None
        session = self._start_span(record.session_id, attributes, start_ns)
        context = session.span.get_span_context()
        try:
            self._state.set_span(
                record.session_id, format_trace_id(context.trace_id), format_span_id(context.span_id)
            )
        except Exception:  # the session is tracked; only a later process's link to this span is lost
            self._logger.warning("could not record the span of session %s", record.session_id, exc_info=True)
        return record, session

    def _repeated_start(self, record: SessionRecord) -> SessionStartResult:
        self._logger.info(
            "Session start repeated: session_id=%s, event_id=%s",
            record.session_id,
            record.event_id,
            extra={"session_id": record.session_id, "event_id": record.event_id},
        )
        return SessionStartResult(session_id=record.session_id, status="tracked")

    def _start_failed(
        self, component: Any, shell_type: Any, pid: Any, error: str, *, exc_info: bool = False
    ) -> SessionStartResult:
        fields = {"component": component, "shell_type": shell_type, "pid": pid, "error": error}
        self._logger.error(
            "Session start failed: component=%s, shell_type=%s, pid=%s, error=%s",
            *fields.values(),
            extra=fields,
            exc_info=exc_info,
        )
        return SessionStartResult(session_id=None, status="error", error=error)

    def _start_span(
        self,
        session_id: str,
        attributes: Mapping[str, AttributeValue],
        start_ns: int,
        *,
        links: tuple[Link, ...] = (),
        export_marker: bool = True,
    ) -> Session:
        return self._sessions.start(
            SessionOrigin.ADMIN_SHELL,
            session_id=session_id,
            attributes=attributes,
            start_ns=start_ns,
            links=links,
            export_marker=export_marker,
            idle_timeout_seconds=ADMIN_IDLE_TIMEOUT_SECONDS,
        )

    # --- end --------------------------------------------------------------------------------------

    async def handle_session_end(self, event: SessionEndEvent | Mapping[str, Any]) -> SessionEndResult:
        """End an admin shell session: its span ends at the event's timestamp (not before its start)
        and is exported.

        Args:
            event: a `SessionEndEvent`, or the raw mapping of seed 004's `track_session_end` arguments.
                `metadata["exit_reason"]` becomes `shinzo.session.end_reason` (default `session_end`);
                other metadata keys become `shinzo.session.metadata.<key>` attributes.

        Returns:
            `status="ended"` (also for a session that had already ended: ends are idempotent),
            `status="not_found"` for an unknown id, or `status="error"` when validation fails
            (`"Session end tracking failed: ..."`), the lifecycle manager refuses or anything raises
            (`"Session end failed: ..."`); the session then stays open.
        """
        try:
            end = event if isinstance(event, SessionEndEvent) else SessionEndEvent.model_validate(event)
        except ValidationError as error:
            session_id = _field(event, "session_id")
            return self._end_failed(
                session_id if isinstance(session_id, str) else "",
                f"Session end tracking failed: {describe_validation_error(error)}",
            )
        try:
            return await self._end(end)
        except Exception as error:
            return self._end_failed(end.session_id, f"Session end failed: {error}", exc_info=True)

    async def _end(self, event: SessionEndEvent) -> SessionEndResult:
        session_id = event.session_id
        metadata = dict(event.metadata)
        reason = str(metadata.pop(_EXIT_REASON_KEY, None) or DEFAULT_END_REASON)
        if self._lifecycle is not None:
            record = await self._in_state_thread(partial(self._state.get, session_id))
            if record is not None and record.end_ns is None:
                cwd = record.attributes.get(sc.PROCESS_WORKING_DIRECTORY)
                answer = await self._lifecycle.end_session(
                    working_directory=None if cwd is None else str(cwd)
                )
                if not (isinstance(answer, Mapping) and answer.get("success")):
                    reason_text = answer.get("error") if isinstance(answer, Mapping) else None
                    return self._end_failed(
                        session_id, f"Session end failed: {reason_text or 'Unknown session end error'}"
                    )
        record, ended_now = await self._in_state_thread(
            partial(self._state.end, session_id, _ns(event.timestamp), reason)
        )
        if record is None:
            self._logger.info(
                "Session end for unknown session: session_id=%s", session_id, extra={"session_id": session_id}
            )
            return SessionEndResult(session_id=session_id, status="not_found")
        if ended_now:
            assert record.end_ns is not None
            session = self._open_sessions.pop(session_id, None) or self._resume(record)
            session.span.set_attributes(_metadata_attributes(metadata))
            self._sessions.end(session, reason, end_ns=record.end_ns)
        timestamp = event.timestamp.isoformat().replace("+00:00", "Z")
        self._logger.info(
            "Session ended: session_id=%s, timestamp=%s",
            session_id,
            timestamp,
            extra={"session_id": session_id, "timestamp": timestamp},
        )
        return SessionEndResult(session_id=session_id, status="ended")

    def _resume(self, record: SessionRecord) -> Session:
        """Recreate the session span of a session started by an earlier process (or before `close`),
        linked to the original span; its start marker was exported then, unless that process died
        before starting the span."""
        if record.trace_id is None or record.span_id is None:
            return self._start_span(record.session_id, record.attributes, record.start_ns)
        original = SpanContext(
            trace_id=int(record.trace_id, 16),
            span_id=int(record.span_id, 16),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        return self._start_span(
            record.session_id,
            record.attributes,
            record.start_ns,
            links=(Link(original),),
            export_marker=False,
        )

    def _end_failed(self, session_id: str, error: str, *, exc_info: bool = False) -> SessionEndResult:
        self._logger.error(
            "Session end failed: session_id=%s, error=%s",
            session_id,
            error,
            extra={"session_id": session_id, "error": error},
            exc_info=exc_info,
        )
        return SessionEndResult(session_id=session_id, status="error", error=error)
