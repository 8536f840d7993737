"""The reader interface every replay source implements, the filter they share, and their errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from shinzo_otel.replay.model import Session, SessionStatus, SessionSummary

ProgressCallback = Callable[[int, int], None]
"""Called by a reader during a long read as `(completed, total)` in units the reader picks (bytes of a
file, traces fetched from a backend); `total` never changes during one read."""

WarningCallback = Callable[[str], None]
"""Called by a reader with a one-line message for each piece of input it skips (a malformed file
line, a trace a backend would not return) while it goes on reading the rest."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NS_PER_SECOND = 1_000_000_000


class ReplayError(Exception):
    """A replay source cannot answer; the message is one line meant for the user."""


class SourceUnavailableError(ReplayError):
    """The source does not exist or cannot be read (missing store file, not a store, newer schema,
    backend unreachable or answering with an error)."""


class SessionNotFoundError(ReplayError, LookupError):
    """No session with the requested id exists in the source."""


def _datetime_to_ns(moment: datetime) -> int:
    # Integer arithmetic: exact to the microsecond, unlike a float timestamp. Naive means UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS_PER_SECOND + delta.microseconds * 1_000


class SessionFilter(BaseModel):
    """Which sessions `SessionSource.list_sessions` returns, newest start first (ties in any order).

    Every reader applies the same rules, the embedded store in SQL and the others with `matches`:

    - `limit`: at most this many sessions (None: all);
    - `session_type`: `shinzo.session.type` equals it (`mcp`, `manual`, `logical`, `admin_shell`);
    - `service`: the resource's `service.name` equals it;
    - `component` / `user`: the session span's `shinzo.admin.component` / `user.name` equals it
      (admin shell sessions, seed 002 `--component` and `--user`);
    - `status`: the summary status (`active` is the same as "no end recorded", seed 002
      `--incomplete`);
    - `started_after` / `started_before`: bound the start time, inclusive / exclusive; naive
      datetimes are UTC;
    - `min_duration_seconds`: the duration is strictly greater (seed 002 `--duration-greater`); a
      session without a recorded end counts as running until now, so that stuck sessions are found;
    - `has_error`: True keeps sessions with a failed request or an ERROR session span, False keeps
      the others.

    Unset fields do not filter; all set fields must hold.
    """

    model_config = ConfigDict(frozen=True)

    limit: int | None = Field(default=50, ge=1)
    session_type: str | None = None
    service: str | None = None
    component: str | None = None
    user: str | None = None
    status: SessionStatus | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    min_duration_seconds: float | None = Field(default=None, ge=0)
    has_error: bool | None = None

    @property
    def after_ns(self) -> int | None:
        """`started_after` in nanoseconds since the Unix epoch, or None."""
        return None if self.started_after is None else _datetime_to_ns(self.started_after)

    @property
    def before_ns(self) -> int | None:
        """`started_before` in nanoseconds since the Unix epoch, or None."""
        return None if self.started_before is None else _datetime_to_ns(self.started_before)

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
            (self.service, summary.service),
            (self.component, summary.component),
            (self.user, summary.user),
            (self.status, summary.status),
            (self.has_error, summary.has_error),
        ):
            if wanted is not None and wanted != actual:
                return False
        after_ns, before_ns, min_duration_ns = self.after_ns, self.before_ns, self.min_duration_ns
        if after_ns is not None and summary.start_ns < after_ns:
            return False
        if before_ns is not None and summary.start_ns >= before_ns:
            return False
        end_ns = now_ns if summary.end_ns is None else summary.end_ns
        return min_duration_ns is None or end_ns - summary.start_ns > min_duration_ns


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

    def close(self) -> None:
        """Release files, connections and HTTP clients; idempotent."""
        ...
