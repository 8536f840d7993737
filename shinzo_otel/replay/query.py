"""Queries as users write them, turned into the filters readers apply: the one place that builds a
`SessionFilter` from `shinzo-otel sessions list` options or `GET /api/sessions` parameters, and a
`RequestFilter` from `shinzo-otel requests list` options.

Field names are the option names (`--duration-greater` is `duration_greater`), so a validation error
names what the user typed. Values are parsed by pydantic, strings included, so the same model takes
typed CLI options and the strings of a URL query: dates and times are ISO 8601 (`2026-02-01`,
`2026-02-01T10:00:00+02:00`, `...Z`) or Unix seconds, naive means UTC; booleans take `true`/`false`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shinzo_otel.replay.model import SessionStatus, datetime_to_ns
from shinzo_otel.replay.source import RequestFilter, SessionFilter

DEFAULT_LIMIT = 50
"""How many sessions or requests a list shows when no limit is given."""


class _Query(BaseModel):
    # forbid: an unknown query parameter is an error naming it, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionQuery(_Query):
    """Which sessions to list, as `shinzo-otel sessions list` options (and `GET /api/sessions`
    parameters) say it; `to_filter` gives the `SessionFilter`.

    `limit` (default 50; None: all), `type` (`shinzo.session.type`), `origin`
    (`shinzo.session.origin`), `component`, `user`, `service`, `after` / `before` (start time,
    inclusive / exclusive), `duration_greater` (seconds; a session without an end counts until now),
    `status` (`active`, `abandoned`, `ended`, `error`), `incomplete` (True: only sessions without a
    recorded end; False does not filter), `has_error` (True: only sessions with a failed request or
    session span; False does not filter).

    Raises:
        pydantic.ValidationError: a value does not parse or an unknown field is given.
    """

    limit: int | None = Field(default=DEFAULT_LIMIT, ge=1)
    type: str | None = None
    origin: str | None = None
    component: str | None = None
    user: str | None = None
    service: str | None = None
    after: datetime | None = None
    before: datetime | None = None
    duration_greater: float | None = Field(default=None, ge=0)
    status: SessionStatus | None = None
    incomplete: bool = False
    has_error: bool = False

    def to_filter(self) -> SessionFilter:
        """The `SessionFilter` readers apply (the flags `incomplete` and `has_error` filter only when
        True)."""
        return SessionFilter(
            limit=self.limit,
            session_type=self.type,
            origin=self.origin,
            component=self.component,
            user=self.user,
            service=self.service,
            started_after=self.after,
            started_before=self.before,
            min_duration_seconds=self.duration_greater,
            status=self.status,
            incomplete=True if self.incomplete else None,
            has_error=True if self.has_error else None,
        )


class RequestQuery(_Query):
    """Which requests outside any session to list, as `shinzo-otel requests list` options say it;
    `to_filter` gives the `RequestFilter`.

    `limit` (default 50; None: all), `service`, `method` (`mcp.method.name`), `tool`
    (`gen_ai.tool.name` of `tools/call` requests), `after` / `before` (start time, inclusive /
    exclusive), `has_error` (True: only failed requests; False does not filter).

    Raises:
        pydantic.ValidationError: a value does not parse or an unknown field is given.
    """

    limit: int | None = Field(default=DEFAULT_LIMIT, ge=1)
    service: str | None = None
    method: str | None = None
    tool: str | None = None
    after: datetime | None = None
    before: datetime | None = None
    has_error: bool = False

    def to_filter(self) -> RequestFilter:
        """The `RequestFilter` readers apply."""
        return RequestFilter(
            limit=self.limit,
            service=self.service,
            method=self.method,
            tool=self.tool,
            started_after=self.after,
            started_before=self.before,
            has_error=True if self.has_error else None,
        )


class PruneQuery(_Query):
    """`shinzo-otel sessions prune` options: remove what started before `before` (naive: UTC)."""

    before: datetime

    @property
    def before_ns(self) -> int:
        """`before` in nanoseconds since the Unix epoch."""
        return datetime_to_ns(self.before)
