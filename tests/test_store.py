"""The embedded store: spans from a real SDK TracerProvider written by SqliteSpanExporter, read back
through SessionStore.

`record_session` and `sqlite_tracer` are shared with test_replay.py and test_cli.py: they produce a
session shaped as the instrumentation produces it (DESIGN.md "Span model"), at fixed times so every
expected value below is worked out by hand from the times written in `record_session`.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, format_trace_id

from shinzo_otel._semconv import (
    ADMIN_COMPONENT,
    ADMIN_SHELL_TYPE,
    CLIENT_NAME,
    ERROR_TYPE,
    EVENT_INPUT,
    EVENT_TYPE,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_NAME,
    HOST_NAME,
    JSONRPC_REQUEST_ID,
    MCP_METHOD_NAME,
    MCP_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
    PROCESS_PID,
    SESSION_END_EVENT,
    SESSION_END_REASON,
    SESSION_ID,
    SESSION_IDLE_TIMEOUT,
    SESSION_METADATA_PREFIX,
    SESSION_ORIGIN,
    SESSION_SPAN_NAME,
    SESSION_START_EVENT,
    SESSION_START_SPAN_NAME,
    SESSION_TYPE,
    USER_NAME,
)
from shinzo_otel.replay import (
    RequestFilter,
    RequestSummary,
    SessionFilter,
    SessionNotFoundError,
    SessionSummary,
    SourceUnavailableError,
    TraceNotFoundError,
    build_session,
)
from shinzo_otel.store import (
    SHINZO_STORE_PATH,
    PruneResult,
    SessionStore,
    SqliteSpanExporter,
    default_store_path,
)

T0 = 1_700_000_000_000_000_000
"""2023-11-14 22:13:20 UTC, in ns."""
MS = 1_000_000
SERVICE = "test-server"
SEARCH_ARGUMENTS = '{"query": "otel"}'
SEARCH_RESULT = '{"content": [{"type": "text", "text": "3 hits"}], "isError": false}'


@contextmanager
def sqlite_tracer(path: Path, service: str = SERVICE) -> Iterator[Tracer]:
    """A tracer of a real SDK TracerProvider exporting every span to the store at `path` as it ends."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(path)))
    try:
        yield provider.get_tracer("tests")
    finally:
        provider.shutdown()


def session_attributes(session_id: str, session_type: str = "mcp") -> dict[str, str]:
    return {
        SESSION_ID: session_id,
        SESSION_TYPE: session_type,
        MCP_PROTOCOL_VERSION: "2025-11-25",
        NETWORK_TRANSPORT: "pipe",
        CLIENT_NAME: "test-client",
        f"{SESSION_METADATA_PREFIX}environment": "test",
    }


def _server_span(
    tracer: Tracer, session: trace.Span, session_id: str, name: str, start_ns: int, attributes: dict[str, str]
) -> trace.Span:
    """A request span as the middleware makes it: SERVER, named `{mcp.method.name} {target}`."""
    return tracer.start_span(
        name,
        trace.set_span_in_context(session),
        kind=SpanKind.SERVER,
        attributes={SESSION_ID: session_id, MCP_METHOD_NAME: name.split()[0], **attributes},
        start_time=start_ns,
    )


def record_session(
    tracer: Tracer,
    session_id: str,
    start_ns: int = T0,
    *,
    complete: bool = True,
    session_type: str = "mcp",
    extra: dict[str, str | int] | None = None,
) -> None:
    """Record one MCP session. Times (ms after `start_ns`) and what a replay must show:

    +0 session.start (marker span and event) · +10 initialize, 2 ms · +20 tools/list, 1 ms ·
    +30 tools/call search, 5 ms, with arguments and result, and a user span db.query at +31 for 3 ms ·
    +40 manual event shinzo.tool_call on the session span · +50 tools/call fail, 4 ms, ValueError("boom") ·
    +100 session.end, end reason "client_closed".
    7 spans, 4 requests, 2 tool calls, 1 error. `complete=False` stops after the tools/list request,
    as if the process died: the session span is never exported (3 spans, 2 requests). `extra` adds
    attributes to the session span and start marker (`shinzo.session.origin`, `.idle_timeout`).
    """

    def at(ms: int) -> int:
        return start_ns + ms * MS

    attributes = {**session_attributes(session_id, session_type), **(extra or {})}
    session = tracer.start_span(
        SESSION_SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attributes, start_time=at(0)
    )
    session.add_event(SESSION_START_EVENT, {SESSION_ID: session_id}, timestamp=at(0))
    marker_context = trace.set_span_in_context(session)
    tracer.start_span(SESSION_START_SPAN_NAME, marker_context, attributes=attributes, start_time=at(0)).end(
        at(0)
    )
    _server_span(tracer, session, session_id, "initialize", at(10), {JSONRPC_REQUEST_ID: "1"}).end(at(12))
    _server_span(tracer, session, session_id, "tools/list", at(20), {JSONRPC_REQUEST_ID: "2"}).end(at(21))
    if not complete:
        return
    search = _server_span(
        tracer,
        session,
        session_id,
        "tools/call search",
        at(30),
        {
            JSONRPC_REQUEST_ID: "3",
            GEN_AI_TOOL_NAME: "search",
            GEN_AI_TOOL_CALL_ARGUMENTS: SEARCH_ARGUMENTS,
            GEN_AI_TOOL_CALL_RESULT: SEARCH_RESULT,
        },
    )
    user_span_context = trace.set_span_in_context(search)
    tracer.start_span(
        "db.query", user_span_context, attributes={SESSION_ID: session_id}, start_time=at(31)
    ).end(at(34))
    search.end(at(35))
    session.add_event(
        "shinzo.tool_call", {EVENT_TYPE: "tool_call", EVENT_INPUT: '{"step": 1}'}, timestamp=at(40)
    )
    fail_attributes = {JSONRPC_REQUEST_ID: "4", GEN_AI_TOOL_NAME: "fail"}
    fail = _server_span(tracer, session, session_id, "tools/call fail", at(50), fail_attributes)
    fail.record_exception(ValueError("boom"), timestamp=at(54))
    fail.set_attribute(ERROR_TYPE, "ValueError")
    fail.set_status(Status(StatusCode.ERROR, "boom"))
    fail.end(at(54))
    session.add_event(SESSION_END_EVENT, {SESSION_ID: session_id}, timestamp=at(100))
    session.set_attribute(SESSION_END_REASON, "client_closed")
    session.end(at(100))


