"""Session analytics (seed 002 "Session Analytics"), computed from summaries of any source, or by the
source itself where its backend can aggregate (`AnalyticsSource`: Tempo's TraceQL metrics).

Every metric is a table: `AnalyticsReport.columns` and one dict per row. Time buckets are UTC and
keyed by session start; `period=None` gives one row, `all`. `run_analytics` is the entry point the
CLI uses: it picks the source's own aggregation when it has one.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Literal, Protocol, get_args, runtime_checkable

from pydantic import BaseModel, ConfigDict

from shinzo_otel.replay.model import SessionSummary
from shinzo_otel.replay.source import SessionFilter, SessionSource

AnalyticsMetric = Literal["duration", "count", "unique_users", "peak_hours", "error_rate", "top_tools"]
"""What `analyze` computes; the columns of each are listed in `analyze`."""
AnalyticsPeriod = Literal["daily", "hourly"]
"""Bucket width of the per-period metrics (`duration`, `count`, `unique_users`, `error_rate`)."""

METRICS: Final[tuple[AnalyticsMetric, ...]] = get_args(AnalyticsMetric)
PERIODS: Final[tuple[AnalyticsPeriod, ...]] = get_args(AnalyticsPeriod)
_UNBUCKETED: Final = frozenset({"peak_hours", "top_tools"})
_ALL: Final = "all"

Cell = str | int | float | None
"""One table cell: text, a count, a number of seconds or a rate (0..1), or None for "no data"."""


class AnalyticsReport(BaseModel):
    """The result of `analyze`: `sessions` is how many sessions were analysed; `rows` hold one dict
    per row with exactly the keys of `columns`, in that order."""

    model_config = ConfigDict(frozen=True)

    metric: AnalyticsMetric
    period: AnalyticsPeriod | None
    sessions: int
    columns: tuple[str, ...]
    rows: tuple[dict[str, Cell], ...]


def _bucket(period: AnalyticsPeriod | None) -> Callable[[SessionSummary], str]:
    if period == "daily":
        return lambda summary: summary.start.strftime("%Y-%m-%d")
    if period == "hourly":
        return lambda summary: summary.start.strftime("%Y-%m-%dT%H:00Z")
    return lambda summary: _ALL


def duration_cells(
    sessions: int,
    ended: int,
    mean: float | None,
    median: float | None,
    p95: float | None,
    maximum: float | None,
) -> dict[str, Cell]:
    """The cells of a `duration` row after `period` (seconds; None without ended sessions)."""
    if not ended:
        mean = median = p95 = maximum = None
    return {
        "sessions": sessions,
        "ended": ended,
        "mean_seconds": mean,
        "median_seconds": median,
        "p95_seconds": p95,
        "max_seconds": maximum,
    }


def error_cells(sessions: int, failed_sessions: int, requests: int, failed_requests: int) -> dict[str, Cell]:
    """The cells of an `error_rate` row after `period` (rates 0..1, None without sessions or
    requests)."""
    return {
        "sessions": sessions,
        "failed_sessions": failed_sessions,
        "session_error_rate": failed_sessions / sessions if sessions else None,
        "requests": requests,
        "failed_requests": failed_requests,
        "request_error_rate": failed_requests / requests if requests else None,
    }


def _duration_row(summaries: Sequence[SessionSummary]) -> dict[str, Cell]:
    durations = sorted(s.duration_seconds for s in summaries if s.duration_seconds is not None)
    if not durations:
        return duration_cells(len(summaries), 0, None, None, None, None)
    p95 = (
        statistics.quantiles(durations, n=20, method="inclusive")[18] if len(durations) > 1 else durations[0]
    )
    return duration_cells(
        len(summaries),
        len(durations),
        statistics.fmean(durations),
        statistics.median(durations),
        p95,
        durations[-1],
    )


def _error_row(summaries: Sequence[SessionSummary]) -> dict[str, Cell]:
    return error_cells(
        len(summaries),
        sum(summary.has_error for summary in summaries),
        sum(summary.counts.requests for summary in summaries),
        sum(summary.counts.errors for summary in summaries),
    )


COLUMNS: Final[dict[AnalyticsMetric, tuple[str, ...]]] = {
    "duration": (
        "period",
        "sessions",
        "ended",
        "mean_seconds",
        "median_seconds",
        "p95_seconds",
        "max_seconds",
    ),
    "count": ("period", "sessions"),
    "unique_users": ("period", "sessions", "unique_users"),
    "error_rate": (
        "period",
        "sessions",
        "failed_sessions",
        "session_error_rate",
        "requests",
        "failed_requests",
        "request_error_rate",
    ),
    "peak_hours": ("hour_utc", "sessions"),
    "top_tools": ("tool", "calls", "sessions"),
}
"""The columns of each metric's rows, in order (see `analyze`)."""

