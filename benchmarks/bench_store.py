"""The embedded store at scale: `sessions list` over 100 000 sessions and the replay of one session of
10 000 spans (issue target: each under 1 s on this machine).

The store is the real schema, written through the store's own batch API
(`SqliteSpanExporter.export_records`, the same code path as `export`), from `SpanRecord`s shaped as the
instrumentation makes them: per session a start marker, an `mcp.session` span and two `tools/call`
SERVER spans (4 spans). The mix: 5 services, 1 session in 5 an admin shell (component, user, host),
1 in 10 with a failed call, 1 in 20 without an end (crashed), starts spread over 30 days, durations
from 1 s to 2 h. Building 400 000 SDK spans one by one would measure the SDK, not the store.

Measured, each the median of several runs:

- `SessionStore.list_sessions` with the filters of seed 002 (default 50 newest, `--type admin_shell`,
  `--service`, `--component`, `--user`, `--incomplete`, `--has-error`, `--duration-greater 3600`);
- `shinzo-otel sessions list` through the installed console script (the whole process: interpreter
  start-up and imports included), and its start-up alone (`shinzo-otel --help`);
- the replay of the 10 000-span session: `SessionStore.get_session` (read and build the timeline),
  that plus rendering the text replay (to a null console), and `shinzo-otel replay ID` end to end.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import median, table
from shinzo_otel._semconv import (
    ADMIN_COMPONENT,
    ERROR_TYPE,
    GEN_AI_TOOL_NAME,
    HOST_NAME,
    MCP_METHOD_NAME,
    SESSION_END_REASON,
    SESSION_ID,
    SESSION_SPAN_NAME,
    SESSION_START_SPAN_NAME,
    SESSION_TYPE,
    USER_NAME,
)
from shinzo_otel.replay import SessionFilter, SpanRecord
from shinzo_otel.replay.render import print_replay
from shinzo_otel.store import SessionStore, SqliteSpanExporter

_FULL = {"sessions": 100_000, "replay_spans": 10_000, "runs": 7, "script_runs": 3}
_QUICK = {"sessions": 500, "replay_spans": 200, "runs": 2, "script_runs": 1}
_T0 = 1_767_225_600 * 10**9  # 2026-01-01 00:00:00 UTC
_S = 10**9
_BATCH = 20_000
_SERVICES = tuple(f"svc-{n}" for n in range(5))
_COMPONENTS = ("mahavishnu", "oneiric", "crackerjack")
_USERS = ("les", "ann", "bo", "cy")
_TOOLS = ("search", "fetch", "summarize", "write")
_SCRIPT = Path(sys.executable).with_name("shinzo-otel")


def _span(
    trace: int, span: int, parent: int | None, name: str, start: int, end: int | None, **fields: Any
) -> SpanRecord:
    attributes = fields.pop("attributes", {})
    return SpanRecord(
        trace_id=f"{trace:032x}",
        span_id=f"{span:016x}",
        parent_span_id=None if parent is None else f"{parent:016x}",
        name=name,
        kind=fields.pop("kind", "INTERNAL"),
        start_ns=start,
        end_ns=end,
        status_code=fields.pop("status", "UNSET"),
        status_message=None,
        session_id=attributes[SESSION_ID],
        service_name=fields.pop("service"),
        attributes=attributes,
        events=[],
        links=[],
        resource={"service.name": fields.pop("service_name")},
        scope="shinzo_otel",
    )


def _session(number: int, requests: int = 2) -> Iterator[SpanRecord]:
    """The spans of session `number`: marker, `requests` tools/call spans, and (unless it crashed)
    the session span."""
    session_id = f"sess-{number:08d}"
    service = _SERVICES[number % len(_SERVICES)]
    start = _T0 + number * (30 * 86_400 * _S // 100_000)
    duration = (1 + (number * 7919) % 7200) * _S
    attributes: dict[str, Any] = {SESSION_ID: session_id, SESSION_TYPE: "mcp"}
    if number % 5 == 0:
        attributes.update(
            {
                SESSION_TYPE: "admin_shell",
                ADMIN_COMPONENT: _COMPONENTS[number % len(_COMPONENTS)],
                USER_NAME: _USERS[number % len(_USERS)],
                HOST_NAME: f"host-{number % 50}",
            }
        )
    common = {"service": service, "service_name": service}
    root = number * 1_000_000 + 1
    yield _span(
        number, root + 1, root, SESSION_START_SPAN_NAME, start, start, attributes=attributes, **common
    )
    for index in range(requests):
        tool = _TOOLS[(number + index) % len(_TOOLS)]
        at = start + (index + 1) * duration // (requests + 2)
        failed = number % 10 == 3 and index == requests - 1
        request = {SESSION_ID: session_id, MCP_METHOD_NAME: "tools/call", GEN_AI_TOOL_NAME: tool}
        if failed:
            request[ERROR_TYPE] = "tool_error"
        yield _span(
            number,
            root + 2 + index,
            root,
            f"tools/call {tool}",
            at,
            at + 5_000_000,
            kind="SERVER",
            status="ERROR" if failed else "UNSET",
            attributes=request,
            **common,
        )
    if number % 20 != 7:
        ended = {**attributes, SESSION_END_REASON: "connection_closed"}
        yield _span(
            number, root, None, SESSION_SPAN_NAME, start, start + duration, attributes=ended, **common
        )


def _write(path: Path, records: Iterator[SpanRecord]) -> int:
    exporter = SqliteSpanExporter(path)
    written = 0
    try:
        batch: list[SpanRecord] = []
        for record in records:
            batch.append(record)
            if len(batch) == _BATCH:
                _export(exporter, batch)
                written += len(batch)
                batch = []
        _export(exporter, batch)
        return written + len(batch)
    finally:
        exporter.shutdown()


def _export(exporter: SqliteSpanExporter, batch: list[SpanRecord]) -> None:
    if batch and exporter.export_records(batch).name != "SUCCESS":
        raise RuntimeError("the store refused a batch; see the log")


def _timed(action: Callable[[], object], runs: int) -> tuple[float, object]:
    """Median wall time of `runs` calls, in ms, and the last result."""
    times = []
    result: object = None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - started) * 1000)
    return median(times), result


def _script(*args: str, runs: int) -> float:
    """Median wall time of the console script, in ms (output discarded)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(_SCRIPT), *args], check=True, stdout=subprocess.DEVNULL, timeout=120)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


