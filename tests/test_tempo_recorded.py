"""The Tempo reader against answers recorded from a real Tempo 2.10.8 (tests/fixtures/tempo, copied from
the project's shared fixtures; its README lists each request and what it shows, dataset.json the data).

A loopback HTTP server serves those answers and keeps every request it receives, so that each test also
checks that the reader asked the pushed-down question (TraceQL over session spans, `select`, paging
parameters, TraceQL metrics) and never fetched whole traces where it must not.

Where the reader asks something that was not recorded (its own `select` list, the activity search over
a few sessions' spans, metrics by tool and session, a session without an end), the server builds the
answer from the recorded spans in the recorded shape; each such builder says "hand-built".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from shinzo_otel.replay import (
    RequestFilter,
    SessionFilter,
    SourceUnavailableError,
    SpanRecord,
    TraceNotFoundError,
    build_session,
    build_trace,
)
from shinzo_otel.replay.analytics import run_analytics
from shinzo_otel.replay.otlp_json import parse_traces, span_records
from shinzo_otel.replay.tempo import TempoSource
from tests.http_stub import Answer, HttpStub, Route, json_answer

FIXTURES = Path(__file__).parent / "fixtures" / "tempo"
DATASET = json.loads((FIXTURES / "dataset.json").read_text())
SESSIONS = DATASET["sessions"]
WINDOW = DATASET["window"]
SELECTED_FOR_SESSIONS = (
    "select(span.session.id, span.mcp.session.id, span.shinzo.session.type, span.shinzo.session.origin, "
    "span.shinzo.session.idle_timeout, span.shinzo.session.end_reason, span.gen_ai.conversation.id, "
    "span.shinzo.admin.component, span.user.name, span.host.name, span.shinzo.client.name, "
    "span.shinzo.client.version, span.mcp.protocol.version, span.network.transport, "
    "span.shinzo.resource.uuid, span.error.type, resource.service.name, status, name)"
)
"""Written out by hand: what `sessions list` selects from session spans (TempoSource module notes)."""


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9


def window_filter(**fields: Any) -> dict[str, Any]:
    """Filter fields that put the search window around the recording (dataset.json `window`)."""
    return {
        "started_after": datetime.fromtimestamp(WINDOW["start"], timezone.utc),
        "started_before": datetime.fromtimestamp(WINDOW["end"], timezone.utc),
        **fields,
    }


# --- the loopback Tempo ---------------------------------------------------------------------------


def file_answer(name: str, status: int = 200) -> Answer:
    kind = "application/json" if name.endswith(".json") else "text/plain; charset=utf-8"
    return status, (FIXTURES / name).read_bytes(), kind


class Tempo(HttpStub):
    """The loopback Tempo: answers GETs with its route; keeps every (path, query) received."""

    def searches(self) -> list[str]:
        return [query["q"] for path, query in self.requests if path == "/api/search"]


# --- hand-built answers from recorded spans ----------------------------------------------------------


def trace_records(*names: str) -> list[SpanRecord]:
    """The spans of recorded trace-by-id answers (v2 shape), through the reader's own decoder."""
    records: list[SpanRecord] = []
    for name in names:
        records += span_records(parse_traces(recorded(name)["trace"]).resource_spans)
    return records


WHOLE = {SESSIONS["L3"]["session.id"]: trace_records("11-trace-v2-session-L3.json")}
WHOLE[SESSIONS["P1"]["session.id"]] = trace_records(
    "13-trace-v2-session-P1.json", "12-trace-v2-propagated-P1.json"
)
"""Sessions recorded whole: every span of L3 (one trace) and of P1 (its session trace and the client's)."""


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": str(value)}


