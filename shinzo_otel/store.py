"""The embedded local session store: an OTel span exporter writing to SQLite, and its reader.

With no OTLP endpoint configured, spans go here and the `shinzo-otel` CLI reads them back, so a
newcomer sees sessions without running any server (DESIGN.md "Embedded default").

Schema (version 2, kept in `PRAGMA user_version`): `spans` holds every exported span, `sessions` one
row per `session.id`, maintained on export by folding each new span in with
`shinzo_otel.replay.model.SessionAccumulator`, so spans of a session may arrive in any order and in
any batch. The database runs in WAL mode so the CLI can read while a server writes.

Indexes serve the CLI's reads at scale (benchmarks/bench_store.py): `sessions.session_id` is the
primary key (SQLite backs it with a unique index), lists walk `sessions_start` newest first, or a
composite index when they filter by service or type, or the partial `sessions_active` for sessions
without an end; a replay reads one session's spans through `spans_session_start`.

Version 2 added the `component`, `user_name` and `host_name` columns (admin shell sessions, filtered
by `sessions list --component/--user`), `tools` (tool calls per tool name) and `sessions_active`. A
version 1 file is migrated in place, in one transaction, by whichever side opens it first.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from shinzo_otel._semconv import ADMIN_COMPONENT, HOST_NAME, SESSION_ID, USER_NAME
from shinzo_otel._sqlite import BUSY_TIMEOUT_SECONDS, ForkSafeConnection, transaction
from shinzo_otel.replay.model import (
    EventRecord,
    LinkRecord,
    Session,
    SessionAccumulator,
    SessionCounts,
    SessionStatus,
    SessionSummary,
    SpanKindName,
    SpanRecord,
    StatusCodeName,
    build_session,
)
from shinzo_otel.replay.source import (
    SessionFilter,
    SessionNotFoundError,
    SourceUnavailableError,
)

_logger = logging.getLogger(__name__)

SHINZO_STORE_PATH: Final = "SHINZO_STORE_PATH"
"""Environment variable: path of the embedded store's SQLite file. Unset or empty: the default under
`$XDG_DATA_HOME` (see `default_store_path`)."""

_V2_INDEXES: Final = (
    # Sessions without an end are few (running or stuck, seed 002 `--incomplete`): a small partial
    # index answers that list without walking every session.
    "CREATE INDEX sessions_active ON sessions (start_ns) WHERE end_ns IS NULL",
)
_V1_TO_V2: Final = (
    "ALTER TABLE sessions ADD COLUMN component TEXT",
    "ALTER TABLE sessions ADD COLUMN user_name TEXT",
    "ALTER TABLE sessions ADD COLUMN host_name TEXT",
    "ALTER TABLE sessions ADD COLUMN tools TEXT NOT NULL DEFAULT '{}'",
    *_V2_INDEXES,
)
_SCHEMA_VERSION: Final = 2
_SCHEMA: Final = (
    """CREATE TABLE spans (
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER,
        status_code TEXT NOT NULL,
        status_message TEXT,
        session_id TEXT,
        service_name TEXT,
        attributes TEXT NOT NULL,
        events TEXT NOT NULL,
        links TEXT NOT NULL,
        resource TEXT NOT NULL,
        scope TEXT,
        PRIMARY KEY (trace_id, span_id)
    ) WITHOUT ROWID""",
    # Partial: spans outside any session never need this index; `session_id = ?` implies NOT NULL.
    "CREATE INDEX spans_session_start ON spans (session_id, start_ns) WHERE session_id IS NOT NULL",
    # Columns after source_rank were added by version 2, in the order the migration adds them.
    """CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        service_name TEXT,
        type TEXT,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER,
        status TEXT NOT NULL,
        span_count INTEGER NOT NULL,
        request_count INTEGER NOT NULL,
        tool_call_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        end_reason TEXT,
        source_rank INTEGER NOT NULL,
        component TEXT,
        user_name TEXT,
        host_name TEXT,
        tools TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX sessions_start ON sessions (start_ns)",
    # Composite so that filtering by service or type keeps the newest-first order index-only.
    "CREATE INDEX sessions_service_start ON sessions (service_name, start_ns)",
    "CREATE INDEX sessions_type_start ON sessions (type, start_ns)",
    *_V2_INDEXES,
)
_SPAN_COLUMNS: Final = (
    "trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status_code, status_message, "
    "session_id, service_name, attributes, events, links, resource, scope"
)
_SESSION_COLUMNS: Final = (
    "session_id, service_name, type, start_ns, end_ns, status, span_count, request_count, "
    "tool_call_count, error_count, attributes, end_reason, source_rank, tools"
)
# component, user_name and host_name are derived from `attributes`: written, filtered on, never read.
_SESSION_WRITE_COLUMNS: Final = f"{_SESSION_COLUMNS}, component, user_name, host_name"
_INSERT_SPAN: Final = f"INSERT OR IGNORE INTO spans ({_SPAN_COLUMNS}) VALUES ({', '.join('?' * 16)})"
_UPSERT_SESSION: Final = (
    f"INSERT OR REPLACE INTO sessions ({_SESSION_WRITE_COLUMNS}) VALUES ({', '.join('?' * 17)})"
)

