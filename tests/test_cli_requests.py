"""The CLI on sessions that never ended and on requests outside any session: `sessions list --status
abandoned / --origin`, the note `sessions list` prints about requests outside sessions, `requests
list` and `requests show` on the embedded store and on an OTLP JSON file, and `sessions prune`.

The store and the file are written from real SDK spans (tests/test_store.py helpers); times are fixed
(T0, in 2023) except for the sessions whose status depends on now, which are placed hours away from
any boundary.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import Tracer
from pydantic import TypeAdapter

from shinzo_otel._semconv import SESSION_IDLE_TIMEOUT, SESSION_ORIGIN
from shinzo_otel.replay import RequestSummary, TraceReplay
from shinzo_otel.store import SessionStore
from tests.test_cli import ok, run, shinzo, table_cells
from tests.test_readers import collector_file_line
from tests.test_store import MS, T0, finished_spans, record_request, record_session, sqlite_tracer

REQUESTS: TypeAdapter[list[RequestSummary]] = TypeAdapter(list[RequestSummary])
HOUR = 3600 * 10**9
SECOND = 10**9


def _record(tracer: Tracer, now_ns: int) -> list[str]:
    """What `store` and `file` hold. Returns the trace ids of the requests outside sessions, oldest
    first: 0: search at T0 + 1 s · 1: tools/list at T0 + 2 s · 2: fail at T0 + 3 s, failed; the
    service of the tracer (test-server). Sessions: complete (T0, ended), dead (2 h ago, idle timeout
    30 min, origin connection: abandoned), alive (1 h ago, idle timeout 2 h, origin stream: active)."""
    record_session(tracer, "complete")
    traces = [
        record_request(tracer, T0 + SECOND, tool="search"),
        record_request(tracer, T0 + 2 * SECOND, "tools/list"),
        record_request(tracer, T0 + 3 * SECOND, tool="fail", failed=True),
    ]
    connection = {SESSION_ORIGIN: "connection", SESSION_IDLE_TIMEOUT: 1800}
    record_session(tracer, "dead", now_ns - 2 * HOUR, complete=False, extra=connection)
    stream = {SESSION_ORIGIN: "stream", SESSION_IDLE_TIMEOUT: 7200}
    record_session(tracer, "alive", now_ns - HOUR, complete=False, extra=stream)
    return traces


@pytest.fixture(scope="module")
def now_ns() -> int:
    return time.time_ns()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, now_ns: int) -> tuple[Path, list[str]]:
    """The embedded store (read only) and the trace ids of its requests outside sessions; one more
    request, of service other-server, at T0 + 4 s."""
    path = tmp_path_factory.mktemp("cli-requests") / "sessions.db"
    with sqlite_tracer(path) as tracer, sqlite_tracer(path, service="other-server") as other:
        traces = _record(tracer, now_ns)
        traces.append(record_request(other, T0 + 4 * SECOND, tool="search"))
    return path, traces


@pytest.fixture(scope="module")
def otlp_file(tmp_path_factory: pytest.TempPathFactory, now_ns: int) -> tuple[Path, list[str]]:
    """The same spans of test-server as an OTLP JSON file, as the Collector's file exporter writes it."""
    traces: list[str] = []
    spans = finished_spans(lambda tracer: traces.extend(_record(tracer, now_ns)))
    path = tmp_path_factory.mktemp("cli-requests-file") / "traces.jsonl"
    path.write_text(f"{collector_file_line(encode_spans(spans))}\n", encoding="utf-8")
    return path, traces


