"""The embedded store's file: where it lives, its SQLite schema and migrations, and how spans and
sessions map to rows. Shared by the writer (`shinzo_otel._store_writer`, the exporter) and the reader
(`shinzo_otel._store_reader`, the CLI's source), which never import each other.

Schema version 3, kept in `PRAGMA user_version`:

- `spans`: every exported span. `request_method`, `request_target` and `request_failed` are set only
  on the SERVER span of an MCP request outside any session (`is_sessionless_request`) and NULL on
  every other span; the partial index `spans_requests` holds exactly those spans, with every column
  `sessions list`'s count and `requests list`'s filters read, so both walk the index alone.
- `sessions`: one row per `session.id`, folded on export with `SessionAccumulator`, so spans of a
  session may arrive in any order and in any batch. `status` is the recorded one (`active`, `ended`,
  `error`); readers show `abandoned` (`session_status`) from `last_activity_ns` and
  `idle_timeout_ns` (`shinzo.session.idle_timeout` in ns, NULL when the session has none) at read
  time. `component`, `user_name`, `host_name`, `origin` and `idle_timeout_ns` are derived from
  `attributes` so that SQL can filter on them.

Indexes serve the CLI's reads at scale (benchmarks/bench_store.py): lists walk `sessions_start` newest
first, or a composite index when they filter by service, type or origin, or the partial
`sessions_active` for sessions without an end; a replay reads one session's spans through
`spans_session_start`, one trace through the primary key.

Version 2 added `component`, `user_name`, `host_name`, `tools` and `sessions_active`; version 3
`last_activity_ns`, `idle_timeout_ns`, `origin`, the request columns of `spans` and their indexes. An
older file is migrated in place, in one transaction, by whichever side opens it first; the derived
columns are then rebuilt from the stored spans and attributes with the current rules.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, cast

from shinzo_otel._semconv import (
    ADMIN_COMPONENT,
    ERROR_TYPE,
    GEN_AI_PROMPT_NAME,
    GEN_AI_TOOL_NAME,
    HOST_NAME,
    MCP_METHOD_NAME,
    SESSION_ORIGIN,
    USER_NAME,
)
from shinzo_otel._sqlite import transaction
from shinzo_otel.replay.model import (
    SessionAccumulator,
    SessionCounts,
    SessionStatus,
    SpanKindName,
    SpanRecord,
    StatusCodeName,
    idle_timeout_ns,
    is_sessionless_request,
)

SHINZO_STORE_PATH: Final = "SHINZO_STORE_PATH"
"""Environment variable: path of the embedded store's SQLite file. Unset or empty: the default under
`$XDG_DATA_HOME` (see `default_store_path`)."""

SCHEMA_VERSION: Final = 3

_MAX_SQLITE_INTEGER: Final = 2**63 - 1

_V2_DDL: Final = (
    # Sessions without an end are few (running or stuck, `sessions list --incomplete`): a small
    # partial index answers that list without walking every session.
    "CREATE INDEX sessions_active ON sessions (start_ns) WHERE end_ns IS NULL",
)
_V3_DDL: Final = (
    "CREATE INDEX sessions_origin_start ON sessions (origin, start_ns)",
    # Newest first, and every column a request filter or count reads: no table lookup until a row
    # is returned, so a list or a count stays in milliseconds at 100 000 requests outside sessions.
    "CREATE INDEX spans_requests ON spans (start_ns, service_name, request_method, request_target, "
    "request_failed) WHERE request_method IS NOT NULL",
)
_V1_TO_V2: Final = (
    "ALTER TABLE sessions ADD COLUMN component TEXT",
    "ALTER TABLE sessions ADD COLUMN user_name TEXT",
    "ALTER TABLE sessions ADD COLUMN host_name TEXT",
    "ALTER TABLE sessions ADD COLUMN tools TEXT NOT NULL DEFAULT '{}'",
    *_V2_DDL,
)
_V2_TO_V3: Final = (
    "ALTER TABLE sessions ADD COLUMN last_activity_ns INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN idle_timeout_ns INTEGER",
    "ALTER TABLE sessions ADD COLUMN origin TEXT",
    "ALTER TABLE spans ADD COLUMN request_method TEXT",
    "ALTER TABLE spans ADD COLUMN request_target TEXT",
    "ALTER TABLE spans ADD COLUMN request_failed INTEGER",
    *_V3_DDL,
)
_SCHEMA: Final = (
    # Columns after `scope` and after `source_rank` were added by later versions, in the order their
    # migrations add them, so that a migrated file and a new one have the same tables.
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
        request_method TEXT,
        request_target TEXT,
        request_failed INTEGER,
        PRIMARY KEY (trace_id, span_id)
    ) WITHOUT ROWID""",
    # Partial: spans outside any session never need this index; `session_id = ?` implies NOT NULL.
    "CREATE INDEX spans_session_start ON spans (session_id, start_ns) WHERE session_id IS NOT NULL",
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
        tools TEXT NOT NULL DEFAULT '{}',
        last_activity_ns INTEGER NOT NULL DEFAULT 0,
        idle_timeout_ns INTEGER,
        origin TEXT
    )""",
    "CREATE INDEX sessions_start ON sessions (start_ns)",
    # Composite so that filtering by service or type keeps the newest-first order index-only.
    "CREATE INDEX sessions_service_start ON sessions (service_name, start_ns)",
    "CREATE INDEX sessions_type_start ON sessions (type, start_ns)",
    *_V2_DDL,
    *_V3_DDL,
)

SPAN_COLUMNS: Final = (
    "trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status_code, status_message, "
    "session_id, service_name, attributes, events, links, resource, scope"
)
"""The columns `span_record` reads, in its order."""
SESSION_COLUMNS: Final = (
    "session_id, service_name, type, start_ns, end_ns, status, span_count, request_count, "
    "tool_call_count, error_count, attributes, end_reason, source_rank, tools, last_activity_ns"
)
"""The columns `session_accumulator` reads, in its order."""
# The request columns of spans and the filter columns of sessions are derived: written, filtered on,
# never read back.
_SPAN_WRITE_COLUMNS: Final = f"{SPAN_COLUMNS}, request_method, request_target, request_failed"
_SESSION_WRITE_COLUMNS: Final = f"{SESSION_COLUMNS}, component, user_name, host_name, idle_timeout_ns, origin"
INSERT_SPAN: Final = f"INSERT OR IGNORE INTO spans ({_SPAN_WRITE_COLUMNS}) VALUES ({', '.join('?' * 19)})"
"""Insert one `span_row`; a span already stored (a retried export) is left as it is."""
UPSERT_SESSION: Final = (
    f"INSERT OR REPLACE INTO sessions ({_SESSION_WRITE_COLUMNS}) VALUES ({', '.join('?' * 20)})"
)
"""Insert or replace one `session_row`."""


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


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _request_columns(record: SpanRecord) -> tuple[str | None, str | None, int | None]:
    """`request_method`, `request_target`, `request_failed` of a span: set for a request outside any
    session, by the rules of `RequestSummary` (target: tool, else prompt name; failed: status ERROR
    or an `error.type`); NULL for every other span."""
    if not is_sessionless_request(record):
        return None, None, None
    attributes = record["attributes"]
    target = attributes.get(GEN_AI_TOOL_NAME, attributes.get(GEN_AI_PROMPT_NAME))
    failed = record["status_code"] == "ERROR" or attributes.get(ERROR_TYPE) is not None
    return str(attributes[MCP_METHOD_NAME]), _optional_text(target), int(failed)


def span_row(record: SpanRecord) -> tuple[Any, ...]:
    """The values of `INSERT_SPAN` for one span."""
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
        *_request_columns(record),
    )


def span_record(row: Sequence[Any]) -> SpanRecord:
    """The span of a row of `SPAN_COLUMNS`."""
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


def session_accumulator(row: Sequence[Any]) -> SessionAccumulator:
    """The accumulator of a row of `SESSION_COLUMNS`, ready to fold in more spans or to summarise."""
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
        last_activity_ns=row[14],
    )


def session_row(session: SessionAccumulator) -> tuple[Any, ...]:
    """The values of `UPSERT_SESSION` for one session.

    `last_activity_ns` is the accumulator's: the latest start or end of a span of the session. For a
    session without an end it is also what `SessionAccumulator.summary` shows (its start is a span's
    start), so SQL filters on it agree with the summaries; a manual end (`SessionStore.end_session`)
    is not an activity of the spans and never stored here.
    """
    counts = session.counts
    attributes = session.attributes
    timeout_ns = idle_timeout_ns(attributes)
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
        session.last_activity_ns,
        _optional_text(attributes.get(ADMIN_COMPONENT)),
        _optional_text(attributes.get(USER_NAME)),
        _optional_text(attributes.get(HOST_NAME)),
        # An idle timeout past SQLite's integer range means "never abandoned", as this cap does.
        None if timeout_ns is None else min(timeout_ns, _MAX_SQLITE_INTEGER),
        _optional_text(attributes.get(SESSION_ORIGIN)),
    )


def _rebuild_derived_columns(connection: sqlite3.Connection, *, tools: bool) -> None:
    """After a migration: recompute every derived column from the stored spans and attributes.

    Args:
        tools: also rebuild the tool counts (a version 1 file has none).
    """
    activity = dict(
        connection.execute(
            "SELECT session_id, MAX(MAX(start_ns, COALESCE(end_ns, start_ns))) FROM spans "
            "WHERE session_id IS NOT NULL GROUP BY session_id"
        ).fetchall()
    )
    tool_counts: dict[str, SessionCounts] = {}
    if tools:
        # Only requests can be tool calls, and every request is a SERVER span (SessionCounts rules).
        for row in connection.execute(
            f"SELECT {SPAN_COLUMNS} FROM spans WHERE session_id IS NOT NULL AND kind = 'SERVER'"
        ):
            record = span_record(row)
            session_id = cast(str, record["session_id"])
            tool_counts[session_id] = tool_counts.get(session_id, SessionCounts()).add(record)
    sessions = []
    for row in connection.execute(f"SELECT {SESSION_COLUMNS} FROM sessions").fetchall():
        session = session_accumulator(row)
        session.last_activity_ns = activity.get(session.session_id, 0)
        counts = tool_counts.get(session.session_id)
        if counts is not None:
            session.counts = session.counts.model_copy(update={"tools": counts.tools})
        sessions.append(session_row(session))
    connection.executemany(UPSERT_SESSION, sessions)
    requests = []
    for row in connection.execute(
        f"SELECT {SPAN_COLUMNS} FROM spans WHERE session_id IS NULL AND kind = 'SERVER'"
    ).fetchall():
        record = span_record(row)
        method, target, failed = _request_columns(record)
        if method is not None:
            requests.append((method, target, failed, record["trace_id"], record["span_id"]))
    connection.executemany(
        "UPDATE spans SET request_method = ?, request_target = ?, request_failed = ? "
        "WHERE trace_id = ? AND span_id = ?",
        requests,
    )


def create_schema(connection: sqlite3.Connection) -> None:
    """Create the schema in an empty database or migrate an older one, in one transaction.

    Raises:
        sqlite3.DatabaseError: the file has a newer (or unknown) schema version.
    """
    with transaction(connection):
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version == 0:
            for statement in _SCHEMA:
                connection.execute(statement)
        elif 1 <= version < SCHEMA_VERSION:
            for statement in (*(_V1_TO_V2 if version < 2 else ()), *_V2_TO_V3):
                connection.execute(statement)
            _rebuild_derived_columns(connection, tools=version < 2)
        else:
            raise sqlite3.DatabaseError(
                f"store schema version {version}, this shinzo-otel reads {SCHEMA_VERSION}"
            )
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def read_version(connection: sqlite3.Connection) -> int:
    """The schema version of the database `connection` is open on (0: empty or not a store)."""
    return int(connection.execute("PRAGMA user_version").fetchone()[0])
