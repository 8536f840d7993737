"""Turn the session model into what the CLI prints: rich tables and timelines, JSON and CSV.

JSON is the pydantic serialisation of the model (`SessionSummary`, `Session`, `RequestSummary`,
`TraceReplay`, `AnalyticsReport`), so it parses back into the same objects with
`model_validate_json`; CSV writes one row per session (`CSV_COLUMNS`) or request
(`REQUEST_CSV_COLUMNS`) with every field of the summary, nested values as JSON text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO

from pydantic import TypeAdapter
from rich.console import Console
from rich.segment import Segment, Segments
from rich.style import Style
from rich.table import Table
from rich.text import Text

from shinzo_otel.replay.analytics import AnalyticsReport
from shinzo_otel.replay.model import RequestSummary, Session, SessionSummary, TimelineEntry, TraceReplay

_SUMMARIES: TypeAdapter[list[SessionSummary]] = TypeAdapter(list[SessionSummary])
_REQUESTS: TypeAdapter[list[RequestSummary]] = TypeAdapter(list[RequestSummary])
CSV_COLUMNS = (
    "session_id",
    "type",
    "origin",
    "service",
    "component",
    "user",
    "host",
    "conversation_id",
    "start",
    "end",
    "last_activity",
    "duration_seconds",
    "status",
    "end_reason",
    "spans",
    "requests",
    "tool_calls",
    "errors",
    "start_ns",
    "end_ns",
    "last_activity_ns",
    "tools",
    "attributes",
)
"""Columns of `sessions_csv`: the `SessionSummary` fields (times ISO 8601 UTC and, exactly, in ns),
its counts flattened, `tools` and `attributes` as JSON objects; empty cells for None."""
REQUEST_CSV_COLUMNS = (
    "trace_id",
    "span_id",
    "name",
    "method",
    "target",
    "service",
    "start",
    "duration_seconds",
    "status",
    "error_type",
    "start_ns",
    "end_ns",
    "attributes",
)
"""Columns of `requests_csv`: the `RequestSummary` fields (start ISO 8601 UTC and, exactly, in ns),
`attributes` as a JSON object; empty cells for None."""
_STATUS_STYLES = {"active": "yellow", "abandoned": "magenta", "ended": "green", "error": "bold red"}
_DETAIL_INDENT = " " * (11 + 13 + 7 + 2)
"""Details (errors, arguments, results) line up under the entry name, after the offset, duration and
status columns and their gap (see `_entry_text`)."""


_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
"""C0 and C1 control characters and DEL, escaped: recorded data must not drive the terminal."""


def _printable(value: str) -> str:
    return value.translate(_ESCAPES)


def _format_time(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def print_sessions_table(summaries: Sequence[SessionSummary], console: Console) -> None:
    """Print one table row per session: id, type, origin, service, start (UTC), duration, status,
    request and error counts. When a session has a component, user or host (admin shell sessions,
    seed 002 `list-sessions --type admin_shell`), Component, User and Host columns follow the origin.
    Sessions without a recorded end show "—" as duration; when the list holds one, a "Last activity"
    column follows the duration (what `abandoned` is judged by)."""
    admin = any(summary.component or summary.user or summary.host for summary in summaries)
    open_ended = any(summary.end_ns is None for summary in summaries)
    table = Table(title=None if summaries else "no sessions")
    table.add_column("Session ID", no_wrap=True)
    table.add_column("Type")
    table.add_column("Origin")
    if admin:
        for title in ("Component", "User", "Host"):
            table.add_column(title)
    table.add_column("Service")
    table.add_column("Started (UTC)", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    if open_ended:
        table.add_column("Last activity (UTC)", no_wrap=True)
    table.add_column("Status")
    table.add_column("Requests", justify="right")
    table.add_column("Errors", justify="right")
    for summary in summaries:
        admin_cells = [_text(summary.component), _text(summary.user), _text(summary.host)] if admin else []
        activity_cells = [_format_time(summary.last_activity)] if open_ended else []
        table.add_row(
            Text(_printable(summary.session_id)),
            _text(summary.type),
            _text(summary.origin),
            *admin_cells,
            _text(summary.service),
            _format_time(summary.start),
            _format_duration(summary.duration_seconds),
            *activity_cells,
            _status(summary),
            str(summary.counts.requests),
            _count(summary.counts.errors),
        )
    console.print(table)


def _status(summary: SessionSummary) -> Text:
    return Text(summary.status, style=_STATUS_STYLES[summary.status])


def _count(errors: int) -> Text:
    return Text(str(errors), style="red" if errors else "")


def _text(value: str | None) -> Text:
    return Text(_printable(value or "—"))


def print_session_detail(summary: SessionSummary, console: Console) -> None:
    """Print one session's metadata as a two-column table (seed 002 `show-session`): id, type,
    origin, conversation id, service, component, user, host, status and end reason, start, end and
    last activity (UTC), duration in seconds and in words, the counts, the calls per tool, and every
    session attribute."""
    table = Table(title=Text(f"Session {_printable(summary.session_id)}"), show_header=False)
    table.add_column("Field", style="bold", no_wrap=True)
    table.add_column("Value")
    duration = summary.duration_seconds
    counts = summary.counts
    status = _status(summary)
    if summary.end_reason:
        status.append(f" ({_printable(summary.end_reason)})", style="")
    rows: list[tuple[str, Text | str]] = [
        ("Type", _text(summary.type)),
        ("Origin", _text(summary.origin)),
        ("Conversation", _text(summary.conversation_id)),
        ("Service", _text(summary.service)),
        ("Component", _text(summary.component)),
        ("User", _text(summary.user)),
        ("Host", _text(summary.host)),
        ("Status", status),
        ("Start time", f"{_format_time(summary.start)} UTC"),
        ("End time", "—" if summary.end is None else f"{_format_time(summary.end)} UTC"),
        ("Last activity", f"{_format_time(summary.last_activity)} UTC"),
        (
            "Duration",
            "— (no end recorded)"
            if duration is None
            else f"{duration:.3f} seconds ({_format_duration(duration)})",
        ),
        ("Spans", str(counts.spans)),
        ("Requests", str(counts.requests)),
        ("Tool calls", str(counts.tool_calls)),
        ("Errors", _count(counts.errors)),
        ("Tools", _text(", ".join(f"{tool} ×{n}" for tool, n in sorted(counts.tools.items())) or None)),
    ]
    rows += [(f"  {_printable(key)}", _text(str(value))) for key, value in sorted(summary.attributes.items())]
    for field, value in rows:
        table.add_row(field, value)
    console.print(table)


def sessions_json(summaries: Sequence[SessionSummary]) -> str:
    """The summaries as a JSON array (`SessionSummary` fields plus its computed fields)."""
    return _SUMMARIES.dump_json(list(summaries), indent=2).decode()


def summary_json(summary: SessionSummary) -> str:
    """One summary as a JSON object (seed 002: `show-session ID --format json | jq .duration_seconds`)."""
    return summary.model_dump_json(indent=2)


def sessions_csv(summaries: Iterable[SessionSummary]) -> str:
    """The summaries as CSV (RFC 4180 quoting, "\\n" line ends) with a header row of `CSV_COLUMNS`."""
    rows = []
    for summary in summaries:
        data = summary.model_dump(mode="json")
        data.update(data.pop("counts"))
        data.update(tools=json.dumps(data["tools"]), attributes=json.dumps(data["attributes"]))
        rows.append(data)
    return _csv(CSV_COLUMNS, rows)


def print_requests_table(requests: Sequence[RequestSummary], console: Console) -> None:
    """Print one table row per request outside any session: trace id (what `requests show` takes),
    start (UTC), duration, method, target (tool or prompt), service and outcome (`ok`, or `ERROR`
    with the `error.type`)."""
    table = Table(title=None if requests else "no requests outside sessions")
    table.add_column("Trace ID", no_wrap=True)
    table.add_column("Started (UTC)", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    table.add_column("Method")
    table.add_column("Target")
    table.add_column("Service")
    table.add_column("Outcome")
    for request in requests:
        outcome = (
            Text(f"ERROR {_printable(request.error_type or '')}".rstrip(), style=_FAILED)
            if request.has_error
            else Text("ok", style=_OK)
        )
        table.add_row(
            request.trace_id,
            _format_time(request.start),
            _format_duration(request.duration_seconds),
            _text(request.method),
            _text(request.target),
            _text(request.service),
            outcome,
        )
    console.print(table)


def requests_json(requests: Sequence[RequestSummary]) -> str:
    """The requests as a JSON array (`RequestSummary` fields plus its computed fields)."""
    return _REQUESTS.dump_json(list(requests), indent=2).decode()


def requests_csv(requests: Iterable[RequestSummary]) -> str:
    """The requests as CSV (RFC 4180 quoting, "\\n" line ends) with a header of `REQUEST_CSV_COLUMNS`."""
    rows = []
    for request in requests:
        data = request.model_dump(mode="json")
        data["attributes"] = json.dumps(data["attributes"])
        rows.append(data)
    return _csv(REQUEST_CSV_COLUMNS, rows)


def _csv(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[column] is None else row[column] for column in columns])
    return buffer.getvalue()


def write_sessions_json(sessions: Iterable[Session], out: IO[str]) -> int:
    """Write sessions as one JSON array of `{"summary": ..., "timeline": [...]}` objects (the
    `replay --format json` shape), one session at a time so that a long export streams. Returns how
    many sessions were written."""
    count = 0
    out.write("[")
    for count, session in enumerate(sessions, start=1):
        out.write(",\n" if count > 1 else "\n")
        out.write(session.model_dump_json())
    out.write("\n]\n")
    return count


def _cell(column: str, value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and column.endswith("_rate"):
        return f"{value:.1%}"
    if isinstance(value, float) and column.endswith("_seconds"):
        return _format_duration(value)
    return _printable(str(value))


def print_report_table(report: AnalyticsReport, console: Console) -> None:
    """Print an analytics report as a table: rates as percentages, seconds as durations."""
    period = f", {report.period}" if report.period else ""
    table = Table(title=f"{report.metric}{period} over {report.sessions} sessions")
    for column in report.columns:
        table.add_column(column, justify="left" if column in ("period", "hour_utc", "tool") else "right")
    for row in report.rows:
        table.add_row(*(_cell(column, row[column]) for column in report.columns))
    console.print(table)


def report_json(report: AnalyticsReport) -> str:
    """The report as a JSON object: metric, period, sessions, columns, rows (numbers unformatted)."""
    return report.model_dump_json(indent=2)


def report_csv(report: AnalyticsReport) -> str:
    """The report's rows as CSV with a header of its columns; numbers unformatted, None empty."""
    return _csv(report.columns, report.rows)


