"""The reader interface every replay source implements, the filter they share, and their errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from shinzo_otel.replay.model import (
    RequestSummary,
    Session,
    SessionStatus,
    SessionSummary,
    TraceReplay,
    datetime_to_ns,
)

ProgressCallback = Callable[[int, int], None]
"""Called by a reader during a long read as `(completed, total)` in units the reader picks (bytes of a
file, traces fetched from a backend); `total` never changes during one read."""

WarningCallback = Callable[[str], None]
"""Called by a reader with a one-line message for each piece of input it skips (a malformed file
line, a trace a backend would not return) while it goes on reading the rest."""

_NS_PER_SECOND = 1_000_000_000


class ReplayError(Exception):
    """A replay source cannot answer; the message is one line meant for the user."""


class SourceUnavailableError(ReplayError):
    """The source does not exist or cannot be read (missing store file, not a store, newer schema,
    backend unreachable or answering with an error)."""


class SessionNotFoundError(ReplayError, LookupError):
    """No session with the requested id exists in the source."""


class TraceNotFoundError(ReplayError, LookupError):
    """No trace with the requested id exists in the source."""


class _Window(BaseModel):
    """What session and request filters share: a start-time window, a service, a limit."""

    model_config = ConfigDict(frozen=True)

    limit: int | None = Field(default=50, ge=1)
    service: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    @property
    def after_ns(self) -> int | None:
        """`started_after` in nanoseconds since the Unix epoch, or None."""
        return None if self.started_after is None else datetime_to_ns(self.started_after)

    @property
    def before_ns(self) -> int | None:
        """`started_before` in nanoseconds since the Unix epoch, or None."""
        return None if self.started_before is None else datetime_to_ns(self.started_before)

    def _in_window(self, service: str | None, start_ns: int) -> bool:
        after_ns, before_ns = self.after_ns, self.before_ns
        return (
            (self.service is None or self.service == service)
            and (after_ns is None or start_ns >= after_ns)
            and (before_ns is None or start_ns < before_ns)
        )


class SessionFilter(_Window):
    """Which sessions `SessionSource.list_sessions` returns, newest start first (ties in any order).

    Every reader applies the same rules, the embedded store in SQL and the others with `matches`:

    - `limit`: at most this many sessions (None: all);
    - `session_type`: `shinzo.session.type` equals it (`mcp`, `manual`, `logical`, `admin_shell`);
    - `service`: the resource's `service.name` equals it;
    - `component` / `user`: the session span's `shinzo.admin.component` / `user.name` equals it
      (admin shell sessions, seed 002 `--component` and `--user`);
    - `origin`: `shinzo.session.origin` equals it (`protocol`, `connection`, `stream`,
      `conversation`, `resolver`, `manual`, `admin_shell`);
    - `status`: the status shown (`SessionSummary.status`: `active`, `abandoned`, `ended`, `error`);
    - `incomplete`: True keeps sessions without a recorded end (`active` or `abandoned`, seed 002
      `--incomplete`), False those with one;
    - `started_after` / `started_before`: bound the start time, inclusive / exclusive; naive
      datetimes are UTC;
    - `min_duration_seconds`: the duration is strictly greater (seed 002 `--duration-greater`); a
      session without a recorded end counts as running until now, so that stuck sessions are found;
    - `has_error`: True keeps sessions with a failed request or an ERROR session span, False keeps
      the others.

    Unset fields do not filter; all set fields must hold.
    """

    session_type: str | None = None
    origin: str | None = None
    component: str | None = None
    user: str | None = None
    status: SessionStatus | None = None
    incomplete: bool | None = None
    min_duration_seconds: float | None = Field(default=None, ge=0)
    has_error: bool | None = None

    @property
    def min_duration_ns(self) -> int | None:
        """`min_duration_seconds` rounded to whole nanoseconds, or None; readers compare with this
        integer so that SQL and in-memory filtering agree to the nanosecond."""
        return (
            None if self.min_duration_seconds is None else round(self.min_duration_seconds * _NS_PER_SECOND)
        )

    def matches(self, summary: SessionSummary, now_ns: int) -> bool:
        """True if `summary` passes every filter except `limit`.

        Args:
            summary: the session.
            now_ns: "now" in nanoseconds since the Unix epoch, the end of sessions without one for
                `min_duration_seconds`.
        """
        for wanted, actual in (
            (self.session_type, summary.type),
            (self.origin, summary.origin),
            (self.component, summary.component),
            (self.user, summary.user),
            (self.status, summary.status),
            (self.incomplete, summary.end_ns is None),
            (self.has_error, summary.has_error),
        ):
            if wanted is not None and wanted != actual:
                return False
        if not self._in_window(summary.service, summary.start_ns):
            return False
        min_duration_ns = self.min_duration_ns
        end_ns = now_ns if summary.end_ns is None else summary.end_ns
        return min_duration_ns is None or end_ns - summary.start_ns > min_duration_ns

    def request_window(self) -> RequestFilter:
        """The requests outside any session in this filter's window (service, start bounds), no
        limit: what `sessions list` counts with `SessionSource.count_requests`."""
        return RequestFilter(
            limit=None,
            service=self.service,
            started_after=self.started_after,
            started_before=self.started_before,
        )


class RequestFilter(_Window):
    """Which requests outside any session `SessionSource.list_requests` returns, newest first.

    - `limit`, `service`, `started_after`, `started_before`: as in `SessionFilter`;
    - `method`: `mcp.method.name` equals it (`tools/call`, `tools/list`, ...);
    - `tool`: `gen_ai.tool.name` equals it;
    - `has_error`: True keeps failed requests (`RequestSummary.has_error`), False the others.

    Unset fields do not filter; all set fields must hold.
    """

    method: str | None = None
    tool: str | None = None
    has_error: bool | None = None

    def matches(self, request: RequestSummary) -> bool:
        """True if `request` passes every filter except `limit`."""
        return (
            (self.method is None or self.method == request.method)
            and (self.tool is None or (request.method == "tools/call" and self.tool == request.target))
            and (self.has_error is None or self.has_error == request.has_error)
            and self._in_window(request.service, request.start_ns)
        )


class SessionSource(Protocol):
    """A place sessions can be read from: the embedded store, OTLP-JSON files, Tempo or Jaeger.

    `shinzo_otel.replay.sources.open_source` builds one from a `--source` spec. Close it when done.
    """

    def list_sessions(self, filters: SessionFilter | None = None) -> list[SessionSummary]:
        """Summaries matching `filters` (None: `SessionFilter()` defaults), newest start first.

        Raises:
            SourceUnavailableError: the source cannot be read.
        """
        ...

    def get_session(self, session_id: str) -> Session:
        """The full replay of one session.

        Raises:
            SessionNotFoundError: no such session.
            SourceUnavailableError: the source cannot be read.
        """
        ...

    def list_requests(self, filters: RequestFilter | None = None) -> list[RequestSummary]:
        """Requests outside any session matching `filters` (None: `RequestFilter()` defaults), newest
        start first.

        Raises:
            SourceUnavailableError: the source cannot be read.
        """
        ...

    def count_requests(self, filters: RequestFilter | None = None) -> int:
        """How many requests outside any session match `filters`, ignoring its `limit`.

        Raises:
            SourceUnavailableError: the source cannot be read.
        """
        ...

    def get_trace(self, trace_id: str) -> TraceReplay:
        """The replay of one trace (e.g. a request outside any session), every span of it.

        Raises:
            TraceNotFoundError: no such trace.
            SourceUnavailableError: the source cannot be read.
        """
        ...

    def close(self) -> None:
        """Release files, connections and HTTP clients; idempotent."""
        ...
