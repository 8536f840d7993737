"""The replay model and its renderers, fed by real SDK spans through the embedded store, and the
shared core (`build_session`) fed span dicts directly, as the OTLP-file and Tempo readers will."""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from rich.console import Console

from shinzo_otel._semconv import (
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_NAME,
    MCP_METHOD_NAME,
    SESSION_END_EVENT,
    SESSION_ID,
    SESSION_START_EVENT,
)
from shinzo_otel.replay import Session, SpanRecord, build_session
from shinzo_otel.replay.render import print_replay, session_json
from shinzo_otel.store import SessionStore
from tests.test_store import (
    MS,
    SEARCH_ARGUMENTS,
    SEARCH_RESULT,
    T0,
    complete_summary,
    incomplete_summary,
    record_session,
    sqlite_tracer,
)

EXPECTED_TIMELINE = [
    # entry_type, name, offset (s), duration (ms), depth, status: from record_session's docstring
    ("event", SESSION_START_EVENT, 0.0, None, 0, "UNSET"),
    ("span", "initialize", 0.010, 2.0, 0, "UNSET"),
    ("span", "tools/list", 0.020, 1.0, 0, "UNSET"),
    ("span", "tools/call search", 0.030, 5.0, 0, "UNSET"),
    ("span", "db.query", 0.031, 3.0, 1, "UNSET"),
    ("event", "shinzo.tool_call", 0.040, None, 0, "UNSET"),
    ("span", "tools/call fail", 0.050, 4.0, 0, "ERROR"),
    ("event", SESSION_END_EVENT, 0.100, None, 0, "UNSET"),
]


def _replay(db: Path, session_id: str) -> Session:
    with SessionStore(db) as store:
        return store.get_session(session_id)


def _spans(db: Path, session_id: str) -> list[SpanRecord]:
    with SessionStore(db) as store:
        return store.spans_for_session(session_id)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "sessions.db"
    with sqlite_tracer(path) as tracer:
        record_session(tracer, "complete")
        record_session(tracer, "crashed", T0 + 10**9, complete=False)
    return path


def test_timeline_is_chronological_with_offsets_from_session_start(db: Path) -> None:
    session = _replay(db, "complete")

    assert session.summary == complete_summary("complete")
    assert [
        (entry.entry_type, entry.name, entry.offset_seconds, entry.duration_ms, entry.depth, entry.status)
        for entry in session.timeline
    ] == EXPECTED_TIMELINE
    entries = {entry.name: entry for entry in session.timeline}
    search = entries["tools/call search"]
    assert (search.span_kind, search.method, search.tool_name) == ("SERVER", "tools/call", "search")
    assert (search.arguments, search.result) == (SEARCH_ARGUMENTS, SEARCH_RESULT)
    assert (search.error_type, search.error_message) == (None, None)
    assert entries["db.query"].parent_span_id == search.span_id
    assert entries["db.query"].span_kind == "INTERNAL"
    fail = entries["tools/call fail"]
    assert (fail.error_type, fail.error_message, fail.tool_name) == ("ValueError", "boom", "fail")
    assert (fail.arguments, fail.result) == (None, None)  # argument collection off for this call
    manual = entries["shinzo.tool_call"]
    assert (manual.arguments, manual.span_kind, manual.duration_ms) == ('{"step": 1}', None, None)
    assert entries[SESSION_START_EVENT].attributes == {SESSION_ID: "complete"}


def test_incomplete_session_replays_what_arrived(db: Path) -> None:
    session = _replay(db, "crashed")
    assert session.summary == incomplete_summary("crashed", T0 + 10**9)
    assert [(entry.name, entry.offset_seconds) for entry in session.timeline] == [
        ("initialize", 0.010),
        ("tools/list", 0.020),
    ]


def test_build_session_from_span_dicts_agrees_with_the_store(db: Path) -> None:
    spans = _spans(db, "complete")
    random.Random(7).shuffle(spans)
    # No summary given: it is derived from the spans with the same rules the store applies on export.
    assert build_session(spans) == _replay(db, "complete")
    assert build_session(_spans(db, "crashed")) == _replay(db, "crashed")