_KIND_NAMES: Final[dict[SpanKind, SpanKindName]] = {
    SpanKind.INTERNAL: "INTERNAL",
    SpanKind.SERVER: "SERVER",
    SpanKind.CLIENT: "CLIENT",
    SpanKind.PRODUCER: "PRODUCER",
    SpanKind.CONSUMER: "CONSUMER",
}
_STATUS_NAMES: Final[dict[StatusCode, StatusCodeName]] = {
    StatusCode.UNSET: "UNSET",
    StatusCode.OK: "OK",
    StatusCode.ERROR: "ERROR",
}


def default_store_path() -> Path:
    """Where the embedded store lives when no path is given, read from the environment on each call.

    `$SHINZO_STORE_PATH` if set and not empty; else `$XDG_DATA_HOME/shinzo-otel/sessions.db`, where an
    unset, empty or relative `XDG_DATA_HOME` means `~/.local/share` (XDG Base Directory
    Specification). Nothing is created here; the exporter creates missing parent directories.
    """
    explicit = os.environ.get(SHINZO_STORE_PATH)
    if explicit:
        return Path(explicit).expanduser()
    xdg_data_home = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg_data_home) if xdg_data_home and Path(xdg_data_home).is_absolute() else None
    return (base or Path.home() / ".local" / "share") / "shinzo-otel" / "sessions.db"


def _to_json(value: object) -> str:
    # Attribute values are str/bool/int/float or tuples of them; default=str keeps odd values readable.
    return json.dumps(value, separators=(",", ":"), default=str)


def _span_record(span: ReadableSpan) -> SpanRecord | None:
    context = span.context
    if context is None or span.start_time is None:
        return None
    attributes = dict(span.attributes or {})
    session_id = attributes.get(SESSION_ID)
    service_name = span.resource.attributes.get(SERVICE_NAME)
    return SpanRecord(
        trace_id=format_trace_id(context.trace_id),
        span_id=format_span_id(context.span_id),
        parent_span_id=None if span.parent is None else format_span_id(span.parent.span_id),
        name=span.name,
        kind=_KIND_NAMES[span.kind],
        start_ns=span.start_time,
        end_ns=span.end_time,
        status_code=_STATUS_NAMES[span.status.status_code],
        status_message=span.status.description,
        session_id=None if session_id is None else str(session_id),
        service_name=None if service_name is None else str(service_name),
        attributes=attributes,
        events=[
            EventRecord(
                name=event.name, timestamp_ns=event.timestamp, attributes=dict(event.attributes or {})
            )
            for event in span.events
        ],
        links=[
            LinkRecord(
                trace_id=format_trace_id(link.context.trace_id),
                span_id=format_span_id(link.context.span_id),
                attributes=dict(link.attributes or {}),
            )
            for link in span.links
        ],
        resource=dict(span.resource.attributes),
        scope=None if span.instrumentation_scope is None else span.instrumentation_scope.name,
    )


