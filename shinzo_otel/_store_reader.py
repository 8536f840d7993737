"""The embedded store's reader: `SessionStore`, the `SessionSource` the CLI reads by default, which
also ends stale sessions and prunes old data.

The read side of the store: it imports the shared schema (`shinzo_otel._store_schema`), never the
writer (layer order: `shinzo_otel._layers`). Every filter is applied in SQL with exactly the rules of
`SessionFilter.matches` and `RequestFilter.matches`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from shinzo_otel._sqlite import BUSY_TIMEOUT_SECONDS, transaction
from shinzo_otel._store_schema import (
    SCHEMA_VERSION,
    SESSION_COLUMNS,
    SPAN_COLUMNS,
    create_schema,
    default_store_path,
    read_version,
    session_accumulator,
    span_record,
)
from shinzo_otel.replay.model import (
    RequestSummary,
    Session,
    SessionSummary,
    SpanRecord,
    TraceReplay,
    build_session,
    build_trace,
)
from shinzo_otel.replay.source import (
    RequestFilter,
    SessionFilter,
    SessionNotFoundError,
    SourceUnavailableError,
    TraceNotFoundError,
)

_NOT_ABANDONED: Final = "(idle_timeout_ns IS NULL OR ? - last_activity_ns <= idle_timeout_ns)"
"""`session_status` in SQL, for a session whose recorded status is `active`: still `active` at the
bound time (`now_ns - last_activity_ns > idle_timeout_ns` makes it `abandoned`)."""
_FAILED_SESSION: Final = "(error_count > 0 OR status = 'error')"
"""`SessionSummary.has_error` in SQL (`status` `error` is recorded, never computed)."""


def _set_conditions(candidates: Iterable[tuple[str, Any]]) -> tuple[list[str], list[Any]]:
    """The conditions (each with one `?`) of the (condition, value) pairs whose filter value is set, and
    those values as their parameters."""
    conditions: list[str] = []
    parameters: list[Any] = []
    for condition, value in candidates:
        if value is not None:
            conditions.append(condition)
            parameters.append(value)
    return conditions, parameters


def _session_where(filters: SessionFilter, now_ns: int) -> tuple[list[str], list[Any]]:
    """SQL conditions and parameters equivalent to `filters.matches(summary, now_ns)` on the
    summaries `SessionStore` builds with the same `now_ns`."""
    conditions, parameters = _set_conditions(
        (
            ("type = ?", filters.session_type),
            ("service_name = ?", filters.service),
            ("origin = ?", filters.origin),
            ("component = ?", filters.component),
            ("user_name = ?", filters.user),
            ("start_ns >= ?", filters.after_ns),
            ("start_ns < ?", filters.before_ns),
        )
    )
    # A recorded `active` status always comes with no end (only the session span or `end_session`
    # record an end, and both record `ended` or `error`): saying `end_ns IS NULL` too lets the
    # partial index sessions_active answer.
    if filters.status == "active":
        conditions.append(f"end_ns IS NULL AND status = 'active' AND {_NOT_ABANDONED}")
        parameters.append(now_ns)
    elif filters.status == "abandoned":
        conditions.append(f"end_ns IS NULL AND status = 'active' AND NOT {_NOT_ABANDONED}")
        parameters.append(now_ns)
    elif filters.status is not None:
        conditions.append("status = ?")
        parameters.append(filters.status)
    if filters.incomplete is not None:
        conditions.append("end_ns IS NULL" if filters.incomplete else "end_ns IS NOT NULL")
    if filters.min_duration_ns is not None:
        conditions.append("COALESCE(end_ns, ?) - start_ns > ?")
        parameters += [now_ns, filters.min_duration_ns]
    if filters.has_error is not None:
        conditions.append(_FAILED_SESSION if filters.has_error else f"NOT {_FAILED_SESSION}")
    return conditions, parameters


def _request_where(filters: RequestFilter) -> tuple[list[str], list[Any]]:
    """SQL conditions and parameters equivalent to `filters.matches(request)` over the spans of
    requests outside any session (`request_method IS NOT NULL`, the partial index spans_requests)."""
    conditions, parameters = _set_conditions(
        (
            ("service_name = ?", filters.service),
            ("request_method = ?", filters.method),
            ("request_method = 'tools/call' AND request_target = ?", filters.tool),
            ("start_ns >= ?", filters.after_ns),
            ("start_ns < ?", filters.before_ns),
            ("request_failed = ?", None if filters.has_error is None else int(filters.has_error)),
        )
    )
    return ["request_method IS NOT NULL", *conditions], parameters


def _limit(limit: int | None) -> int:
    return -1 if limit is None else limit  # SQLite: a negative LIMIT means none


@dataclass(frozen=True)
class PruneResult:
    """What `SessionStore.prune` removed, or would remove in a dry run.

    `sessions`: sessions with a recorded end that started before the cutoff; `requests`: requests
    outside any session among the removed spans; `spans`: every removed span (those of the sessions,
    and those outside any session).
    """

    sessions: int
    requests: int
    spans: int


_PRUNED_SESSIONS: Final = "end_ns IS NOT NULL AND start_ns < :before"
"""The sessions `prune` deletes (conditions on `sessions`)."""
_PRUNED_SESSION_IDS: Final = f"(SELECT session_id FROM sessions WHERE {_PRUNED_SESSIONS})"
_PRUNED_SESSION_SPANS: Final = f"session_id IN {_PRUNED_SESSION_IDS}"
"""The spans of those sessions (conditions on `spans`)."""
_PRUNED_OUTSIDE_SPANS: Final = (
    # Whole traces: the spans outside any session of every trace where one of them started before the
    # cutoff, unless the trace also holds a span of a session that stays.
    "session_id IS NULL"
    " AND trace_id IN (SELECT trace_id FROM spans WHERE session_id IS NULL AND start_ns < :before)"
    " AND NOT EXISTS (SELECT 1 FROM spans AS kept WHERE kept.trace_id = spans.trace_id"
    f" AND kept.session_id IS NOT NULL AND kept.session_id NOT IN {_PRUNED_SESSION_IDS})"
)
"""The spans outside any session `prune` deletes (conditions on `spans`)."""


class SessionStore:
    """Reads the embedded store (a `shinzo_otel.replay.SessionSource`), ends stale sessions and
    prunes old data.

    Args:
        path: the database file; None (the default) means `default_store_path()`.

    Raises:
        SourceUnavailableError: the file does not exist (it is never created here), is not a
            shinzo-otel store, or has a schema version this code does not read. A store of an older
            schema version is migrated in place first (which needs write access).

    Use from one thread; close with `close()` or a `with` block. Every method raises
    `SourceUnavailableError` if SQLite fails (for example a lock held past the 5 s busy timeout).
    Statuses are computed when read: a session without an end that has been silent for longer than
    its idle timeout is `abandoned` (`shinzo_otel.replay.model.session_status`).
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
            self._check_version()
        except BaseException:
            self._connection.close()
            raise

    def _check_version(self) -> None:
        try:
            version = read_version(self._connection)
            empty = version == 0 and not self._connection.execute("SELECT 1 FROM sqlite_master").fetchone()
            # An older schema is migrated; a file the exporter created a moment ago, before its first
            # transaction, is an empty store, not a foreign database.
            if 1 <= version < SCHEMA_VERSION or empty:
                create_schema(self._connection)
                return
        except sqlite3.Error as error:
            raise SourceUnavailableError(
                f"cannot open session store {self._path} (schema version {SCHEMA_VERSION}): {error}"
            ) from error
        if version != SCHEMA_VERSION:
            raise SourceUnavailableError(
                f"{self._path} is not a shinzo-otel session store of schema version {SCHEMA_VERSION}"
                f" (found version {version})"
            )

    def _fetchall(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        try:
            return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise SourceUnavailableError(f"cannot read session store {self._path}: {error}") from error

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """Session summaries matching `filters` (None: `SessionFilter()`), newest start first, with
        the rules `SessionFilter` documents, in SQL."""
        filters = filters or SessionFilter()
        now_ns = time.time_ns()
        conditions, parameters = _session_where(filters, now_ns)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._fetchall(
            f"SELECT {SESSION_COLUMNS} FROM sessions {where} ORDER BY start_ns DESC LIMIT ?",
            [*parameters, _limit(filters.limit)],
        )
        return [session_accumulator(row).summary(now_ns) for row in rows]

    def get_summary(self, session_id: str) -> SessionSummary:
        """The summary of one session. Raises SessionNotFoundError if the store has no such session."""
        rows = self._fetchall(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,))
        if not rows:
            raise SessionNotFoundError(f"no session {session_id!r} in {self._path}")
        return session_accumulator(rows[0]).summary()

    def spans_for_session(self, session_id: str) -> list[SpanRecord]:
        """Every stored span with this `session.id`, by start time; empty for an unknown session."""
        rows = self._fetchall(
            f"SELECT {SPAN_COLUMNS} FROM spans WHERE session_id = ? ORDER BY start_ns", (session_id,)
        )
        return [span_record(row) for row in rows]

    def get_session(self, session_id: str) -> Session:
        """The replay of one session. Raises SessionNotFoundError if the store has no such session."""
        return build_session(self.spans_for_session(session_id), self.get_summary(session_id))

    def list_requests(self, filters: RequestFilter | None = None) -> list[RequestSummary]:
        """Requests outside any session matching `filters` (None: `RequestFilter()`), newest start
        first, with the rules `RequestFilter` documents, in SQL."""
        filters = filters or RequestFilter()
        conditions, parameters = _request_where(filters)
        rows = self._fetchall(
            f"SELECT {SPAN_COLUMNS} FROM spans WHERE {' AND '.join(conditions)} "
            "ORDER BY start_ns DESC LIMIT ?",
            [*parameters, _limit(filters.limit)],
        )
        return [RequestSummary.from_span(span_record(row)) for row in rows]

    def count_requests(self, filters: RequestFilter | None = None) -> int:
        """How many requests outside any session match `filters`, ignoring its `limit`."""
        conditions, parameters = _request_where(filters or RequestFilter())
        return int(
            self._fetchall(f"SELECT COUNT(*) FROM spans WHERE {' AND '.join(conditions)}", parameters)[0][0]
        )

    def get_trace(self, trace_id: str) -> TraceReplay:
        """The replay of every stored span of one trace (`trace_id`: 32 hex digits, any case).

        Raises:
            TraceNotFoundError: no stored span has this trace id.
        """
        rows = self._fetchall(
            f"SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY start_ns",
            (trace_id.strip().lower(),),
        )
        if not rows:
            raise TraceNotFoundError(f"no trace {trace_id!r} in {self._path}")
        return build_trace(span_record(row) for row in rows)

    def end_session(self, session_id: str, end_ns: int | None = None, reason: str = "manual") -> bool:
        """Mark a session without a recorded end (`active` or `abandoned`) as ended: clean up sessions
        whose process died.

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

    def prune(self, before_ns: int, *, dry_run: bool = False) -> PruneResult:
        """Delete what started before `before_ns` (ns since the Unix epoch): every session with a
        recorded end (`ended`, `error`) and all its spans, and every trace's spans outside any session
        (requests outside sessions and the spans under them) when one of them started before the
        cutoff and no span of the trace belongs to a session that stays. Sessions without an end
        (`active`, `abandoned`) stay: end them first (`end_session`).

        Args:
            before_ns: the cutoff, exclusive.
            dry_run: count only, delete nothing.

        Returns what was (or would be) removed. The file keeps its size; SQLite reuses the pages.
        """
        bound = {"before": before_ns}
        counts = (
            f"SELECT (SELECT COUNT(*) FROM sessions WHERE {_PRUNED_SESSIONS}),"
            f" (SELECT COUNT(*) FROM spans WHERE {_PRUNED_OUTSIDE_SPANS} AND request_method IS NOT NULL),"
            f" (SELECT COUNT(*) FROM spans WHERE {_PRUNED_SESSION_SPANS})"
            f" + (SELECT COUNT(*) FROM spans WHERE {_PRUNED_OUTSIDE_SPANS})"
        )
        if dry_run:
            return PruneResult(*self._fetchall(counts, bound)[0])
        try:
            with transaction(self._connection):
                result = PruneResult(*self._connection.execute(counts, bound).fetchone())
                for statement in (
                    f"DELETE FROM spans WHERE {_PRUNED_OUTSIDE_SPANS}",
                    f"DELETE FROM spans WHERE {_PRUNED_SESSION_SPANS}",
                    f"DELETE FROM sessions WHERE {_PRUNED_SESSIONS}",
                ):
                    self._connection.execute(statement, bound)
        except sqlite3.Error as error:
            raise SourceUnavailableError(f"cannot prune session store {self._path}: {error}") from error
        return result

    def close(self) -> None:
        """Close the connection; idempotent."""
        self._connection.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