def search_span(record: SpanRecord, keys: Iterable[str], *, name: bool = False) -> dict[str, Any]:
    """Hand-built: a span of a search answer as Tempo 2.10.8 renders a `select` (README "Shapes worth
    knowing"): selected attributes unscoped, `kind` and `status` as lowercase strings, `durationNanos`
    left out when 0, `name` only when selected."""
    attributes = dict(record["attributes"])
    attributes["kind"] = record["kind"].lower()
    attributes["status"] = record["status_code"].lower()
    span: dict[str, Any] = {
        "spanID": record["span_id"],
        "startTimeUnixNano": str(record["start_ns"]),
        "attributes": [{"key": key, "value": _value(attributes[key])} for key in keys if key in attributes],
    }
    duration = (record["end_ns"] or record["start_ns"]) - record["start_ns"]
    if duration:
        span["durationNanos"] = str(duration)
    if name:
        span["name"] = record["name"]
    return span


def search_answer(spans_by_trace: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Hand-built: a `/api/search` answer in the recorded envelope (ids stripped of leading zeros,
    `spanSet` and `spanSets`, `matched`), newest trace first as `most_recent=true` returns them."""
    traces = []
    for trace_id, spans in spans_by_trace.items():
        start = min(int(span["startTimeUnixNano"]) for span in spans)
        spanset = {"spans": spans, "matched": len(spans)}
        traces.append(
            {
                "traceID": trace_id.lstrip("0"),
                "startTimeUnixNano": str(start),
                "spanSet": spanset,
                "spanSets": [spanset],
            }
        )
    traces.sort(key=lambda trace: -int(trace["startTimeUnixNano"]))
    return {"traces": traces, "metrics": {"inspectedBytes": "1", "completedJobs": 1, "totalJobs": 1}}


_IDS = re.compile(r'span\.session\.id = "([0-9a-f]+)"')
ACTIVITY = "select(span.mcp.method.name, span.gen_ai.tool.name, span.error.type, kind, status)"


def activity_answer(query: str, killed: bool = False) -> Answer:
    """Hand-built answer to the activity search over a few sessions: the whole-recorded sessions (L3,
    P1) with every selected field; the others from the recorded `{ span.session.id != nil }` search
    with 50 spans per trace (02), which carries only `session.id`."""
    wanted = set(_IDS.findall(query))
    spans: dict[str, list[dict[str, Any]]] = {}
    for session_id in wanted & set(WHOLE):
        for record in WHOLE[session_id]:
            if killed and record["name"] == "mcp.session":
                continue
            keys = ("session.id", "mcp.method.name", "gen_ai.tool.name", "error.type", "kind", "status")
            spans.setdefault(record["trace_id"], []).append(search_span(record, keys))
    for trace in recorded("02-search-session-id-not-nil-spss50.json")["traces"]:
        for span in trace["spanSet"]["spans"]:
            session_id = span["attributes"][0]["value"]["stringValue"]
            if session_id in wanted - set(WHOLE):
                spans.setdefault(trace["traceID"].zfill(32), []).append(span)
    return json_answer(search_answer(spans))


def standard_route(
    session_spans: Callable[[], Answer] = lambda: file_answer("03-search-session-select.json"),
    killed: bool = False,
) -> Route:
    def route(path: str, query: dict[str, str]) -> Answer:
        q = query.get("q", "")
        if path == "/api/search" and ACTIVITY in q:
            return activity_answer(q, killed)
        if path == "/api/search" and "status = error" in q and "select(span.session.id)" in q:
            return failing_answer()
        if path == "/api/search" and SELECTED_FOR_SESSIONS in q:
            return session_spans()
        return 404, b"", ""

    return route


# --- sessions list --------------------------------------------------------------------------------


def test_list_reads_session_spans_then_counts_the_shown_sessions_only() -> None:
    with Tempo(standard_route()) as tempo:
        source = TempoSource(tempo.url)
        summaries = source.list_sessions(SessionFilter(**window_filter(limit=None)))
        source.close()
    # One search over session spans, one over the spans of the 8 sessions it found: no trace fetched.
    assert [path for path, _ in tempo.requests] == ["/api/search", "/api/search"]
    first, second = (query for _, query in tempo.requests)
    assert first == {
        "q": '{ (name = "mcp.session" || name = "mcp.session.start") && span.session.id != nil } | '
        f"{SELECTED_FOR_SESSIONS} with (most_recent=true)",
        "limit": "500",
        "spss": "100",
        "start": str(WINDOW["start"]),
        "end": str(WINDOW["end"]),
    }
    assert sorted(_IDS.findall(second["q"])) == sorted(s["session.id"] for s in SESSIONS.values())
    assert second["q"].endswith(f"}} | {ACTIVITY} with (most_recent=true)")

    # Newest first (README: P2 started last, L1 first); every session ended by closing its connection.
    by_start = sorted(SESSIONS.values(), key=lambda s: s["session_trace_id_hex32"])
    assert {s.session_id for s in summaries} == {s["session.id"] for s in by_start}
    assert [s.start_ns for s in summaries] == sorted((s.start_ns for s in summaries), reverse=True)
    assert summaries[0].session_id == SESSIONS["P2"]["session.id"]
    assert summaries[-1].session_id == SESSIONS["L1"]["session.id"]
    for summary in summaries:
        assert (summary.status, summary.end_reason, summary.type, summary.service) == (
            "ended",
            "connection_closed",
            "mcp",
            "fixture-srv",
        )
        assert summary.attributes["shinzo.client.name"] == "mcp"
        assert "status" not in summary.attributes and "service.name" not in summary.attributes

    # L3 and P1 were recorded whole: their list rows equal the summaries of their whole traces.
    listed = {summary.session_id: summary for summary in summaries}
    for label in ("L3", "P1"):
        session_id = SESSIONS[label]["session.id"]
        whole = build_session(WHOLE[session_id]).summary
        row = listed[session_id]
        assert (row.start_ns, row.end_ns, row.last_activity_ns) == (
            whole.start_ns,
            whole.end_ns,
            whole.last_activity_ns,
        )
        assert row.counts == whole.counts
    # By hand from README's table: L3 4 calls (search 2, fail, slow), 1 error; P1's calls live in the
    # client's trace and are counted all the same.
    l3 = listed[SESSIONS["L3"]["session.id"]].counts
    assert (l3.spans, l3.requests, l3.tool_calls, l3.errors) == (9, 7, 4, 1)
    assert l3.tools == {"search": 2, "fail": 1, "slow": 1}
    p1 = listed[SESSIONS["P1"]["session.id"]].counts
    assert (p1.spans, p1.tool_calls, p1.tools) == (8, 3, {"search": 2, "slow": 1})
    # The others come from the recorded 02 answer, which carries session.id only: all their spans
    # are counted (dataset.json spans_in_session_trace, plus P2's two calls in client traces).
    for label in ("L1", "L2", "L4", "L5", "L6"):
        assert listed[SESSIONS[label]["session.id"]].counts.spans == SESSIONS[label]["spans_in_session_trace"]
    assert listed[SESSIONS["P2"]["session.id"]].counts.spans == 5 + 2


def test_a_page_counts_only_its_own_sessions_and_filters_go_into_traceql() -> None:
    with Tempo(standard_route()) as tempo:
        source = TempoSource(tempo.url)
        filters = SessionFilter(
            **window_filter(limit=2, session_type="mcp", service="fixture-srv", user='le"s')
        )
        summaries = source.list_sessions(filters)
    conditions = (
        '{ (name = "mcp.session" || name = "mcp.session.start") && span.session.id != nil'
        ' && span.shinzo.session.type = "mcp" && span.user.name = "le\\"s" && resource.service.name = '
        '"fixture-srv" }'
    )
    assert tempo.searches()[0].startswith(conditions)
    # The recorded answer has no user.name: the reader filters again and keeps nothing.
    assert summaries == []
    assert len(tempo.requests) == 1

    with Tempo(standard_route()) as tempo:
        summaries = TempoSource(tempo.url).list_sessions(SessionFilter(**window_filter(limit=2)))
    assert [s.session_id for s in summaries] == [SESSIONS["P2"]["session.id"], SESSIONS["P1"]["session.id"]]
    assert sorted(_IDS.findall(tempo.searches()[1])) == sorted(s.session_id for s in summaries)


def marker_only_answer(idle_timeout: int) -> Callable[[], Answer]:
    """Hand-built: L3 as if its process had been killed: the start marker (recorded in 11) with a
    `shinzo.session.idle_timeout` (added: the recording predates the attribute), no `mcp.session`."""

    def answer() -> Answer:
        marker = next(r for r in WHOLE[SESSIONS["L3"]["session.id"]] if r["name"] == "mcp.session.start")
        marker = {
            **marker,
            "attributes": {**marker["attributes"], "shinzo.session.idle_timeout": idle_timeout},
        }
        keys = ("session.id", "shinzo.session.type", "shinzo.session.idle_timeout", "status")
        return json_answer(search_answer({marker["trace_id"]: [search_span(marker, keys, name=True)]}))

    return answer


@pytest.mark.parametrize(
    ("idle_timeout", "status"), [(1800, "abandoned"), (10**10, "active")], ids=["silent", "within"]
)
def test_a_session_without_an_end_is_abandoned_once_silent(idle_timeout: int, status: str) -> None:
    l3 = SESSIONS["L3"]["session.id"]
    with Tempo(standard_route(marker_only_answer(idle_timeout), killed=True)) as tempo:
        source = TempoSource(tempo.url)
        [summary] = source.list_sessions(SessionFilter(**window_filter()))
        assert source.list_sessions(SessionFilter(**window_filter(status=status))) == [summary]
        other = "active" if status == "abandoned" else "abandoned"
        assert source.list_sessions(SessionFilter(**window_filter(status=other))) == []
    exported = [record for record in WHOLE[l3] if record["name"] != "mcp.session"]
    whole = build_session(exported).summary
    assert (summary.session_id, summary.status, summary.end_ns) == (l3, status, None)
    # Last activity: the latest end of any of its spans (the marker alone would say its start).
    assert summary.last_activity_ns == max(r["end_ns"] or 0 for r in exported) == whole.last_activity_ns
    assert summary.last_activity_ns > summary.start_ns
    assert summary.counts == whole.counts


def failing_answer() -> Answer:
    """Hand-built from the recorded tools/call search (05): its erroring spans, which carry
    `session.id` there, as the answer to the failing-sessions search."""
    spans: dict[str, list[dict[str, Any]]] = {}
    for trace in recorded("05-search-toolcalls-select.json")["traces"]:
        for span in trace["spanSet"]["spans"]:
            attributes = {a["key"]: a["value"].get("stringValue") for a in span["attributes"]}
            if attributes.get("status") == "error":
                spans.setdefault(trace["traceID"].zfill(32), []).append(span)
    return json_answer(search_answer(spans))


def test_has_error_asks_tempo_for_the_failing_sessions() -> None:
    with Tempo(standard_route()) as tempo:
        failed = TempoSource(tempo.url).list_sessions(SessionFilter(**window_filter(has_error=True)))
        fine = TempoSource(tempo.url).list_sessions(SessionFilter(**window_filter(has_error=False)))
    assert tempo.searches()[1].startswith(
        "{ span.session.id != nil && ((kind = server && span.mcp.method.name != nil && (status = error || "
        'span.error.type != nil)) || (name = "mcp.session" && status = error)) } | select(span.session.id)'
    )
    # README: L3, L5 and P2 called `fail`.
    assert {s.session_id for s in failed} == {SESSIONS[k]["session.id"] for k in ("L3", "L5", "P2")}
    assert {s.session_id for s in fine} == {SESSIONS[k]["session.id"] for k in ("L1", "L2", "L4", "L6", "P1")}


# --- replay of one session and one trace ----------------------------------------------------------


def trace_route(path: str, query: dict[str, str]) -> Answer:
    files = {
        f"/api/v2/traces/{SESSIONS['L3']['session_trace_id_hex32']}": "11-trace-v2-session-L3.json",
        "/api/v2/traces/4bf92f3577b34da6a3ce929d0e0e4736": "12-trace-v2-propagated-P1.json",
        f"/api/v2/traces/{SESSIONS['P1']['session_trace_id_hex32']}": "13-trace-v2-session-P1.json",
        "/api/v2/traces/0123456789abcdef0123456789abcdef": "15-trace-v2-unknown.json",
    }
    if path in files:
        return file_answer(files[path])
    if path == "/api/search" and SESSIONS["P1"]["session.id"] in query.get("q", ""):
        return file_answer("08-search-by-session-id-propagated.json")
    if path == "/api/search" and "00000000000000000000000000000000" in query.get("q", ""):
        return file_answer("09-search-session-id-unknown.json")
    if path == "/api/search":
        return file_answer("10-search-malformed-traceql.txt", 400)
    return 404, b"", ""


def test_replay_fetches_every_trace_of_the_session_whatever_the_trace() -> None:
    p1 = SESSIONS["P1"]["session.id"]
    with Tempo(trace_route) as tempo:
        session = TempoSource(tempo.url).get_session(p1)
    assert tempo.searches()[0].startswith(f'{{ span.session.id = "{p1}" }} with (most_recent=true)')
    fetched = [path for path, _ in tempo.requests if path.startswith("/api/v2/traces/")]
    # The search answer strips the session trace's leading zero (08); the fetch puts it back.
    assert sorted(fetched) == sorted(
        [
            f"/api/v2/traces/{SESSIONS['P1']['session_trace_id_hex32']}",
            "/api/v2/traces/4bf92f3577b34da6a3ce929d0e0e4736",
        ]
    )
    assert session == build_session(WHOLE[p1])
    assert [entry.tool_name for entry in session.timeline if entry.method == "tools/call"] == [
        "search",
        "slow",
        "search",
    ]


def test_get_trace_and_the_errors_tempo_answers() -> None:
    l3_trace = SESSIONS["L3"]["session_trace_id_hex32"]
    with Tempo(trace_route) as tempo:
        source = TempoSource(tempo.url)
        replay = source.get_trace(l3_trace.lstrip("0").upper())
        assert replay == build_trace(WHOLE[SESSIONS["L3"]["session.id"]])
        assert replay.requests == ()  # every request of L3 belongs to its session
        with pytest.raises(TraceNotFoundError, match="no trace '0123456789abcdef0123456789abcdef'"):
            source.get_trace("0123456789abcdef0123456789abcdef")
        asked = len(tempo.requests)
        with pytest.raises(TraceNotFoundError, match="1 to 32 hex digits"):
            source.get_trace("not-a-trace-id")
        assert len(tempo.requests) == asked
        with pytest.raises(SourceUnavailableError, match="answered 400 to GET /api/search: invalid TraceQL"):
            source.get_session("x")
        with pytest.raises(LookupError, match=r"no session '0{32}'"):
            source.get_session("0" * 32)


# --- requests outside any session -----------------------------------------------------------------


def stateless_answer() -> Answer:
    """Hand-built from the recorded tools/call search (05): its spans without `session.id` (the three
    stateless calls), each with the `name` and `kind` the reader selects (the recording's trace root
    name, which is the request span's)."""
    spans: dict[str, list[dict[str, Any]]] = {}
    for trace in recorded("05-search-toolcalls-select.json")["traces"]:
        for span in trace["spanSet"]["spans"]:
            if all(a["key"] != "session.id" for a in span["attributes"]):
                kind = {"key": "kind", "value": {"stringValue": "server"}}
                named = {**span, "name": trace["rootTraceName"], "attributes": [*span["attributes"], kind]}
                spans.setdefault(trace["traceID"].zfill(32), []).append(named)
    return json_answer(search_answer(spans))


def metrics_answer(series: list[tuple[list[tuple[str, str]], dict[int, int]]]) -> Answer:
    """Hand-built: a `/api/metrics/query_range` answer in the recorded shape (files 30-38): labels,
    samples keyed by `timestampMs` strings, `value` left out when 0."""
    out = []
    for labels, values in series:
        samples = [
            {"timestampMs": str(stamp * 1000), **({"value": values[stamp]} if values.get(stamp) else {})}
            for stamp in sorted(values)
        ]
        out.append(
            {
                "labels": [{"key": k, "value": {"stringValue": v}} for k, v in labels],
                "samples": samples,
            }
        )
    return json_answer({"series": out, "metrics": {"completedJobs": 1, "totalJobs": 1}})


def test_requests_outside_any_session_are_listed_and_counted() -> None:
    def route(path: str, query: dict[str, str]) -> Answer:
        if path == "/api/search":
            return stateless_answer()
        if path == "/api/metrics/query":
            # Hand-built in the recorded instant shape (34): the 3 stateless calls are the "nil" series
            # of the recorded count of tools/call spans by session id (38).
            nil = next(
                s for s in recorded("38-metrics-range-count-by-session.json")["series"] if "nil" in str(s)
            )
            count = sum(sample.get("value", 0) for sample in nil["samples"])
            labels = [{"key": "__name__", "value": {"stringValue": "count_over_time"}}]
            return json_answer({"series": [{"labels": labels, "value": count}], "metrics": {}})
        return 404, b"", ""

    with Tempo(route) as tempo:
        source = TempoSource(tempo.url, metrics_max_seconds=None)
        requests = source.list_requests(RequestFilter(**window_filter()))
        count = source.count_requests(RequestFilter(**window_filter(limit=None)))
        tools = source.list_requests(RequestFilter(**window_filter(tool="search", has_error=False)))
    stateless = DATASET["stateless_calls"]
    # Newest first: S-q2 (278.433 s), slow (278.373 s), S-q0 (278.368 s) (05's start times).
    assert [r.trace_id for r in requests] == [
        stateless[2]["traceID"],
        stateless[1]["traceID"],
        stateless[0]["traceID"],
    ]
    assert [r.target for r in requests] == ["search", "slow", "search"]
    assert {(r.method, r.name, r.status, r.has_error) for r in requests} == {
        ("tools/call", "tools/call search", "UNSET", False),
        ("tools/call", "tools/call slow", "UNSET", False),
    }
    assert requests[0].attributes["gen_ai.tool.call.arguments"] == stateless[2]["arguments"]
    assert count == 3
    q_list, q_tools = tempo.searches()
    assert q_list.startswith(
        "{ kind = server && span.mcp.method.name != nil && span.session.id = nil }"
        " | select(span.mcp.method.name, "
    )
    assert q_tools.startswith(
        "{ kind = server && span.mcp.method.name != nil && span.session.id = nil && span.mcp.method.name = "
        '"tools/call" && span.gen_ai.tool.name = "search" && status != error && span.error.type = nil }'
    )
    [(_, metrics)] = [(p, q) for p, q in tempo.requests if p == "/api/metrics/query"]
    assert metrics == {
        "q": "{ kind = server && span.mcp.method.name != nil && span.session.id = nil } | count_over_time()",
        "start": str(WINDOW["start"]),
        "end": str(WINDOW["end"]),
    }
    assert [r.target for r in tools] == ["search", "search"]


def test_a_tempo_without_metrics_counts_with_searches() -> None:
    def route(path: str, query: dict[str, str]) -> Answer:
        return (
            stateless_answer()
            if path == "/api/search"
            else file_answer("37-metrics-range-search-query.txt", 400)
        )

    warnings: list[str] = []
    with Tempo(route) as tempo:
        count = TempoSource(tempo.url, warn=warnings.append).count_requests(RequestFilter(**window_filter()))
    assert count == 3
    assert len(warnings) == 1 and "no TraceQL metrics" in warnings[0] and "not a metrics query" in warnings[0]


# --- analytics with TraceQL metrics ---------------------------------------------------------------


def tool_calls() -> Iterator[tuple[str, str | None, int]]:
    """(tool, session id or None, start in unix s) of every recorded tools/call span (05)."""
    for trace in recorded("05-search-toolcalls-select.json")["traces"]:
        for span in trace["spanSet"]["spans"]:
            attributes = {a["key"]: a["value"]["stringValue"] for a in span["attributes"]}
            yield (
                attributes["gen_ai.tool.name"],
                attributes.get("session.id"),
                int(span["startTimeUnixNano"]) // 10**9,
            )


def analytics_route(path: str, query: dict[str, str]) -> Answer:
    """Hand-built metrics answers from the recorded spans: start markers (one per session, at the
    start of its `mcp.session` span, 03) and tools/call spans (05), each counted at the end of its
    step (README: "a sample at T counts the spans that started in the step ending at T")."""
    if path != "/api/metrics/query_range":
        return 404, b"", ""
    step = int(query["step"].rstrip("s"))
    start, end = int(query["start"]), int(query["end"])

    def at(moment: int) -> int:
        return (moment // step + 1) * step

    stamps = range(start, end + 1, step)
    q = query["q"]
    if q.startswith('{ name = "mcp.session.start"') and q.endswith("| count_over_time()"):
        values = dict.fromkeys(stamps, 0)
        for trace in recorded("03-search-session-select.json")["traces"]:
            values[at(int(trace["startTimeUnixNano"]) // 10**9)] += 1
        return metrics_answer([([("__name__", "count_over_time")], values)])
    if q.endswith("| count_over_time() by (span.gen_ai.tool.name, span.session.id)"):
        series: dict[tuple[str, str], dict[int, int]] = {}
        for tool, session_id, moment in tool_calls():
            if session_id is not None:  # the query asks for `span.session.id != nil`
                values = series.setdefault((tool, session_id), dict.fromkeys(stamps, 0))
                values[at(moment)] += 1
        return metrics_answer(
            [([("span.gen_ai.tool.name", t), ("span.session.id", s)], v) for (t, s), v in series.items()]
        )
    return 400, b"not a metrics query", "text/plain"


def test_analytics_is_answered_by_traceql_metrics() -> None:
    with Tempo(analytics_route) as tempo:
        source = TempoSource(tempo.url)
        count = source.analytics(SessionFilter(**window_filter()), "count")
        top = source.analytics(SessionFilter(**window_filter()), "top_tools", top=2)
    assert [path for path, _ in tempo.requests] == ["/api/metrics/query_range"] * 3
    assert count.rows == ({"period": "all", "sessions": 8},)
    # By hand from README's table, sessions only: search 21 calls in 8 sessions, slow 9 in 6.
    assert top.rows == (
        {"tool": "search", "calls": 21, "sessions": 8},
        {"tool": "slow", "calls": 9, "sessions": 6},
    )
    first = tempo.requests[0][1]
    # The window widened to whole hours; one hour per step; one chunk of at most 3 h.
    assert first["q"] == '{ name = "mcp.session.start" && span.session.id != nil } | count_over_time()'
    assert int(first["start"]) == WINDOW["start"] // 3600 * 3600 and first["step"] == "3600s"
    assert int(first["end"]) - int(first["start"]) <= 3 * 3600


def test_analytics_filters_metrics_cannot_express_read_the_sessions() -> None:
    with Tempo(standard_route()) as tempo:
        report = TempoSource(tempo.url).analytics(SessionFilter(**window_filter(has_error=False)), "count")
    assert all(path == "/api/search" for path, _ in tempo.requests)
    # README: 5 of the 8 sessions called no failing tool.
    assert report.sessions == 5 and report.rows == ({"period": "all", "sessions": 5},)


def test_run_analytics_lets_a_source_with_metrics_answer() -> None:
    with Tempo(analytics_route) as tempo:
        report = run_analytics(TempoSource(tempo.url), SessionFilter(**window_filter(limit=1)), "count")
    assert [path for path, _ in tempo.requests] == ["/api/metrics/query_range"]
    assert report.rows == ({"period": "all", "sessions": 8},)  # the filter's limit does not apply
    with pytest.raises(ValueError, match="--period does not apply to top_tools"):
        run_analytics(TempoSource("http://127.0.0.1:9"), SessionFilter(), "top_tools", "daily")
