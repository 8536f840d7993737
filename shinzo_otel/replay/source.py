"""The reader interface every replay source implements, and the errors readers raise."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from shinzo_otel.replay.model import Session, SessionStatus, SessionSummary


class ReplayError(Exception):
    """A replay source cannot answer; the message is one line meant for the user."""


class SourceUnavailableError(ReplayError):
    """The source does not exist or cannot be read (missing store file, not a store, newer schema)."""


class SessionNotFoundError(ReplayError, LookupError):
    """No session with the requested id exists in the source."""


class SessionFilter(BaseModel):
    """Which sessions `SessionSource.list_sessions` returns, newest start first.

    `limit` is the maximum number of sessions (None: all); `session_type` matches
    `shinzo.session.type`, `service` the resource's `service.name`, `status` the summary status;
    `started_after` / `started_before` bound the start time (inclusive / exclusive; naive datetimes
    are taken as UTC). Unset fields do not filter.
    """

    model_config = ConfigDict(frozen=True)

    limit: int | None = Field(default=50, ge=1)
    session_type: str | None = None
    service: str | None = None
    status: SessionStatus | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


class SessionSource(Protocol):
    """A place sessions can be read from: the embedded store, OTLP-JSON files, Tempo or Jaeger."""

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