_OFFSET = Style(color="cyan")
_DIM = Style(dim=True)
_OK = Style(color="green")
_FAILED = Style(color="red", bold=True)
_EVENT = Style(color="magenta")
_EVENT_FAILED = Style(color="red")
_NAME = Style(bold=True)
_NEWLINE = Segment.line()


def _entry_segments(entry: TimelineEntry) -> Iterator[Segment]:
    failed = entry.status == "ERROR"
    yield Segment(f"{entry.offset_seconds:+10.3f}s", _OFFSET)
    yield Segment(" " * 13 if entry.duration_ms is None else f" {entry.duration_ms:9.1f} ms", _DIM)
    if entry.entry_type == "event":
        yield Segment("  event", _EVENT_FAILED if failed else _EVENT)
        yield Segment("  " * entry.depth + "  • ")
    else:
        yield Segment("  ERROR" if failed else "     ok", _FAILED if failed else _OK)
        yield Segment("  " * entry.depth + "  ")
    yield Segment(_printable(entry.name), _NAME)
    if entry.tool_name and entry.tool_name not in entry.name:
        yield Segment(f" [{_printable(entry.tool_name)}]")
    if failed or entry.error_type:
        error = ": ".join(part for part in (entry.error_type, entry.error_message) if part)
        yield Segment(f"\n{_DETAIL_INDENT}✗ {_printable(error)}", _EVENT_FAILED)
    for label, value in (("arguments", entry.arguments), ("result", entry.result)):
        if value is not None:
            yield Segment(f"\n{_DETAIL_INDENT}{label}: ", _DIM)
            yield Segment(_printable(value))
    yield _NEWLINE