def test_request_with_a_remote_parent_sits_at_the_top(tmp_path: Path) -> None:
    db = tmp_path / "remote.db"
    client_span = SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    with sqlite_tracer(db) as tracer:
        tracer.start_span(
            "tools/call search",
            trace.set_span_in_context(NonRecordingSpan(client_span)),
            kind=SpanKind.SERVER,
            attributes={SESSION_ID: "remote", MCP_METHOD_NAME: "tools/call", GEN_AI_TOOL_NAME: "search"},
            start_time=T0,
        ).end(T0 + 2 * MS)

    [entry] = _replay(db, "remote").timeline
    assert (entry.depth, entry.parent_span_id, entry.offset_seconds) == (0, "0000000000005678", 0.0)


def _span(name: str, session_id: str | None, **attributes: str) -> SpanRecord:
    return SpanRecord(
        trace_id="0" * 31 + "1",
        span_id=name.encode().hex()[:16].rjust(16, "0"),
        parent_span_id=None,
        name=name,
        kind="SERVER",
        start_ns=T0,
        end_ns=T0 + MS,
        status_code="UNSET",
        status_message=None,
        session_id=session_id,
        service_name="svc",
        attributes={SESSION_ID: session_id, **attributes} if session_id else dict(attributes),
        events=[],
        links=[],
        resource={},
        scope=None,
    )


def test_build_session_needs_spans_of_exactly_one_session() -> None:
    with pytest.raises(ValueError, match="exactly one session"):
        build_session([])
    with pytest.raises(ValueError, match="exactly one session"):
        build_session([_span("a", "one"), _span("b", "two")])
    with pytest.raises(ValueError, match="exactly one session"):
        build_session([_span("a", None)])


def test_text_replay_shows_every_message_in_order(db: Path) -> None:
    out = io.StringIO()
    print_replay(_replay(db, "complete"), Console(file=out, width=100, color_system=None))
    text = out.getvalue()

    assert "Session complete" in text
    assert "started 2023-11-14 22:13:20 UTC" in text
    assert "duration 100 ms" in text
    assert "status ended (client_closed)" in text
    assert "requests 4  tool calls 2  errors 1" in text
    entry_lines = [line for line in text.splitlines() if re.match(r"\s*[+-]\d+\.\d{3}s", line)]
    assert [line.split()[0] for line in entry_lines] == [
        "+0.000s",
        "+0.010s",
        "+0.020s",
        "+0.030s",
        "+0.031s",
        "+0.040s",
        "+0.050s",
        "+0.100s",
    ]
    search_line = next(line for line in entry_lines if "tools/call search" in line)
    assert search_line.split()[:4] == ["+0.030s", "5.0", "ms", "ok"]
    fail_line = next(line for line in entry_lines if "tools/call fail" in line)
    assert fail_line.split()[:4] == ["+0.050s", "4.0", "ms", "ERROR"]
    assert "✗ ValueError: boom" in text
    assert f"arguments: {SEARCH_ARGUMENTS}" in text
    assert f"result: {SEARCH_RESULT}" in text
    assert 'arguments: {"step": 1}' in text


def test_text_replay_prints_user_data_verbatim() -> None:
    markup = '{"q": "[bold red]not markup[/bold red]"}'
    session = build_session([_span("tools/call x", "s", **{GEN_AI_TOOL_CALL_ARGUMENTS: markup})])
    out = io.StringIO()
    print_replay(session, Console(file=out, width=40, color_system=None))
    # Neither interpreted as rich markup nor wrapped at the console width.
    assert f"arguments: {markup}\n" in out.getvalue()


def test_json_replay_parses(db: Path) -> None:
    data = json.loads(session_json(_replay(db, "complete")))

    assert data["summary"]["session_id"] == "complete"
    assert data["summary"]["start"] == "2023-11-14T22:13:20Z"
    assert data["summary"]["duration_seconds"] == pytest.approx(0.1)
    assert data["summary"]["counts"] == {
        "spans": 7,
        "requests": 4,
        "tool_calls": 2,
        "errors": 1,
        "tools": {"search": 1, "fail": 1},
    }
    assert [(entry["name"], entry["offset_seconds"]) for entry in data["timeline"]] == [
        (name, offset) for _, name, offset, *_ in EXPECTED_TIMELINE
    ]
    fail = data["timeline"][6]
    assert (fail["status"], fail["error_type"], fail["error_message"]) == ("ERROR", "ValueError", "boom")