def record_request(
    tracer: Tracer,
    start_ns: int,
    method: str = "tools/call",
    *,
    tool: str | None = None,
    failed: bool = False,
) -> str:
    """Record one request outside any session, as a stateless server's middleware does: a SERVER span
    `{method} {tool}` (no `session.id`) of 4 ms, with a user span `db.query` under it at +1 ms for
    2 ms; failed: `error.type` ValueError and status ERROR "boom". Returns its trace id (hex), a trace
    of its own."""
    attributes = {MCP_METHOD_NAME: method, JSONRPC_REQUEST_ID: "1"}
    if tool is not None:
        attributes[GEN_AI_TOOL_NAME] = tool
    name = method if tool is None else f"{method} {tool}"
    request = tracer.start_span(
        name,
        trace.set_span_in_context(trace.INVALID_SPAN),
        kind=SpanKind.SERVER,
        attributes=attributes,
        start_time=start_ns,
    )
    tracer.start_span("db.query", trace.set_span_in_context(request), start_time=start_ns + MS).end(
        start_ns + 3 * MS
    )
    if failed:
        request.set_attribute(ERROR_TYPE, "ValueError")
        request.set_status(Status(StatusCode.ERROR, "boom"))
    request.end(start_ns + 4 * MS)
    return format_trace_id(request.get_span_context().trace_id)