def print_replay(session: Session, console: Console) -> None:
    """Print a session chronologically: a header with the summary, then one line per timeline entry
    with its offset from session start, duration, status and name (span names are
    `{mcp.method.name} {target}`), followed by error details and the arguments and result when they
    were collected. Long lines are left to the terminal to wrap, so piped output keeps JSON intact;
    control characters in recorded data are printed escaped (`\\x1b`), never sent to the terminal."""
    summary = session.summary
    header = Text("Session ", style="bold")
    header.append(_printable(summary.session_id), style="bold cyan")
    header.append(f"  type {_printable(summary.type or '—')}  service {_printable(summary.service or '—')}")
    if summary.origin:
        header.append(f"  origin {_printable(summary.origin)}")
    header.append(f"\nstarted {_format_time(summary.start)} UTC  ")
    if summary.end_ns is None:
        header.append(
            f"no end recorded, last activity {_format_time(summary.last_activity)} UTC", style="yellow"
        )
    else:
        header.append(
            f"ended {_format_time(summary.end)} UTC  duration {_format_duration(summary.duration_seconds)}"
        )
    header.append("  status ")
    header.append(summary.status, style=_STATUS_STYLES[summary.status])
    if summary.end_reason:
        header.append(f" ({_printable(summary.end_reason)})")
    counts = summary.counts
    header.append(f"\nrequests {counts.requests}  tool calls {counts.tool_calls}  errors {counts.errors}\n")
    console.print(header, soft_wrap=True)
    _print_timeline(session.timeline, console)


