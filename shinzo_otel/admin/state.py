"""Admin shell sessions persisted in SQLite, so that they survive a restart of the tracking server.

One row per session: its id, the start event's id, start time, span attributes and the ids of the
original session span; `end_ns` is set once the session has ended. The tracker uses it to hand out
unique session ids (seed 001's `{component}-{YYYYMMDD-HHMMSS}`, with `-2`, `-3`, ... when two shells
start in the same second), to answer a repeated start with the same event id with the same session,
and to end a session whose start was handled by an earlier process. Ended rows are kept for
`ENDED_RETENTION_SECONDS` so that retried events keep their answers, then purged.

The file is separate from the span store: the store is the exporter's (and may not exist when spans
go to OTLP), this is the tracker's. Several processes may share one file (stdio servers started per
call): every write is one `BEGIN IMMEDIATE` transaction and the database runs in WAL mode.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from opentelemetry.util.types import AttributeValue

from shinzo_otel._sqlite import ForkSafeConnection, transaction

ENDED_RETENTION_SECONDS: Final = 30 * 86_400
"""How long an ended session is remembered (for idempotent retries of its events): 30 days."""
_SCHEMA_VERSION: Final = 1
_MAX_SUFFIX: Final = 100_000
_SCHEMA: Final = (
    """CREATE TABLE admin_sessions (
        session_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        start_ns INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        trace_id TEXT,
        span_id TEXT,
        end_ns INTEGER,
        end_reason TEXT
    )""",
    "CREATE INDEX admin_sessions_end ON admin_sessions (end_ns) WHERE end_ns IS NOT NULL",
    f"PRAGMA user_version = {_SCHEMA_VERSION}",
)
_COLUMNS: Final = "session_id, event_id, start_ns, attributes, trace_id, span_id, end_ns"
_T = TypeVar("_T")


@dataclass(frozen=True)
class SessionRecord:
    """One persisted admin shell session. `trace_id` / `span_id` (hex) identify the original session
    span; None if the process died between reserving the id and starting the span."""

    session_id: str
    event_id: str
    start_ns: int
    attributes: dict[str, AttributeValue]
    trace_id: str | None
    span_id: str | None
    end_ns: int | None


def _record(row: tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(
        session_id=row[0],
        event_id=row[1],
        start_ns=row[2],
        attributes=json.loads(row[3]),
        trace_id=row[4],
        span_id=row[5],
        end_ns=row[6],
    )


class SessionStateStore:
    """The SQLite file of admin shell sessions.

    Args:
        path: the database file; created with its parent directories on first use.

    Thread-safe (one connection behind a lock, reopened after a fork). Methods raise
    `sqlite3.Error` when the file cannot be used (for example locked past the 5 s busy timeout);
    the tracker turns that into an error result.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._connection = ForkSafeConnection(self._path, self._prepare)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def find_by_event(self, event_id: str) -> SessionRecord | None:
        """The session started by the event `event_id`, if any."""
        return self._run(lambda connection: self._select(connection, "event_id", event_id))

    def get(self, session_id: str) -> SessionRecord | None:
        """The session `session_id`, open or ended, if known."""
        return self._run(lambda connection: self._select(connection, "session_id", session_id))

    def reserve(
        self, event_id: str, base_id: str, start_ns: int, attributes: Mapping[str, AttributeValue]
    ) -> tuple[SessionRecord, bool]:
        """Record a new session for `event_id` under `base_id`, or `base_id-N` with the smallest free N.

        Returns the record and True, or the existing record of `event_id` and False (a repeated start).

        Raises:
            sqlite3.Error: the file cannot be written.
            RuntimeError: every suffix up to 100000 is taken.
        """

        def reserve(connection: sqlite3.Connection) -> tuple[SessionRecord, bool]:
            with transaction(connection):
                existing = self._select(connection, "event_id", event_id)
                if existing is not None:
                    return existing, False
                purge_before = time.time_ns() - ENDED_RETENTION_SECONDS * 1_000_000_000
                connection.execute("DELETE FROM admin_sessions WHERE end_ns < ?", (purge_before,))
                session_id = self._free_id(connection, base_id)
                connection.execute(
                    "INSERT INTO admin_sessions (session_id, event_id, start_ns, attributes)"
                    " VALUES (?, ?, ?, ?)",
                    (session_id, event_id, start_ns, json.dumps(dict(attributes), separators=(",", ":"))),
                )
            return SessionRecord(session_id, event_id, start_ns, dict(attributes), None, None, None), True

        return self._run(reserve)

    def set_span(self, session_id: str, trace_id: str, span_id: str) -> None:
        """Remember the ids (hex) of the session span of `session_id`."""

        def set_span(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.execute(
                    "UPDATE admin_sessions SET trace_id = ?, span_id = ? WHERE session_id = ?",
                    (trace_id, span_id, session_id),
                )

        self._run(set_span)

    def end(self, session_id: str, end_ns: int, reason: str) -> tuple[SessionRecord | None, bool]:
        """Mark `session_id` ended at `end_ns` (its start time if `end_ns` is earlier), in one
        transaction.

        Returns:
            The session's record as it is afterwards (None for an unknown session) and True if this
            call ended it, False if it had ended already.
        """

        def end(connection: sqlite3.Connection) -> tuple[SessionRecord | None, bool]:
            with transaction(connection):
                cursor = connection.execute(
                    "UPDATE admin_sessions SET end_ns = MAX(?, start_ns), end_reason = ?"
                    " WHERE session_id = ? AND end_ns IS NULL",
                    (end_ns, reason, session_id),
                )
                record = self._select(connection, "session_id", session_id)
            return record, cursor.rowcount == 1

        return self._run(end)

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        with self._lock:
            self._connection.close()

    @staticmethod
    def _select(connection: sqlite3.Connection, column: str, value: str) -> SessionRecord | None:
        row = connection.execute(
            f"SELECT {_COLUMNS} FROM admin_sessions WHERE {column} = ?", (value,)
        ).fetchone()
        return None if row is None else _record(row)

    @staticmethod
    def _free_id(connection: sqlite3.Connection, base_id: str) -> str:
        # One range scan of the primary key finds base_id and every base_id-<anything> ("." sorts
        # right after "-"), however many shells started in that second.
        taken = {
            row[0]
            for row in connection.execute(
                "SELECT session_id FROM admin_sessions"
                " WHERE session_id = ? OR (session_id >= ? AND session_id < ?)",
                (base_id, f"{base_id}-", f"{base_id}."),
            )
        }
        if base_id not in taken:
            return base_id
        for suffix in range(2, _MAX_SUFFIX + 1):
            candidate = f"{base_id}-{suffix}"
            if candidate not in taken:
                return candidate
        raise RuntimeError(f"no free session id for {base_id!r}")

    def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            return operation(self._connection.get())

    def _prepare(self, connection: sqlite3.Connection) -> None:
        # WAL's recommended setting: a commit no longer waits for fsync, and the file stays
        # consistent through a crash of any process (a power loss may lose the last commits).
        connection.execute("PRAGMA synchronous = NORMAL")
        with transaction(connection):
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _SCHEMA:
                    connection.execute(statement)
            elif version != _SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"{self._path}: admin session state version {version}, this code reads {_SCHEMA_VERSION}"
                )