def finished_spans(record: Callable[[Tracer], None], service: str = SERVICE) -> tuple[ReadableSpan, ...]:
    """The spans `record` produces on a real SDK TracerProvider, in the order they ended."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        record(provider.get_tracer("tests"))
        return exporter.get_finished_spans()
    finally:
        provider.shutdown()


def complete_summary(session_id: str, start_ns: int = T0, service: str = SERVICE) -> SessionSummary:
    """What the store must say about `record_session(..., complete=True)`, from its docstring."""
    return SessionSummary(
        session_id=session_id,
        type="mcp",
        service=service,
        start_ns=start_ns,
        end_ns=start_ns + 100 * MS,
        status="ended",
        end_reason="client_closed",
        counts={"spans": 7, "requests": 4, "tool_calls": 2, "errors": 1, "tools": {"search": 1, "fail": 1}},
        attributes={**session_attributes(session_id), SESSION_END_REASON: "client_closed"},
        last_activity_ns=start_ns + 100 * MS,
    )


def incomplete_summary(session_id: str, start_ns: int = T0) -> SessionSummary:
    """What the store must say about `record_session(..., complete=False)`."""
    return SessionSummary(
        session_id=session_id,
        type="mcp",
        service=SERVICE,
        start_ns=start_ns,
        end_ns=None,
        status="active",
        end_reason=None,
        counts={"spans": 3, "requests": 2, "tool_calls": 0, "errors": 0},
        attributes=session_attributes(session_id),
        last_activity_ns=start_ns + 21 * MS,  # the end of tools/list
    )


def admin_attributes(session_id: str, component: str, user: str, host: str) -> dict[str, object]:
    """The session span attributes of an admin shell session (brief of the admin shell work)."""
    return {
        SESSION_ID: session_id,
        SESSION_TYPE: "admin_shell",
        ADMIN_COMPONENT: component,
        ADMIN_SHELL_TYPE: f"{component.title()}Shell",
        USER_NAME: user,
        HOST_NAME: host,
        PROCESS_PID: 4242,
    }


def record_admin_session(
    tracer: Tracer,
    session_id: str,
    start_ns: int,
    *,
    component: str,
    user: str,
    host: str,
    seconds: int | None = 5,
    failed: bool = False,
) -> None:
    """An admin shell session: start marker at `start_ns`, session span ending `seconds` later (None:
    never, the shell died), with status ERROR when `failed`. No MCP requests."""
    attributes = admin_attributes(session_id, component, user, host)
    session = tracer.start_span(SESSION_SPAN_NAME, attributes=attributes, start_time=start_ns)
    marker_context = trace.set_span_in_context(session)
    tracer.start_span(
        SESSION_START_SPAN_NAME, marker_context, attributes=attributes, start_time=start_ns
    ).end(start_ns)
    if seconds is None:
        return
    if failed:
        session.set_status(Status(StatusCode.ERROR, "shell crashed"))
    session.end(start_ns + seconds * 10**9)


def admin_summary(session_id: str, start_ns: int) -> SessionSummary:
    """What the store must say about `record_admin_session(component="mahavishnu", user="les",
    host="mbp")` with the default 5 s."""
    return SessionSummary(
        session_id=session_id,
        type="admin_shell",
        service=SERVICE,
        start_ns=start_ns,
        end_ns=start_ns + 5 * 10**9,
        status="ended",
        end_reason=None,
        counts={"spans": 2},
        attributes=admin_attributes(session_id, "mahavishnu", "les", "mbp"),
        last_activity_ns=start_ns + 5 * 10**9,
    )


def _export(path: Path, spans: Sequence[ReadableSpan]) -> None:
    exporter = SqliteSpanExporter(path)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def _summary(path: Path, session_id: str) -> SessionSummary:
    with SessionStore(path) as store:
        return store.get_summary(session_id)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


def test_complete_session_is_summarised(db: Path) -> None:
    with sqlite_tracer(db) as tracer:
        record_session(tracer, "sess-1")

    with SessionStore(db) as store:
        summaries = store.list_sessions()
    assert summaries == [complete_summary("sess-1")]
    summary = summaries[0]
    assert summary.start == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert summary.end == datetime(2023, 11, 14, 22, 13, 20, 100_000, tzinfo=timezone.utc)
    assert summary.duration_seconds == pytest.approx(0.1)


def test_incomplete_session_is_listed_as_active(db: Path) -> None:
    with sqlite_tracer(db) as tracer:
        record_session(tracer, "crashed", complete=False)

    with SessionStore(db) as store:
        assert store.list_sessions() == [incomplete_summary("crashed")]
        assert store.list_sessions()[0].duration_seconds is None


def test_spans_for_session_returns_every_span_by_start_time(db: Path) -> None:
    with sqlite_tracer(db) as tracer:
        record_session(tracer, "sess-1")
        record_session(tracer, "sess-2", T0 + 10**9)
        tracer.start_span("outside any session").end()

    with SessionStore(db) as store:
        spans = store.spans_for_session("sess-1")
        assert store.spans_for_session("no-such-session") == []
    assert sorted(span["name"] for span in spans) == sorted(
        [
            SESSION_SPAN_NAME,
            SESSION_START_SPAN_NAME,
            "initialize",
            "tools/list",
            "tools/call search",
            "db.query",
            "tools/call fail",
        ]
    )
    starts = [span["start_ns"] for span in spans]
    assert starts == sorted(starts)
    assert {span["session_id"] for span in spans} == {"sess-1"}
    assert {span["service_name"] for span in spans} == {SERVICE}
    by_name = {span["name"]: span for span in spans}
    session_span = by_name[SESSION_SPAN_NAME]
    assert session_span["kind"] == "INTERNAL"
    assert session_span["parent_span_id"] is None
    assert [event["name"] for event in session_span["events"]] == [
        SESSION_START_EVENT,
        "shinzo.tool_call",
        SESSION_END_EVENT,
    ]
    assert by_name[SESSION_START_SPAN_NAME]["parent_span_id"] == session_span["span_id"]
    assert by_name[SESSION_START_SPAN_NAME]["end_ns"] == T0
    search = by_name["tools/call search"]
    assert search["kind"] == "SERVER"
    assert search["parent_span_id"] == session_span["span_id"]
    assert search["attributes"][GEN_AI_TOOL_CALL_ARGUMENTS] == SEARCH_ARGUMENTS
    assert by_name["db.query"]["parent_span_id"] == search["span_id"]
    assert by_name["db.query"]["trace_id"] == session_span["trace_id"]
    assert len(session_span["trace_id"]) == 32
    assert len(session_span["span_id"]) == 16
    fail = by_name["tools/call fail"]
    assert (fail["status_code"], fail["status_message"]) == ("ERROR", "boom")
    [exception] = fail["events"]
    assert exception["name"] == "exception"
    assert exception["attributes"]["exception.type"] == "ValueError"
    assert exception["attributes"]["exception.message"] == "boom"
    assert search["resource"][SERVICE_NAME] == SERVICE
    assert search["scope"] == "tests"


def test_request_spans_arriving_before_the_marker(db: Path) -> None:
    spans = {span.name: span for span in finished_spans(lambda tracer: record_session(tracer, "s"))}

    _export(db, [spans["tools/list"], spans["initialize"]])
    early = _summary(db, "s")
    # Until the marker arrives, the earliest span (initialize, +10 ms) is the best known start.
    assert (early.start_ns, early.type, early.status, early.attributes) == (T0 + 10 * MS, None, "active", {})
    assert (early.counts.spans, early.counts.requests) == (2, 2)

    _export(db, [spans[SESSION_START_SPAN_NAME]])
    assert _summary(db, "s") == incomplete_summary("s")

    _export(
        db,
        [
            span
            for name, span in spans.items()
            if name not in ("initialize", "tools/list", SESSION_START_SPAN_NAME)
        ],
    )
    assert _summary(db, "s") == complete_summary("s")


@pytest.mark.parametrize("seed", range(6))
def test_arrival_order_and_batching_do_not_matter(tmp_path: Path, seed: int) -> None:
    spans = list(finished_spans(lambda tracer: record_session(tracer, "s")))
    rng = random.Random(seed)
    if seed == 0:
        spans.reverse()  # session span first, marker last
    else:
        rng.shuffle(spans)
    cuts = sorted(rng.sample(range(1, len(spans)), k=seed % 4))
    batches = [spans[start:end] for start, end in itertools.pairwise([0, *cuts, len(spans)])]

    db = tmp_path / f"order-{seed}.db"
    for batch in batches:
        _export(db, batch)
    assert _summary(db, "s") == complete_summary("s")


def test_reexported_spans_are_not_counted_twice(db: Path) -> None:
    spans = finished_spans(lambda tracer: record_session(tracer, "s"))
    _export(db, spans)
    _export(db, spans[:3])
    assert _summary(db, "s") == complete_summary("s")
    with SessionStore(db) as store:
        assert len(store.spans_for_session("s")) == 7


def test_batch_processor_exports_from_its_worker_thread(db: Path) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: SERVICE}))
    provider.add_span_processor(BatchSpanProcessor(SqliteSpanExporter(db)))
    try:
        record_session(provider.get_tracer("tests"), "batched")
        assert provider.force_flush()
    finally:
        provider.shutdown()
    assert _summary(db, "batched") == complete_summary("batched")


def test_concurrent_writers_share_one_file(db: Path) -> None:
    def write(writer: int) -> None:
        with sqlite_tracer(db, service=f"service-{writer}") as tracer:
            for number in range(5):
                record_session(tracer, f"w{writer}-{number}", T0 + (writer * 5 + number) * 10**9)

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with SessionStore(db) as store:
        summaries = store.list_sessions(SessionFilter(limit=None))
    assert summaries == [
        complete_summary(f"w{writer}-{number}", T0 + (writer * 5 + number) * 10**9, f"service-{writer}")
        for writer, number in reversed(list(itertools.product(range(4), range(5))))
    ]


def test_exporters_opening_a_new_file_together_all_succeed(tmp_path: Path) -> None:
    # SQLite answers the switch to WAL with SQLITE_BUSY, without waiting, while another connection
    # switches the same new file: before the retry, about one first export in 20 failed here.
    results: list[SpanExportResult] = []

    def first_export(path: Path, barrier: threading.Barrier) -> None:
        exporter = SqliteSpanExporter(path)
        barrier.wait()
        results.append(exporter.export_records([]))
        exporter.shutdown()

    for number in range(40):
        barrier = threading.Barrier(4)
        threads = [
            threading.Thread(target=first_export, args=(tmp_path / f"{number}.db", barrier)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [SpanExportResult.SUCCESS] * 160


def test_end_session_ends_an_incomplete_session(db: Path) -> None:
    spans = finished_spans(lambda tracer: record_session(tracer, "s"))
    early = [span for span in spans if span.name in (SESSION_START_SPAN_NAME, "initialize", "tools/list")]
    _export(db, early)

    with SessionStore(db) as store:
        assert store.end_session("s", T0 + 5 * 10**9, reason="stale") is True
        ended = store.get_summary("s")
        assert store.end_session("s", reason="again") is False
        assert store.get_summary("s") == ended
    # The manual end is the session's last known moment (SessionSummary.last_activity_ns).
    end_ns = T0 + 5 * 10**9
    assert ended == incomplete_summary("s").model_copy(
        update={"end_ns": end_ns, "status": "ended", "end_reason": "stale", "last_activity_ns": end_ns}
    )
    assert ended.duration_seconds == pytest.approx(5.0)

    # The session span turning up later is the better witness: it replaces the manual end.
    _export(db, [span for span in spans if span not in early])
    assert _summary(db, "s") == complete_summary("s")


def test_end_session_defaults_to_now(db: Path) -> None:
    _export(db, finished_spans(lambda tracer: record_session(tracer, "s", complete=False)))
    with SessionStore(db) as store:
        assert store.end_session("s") is True
        summary = store.get_summary("s")
    assert summary.end_ns is not None
    assert summary.end_ns > T0 + 10**9 * 3600  # "now" is years after T0
    assert summary.end_reason == "manual"


def test_end_session_rejects_unknown_sessions_and_ends_before_start(db: Path) -> None:
    _export(db, finished_spans(lambda tracer: record_session(tracer, "s", complete=False)))
    with SessionStore(db) as store:
        with pytest.raises(SessionNotFoundError, match="no-such"):
            store.end_session("no-such")
        with pytest.raises(ValueError, match="before the start"):
            store.end_session("s", T0 - 1)
        assert store.get_summary("s").status == "active"


def test_list_sessions_filters_and_limits(db: Path) -> None:
    with sqlite_tracer(db, service="alpha") as alpha, sqlite_tracer(db, service="beta") as beta:
        record_session(alpha, "a", T0)
        record_session(beta, "b", T0 + 10**9, session_type="admin_shell")
        record_session(alpha, "c", T0 + 2 * 10**9, complete=False)

    def ids(**filters: object) -> list[str]:
        with SessionStore(db) as store:
            return [
                summary.session_id for summary in store.list_sessions(SessionFilter.model_validate(filters))
            ]

    second = datetime(2023, 11, 14, 22, 13, 21)  # naive: UTC, T0 + 1 s
    assert ids() == ["c", "b", "a"]
    assert ids(limit=2) == ["c", "b"]
    assert ids(session_type="admin_shell") == ["b"]
    assert ids(service="alpha") == ["c", "a"]
    assert ids(status="active") == ["c"]
    assert ids(status="ended", service="alpha") == ["a"]
    assert ids(started_after=second) == ["c", "b"]
    assert ids(started_before=second) == ["a"]
    assert ids(
        started_after=second.replace(tzinfo=timezone.utc), started_before=second.replace(second=22)
    ) == ["b"]


def test_spans_outside_sessions_are_stored_but_make_no_session(db: Path) -> None:
    with sqlite_tracer(db) as tracer:
        tracer.start_span("background job").end()
    with SessionStore(db) as store:
        assert store.list_sessions() == []
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT name, session_id FROM spans").fetchall() == [
            ("background job", None)
        ]


def _indexes(connection: sqlite3.Connection, table: str) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(column for _, _, column in connection.execute(f"PRAGMA index_info('{name}')"))
        for _, name, *_ in connection.execute(f"PRAGMA index_list('{table}')")
    }


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info('{table}')")]


def assert_same_schema(migrated: Path, fresh: Path) -> None:
    """Both files have the same schema version, columns (name, type, NOT NULL, default, key) and
    indexes (their statements: columns, order, partial WHERE)."""
    with sqlite3.connect(migrated) as left, sqlite3.connect(fresh) as right:
        for connection in (left, right):
            assert connection.execute("PRAGMA user_version").fetchone() == (3,)
        for table in ("spans", "sessions"):
            info = f"PRAGMA table_info('{table}')"
            assert left.execute(info).fetchall() == right.execute(info).fetchall()
        indexes = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        assert left.execute(indexes).fetchall() == right.execute(indexes).fetchall()


def test_schema_version_wal_and_indexes(db: Path) -> None:
    with sqlite_tracer(db) as tracer:
        record_session(tracer, "s")
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA user_version").fetchone() == (3,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert {("session_id", "start_ns"), ("trace_id", "span_id")} <= set(
            _indexes(connection, "spans").values()
        )
        sessions = _indexes(connection, "sessions")
        # session_id is the primary key: SQLite backs it with its own unique index.
        assert sessions["sqlite_autoindex_sessions_1"] == ("session_id",)
        assert sessions["sessions_start"] == ("start_ns",)
        assert sessions["sessions_service_start"] == ("service_name", "start_ns")
        assert sessions["sessions_active"] == ("start_ns",)
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("", "sessions_start"),
        ("WHERE service_name = 'x'", "sessions_service_start"),
        ("WHERE type = 'admin_shell'", "sessions_type_start"),
        ("WHERE end_ns IS NULL", "sessions_active"),
    ],
)
def test_newest_first_lists_walk_an_index(db: Path, where: str, index: str) -> None:
    """The statements `SessionStore.list_sessions` issues for the common filters are answered by walking
    an index in start order, never by sorting the whole table (benchmarks/bench_store.py: 100 000
    sessions)."""
    with sqlite_tracer(db) as tracer:
        record_session(tracer, "s")
    with sqlite3.connect(db) as connection:
        plan = " ".join(
            row[-1]
            for row in connection.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM sessions {where} ORDER BY start_ns DESC LIMIT 50"
            )
        )
    assert f"USING INDEX {index}" in plan
    assert "TEMP B-TREE" not in plan


V1_SESSION_COLUMNS = [
    "session_id",
    "service_name",
    "type",
    "start_ns",
    "end_ns",
    "status",
    "span_count",
    "request_count",
    "tool_call_count",
    "error_count",
    "attributes",
    "end_reason",
    "source_rank",
]
"""The sessions table of schema version 1 (commit 6e3af3a, shinzo_otel/store.py)."""
V2_SESSION_COLUMNS = [*V1_SESSION_COLUMNS, "component", "user_name", "host_name", "tools"]
V2_SPAN_COLUMNS = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status_code",
    "status_message",
    "session_id",
    "service_name",
    "attributes",
    "events",
    "links",
    "resource",
    "scope",
]
"""The tables of schema version 2 (commit 6f020d6, shinzo_otel/store.py); version 1 had the same spans."""


def _downgrade_to_v2(db: Path) -> None:
    """Turn a store into what version 2 wrote: the same rows without the version 3 columns and indexes."""
    with sqlite3.connect(db) as connection:
        for index in ("sessions_origin_start", "spans_requests"):
            connection.execute(f"DROP INDEX {index}")
        for table, column in (
            ("sessions", "origin"),
            ("sessions", "idle_timeout_ns"),
            ("sessions", "last_activity_ns"),
            ("spans", "request_failed"),
            ("spans", "request_target"),
            ("spans", "request_method"),
        ):
            connection.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        connection.execute("PRAGMA user_version = 2")
        assert _columns(connection, "sessions") == V2_SESSION_COLUMNS
        assert _columns(connection, "spans") == V2_SPAN_COLUMNS


def _downgrade_to_v1(db: Path) -> None:
    """Turn a store into what version 1 wrote: sessions without the version 2 and 3 columns."""
    _downgrade_to_v2(db)
    with sqlite3.connect(db) as connection:
        connection.execute("DROP INDEX sessions_active")
        for column in ("tools", "host_name", "user_name", "component"):
            connection.execute(f"ALTER TABLE sessions DROP COLUMN {column}")
        connection.execute("PRAGMA user_version = 1")
        assert _columns(connection, "sessions") == V1_SESSION_COLUMNS


def test_a_version_1_store_is_migrated_when_read(tmp_path: Path) -> None:
    db, fresh = tmp_path / "v1.db", tmp_path / "fresh.db"
    for path in (db, fresh):
        with sqlite_tracer(path) as tracer:
            record_session(tracer, "complete")
            record_session(tracer, "crashed", T0 + 10**9, complete=False)
            record_admin_session(
                tracer, "shell", T0 + 2 * 10**9, component="mahavishnu", user="les", host="mbp"
            )
    _downgrade_to_v1(db)

    with SessionStore(db) as store:
        migrated = store.list_sessions()
        with_component = store.list_sessions(SessionFilter(component="mahavishnu"))
    assert migrated == [
        admin_summary("shell", T0 + 2 * 10**9),
        incomplete_summary("crashed", T0 + 10**9),
        complete_summary("complete"),
    ]
    # The tool counts were rebuilt from the stored spans, the admin columns from the attributes.
    assert migrated[2].counts.tools == {"search": 1, "fail": 1}
    assert [summary.session_id for summary in with_component] == ["shell"]
    assert_same_schema(db, fresh)


@pytest.mark.parametrize("downgrade", [_downgrade_to_v1, _downgrade_to_v2], ids=["v1", "v2"])
def test_an_older_store_is_migrated_by_the_exporter(
    tmp_path: Path, downgrade: Callable[[Path], None]
) -> None:
    db = tmp_path / "old.db"
    spans = finished_spans(lambda tracer: record_session(tracer, "s"))
    early = [
        span for span in spans if span.name in (SESSION_START_SPAN_NAME, "initialize", "tools/call search")
    ]
    _export(db, early)
    downgrade(db)

    _export(db, [span for span in spans if span not in early])
    assert _summary(db, "s") == complete_summary("s")


def test_export_records_writes_what_export_writes(tmp_path: Path) -> None:
    source, copy = tmp_path / "source.db", tmp_path / "copy.db"
    with sqlite_tracer(source) as tracer:
        record_session(tracer, "s")
    with SessionStore(source) as store:
        records = store.spans_for_session("s")
    exporter = SqliteSpanExporter(copy)
    try:
        assert exporter.export_records(list(reversed(records))) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert exporter.export_records(records) is SpanExportResult.FAILURE  # after shutdown
    with SessionStore(copy) as store:
        assert store.get_session("s") == build_session(records, complete_summary("s"))


@pytest.fixture
def filter_db(tmp_path: Path) -> Path:
    """Seven sessions, oldest first (start T0 + n s):

    a: mcp, service alpha, 100 ms, one failed request · b: admin_shell mahavishnu/les, 300 s, ok ·
    c: admin_shell oneiric/ann, no end · d: mcp, service alpha, no end, no error ·
    e: admin_shell mahavishnu/ann, 10 s, session span ERROR ·
    f: mcp, service alpha, origin conversation, no end, idle timeout 60 s: abandoned (silent since
    T0 + 5 s + 21 ms, years ago) · g: mcp, service alpha, origin stream, no end, idle timeout 10^10 s
    (past SQLite's integer range in ns): active.
    """
    path = tmp_path / "filters.db"
    with sqlite_tracer(path, service="alpha") as alpha, sqlite_tracer(path, service="shells") as shells:
        record_session(alpha, "a", T0)
        record_admin_session(
            shells, "b", T0 + 10**9, component="mahavishnu", user="les", host="mbp", seconds=300
        )
        record_admin_session(
            shells, "c", T0 + 2 * 10**9, component="oneiric", user="ann", host="srv", seconds=None
        )
        record_session(alpha, "d", T0 + 3 * 10**9, complete=False)
        record_admin_session(
            shells,
            "e",
            T0 + 4 * 10**9,
            component="mahavishnu",
            user="ann",
            host="srv",
            seconds=10,
            failed=True,
        )
        conversation = {SESSION_ORIGIN: "conversation", SESSION_IDLE_TIMEOUT: 60}
        record_session(alpha, "f", T0 + 5 * 10**9, complete=False, extra=conversation)
        stream = {SESSION_ORIGIN: "stream", SESSION_IDLE_TIMEOUT: 10**10}
        record_session(alpha, "g", T0 + 6 * 10**9, complete=False, extra=stream)
    return path


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, "gfedcba"),
        ({"component": "mahavishnu"}, "eb"),
        ({"user": "ann"}, "ec"),
        ({"session_type": "admin_shell", "user": "les"}, "b"),
        ({"service": "alpha"}, "gfda"),
        ({"origin": "conversation"}, "f"),
        # Sessions without an end count as running until now (years after T0).
        ({"min_duration_seconds": 200}, "gfdcb"),
        ({"min_duration_seconds": 300}, "gfdc"),  # strictly greater: b lasted exactly 300 s
        ({"status": "active"}, "gdc"),
        ({"status": "active", "session_type": "admin_shell"}, "c"),
        ({"status": "abandoned"}, "f"),
        ({"status": "abandoned", "service": "shells"}, ""),
        ({"status": "error"}, "e"),
        ({"status": "ended"}, "ba"),
        ({"incomplete": True}, "gfdc"),
        ({"incomplete": False}, "eba"),
        ({"incomplete": True, "status": "active"}, "gdc"),
        ({"incomplete": False, "status": "abandoned"}, ""),
        ({"has_error": True}, "ea"),
        ({"has_error": False}, "gfdcb"),
        ({"min_duration_seconds": 5, "status": "ended"}, "b"),
        (
            {
                "started_after": datetime(2023, 11, 14, 22, 13, 21),
                "started_before": datetime(2023, 11, 14, 22, 13, 24),
            },
            "dcb",
        ),
        ({"has_error": False, "limit": 2}, "gf"),
    ],
)
def test_filters_agree_in_sql_and_in_memory(
    filter_db: Path, filters: dict[str, object], expected: str
) -> None:
    session_filter = SessionFilter.model_validate({"limit": None, **filters})
    with SessionStore(filter_db) as store:
        in_sql = [summary.session_id for summary in store.list_sessions(session_filter)]
        everything = store.list_sessions(SessionFilter(limit=None))
    now_ns = time.time_ns()
    in_memory = [summary.session_id for summary in everything if session_filter.matches(summary, now_ns)]
    assert in_sql == list(expected)
    assert in_memory[: session_filter.limit] == list(expected)


def test_default_store_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(SHINZO_STORE_PATH, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert default_store_path() == tmp_path / "home/.local/share/shinzo-otel/sessions.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")
    assert default_store_path() == tmp_path / "home/.local/share/shinzo-otel/sessions.db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data/shinzo-otel/sessions.db"
    monkeypatch.setenv(SHINZO_STORE_PATH, str(tmp_path / "explicit.db"))
    assert default_store_path() == tmp_path / "explicit.db"
    assert not (tmp_path / "data").exists()

    spans = finished_spans(lambda tracer: record_session(tracer, "s"))
    exporter = SqliteSpanExporter()  # no path: the environment decides, at construction
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert _summary(tmp_path / "explicit.db", "s") == complete_summary("s")


def test_exporter_creates_missing_parent_directories(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "sessions.db"
    _export(db, finished_spans(lambda tracer: record_session(tracer, "s")))
    assert _summary(db, "s") == complete_summary("s")


def test_export_failures_are_reported_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spans = finished_spans(lambda tracer: record_session(tracer, "s"))

    unwritable = SqliteSpanExporter(tmp_path)  # a directory, not a database file
    assert unwritable.export(spans) is SpanExportResult.FAILURE
    unwritable.shutdown()

    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as connection:
        connection.execute("PRAGMA user_version = 99")
    exporter = SqliteSpanExporter(newer)
    assert exporter.export(spans) is SpanExportResult.FAILURE
    exporter.shutdown()

    closed = SqliteSpanExporter(tmp_path / "closed.db")
    closed.shutdown()
    assert closed.export(spans) is SpanExportResult.FAILURE
    assert not (tmp_path / "closed.db").exists()
    assert "session store" in caplog.text


def test_session_store_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(SourceUnavailableError, match="no session store at"):
        SessionStore(missing)
    assert not missing.exists()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SourceUnavailableError, match=r"garbage\.db"):
        SessionStore(garbage)

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE accounts (id INTEGER)")
    connection.close()
    with pytest.raises(SourceUnavailableError, match="not a shinzo-otel session store"):
        SessionStore(foreign)


# --- abandoned sessions ----------------------------------------------------------------------------

HOUR = 3600 * 10**9


def test_a_session_silent_past_its_idle_timeout_is_abandoned(db: Path) -> None:
    """Times relative to now, hours away from every boundary: no sleeping, no flakiness."""
    now = time.time_ns()
    connection = {SESSION_ORIGIN: "connection", SESSION_IDLE_TIMEOUT: 1800}
    with sqlite_tracer(db) as tracer:
        record_session(tracer, "closed", now - 3 * HOUR, extra=connection)
        # Silent since its tools/list ended 2 h ago (+21 ms): past 30 min.
        record_session(tracer, "dead", now - 2 * HOUR, complete=False, extra=connection)
        # Recorded before sessions carried an idle timeout: never abandoned.
        record_session(tracer, "old-data", now - 2 * HOUR - 10**9, complete=False)
        # Silent for 1 h, its timeout is 2 h.
        stream = {SESSION_ORIGIN: "stream", SESSION_IDLE_TIMEOUT: 7200}
        record_session(tracer, "alive", now - HOUR, complete=False, extra=stream)

    def ids(**filters: object) -> list[str]:
        with SessionStore(db) as store:
            found = store.list_sessions(SessionFilter.model_validate(filters))
        return [summary.session_id for summary in found]

    with SessionStore(db) as store:
        summaries = {summary.session_id: summary for summary in store.list_sessions()}
    assert {session_id: summary.status for session_id, summary in summaries.items()} == {
        "closed": "ended",
        "dead": "abandoned",
        "old-data": "active",
        "alive": "active",
    }
    dead = summaries["dead"]
    assert (dead.end_ns, dead.last_activity_ns, dead.origin) == (None, now - 2 * HOUR + 21 * MS, "connection")
    assert dead == incomplete_summary("dead", now - 2 * HOUR).model_copy(
        update={"status": "abandoned", "attributes": {**session_attributes("dead"), **connection}}
    )
    assert ids(status="abandoned") == ["dead"]
    assert ids(status="active") == ["alive", "old-data"]
    assert ids(incomplete=True) == ["alive", "dead", "old-data"]
    assert ids(origin="connection") == ["dead", "closed"]

    # Ending it by hand is what the abandoned status invites.
    with SessionStore(db) as store:
        assert store.end_session("dead", reason="abandoned") is True
        assert (store.get_summary("dead").status, store.get_summary("dead").end_reason) == (
            "ended",
            "abandoned",
        )
    assert ids(status="abandoned") == []


# --- requests outside any session ------------------------------------------------------------------


@pytest.fixture
def requests_db(tmp_path: Path) -> tuple[Path, list[str]]:
    """Four requests outside any session, oldest first, and their trace ids:

    0: alpha, tools/call search at T0 · 1: alpha, tools/list at T0 + 1 s · 2: alpha, tools/call fail at
    T0 + 2 s, failed · 3: beta, tools/call search at T0 + 3 s. Beside them, none of which is a request
    outside a session: a session (its four requests) at T0 + 4 s, an INTERNAL span and a SERVER span
    without `mcp.method.name` (an HTTP server span) outside any session.
    """
    path = tmp_path / "requests.db"
    with sqlite_tracer(path, service="alpha") as alpha, sqlite_tracer(path, service="beta") as beta:
        traces = [
            record_request(alpha, T0, tool="search"),
            record_request(alpha, T0 + 10**9, "tools/list"),
            record_request(alpha, T0 + 2 * 10**9, tool="fail", failed=True),
            record_request(beta, T0 + 3 * 10**9, tool="search"),
        ]
        record_session(alpha, "s", T0 + 4 * 10**9)
        alpha.start_span("background job", start_time=T0 + 5 * 10**9).end(T0 + 6 * 10**9)
        alpha.start_span("POST /mcp", kind=SpanKind.SERVER, start_time=T0 + 6 * 10**9).end(T0 + 7 * 10**9)
    return path, traces


def test_requests_outside_sessions_are_listed_newest_first(requests_db: tuple[Path, list[str]]) -> None:
    path, traces = requests_db
    with SessionStore(path) as store:
        requests = store.list_requests()
        assert store.count_requests() == 4
        assert [summary.session_id for summary in store.list_sessions()] == ["s"]
    assert [request.trace_id for request in requests] == traces[::-1]
    failed = requests[1]
    assert failed == RequestSummary(
        trace_id=traces[2],
        span_id=failed.span_id,
        name="tools/call fail",
        method="tools/call",
        target="fail",
        service="alpha",
        start_ns=T0 + 2 * 10**9,
        end_ns=T0 + 2 * 10**9 + 4 * MS,
        status="ERROR",
        error_type="ValueError",
        attributes={
            MCP_METHOD_NAME: "tools/call",
            JSONRPC_REQUEST_ID: "1",
            GEN_AI_TOOL_NAME: "fail",
            ERROR_TYPE: "ValueError",
        },
    )
    assert len(failed.span_id) == 16
    assert (failed.has_error, failed.duration_seconds) == (True, pytest.approx(0.004))
    assert [(request.method, request.target, request.has_error) for request in requests] == [
        ("tools/call", "search", False),
        ("tools/call", "fail", True),
        ("tools/list", None, False),
        ("tools/call", "search", False),
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [3, 2, 1, 0]),
        ({"service": "alpha"}, [2, 1, 0]),
        ({"method": "tools/list"}, [1]),
        ({"tool": "search"}, [3, 0]),
        ({"tool": "search", "service": "beta"}, [3]),
        ({"has_error": True}, [2]),
        ({"has_error": False}, [3, 1, 0]),
        ({"started_after": datetime(2023, 11, 14, 22, 13, 21)}, [3, 2, 1]),
        ({"started_before": datetime(2023, 11, 14, 22, 13, 21)}, [0]),
        ({"limit": 2}, [3, 2]),
        ({"method": "tools/call", "has_error": False, "limit": 1}, [3]),
    ],
)
def test_request_filters_agree_in_sql_and_in_memory(
    requests_db: tuple[Path, list[str]], filters: dict[str, object], expected: list[int]
) -> None:
    path, traces = requests_db
    request_filter = RequestFilter.model_validate({"limit": None, **filters})
    with SessionStore(path) as store:
        in_sql = [request.trace_id for request in store.list_requests(request_filter)]
        counted = store.count_requests(request_filter)
        everything = store.list_requests(RequestFilter(limit=None))
    in_memory = [request.trace_id for request in everything if request_filter.matches(request)]
    assert in_sql == [traces[index] for index in expected]
    assert in_memory[: request_filter.limit] == in_sql
    assert counted == len(in_memory)  # the count ignores the limit


def test_any_trace_is_replayable(requests_db: tuple[Path, list[str]]) -> None:
    path, traces = requests_db
    with SessionStore(path) as store:
        replay = store.get_trace(traces[2].upper())  # ids are accepted in any case
        [listed] = store.list_requests(RequestFilter(has_error=True))
        session_trace = store.spans_for_session("s")[0]["trace_id"]
        in_session = store.get_trace(session_trace)
        with pytest.raises(TraceNotFoundError, match="0123456789abcdef0123456789abcdef"):
            store.get_trace("0123456789abcdef0123456789abcdef")
    assert (replay.trace_id, replay.requests) == (traces[2], (listed,))
    assert [
        (entry.name, entry.offset_seconds, entry.duration_ms, entry.depth, entry.status)
        for entry in replay.timeline
    ] == [("tools/call fail", 0.0, 4.0, 0, "ERROR"), ("db.query", 0.001, 2.0, 1, "UNSET")]
    # A session's trace holds no request outside a session, but replays all the same.
    assert in_session.requests == ()
    assert [entry.name for entry in in_session.timeline if entry.entry_type == "span"] == [
        "initialize",
        "tools/list",
        "tools/call search",
        "db.query",
        "tools/call fail",
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM spans WHERE request_method IS NOT NULL ORDER BY start_ns DESC LIMIT 50",
        "SELECT * FROM spans WHERE request_method IS NOT NULL AND service_name = 'x' "
        "ORDER BY start_ns DESC LIMIT 50",
        "SELECT * FROM spans WHERE request_method IS NOT NULL AND request_method = 'tools/call' "
        "AND request_target = 'x' AND request_failed = 1 ORDER BY start_ns DESC LIMIT 50",
    ],
)
def test_request_lists_walk_the_request_index(requests_db: tuple[Path, list[str]], statement: str) -> None:
    """The shapes of `SessionStore.list_requests`: newest first along spans_requests, never a sort of
    every span, so that 100 000 requests outside sessions list as fast as a few."""
    with sqlite3.connect(requests_db[0]) as connection:
        plan = " ".join(row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}"))
    assert "USING INDEX spans_requests" in plan
    assert "TEMP B-TREE" not in plan


def test_request_counts_read_the_index_alone(requests_db: tuple[Path, list[str]]) -> None:
    """`sessions list` counts the requests of its window on every run: from the index, no span read."""
    statement = (
        "SELECT COUNT(*) FROM spans WHERE request_method IS NOT NULL AND service_name = 'alpha' "
        "AND start_ns >= 0 AND start_ns < 1 AND request_failed = 1"
    )
    with sqlite3.connect(requests_db[0]) as connection:
        plan = " ".join(row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}"))
    assert "USING COVERING INDEX spans_requests" in plan


def test_a_version_2_store_is_migrated_in_place(tmp_path: Path) -> None:
    db, fresh = tmp_path / "v2.db", tmp_path / "fresh.db"
    connection = {SESSION_ORIGIN: "connection", SESSION_IDLE_TIMEOUT: 60}
    trace_ids = {}
    for path in (db, fresh):
        with sqlite_tracer(path) as tracer:
            record_session(tracer, "complete")
            record_session(tracer, "crashed", T0 + 10**9, complete=False, extra=connection)
            trace_ids[path] = record_request(tracer, T0 + 2 * 10**9, tool="search", failed=True)
    _downgrade_to_v2(db)

    with SessionStore(db) as store:
        migrated = store.list_sessions()
        abandoned = store.list_sessions(SessionFilter(status="abandoned"))
        by_origin = store.list_sessions(SessionFilter(origin="connection"))
        requests = store.list_requests(RequestFilter(has_error=True, tool="search"))
    with SessionStore(fresh) as reference:
        expected_requests = reference.list_requests()
    # Last activity, idle timeout and origin rebuilt from the spans and attributes: years silent.
    crashed = incomplete_summary("crashed", T0 + 10**9).model_copy(
        update={"status": "abandoned", "attributes": {**session_attributes("crashed"), **connection}}
    )
    assert migrated == [crashed, complete_summary("complete")]
    assert abandoned == by_origin == [crashed]
    # The request columns were filled from the stored spans.
    assert [request.trace_id for request in requests] == [trace_ids[db]]
    assert [request.model_dump(exclude={"trace_id", "span_id"}) for request in requests] == [
        request.model_dump(exclude={"trace_id", "span_id"}) for request in expected_requests
    ]
    assert_same_schema(db, fresh)


# --- prune ----------------------------------------------------------------------------------------


def test_prune_removes_ended_sessions_and_requests_started_before(db: Path) -> None:
    """Cutoff T0 + 5 s. Removed: old-ended (7 spans), the request at T0 + 2 s (2 spans), a background
    span outside any session at T0 + 3 s. Kept: old-open (no end, 3 spans), new-ended (7 spans), the
    request at T0 + 11 s (2 spans), and session held, no end, whose request span sits under an HTTP
    server span outside any session at T0 + 4 s (2 spans): that span stays with its session."""
    cutoff = T0 + 5 * 10**9
    with sqlite_tracer(db) as tracer:
        record_session(tracer, "old-ended", T0)
        record_session(tracer, "old-open", T0 + 10**9, complete=False)
        old_request = record_request(tracer, T0 + 2 * 10**9, tool="search")
        tracer.start_span("background job", start_time=T0 + 3 * 10**9).end(T0 + 3 * 10**9 + MS)
        http = tracer.start_span("POST /mcp", kind=SpanKind.SERVER, start_time=T0 + 4 * 10**9)
        tracer.start_span(
            "tools/list",
            trace.set_span_in_context(http),
            kind=SpanKind.SERVER,
            attributes={SESSION_ID: "held", MCP_METHOD_NAME: "tools/list"},
            start_time=T0 + 4 * 10**9 + MS,
        ).end(T0 + 4 * 10**9 + 2 * MS)
        http.end(T0 + 4 * 10**9 + 3 * MS)
        record_session(tracer, "new-ended", T0 + 10 * 10**9)
        new_request = record_request(tracer, T0 + 11 * 10**9)

    def span_count() -> int:
        with sqlite3.connect(db) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    assert span_count() == 7 + 3 + 2 + 1 + 2 + 7 + 2
    with SessionStore(db) as store:
        assert store.prune(cutoff, dry_run=True) == PruneResult(sessions=1, requests=1, spans=10)
        assert span_count() == 24
        assert store.prune(cutoff) == PruneResult(sessions=1, requests=1, spans=10)
        assert store.prune(cutoff) == PruneResult(sessions=0, requests=0, spans=0)
        sessions = [summary.session_id for summary in store.list_sessions()]
        requests = [request.trace_id for request in store.list_requests()]
        held = store.get_trace(store.spans_for_session("held")[0]["trace_id"])
        with pytest.raises(TraceNotFoundError):
            store.get_trace(old_request)
    assert span_count() == 14
    assert sessions == ["new-ended", "held", "old-open"]
    assert requests == [new_request]
    assert [entry.name for entry in held.timeline] == ["POST /mcp", "tools/list"]


def test_a_file_created_before_its_first_export_reads_as_an_empty_store(tmp_path: Path):
    """The exporter creates the file first and its schema in its first transaction; a reader in
    between sees an empty store, not "not a shinzo-otel store"."""
    path = tmp_path / "new.db"
    sqlite3.connect(path).close()  # what the file is between its creation and the first export
    with SessionStore(path) as store:
        assert store.list_sessions() == []
        assert store.count_requests() == 0
