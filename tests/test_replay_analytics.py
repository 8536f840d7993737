"""Session analytics (seed 002 "Session Analytics") on summaries whose expected figures are worked out
by hand below."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shinzo_otel.replay import SessionCounts, SessionSummary
from shinzo_otel.replay.analytics import COLUMNS, METRICS, analyze


def _summary(
    session_id: str,
    start: datetime,
    seconds: int | None,
    *,
    user: str | None = None,
    requests: int = 0,
    errors: int = 0,
    tools: dict[str, int] | None = None,
    failed: bool = False,
) -> SessionSummary:
    start_ns = int(start.replace(tzinfo=timezone.utc).timestamp()) * 10**9
    tools = tools or {}
    return SessionSummary(
        session_id=session_id,
        type="admin_shell" if user else "mcp",
        service="svc",
        start_ns=start_ns,
        end_ns=None if seconds is None else start_ns + seconds * 10**9,
        status="active" if seconds is None else "error" if failed else "ended",
        end_reason=None,
        counts=SessionCounts(
            spans=requests + 1, requests=requests, tool_calls=sum(tools.values()), errors=errors, tools=tools
        ),
        attributes={} if user is None else {"user.name": user},
        last_activity_ns=start_ns if seconds is None else start_ns + seconds * 10**9,
    )


SUMMARIES = [
    _summary("s1", datetime(2026, 2, 6, 10, 30), 300, user="les", requests=4, tools={"search": 2}),
    _summary(
        "s2",
        datetime(2026, 2, 6, 10, 45),
        100,
        user="ann",
        requests=2,
        errors=1,
        tools={"search": 1, "fail": 1},
    ),
    _summary("s3", datetime(2026, 2, 6, 14, 0), None, user="les"),
    _summary("s4", datetime(2026, 2, 7, 9, 15), 60, requests=1, tools={"fail": 3}, failed=True),
]


def _rows(metric: str, period: str | None = None, **options: int) -> list[dict[str, object]]:
    report = analyze(SUMMARIES, metric, period, **options)  # type: ignore[arg-type]
    assert report.sessions == 4
    assert all(tuple(row) == report.columns for row in report.rows)
    return list(report.rows)


def test_duration_over_ended_sessions() -> None:
    # Durations 60, 100, 300 s; p95 interpolates between ranks: 100 + 0.9 * (300 - 100) = 280.
    assert _rows("duration") == [
        {
            "period": "all",
            "sessions": 4,
            "ended": 3,
            "mean_seconds": pytest.approx(460 / 3),
            "median_seconds": 100,
            "p95_seconds": pytest.approx(280),
            "max_seconds": 300,
        }
    ]


def test_duration_per_day() -> None:
    assert _rows("duration", "daily") == [
        {
            "period": "2026-02-06",
            "sessions": 3,
            "ended": 2,
            "mean_seconds": 200,
            "median_seconds": 200,
            "p95_seconds": pytest.approx(290),
            "max_seconds": 300,
        },
        {
            "period": "2026-02-07",
            "sessions": 1,
            "ended": 1,
            "mean_seconds": 60,
            "median_seconds": 60,
            "p95_seconds": 60,
            "max_seconds": 60,
        },
    ]


def test_count_per_hour() -> None:
    assert _rows("count", "hourly") == [
        {"period": "2026-02-06T10:00Z", "sessions": 2},
        {"period": "2026-02-06T14:00Z", "sessions": 1},
        {"period": "2026-02-07T09:00Z", "sessions": 1},
    ]


def test_unique_users() -> None:
    assert _rows("unique_users") == [{"period": "all", "sessions": 4, "unique_users": 2}]
    assert _rows("unique_users", "daily") == [
        {"period": "2026-02-06", "sessions": 3, "unique_users": 2},
        {"period": "2026-02-07", "sessions": 1, "unique_users": 0},
    ]


def test_peak_hours_busiest_first() -> None:
    assert _rows("peak_hours") == [
        {"hour_utc": "10:00", "sessions": 2},
        {"hour_utc": "09:00", "sessions": 1},
        {"hour_utc": "14:00", "sessions": 1},
    ]


def test_error_rate() -> None:
    # s2 has a failed request, s4 a failed session span: 2 of 4 sessions, 1 of 7 requests.
    assert _rows("error_rate") == [
        {
            "period": "all",
            "sessions": 4,
            "failed_sessions": 2,
            "session_error_rate": 0.5,
            "requests": 7,
            "failed_requests": 1,
            "request_error_rate": pytest.approx(1 / 7),
        }
    ]


def test_top_tools() -> None:
    assert _rows("top_tools") == [
        {"tool": "fail", "calls": 4, "sessions": 2},
        {"tool": "search", "calls": 3, "sessions": 2},
    ]
    assert _rows("top_tools", top=1) == [{"tool": "fail", "calls": 4, "sessions": 2}]


@pytest.mark.parametrize("metric", METRICS)
def test_no_sessions_gives_no_rows_but_the_columns(metric: str) -> None:
    report = analyze([], metric)  # type: ignore[arg-type]
    assert (report.sessions, report.rows, report.columns) == (0, (), COLUMNS[metric])  # type: ignore[index]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="--period does not apply to peak_hours"):
        analyze(SUMMARIES, "peak_hours", "daily")
    with pytest.raises(ValueError, match="--period does not apply to top_tools"):
        analyze(SUMMARIES, "top_tools", "hourly")
    with pytest.raises(ValueError, match="top must be at least 1"):
        analyze(SUMMARIES, "top_tools", top=0)