def _session_ids(*args: str | Path) -> list[str]:
    """The ids `sessions list --format json` prints (stderr may hold the note on requests)."""
    result = run("sessions", "list", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return [item["session_id"] for item in json.loads(result.stdout)]


# --- abandoned sessions and origins ---------------------------------------------------------------


def test_sessions_list_shows_and_filters_abandoned_sessions(
    store: tuple[Path, list[str]], now_ns: int
) -> None:
    path, _ = store
    result = run("sessions", "list", "--store", path)
    rows = {row[0]: row for row in table_cells(result.stdout)}
    header = rows["Session ID"]
    dead = dict(zip(header, rows["dead"], strict=True))
    last_activity = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((now_ns - 2 * HOUR + 21 * MS) // SECOND))
    assert (dead["Status"], dead["Origin"], dead["Duration"]) == ("abandoned", "connection", "—")
    assert dead["Last activity (UTC)"] == last_activity
    assert dict(zip(header, rows["alive"], strict=True))["Status"] == "active"

    assert _session_ids("--status", "abandoned", "--store", path) == ["dead"]
    assert _session_ids("--status", "active", "--store", path) == ["alive"]
    assert _session_ids("--incomplete", "--store", path) == ["alive", "dead"]
    assert _session_ids("--incomplete", "--status", "ended", "--store", path) == []
    assert _session_ids("--origin", "stream", "--store", path) == ["alive"]
    invalid = run("sessions", "list", "--status", "stuck", "--store", path)
    assert invalid.exit_code == 2


def test_show_and_replay_say_abandoned_with_the_last_activity(
    store: tuple[Path, list[str]], now_ns: int
) -> None:
    path, _ = store
    last_activity = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((now_ns - 2 * HOUR + 21 * MS) // SECOND))
    fields = dict(
        row for row in table_cells(ok(run("sessions", "show", "dead", "--store", path))) if len(row) == 2
    )
    assert (fields["Status"], fields["Origin"]) == ("abandoned", "connection")
    assert fields["Last activity"] == f"{last_activity} UTC"
    replay = ok(run("replay", "dead", "--store", path))
    assert f"no end recorded, last activity {last_activity} UTC  status abandoned" in replay


# --- the note of sessions list ----------------------------------------------------------------------


def test_sessions_list_counts_the_requests_outside_sessions_on_stderr(store: tuple[Path, list[str]]) -> None:
    path, traces = store
    result = run("sessions", "list", "--format", "json", "--store", path)
    assert result.exit_code == 0
    assert [item["session_id"] for item in json.loads(result.stdout)] == ["alive", "dead", "complete"]
    assert result.stderr == (
        f"4 requests outside any session in this window: shinzo-otel requests list --store {path}\n"
    )

    # The window is the list's service and start bounds; the note's command shows exactly those.
    windowed = run(
        "sessions", "list", "--service", "test-server", "--after", "2023-11-14T22:13:22Z", "--store", path
    )
    expected = (
        f"shinzo-otel requests list --service test-server --after 2023-11-14T22:13:22+00:00 --store {path}"
    )
    assert windowed.stderr == f"2 requests outside any session in this window: {expected}\n"
    command = shlex.split(windowed.stderr.split(": ", 1)[1])
    listed = ok(run(*command[1:], "--format", "json"))
    assert [request.trace_id for request in REQUESTS.validate_json(listed)] == [traces[2], traces[1]]

    # Nothing outside sessions in the window: no note at all (`ok` wants an empty stderr).
    assert "complete" in ok(run("sessions", "list", "--before", "2023-11-14T22:13:21Z", "--store", path))


def test_the_note_names_the_source_it_read(otlp_file: tuple[Path, list[str]]) -> None:
    path, _ = otlp_file
    result = run("sessions", "list", "--source", f"file:{path}")
    assert result.exit_code == 0
    assert result.stderr == (
        f"3 requests outside any session in this window: shinzo-otel requests list --source file:{path}\n"
    )


# --- requests list ---------------------------------------------------------------------------------


def test_requests_list_in_every_format(store: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, traces = store
    assert table_cells(ok(run("requests", "list", "--store", path))) == [
        ["Trace ID", "Started (UTC)", "Duration", "Method", "Target", "Service", "Outcome"],
        [traces[3], "2023-11-14 22:13:24", "4 ms", "tools/call", "search", "other-server", "ok"],
        [traces[2], "2023-11-14 22:13:23", "4 ms", "tools/call", "fail", "test-server", "ERROR ValueError"],
        [traces[1], "2023-11-14 22:13:22", "4 ms", "tools/list", "—", "test-server", "ok"],
        [traces[0], "2023-11-14 22:13:21", "4 ms", "tools/call", "search", "test-server", "ok"],
    ]
    as_json = REQUESTS.validate_json(ok(run("requests", "list", "--format", "json", "--store", path)))
    with SessionStore(path) as reader:
        assert as_json == reader.list_requests()
    assert [request.trace_id for request in as_json] == traces[::-1]

    assert ok(run("requests", "list", "--output", tmp_path / "r.csv", "--store", path)) == ""
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert [(row["trace_id"], row["method"], row["target"], row["status"]) for row in rows] == [
        (traces[3], "tools/call", "search", "UNSET"),
        (traces[2], "tools/call", "fail", "ERROR"),
        (traces[1], "tools/list", "", "UNSET"),
        (traces[0], "tools/call", "search", "UNSET"),
    ]
    assert rows[1]["error_type"] == "ValueError"
    assert (rows[1]["start"], rows[1]["start_ns"]) == ("2023-11-14T22:13:23Z", str(T0 + 3 * SECOND))
    assert json.loads(rows[1]["attributes"])["gen_ai.tool.name"] == "fail"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--service", "test-server"], [2, 1, 0]),
        (["--method", "tools/list"], [1]),
        (["--tool", "search"], [3, 0]),
        (["--has-error"], [2]),
        (["--after", "2023-11-14T22:13:22Z"], [3, 2, 1]),
        (["--after", "2023-11-14T22:13:22", "--before", "2023-11-14T22:13:24"], [2, 1]),
        (["--limit", "1"], [3]),
        (["--tool", "search", "--service", "other-server"], [3]),
    ],
)
def test_requests_list_filters(store: tuple[Path, list[str]], args: list[str], expected: list[int]) -> None:
    path, traces = store
    listed = REQUESTS.validate_json(ok(run("requests", "list", "--format", "json", *args, "--store", path)))
    assert [request.trace_id for request in listed] == [traces[index] for index in expected]


def test_requests_list_reads_an_otlp_file(otlp_file: tuple[Path, list[str]]) -> None:
    path, traces = otlp_file
    listed = REQUESTS.validate_json(
        ok(run("requests", "list", "--format", "json", "--source", f"file:{path}"))
    )
    assert [(request.trace_id, request.method, request.has_error) for request in listed] == [
        (traces[2], "tools/call", True),
        (traces[1], "tools/list", False),
        (traces[0], "tools/call", False),
    ]


# --- requests show ---------------------------------------------------------------------------------


def test_requests_show_replays_one_request(store: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, traces = store
    text = ok(shinzo("requests", "show", traces[2], "--store", path))
    assert text.startswith(f"Trace {traces[2]}  1 request(s) outside any session\n")
    request = "tools/call fail  service test-server  started 2023-11-14 22:13:23 UTC  duration 4 ms"
    assert f"{request}  ERROR ValueError\n" in text
    entries = [line.split() for line in text.splitlines() if re.match(r"\s*[+-]\d+\.\d{3}s", line)]
    assert entries == [
        ["+0.000s", "4.0", "ms", "ERROR", "tools/call", "fail"],
        ["+0.001s", "2.0", "ms", "ok", "db.query"],
    ]

    assert ok(run("requests", "show", traces[2], "--output", tmp_path / "t.json", "--store", path)) == ""
    with SessionStore(path) as reader:
        assert TraceReplay.model_validate_json((tmp_path / "t.json").read_text()) == reader.get_trace(
            traces[2]
        )


def test_requests_show_reads_an_otlp_file(otlp_file: tuple[Path, list[str]]) -> None:
    path, traces = otlp_file
    shown = TraceReplay.model_validate_json(
        ok(run("requests", "show", traces[1], "--format", "json", "--source", f"file:{path}"))
    )
    assert (shown.trace_id, [request.name for request in shown.requests]) == (traces[1], ["tools/list"])
    assert [entry.name for entry in shown.timeline] == ["tools/list", "db.query"]


def test_an_unknown_trace_is_one_line_and_exit_1(store: tuple[Path, list[str]]) -> None:
    path, _ = store
    result = run("requests", "show", "0123456789abcdef0123456789abcdef", "--store", path)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: no trace '0123456789abcdef0123456789abcdef' in {path}\n"


# --- sessions prune --------------------------------------------------------------------------------


def test_sessions_prune_dry_run_then_prune(store: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Before T0 + 4 s: the complete session (7 spans) and requests 0-2 (2 spans each) go; the
    sessions without an end (alive, dead) and request 3 (at T0 + 4 s) stay."""
    original, traces = store
    path = shutil.copy(original, tmp_path / "sessions.db")
    expected = (
        "1 ended session(s) and 3 request(s) outside any session (13 span(s)) started before "
        "2023-11-14 22:13:24 UTC\n"
    )
    dry = ok(shinzo("sessions", "prune", "--before", "2023-11-14T22:13:24Z", "--dry-run", "--store", path))
    assert dry == f"would remove {expected}"
    assert _session_ids("--store", path) == ["alive", "dead", "complete"]

    pruned = ok(shinzo("sessions", "prune", "--before", "2023-11-14T22:13:24", "--store", path))
    assert pruned == f"removed {expected}"
    assert _session_ids("--store", path) == ["alive", "dead"]
    remaining = REQUESTS.validate_json(ok(run("requests", "list", "--format", "json", "--store", path)))
    assert [request.trace_id for request in remaining] == [traces[3]]
    again = ok(run("sessions", "prune", "--before", "2023-11-14T22:13:24Z", "--store", path))
    assert again.startswith("removed 0 ended session(s) and 0 request(s)")


def test_sessions_prune_needs_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = run("sessions", "prune", "--before", "2026-01-01", "--store", missing)
    assert result.exit_code == 1
    assert result.stderr == f"error: no session store at {missing} (nothing recorded there yet?)\n"
    assert not missing.exists()
