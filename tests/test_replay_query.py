"""`SessionQuery` / `RequestQuery` / `PruneQuery`: options as users write them (CLI options, the string
values of a URL query such as `GET /api/sessions?...`) turned into the filters readers apply."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shinzo_otel.replay import RequestFilter, SessionFilter
from shinzo_otel.replay.query import PruneQuery, RequestQuery, SessionQuery


def test_url_query_strings_become_the_session_filter() -> None:
    query = SessionQuery.model_validate(
        {
            "limit": "10",
            "type": "admin_shell",
            "origin": "stream",
            "component": "mahavishnu",
            "user": "les",
            "service": "svc",
            "after": "2026-02-01",
            "before": "2026-02-08T12:00:00+02:00",
            "duration_greater": "3600",
            "status": "abandoned",
            "incomplete": "true",
            "has_error": "true",
        }
    )
    assert query.to_filter() == SessionFilter(
        limit=10,
        session_type="admin_shell",
        origin="stream",
        component="mahavishnu",
        user="les",
        service="svc",
        started_after=datetime(2026, 2, 1),
        started_before=datetime(2026, 2, 8, 12, tzinfo=timezone(timedelta(hours=2))),
        min_duration_seconds=3600.0,
        status="abandoned",
        incomplete=True,
        has_error=True,
    )
    # The bounds in ns: a naive date is UTC midnight; the offset is honoured.
    assert query.to_filter().after_ns == 1_769_904_000 * 10**9
    assert query.to_filter().before_ns == (1_770_552_000 - 7200) * 10**9


def test_flags_left_off_do_not_filter() -> None:
    """`incomplete=false` / `has_error=false` mean "flag not given", as on the command line."""
    query = SessionQuery.model_validate({"incomplete": "false", "has_error": "false"})
    assert query.to_filter() == SessionFilter()
    assert SessionQuery().to_filter() == SessionFilter(limit=50)
    assert SessionQuery(limit=None).to_filter().limit is None


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"after": "yesterday"}, "after"),
        ({"status": "stuck"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"duration_greater": "-1"}, "duration_greater"),
        ({"session_type": "mcp"}, "session_type"),  # the filter's name, not the option's: unknown
    ],
)
def test_bad_values_name_the_option(values: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        SessionQuery.model_validate(values)
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]


def test_request_query_becomes_the_request_filter() -> None:
    query = RequestQuery.model_validate(
        {"service": "svc", "method": "tools/call", "tool": "search", "after": "2026-02-01T10:00:00Z"}
    )
    assert query.to_filter() == RequestFilter(
        service="svc",
        method="tools/call",
        tool="search",
        started_after=datetime(2026, 2, 1, 10, tzinfo=timezone.utc),
    )
    assert RequestQuery(has_error=True).to_filter().has_error is True
    assert RequestQuery(has_error=False).to_filter().has_error is None


def test_prune_cutoff_in_ns() -> None:
    assert PruneQuery.model_validate({"before": "2023-11-14T22:13:20Z"}).before_ns == 1_700_000_000 * 10**9
    assert PruneQuery.model_validate({"before": "2023-11-14T22:13:20"}).before_ns == 1_700_000_000 * 10**9
    with pytest.raises(ValidationError):
        PruneQuery.model_validate({})