def _span_row(record: SpanRecord) -> tuple[Any, ...]:
    return (
        record["trace_id"],
        record["span_id"],
        record["parent_span_id"],
        record["name"],
        record["kind"],
        record["start_ns"],
        record["end_ns"],
        record["status_code"],
        record["status_message"],
        record["session_id"],
        record["service_name"],
        _to_json(record["attributes"]),
        _to_json(record["events"]),
        _to_json(record["links"]),
        _to_json(record["resource"]),
        record["scope"],
    )


def _record_from_row(row: Sequence[Any]) -> SpanRecord:
    return SpanRecord(
        trace_id=row[0],
        span_id=row[1],
        parent_span_id=row[2],
        name=row[3],
        kind=cast(SpanKindName, row[4]),
        start_ns=row[5],
        end_ns=row[6],
        status_code=cast(StatusCodeName, row[7]),
        status_message=row[8],
        session_id=row[9],
        service_name=row[10],
        attributes=json.loads(row[11]),
        events=json.loads(row[12]),
        links=json.loads(row[13]),
        resource=json.loads(row[14]),
        scope=row[15],
    )


def _accumulator_from_row(row: Sequence[Any]) -> SessionAccumulator:
    return SessionAccumulator(
        session_id=row[0],
        service=row[1],
        type=row[2],
        start_ns=row[3],
        end_ns=row[4],
        status=cast(SessionStatus, row[5]),
        counts=SessionCounts(
            spans=row[6], requests=row[7], tool_calls=row[8], errors=row[9], tools=json.loads(row[13])
        ),
        attributes=json.loads(row[10]),
        end_reason=row[11],
        source_rank=row[12],
    )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _session_row(session: SessionAccumulator) -> tuple[Any, ...]:
    counts = session.counts
    attributes = session.attributes
    return (
        session.session_id,
        session.service,
        session.type,
        session.start_ns,
        session.end_ns,
        session.status,
        counts.spans,
        counts.requests,
        counts.tool_calls,
        counts.errors,
        _to_json(attributes),
        session.end_reason,
        session.source_rank,
        _to_json(counts.tools),
        _optional_text(attributes.get(ADMIN_COMPONENT)),
        _optional_text(attributes.get(USER_NAME)),
        _optional_text(attributes.get(HOST_NAME)),
    )


def _prepare_for_writing(connection: sqlite3.Connection) -> None:
    # NORMAL is durable against application crashes in WAL mode; only power loss can drop the last
    # transactions, an acceptable trade for telemetry.
    connection.execute("PRAGMA synchronous = NORMAL")
    _create_schema(connection)


def _migrate_v1(connection: sqlite3.Connection) -> None:
    for statement in _V1_TO_V2:
        connection.execute(statement)
    tools: dict[str, SessionCounts] = {}
    # Only requests can be tool calls, and every request is a SERVER span (SessionCounts rules).
    for row in connection.execute(
        f"SELECT {_SPAN_COLUMNS} FROM spans WHERE session_id IS NOT NULL AND kind = 'SERVER'"
    ):
        record = _record_from_row(row)
        session_id = cast(str, record["session_id"])
        tools[session_id] = tools.get(session_id, SessionCounts()).add(record)
    rows = connection.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions").fetchall()
    for row in rows:
        session = _accumulator_from_row(row)
        counts = tools.get(session.session_id)
        if counts is not None:
            session.counts = session.counts.model_copy(update={"tools": counts.tools})
        connection.execute(_UPSERT_SESSION, _session_row(session))


def _create_schema(connection: sqlite3.Connection) -> None:
    """Create the schema in an empty database or migrate an older one, in one transaction.

    Raises:
        sqlite3.DatabaseError: the file has a newer (or unknown) schema version.
    """
    with transaction(connection):
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == _SCHEMA_VERSION:
            return
        if version == 0:
            for statement in _SCHEMA:
                connection.execute(statement)
        elif version == 1:
            _migrate_v1(connection)
        else:
            raise sqlite3.DatabaseError(
                f"store schema version {version}, this shinzo-otel reads {_SCHEMA_VERSION}"
            )
        connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