def print_trace(trace: TraceReplay, console: Console) -> None:
    """Print a trace chronologically, as `print_replay` prints a session: a header with the trace id
    and one line per request outside any session it holds (start, duration, outcome), then its
    timeline, offsets from the trace's earliest span."""
    header = Text("Trace ", style="bold")
    header.append(trace.trace_id, style="bold cyan")
    header.append(f"  {len(trace.requests)} request(s) outside any session\n")
    for request in trace.requests:
        header.append(f"{_printable(request.name)}  service {_printable(request.service or '—')}  ")
        header.append(f"started {_format_time(request.start)} UTC  ")
        header.append(f"duration {_format_duration(request.duration_seconds)}  ")
        if request.has_error:
            header.append(f"ERROR {_printable(request.error_type or '')}".rstrip(), style=_FAILED)
        else:
            header.append("ok", style=_OK)
        header.append("\n")
    console.print(header, soft_wrap=True)
    _print_timeline(trace.timeline, console)


def _print_timeline(timeline: Sequence[TimelineEntry], console: Console) -> None:
    # Pre-styled segments, not Text: rich's Text layout costs about 150 µs per entry, too slow for
    # sessions of 10 000 spans (the replay budget is 1 s).
    segments = [segment for entry in timeline for segment in _entry_segments(entry)]
    console.print(Segments(segments), soft_wrap=True, end="")


def session_json(session: Session) -> str:
    """The session as a JSON object: {"summary": {...}, "timeline": [...]}."""
    return session.model_dump_json(indent=2)


def trace_json(trace: TraceReplay) -> str:
    """The trace as a JSON object: {"trace_id": ..., "requests": [...], "timeline": [...]}."""
    return trace.model_dump_json(indent=2)