_PER_PERIOD: Final[dict[str, Callable[[Sequence[SessionSummary]], dict[str, Cell]]]] = {
    "duration": _duration_row,
    "count": lambda summaries: {"sessions": len(summaries)},
    "unique_users": lambda summaries: {
        "sessions": len(summaries),
        "unique_users": len({s.user for s in summaries if s.user is not None}),
    },
    "error_rate": _error_row,
}


def _peak_hours(summaries: Iterable[SessionSummary]) -> list[dict[str, Cell]]:
    hours = Counter(summary.start.hour for summary in summaries)
    ranked = sorted(hours.items(), key=lambda item: (-item[1], item[0]))
    return [{"hour_utc": f"{hour:02d}:00", "sessions": count} for hour, count in ranked]


def _top_tools(summaries: Iterable[SessionSummary], top: int) -> list[dict[str, Cell]]:
    calls: Counter[str] = Counter()
    sessions: Counter[str] = Counter()
    for summary in summaries:
        calls.update(summary.counts.tools)
        sessions.update(summary.counts.tools.keys())
    ranked = sorted(calls.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [{"tool": tool, "calls": count, "sessions": sessions[tool]} for tool, count in ranked]


def check_options(metric: AnalyticsMetric, period: AnalyticsPeriod | None, top: int) -> None:
    """Raise ValueError for a `period` given to `peak_hours` or `top_tools`, or a `top` below 1."""
    if metric in _UNBUCKETED and period is not None:
        raise ValueError(f"--period does not apply to {metric}")
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")


def analyze(
    summaries: Sequence[SessionSummary],
    metric: AnalyticsMetric,
    period: AnalyticsPeriod | None = None,
    *,
    top: int = 10,
) -> AnalyticsReport:
    """Compute one metric over `summaries` (select them with `SessionFilter`, `limit=None`).

    Metrics and their columns (`period` is `all`, a day `2026-02-06` or an hour `2026-02-06T10:00Z`):

    - `duration`: period, sessions, ended, mean_seconds, median_seconds, p95_seconds (linear
      interpolation), max_seconds; over the sessions with a recorded end.
    - `count`: period, sessions.
    - `unique_users`: period, sessions, unique_users (distinct `user.name`; sessions without one do not
      count as a user).
    - `error_rate`: period, sessions, failed_sessions, session_error_rate, requests, failed_requests,
      request_error_rate (rates 0..1; None without requests). A failed session has a failed request
      or an ERROR session span.
    - `peak_hours`: hour_utc, sessions; hours with sessions, busiest first.
    - `top_tools`: tool, calls, sessions; the `top` most called tools.

    Per-period metrics have one row per bucket holding sessions, oldest first.

    Raises:
        ValueError: `period` given for `peak_hours` or `top_tools`, or `top` < 1.
    """
    check_options(metric, period, top)
    rows: list[dict[str, Cell]]
    if metric == "peak_hours":
        rows = _peak_hours(summaries)
    elif metric == "top_tools":
        rows = _top_tools(summaries, top)
    else:
        bucket = _bucket(period)
        buckets: dict[str, list[SessionSummary]] = defaultdict(list)
        for summary in summaries:
            buckets[bucket(summary)].append(summary)
        row_of = _PER_PERIOD[metric]
        rows = [{"period": key, **row_of(members)} for key, members in sorted(buckets.items())]
    return AnalyticsReport(
        metric=metric, period=period, sessions=len(summaries), columns=COLUMNS[metric], rows=tuple(rows)
    )


@runtime_checkable
class AnalyticsSource(Protocol):
    """A source whose backend computes analytics itself (Tempo's TraceQL metrics), with the same
    arguments, columns and errors as `analyze` over `list_sessions(filters)`; see the reader's
    `analytics` for what it computes differently."""

    def analytics(
        self,
        filters: SessionFilter | None,
        metric: AnalyticsMetric,
        period: AnalyticsPeriod | None = None,
        *,
        top: int = 10,
    ) -> AnalyticsReport:
        """One metric over the sessions `filters` selects (its `limit` is ignored)."""
        ...


def run_analytics(
    source: SessionSource,
    filters: SessionFilter,
    metric: AnalyticsMetric,
    period: AnalyticsPeriod | None = None,
    *,
    top: int = 10,
) -> AnalyticsReport:
    """One metric over the sessions of `source` that `filters` selects (its `limit` is ignored): the
    source's own `analytics` when it is an `AnalyticsSource`, else `analyze` over every matching
    summary.

    Raises:
        ValueError: as `analyze`.
        SourceUnavailableError: the source cannot be read.
    """
    check_options(metric, period, top)
    if isinstance(source, AnalyticsSource):
        return source.analytics(filters, metric, period, top=top)
    return analyze(source.list_sessions(filters.model_copy(update={"limit": None})), metric, period, top=top)