class SqliteSpanExporter(SpanExporter):
    """An OTel `SpanExporter` that writes finished spans to the embedded SQLite store.

    Args:
        path: the database file; None (the default) means `default_store_path()`. Missing parent
            directories and the schema are created on the first export.

    Use it like any exporter, preferably behind a `BatchSpanProcessor` (one transaction per batch).
    `export` is safe to call from any thread (the SDK calls it from its worker thread): one
    connection, opened lazily and reopened after a fork, is guarded by a lock. It never raises: a
    failure is logged and reported as `SpanExportResult.FAILURE`. Re-exporting a span (a retry) is
    ignored, so session counts stay exact. Every span is stored; those with `session.id` also
    update their session's row.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path is not None else default_store_path()
        self._lock = threading.Lock()
        self._connection = ForkSafeConnection(self._path, _prepare_for_writing)
        self._shutdown = False

    @property
    def path(self) -> Path:
        """The database file this exporter writes to."""
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Store `spans` in one transaction; SUCCESS or FAILURE, never an exception."""
        try:
            records = [record for record in map(_span_record, spans) if record is not None]
        except Exception:
            _logger.exception("failed to convert %d spans for the session store %s", len(spans), self._path)
            return SpanExportResult.FAILURE
        return self.export_records(records)

    def export_records(self, records: Sequence[SpanRecord]) -> SpanExportResult:
        """Store spans already in the replay model's form (`SpanRecord`, for example read back from
        an OTLP JSON file or made in bulk by a benchmark) in one transaction, with exactly the rules
        of `export`. SUCCESS or FAILURE, never an exception."""
        if self._shutdown:
            _logger.warning("SqliteSpanExporter.export called after shutdown")
            return SpanExportResult.FAILURE
        try:
            with self._lock:
                connection = self._connection.get()
                with transaction(connection):
                    self._write(connection, records)
        except Exception:
            _logger.exception("failed to export %d spans to the session store %s", len(records), self._path)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    @staticmethod
    def _write(connection: sqlite3.Connection, records: Sequence[SpanRecord]) -> None:
        sessions: dict[str, SessionAccumulator] = {}
        for record in records:
            session_id = record["session_id"]
            if connection.execute(_INSERT_SPAN, _span_row(record)).rowcount == 0 or session_id is None:
                continue
            session = sessions.get(session_id)
            if session is None:
                row = connection.execute(
                    f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                session = SessionAccumulator(session_id) if row is None else _accumulator_from_row(row)
                sessions[session_id] = session
            session.add(record)
        connection.executemany(_UPSERT_SESSION, [_session_row(session) for session in sessions.values()])

    def shutdown(self) -> None:
        """Close the connection; later exports fail."""
        with self._lock:
            self._shutdown = True
            self._connection.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here (each export commits), so this returns True at once."""
        return True


def _where(filters: SessionFilter, now_ns: int) -> tuple[list[str], list[Any]]:
    """SQL conditions and parameters equivalent to `filters.matches(summary, now_ns)`."""
    conditions: list[str] = []
    parameters: list[Any] = []
    for condition, value in (
        ("type = ?", filters.session_type),
        ("service_name = ?", filters.service),
        ("component = ?", filters.component),
        ("user_name = ?", filters.user),
        ("start_ns >= ?", filters.after_ns),
        ("start_ns < ?", filters.before_ns),
    ):
        if value is not None:
            conditions.append(condition)
            parameters.append(value)
    if filters.status == "active":
        # The same sessions (no end ⇔ active), said so that the partial index sessions_active applies.
        conditions.append("end_ns IS NULL")
    elif filters.status is not None:
        conditions.append("status = ?")
        parameters.append(filters.status)
    if filters.min_duration_ns is not None:
        conditions.append("COALESCE(end_ns, ?) - start_ns > ?")
        parameters += [now_ns, filters.min_duration_ns]
    if filters.has_error is not None:
        failed = "(error_count > 0 OR status = 'error')"
        conditions.append(failed if filters.has_error else f"NOT {failed}")
    return conditions, parameters


class SessionStore:
    """Reads the embedded store (a `shinzo_otel.replay.SessionSource`) and ends stale sessions.

    Args:
        path: the database file; None (the default) means `default_store_path()`.

    Raises:
        SourceUnavailableError: the file does not exist (it is never created here), is not a
            shinzo-otel store, or has a schema version this code does not read. A store of an older
            schema version is migrated in place first (which needs write access).

    Use from one thread; close with `close()` or a `with` block. Every method raises
    `SourceUnavailableError` if SQLite fails (for example a lock held past the 5 s busy timeout).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path is not None else default_store_path()
        if not self._path.is_file():
            raise SourceUnavailableError(f"no session store at {self._path} (nothing recorded there yet?)")
        try:
            # mode=rw: never create a database as a side effect of reading.
            self._connection = sqlite3.connect(
                f"{self._path.resolve().as_uri()}?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
            )
        except sqlite3.Error as error:
            raise SourceUnavailableError(f"cannot open session store {self._path}: {error}") from error
        try:
            version = self._fetchall("PRAGMA user_version")[0][0]
            if version == 1:
                self._migrate()
            elif version != _SCHEMA_VERSION:
                raise SourceUnavailableError(
                    f"{self._path} is not a shinzo-otel session store of schema version {_SCHEMA_VERSION}"
                    f" (found version {version})"
                )
        except BaseException:
            self._connection.close()
            raise

    def _migrate(self) -> None:
        try:
            _create_schema(self._connection)
        except sqlite3.Error as error:
            raise SourceUnavailableError(
                f"cannot migrate session store {self._path} to schema version {_SCHEMA_VERSION}: {error}"
            ) from error

    def _fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise SourceUnavailableError(f"cannot read session store {self._path}: {error}") from error

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """Session summaries matching `filters` (None: `SessionFilter()`), newest start first, with
        the rules `SessionFilter` documents, in SQL."""
        filters = filters or SessionFilter()
        conditions, parameters = _where(filters, time.time_ns())
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._fetchall(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where} ORDER BY start_ns DESC LIMIT ?",
            [*parameters, -1 if filters.limit is None else filters.limit],
        )
        return [_accumulator_from_row(row).summary() for row in rows]

    def get_summary(self, session_id: str) -> SessionSummary:
        """The summary of one session. Raises SessionNotFoundError if the store has no such session."""
        rows = self._fetchall(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,))
        if not rows:
            raise SessionNotFoundError(f"no session {session_id!r} in {self._path}")
        return _accumulator_from_row(rows[0]).summary()

    def spans_for_session(self, session_id: str) -> list[SpanRecord]:
        """Every stored span with this `session.id`, by start time; empty for an unknown session."""
        rows = self._fetchall(
            f"SELECT {_SPAN_COLUMNS} FROM spans WHERE session_id = ? ORDER BY start_ns", (session_id,)
        )
        return [_record_from_row(row) for row in rows]

    def get_session(self, session_id: str) -> Session:
        """The replay of one session. Raises SessionNotFoundError if the store has no such session."""
        return build_session(self.spans_for_session(session_id), self.get_summary(session_id))

    def end_session(self, session_id: str, end_ns: int | None = None, reason: str = "manual") -> bool:
        """Mark a session without a recorded end as ended (seed 002: clean up stuck sessions).

        Args:
            session_id: the session's `session.id`.
            end_ns: end time in nanoseconds since the Unix epoch; None means now.
            reason: stored as the session's end reason.

        Returns True if the session was ended now, False if it already had an end (nothing changes).
        If the session span arrives later after all, its end and status replace these.

        Raises:
            SessionNotFoundError: no such session.
            ValueError: `end_ns` is before the session's start.
        """
        summary = self.get_summary(session_id)
        end_ns = time.time_ns() if end_ns is None else end_ns
        if summary.end_ns is not None:
            return False
        if end_ns < summary.start_ns:
            raise ValueError(
                f"end_ns {end_ns} is before the start of session {session_id!r} ({summary.start_ns})"
            )
        try:
            with transaction(self._connection):
                changed = self._connection.execute(
                    "UPDATE sessions SET end_ns = ?, status = 'ended', end_reason = ? "
                    "WHERE session_id = ? AND end_ns IS NULL",
                    (end_ns, reason, session_id),
                ).rowcount
        except sqlite3.Error as error:
            raise SourceUnavailableError(f"cannot update session store {self._path}: {error}") from error
        return changed == 1

    def close(self) -> None:
        """Close the connection; idempotent."""
        self._connection.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