_LISTS = {
    "newest 50": SessionFilter(),
    "--type admin_shell": SessionFilter(session_type="admin_shell"),
    "--service svc-3": SessionFilter(service="svc-3"),
    "--component oneiric": SessionFilter(component="oneiric"),
    "--user ann": SessionFilter(user="ann"),
    "--incomplete": SessionFilter(status="active"),
    "--has-error": SessionFilter(has_error=True),
    "--duration-greater 3600": SessionFilter(min_duration_seconds=3600),
    "--type admin_shell --user les --limit 1000": SessionFilter(
        session_type="admin_shell", user="les", limit=1000
    ),
}


def run(quick: bool = False) -> dict[str, Any]:
    """Build a store of 100 000 sessions and one 10 000-span session, then time lists and the replay.

    Returns:
        `sizes`, `build` (seconds, spans written, spans/s), `list_ms` (filter -> median ms and rows),
        `list_script_ms`, `script_startup_ms`, `replay_ms` (`get_session`, with text rendering, and
        the console script), `max_list_ms`, `tables`, `notes`.
    """
    sizes = _QUICK if quick else _FULL
    runs, script_runs = sizes["runs"], sizes["script_runs"]
    with tempfile.TemporaryDirectory(prefix="shinzo-bench-store-") as tmp:
        path = Path(tmp) / "sessions.db"
        started = time.perf_counter()
        spans = _write(path, (span for number in range(sizes["sessions"]) for span in _session(number)))
        build_seconds = time.perf_counter() - started
        big = sizes["sessions"] + 1
        _write(path, _session(big, requests=sizes["replay_spans"] - 2))
        big_id = f"sess-{big:08d}"

        lists: dict[str, dict[str, Any]] = {}
        with SessionStore(path) as store:
            for label, filters in _LISTS.items():
                elapsed, result = _timed(lambda filters=filters: store.list_sessions(filters), runs)
                lists[label] = {"ms": round(elapsed, 2), "rows": len(result)}  # type: ignore[arg-type]
            get_ms, session = _timed(lambda: store.get_session(big_id), runs)

            def render() -> None:
                print_replay(store.get_session(big_id), Console(file=io.StringIO(), width=200))

            render_ms, _ = _timed(render, runs)
        timeline = len(session.timeline)  # type: ignore[attr-defined]
        startup_ms = _script("--help", runs=script_runs)
        list_script_ms = _script("sessions", "list", "--store", str(path), runs=script_runs)
        replay_script_ms = _script("replay", big_id, "--store", str(path), runs=script_runs)
        size_mib = path.stat().st_size / 2**20

    worst = max(entry["ms"] for entry in lists.values())
    return {
        "sizes": sizes,
        "build": {
            "seconds": round(build_seconds, 1),
            "spans": spans,
            "spans_per_second": round(spans / build_seconds),
        },
        "store_mib": round(size_mib, 1),
        "list_ms": lists,
        "max_list_ms": worst,
        "list_script_ms": round(list_script_ms),
        "script_startup_ms": round(startup_ms),
        "replay_ms": {
            "get_session": round(get_ms, 1),
            "get_session_and_render": round(render_ms, 1),
            "script": round(replay_script_ms),
            "timeline_entries": timeline,
        },
        "tables": [
            table(
                f"sessions list over {sizes['sessions']:,} sessions "
                f"(SessionStore.list_sessions, median of {runs})",
                ["filter", "ms", "rows"],
                [[label, entry["ms"], entry["rows"]] for label, entry in lists.items()],
            ),
            table(
                f"End to end through the console script (median of {script_runs}; wall time of the process)",
                ["command", "ms"],
                [
                    ["shinzo-otel --help (start-up and imports only)", round(startup_ms)],
                    ["shinzo-otel sessions list", round(list_script_ms)],
                    [
                        f"shinzo-otel replay (a {sizes['replay_spans']:,}-span session)",
                        round(replay_script_ms),
                    ],
                ],
            ),
            table(
                f"Replay of one session of {sizes['replay_spans']:,} spans (median of {runs})",
                ["step", "ms"],
                [
                    ["SessionStore.get_session (read + timeline)", round(get_ms, 1)],
                    ["get_session + text rendering", round(render_ms, 1)],
                ],
            ),
        ],
        "notes": [
            f"Store: {sizes['sessions']:,} sessions, {spans:,} spans, {size_mib:.0f} MiB, written in "
            f"{build_seconds:.0f} s through SqliteSpanExporter.export_records ({spans / build_seconds:,.0f} "
            "spans/s, batches of 20 000).",
            "The console-script figures include the interpreter start-up and the CLI's imports (the "
            "package's exports load lazily, so the mcp SDK is not loaded), shown alone by --help.",
        ],
    }
