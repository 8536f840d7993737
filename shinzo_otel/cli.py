"""The `shinzo-otel` command line: list, show, export, end, prune, replay and analyse recorded sessions,
and list and replay the requests that belong to no session.

    shinzo-otel --version
    shinzo-otel sessions list    [FILTERS] [--limit N] [--format table|json|csv] [--output FILE]
    shinzo-otel sessions show    SESSION_ID [--format table|json|csv] [--output FILE]
    shinzo-otel sessions export  [FILTERS] [--limit N] [--format json|csv] [--output FILE]
    shinzo-otel sessions end     SESSION_ID [--reason TEXT] [--store PATH]
    shinzo-otel sessions prune   --before DATE [--dry-run] [--store PATH]
    shinzo-otel replay           SESSION_ID [--format text|json] [--output FILE]
    shinzo-otel requests list    [--service S] [--method M] [--tool T] [--after D] [--before D]
                                 [--has-error] [--limit N] [--format table|json|csv] [--output FILE]
    shinzo-otel requests show    TRACE_ID [--format text|json] [--output FILE]
    shinzo-otel analytics        --metric M [--period daily|hourly] [FILTERS] [--format ...] [--output FILE]

FILTERS are those of seed 002's `list-sessions` (--type, --component, --user, --service, --after,
--before, --duration-greater, --incomplete, --has-error) plus --origin and --status; they are parsed
by `shinzo_otel.replay.query.SessionQuery`, the model `GET /api/sessions` parses its parameters
with too, so both accept the same values (dates: ISO 8601, UTC without an offset). Every reading
command takes `--source` (`shinzo_otel.replay.sources.SOURCE_SPEC_HELP`; default the embedded
store) or `--store PATH` (the same as `--source sqlite:PATH`); `sessions end` and `sessions prune`
change the embedded store and take `--store` only. Without `--format`, `--output` picks the format
from the file's suffix (`.json`, `.csv`), as seed 002's `--output sessions.csv` expects.

`sessions list` ends with a note on stderr (stdout stays clean JSON or CSV) when requests outside any
session started in its window (DESIGN.md "Sessions", level 6: stateless HTTP without a conversation
id, in-process 2026-07-28 calls), with the `requests list` command that shows them.

Failures the user can act on (unknown session, missing store, unreachable backend) print one line
`error: ...` on stderr and exit with status 1; bad arguments (an unknown source, a malformed date)
exit with status 2. Input a reader skips (a malformed file line) is reported as `warning: ...` on
stderr while the rest is read. A progress bar on stderr follows long reads when stderr is a terminal.

A new command is a decorated function: `@app.command()` (or `@sessions_app.command()`,
`@requests_app.command()`), with the option aliases below (`SourceOption`, `OutputOption`, ...) for
the usual flags; a command taking the session filters declares them (`TypeOption` ... `HasErrorOption`)
and a `typer.Context`, and `_session_filter(ctx)` reads them. User-facing help never cites the seeds
or notes of this repository.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shinzo_otel._version import version
from shinzo_otel.replay.analytics import check_options, run_analytics
from shinzo_otel.replay.model import Session
from shinzo_otel.replay.query import PruneQuery, RequestQuery, SessionQuery
from shinzo_otel.replay.render import (
    print_replay,
    print_report_table,
    print_requests_table,
    print_session_detail,
    print_sessions_table,
    print_trace,
    report_csv,
    report_json,
    requests_csv,
    requests_json,
    session_json,
    sessions_csv,
    sessions_json,
    summary_json,
    trace_json,
    write_sessions_json,
)
from shinzo_otel.replay.source import (
    ProgressCallback,
    ReplayError,
    RequestFilter,
    SessionFilter,
    SessionSource,
)
from shinzo_otel.replay.sources import SOURCE_SPEC_HELP, open_source
from shinzo_otel.store import SessionStore

_PIPE_WIDTH = 1000
"""Console width when stdout is not a terminal: nothing to fit, and wrapping would split ids."""
_FILE_WIDTH = 200
"""Console width of a table written to `--output`."""
_USAGE_ERROR = 2
"""Exit status of bad arguments, as click uses for its own usage errors."""
_COMMAND = "shinzo-otel"

app = typer.Typer(
    name=_COMMAND,
    help="Inspect, replay and analyse MCP sessions recorded by shinzo_otel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sessions_app = typer.Typer(help="List, show, export, end and prune recorded sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
requests_app = typer.Typer(
    help="List and replay requests that belong to no session (stateless HTTP, in-process calls).",
    no_args_is_help=True,
)
app.add_typer(requests_app, name="requests")


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"{_COMMAND} {version()}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."
        ),
    ] = False,
) -> None:
    """Inspect, replay and analyse MCP sessions recorded by shinzo_otel."""


class OutputFormat(str, Enum):
    """Output formats of `sessions list`, `sessions show`, `requests list` and `analytics`."""

    table = "table"
    json = "json"
    csv = "csv"


class ExportFormat(str, Enum):
    """Output formats of `sessions export`."""

    json = "json"
    csv = "csv"


class ReplayFormat(str, Enum):
    """Output formats of `replay` and `requests show`."""

    text = "text"
    json = "json"


class Status(str, Enum):
    """`sessions list --status` values, those of `shinzo_otel.replay.model.SessionStatus`."""

    active = "active"
    abandoned = "abandoned"
    ended = "ended"
    error = "error"


class Metric(Enum):
    """`analytics --metric` values, those of `shinzo_otel.replay.analytics.AnalyticsMetric` (a plain
    Enum: a str Enum member called `count` would shadow `str.count`)."""

    duration = "duration"
    count = "count"
    unique_users = "unique_users"
    peak_hours = "peak_hours"
    error_rate = "error_rate"
    top_tools = "top_tools"


class Period(Enum):
    """`analytics --period` values, those of `shinzo_otel.replay.analytics.AnalyticsPeriod`."""

    daily = "daily"
    hourly = "hourly"


_STORE_DEFAULT = "$SHINZO_STORE_PATH, else $XDG_DATA_HOME/shinzo-otel/sessions.db"
SourceOption = Annotated[
    str | None,
    typer.Option("--source", help=f"Where to read: {SOURCE_SPEC_HELP}."),
]
StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Embedded store file, the same as --source sqlite:PATH.",
        dir_okay=False,
        show_default=_STORE_DEFAULT,
    ),
]
WritableStoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store", help="Embedded store file to change.", dir_okay=False, show_default=_STORE_DEFAULT
    ),
]
_SUFFIX_HELP = "Without it, an --output file ending in .json or .csv gets that format."
FormatOption = Annotated[
    OutputFormat | None,
    typer.Option("--format", help=f"Output format. {_SUFFIX_HELP}", show_default="table"),
]
ReplayFormatOption = Annotated[
    ReplayFormat | None,
    typer.Option(
        "--format",
        help="Output format. Without it, an --output file ending in .json gets JSON.",
        show_default="text",
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write to this file instead of stdout.",
        dir_okay=False,
        show_default="stdout",
    ),
]
TypeOption = Annotated[
    str | None,
    typer.Option(
        "--type", help="Only sessions of this shinzo.session.type (mcp, manual, logical, admin_shell)."
    ),
]
OriginOption = Annotated[
    str | None,
    typer.Option(
        "--origin",
        help="Only sessions of this shinzo.session.origin: protocol, connection, stream, conversation, "
        "resolver, manual or admin_shell.",
    ),
]
ComponentOption = Annotated[
    str | None, typer.Option("--component", help="Only admin shell sessions of this component.")
]
UserOption = Annotated[str | None, typer.Option("--user", help="Only sessions whose user.name is this.")]
ServiceOption = Annotated[str | None, typer.Option("--service", help="Only those of this service.name.")]
AfterOption = Annotated[
    str | None,
    typer.Option(
        "--after", help="Only those started at or after this ISO 8601 date or time (UTC without an offset)."
    ),
]
BeforeOption = Annotated[
    str | None,
    typer.Option(
        "--before", help="Only those started before this ISO 8601 date or time (UTC without an offset)."
    ),
]
DurationOption = Annotated[
    float | None,
    typer.Option(
        "--duration-greater",
        min=0,
        help="Only sessions longer than this many seconds; a session without an end counts until now.",
    ),
]
StatusOption = Annotated[
    Status | None,
    typer.Option(
        "--status",
        help="Only sessions with this status: active, abandoned (no end, silent for longer than its "
        "idle timeout: its process most likely died), ended or error.",
    ),
]
IncompleteOption = Annotated[
    bool, typer.Option("--incomplete", help="Only sessions without a recorded end (active or abandoned).")
]
HasErrorOption = Annotated[
    bool, typer.Option("--has-error", help="Only sessions with a failed request or a failed session span.")
]


def _fail(message: object, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


_Query = TypeVar("_Query", bound=BaseModel)


def _query(model: type[_Query], **options: Any) -> _Query:
    """Validate options with their query model; a bad value is a usage error naming the option."""
    try:
        return model.model_validate(options)
    except ValidationError as error:
        first = error.errors()[0]
        option = "--" + "-".join(str(part) for part in first["loc"]).replace("_", "-")
        _fail(f"{option}: {first['input']!r}: {first['msg']}", _USAGE_ERROR)


_SESSION_OPTIONS = (
    "origin",
    "component",
    "user",
    "service",
    "after",
    "before",
    "duration_greater",
    "incomplete",
    "has_error",
)
"""Session filter options named as their `SessionQuery` field (`--type` is `session_type`, `--status`
an enum: both are read apart)."""


def _session_filter(ctx: typer.Context) -> SessionFilter:
    """The filter of the session options `sessions list`, `sessions export` and `analytics` share
    (`SessionQuery`, the model `GET /api/sessions` uses), read from the command's parsed options
    (`ctx.params`), so that each command only declares them. A command without `--limit` reads every
    matching session."""
    params = ctx.params
    status: Status | None = params["status"]
    query = _query(
        SessionQuery,
        limit=params.get("limit"),
        type=params["session_type"],
        status=None if status is None else status.value,
        **{name: params[name] for name in _SESSION_OPTIONS},
    )
    return query.to_filter()


@dataclass
class _Reading:
    """An open source and the progress callback of the command's bar."""

    source: SessionSource
    progress: ProgressCallback


def _spec(source: str | None, store: Path | None) -> str | None:
    if source is not None and store is not None:
        _fail("give --source or --store, not both", _USAGE_ERROR)
    return f"sqlite:{store}" if store is not None else source


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def _reading(source: str | None, store: Path | None) -> Iterator[_Reading]:
    """Open the source, show progress and warnings on stderr, turn reader errors into `_fail`."""
    spec = _spec(source, store)
    stderr = _stderr()
    columns = (TextColumn("reading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True, disable=not stderr.is_terminal) as bar:
        task = bar.add_task("reading", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def warn(message: str) -> None:
            stderr.print(f"warning: {message}", markup=False, soft_wrap=True)

        try:
            opened = open_source(spec, progress=progress, warn=warn)
        except ValueError as error:
            _fail(error, _USAGE_ERROR)
        except ReplayError as error:
            _fail(error)
        try:
            yield _Reading(opened, progress)
        except ReplayError as error:
            _fail(error)
        finally:
            opened.close()


@contextmanager
def _writable_store(store: Path | None) -> Iterator[SessionStore]:
    """Open the embedded store for a command that changes it; reader errors become `_fail`."""
    try:
        with SessionStore(store) as opened:
            yield opened
    except ReplayError as error:
        _fail(error)


def _stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH
    return console


def _format(chosen: OutputFormat | None, output: Path | None) -> OutputFormat:
    if chosen is not None:
        return chosen
    suffix = "" if output is None else output.suffix.lower()
    return {".json": OutputFormat.json, ".csv": OutputFormat.csv}.get(suffix, OutputFormat.table)


def _replay_format(chosen: ReplayFormat | None, output: Path | None) -> ReplayFormat:
    if chosen is not None:
        return chosen
    return ReplayFormat.json if output is not None and output.suffix.lower() == ".json" else ReplayFormat.text


def _emit(
    output: Path | None, text: str | None = None, table: Callable[[Console], None] | None = None
) -> None:
    """Write `text`, or what `table` prints on a console, to stdout or to `output`."""
    if output is None:
        if text is not None:
            typer.echo(text, nl=not text.endswith("\n"))
        elif table is not None:
            table(_stdout_console())
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as handle:
            if text is not None:
                handle.write(text if text.endswith("\n") else f"{text}\n")
            elif table is not None:
                table(Console(file=handle, width=_FILE_WIDTH, color_system=None, highlight=False))
    except OSError as error:
        _fail(f"cannot write {output}: {error.strerror or error}")


_Shown = TypeVar("_Shown")


def _emit_as(
    shown: _Shown,
    chosen: OutputFormat | None,
    output: Path | None,
    *,
    as_json: Callable[[_Shown], str],
    as_csv: Callable[[_Shown], str],
    as_table: Callable[[_Shown, Console], None],
) -> None:
    """Write `shown` to stdout or `output` in the chosen format, else the one `output`'s suffix gives
    (`_format`), else as a table."""
    output_format = _format(chosen, output)
    if output_format is OutputFormat.json:
        _emit(output, as_json(shown))
    elif output_format is OutputFormat.csv:
        _emit(output, as_csv(shown))
    else:
        _emit(output, table=lambda console: as_table(shown, console))


def _emit_replay(
    shown: _Shown,
    chosen: ReplayFormat | None,
    output: Path | None,
    *,
    as_json: Callable[[_Shown], str],
    as_text: Callable[[_Shown, Console], None],
) -> None:
    """Write a replay to stdout or `output` as JSON or text (`_replay_format`)."""
    if _replay_format(chosen, output) is ReplayFormat.json:
        _emit(output, as_json(shown))
    else:
        _emit(output, table=lambda console: as_text(shown, console))


def _requests_command(window: RequestFilter, source: str | None, store: Path | None) -> str:
    """The `requests list` command line that shows the requests of `window`, read where this
    command read."""
    words = [_COMMAND, "requests", "list"]
    for option, value in (
        ("--service", window.service),
        ("--after", window.started_after),
        ("--before", window.started_before),
        ("--store", store),
        ("--source", source),
    ):
        if value is not None:
            words += [option, value.isoformat() if isinstance(value, datetime) else str(value)]
    return shlex.join(words)


@sessions_app.command("list")
def list_sessions(
    ctx: typer.Context,
    session_type: TypeOption = None,
    origin: OriginOption = None,
    component: ComponentOption = None,
    user: UserOption = None,
    service: ServiceOption = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    duration_greater: DurationOption = None,
    status: StatusOption = None,
    incomplete: IncompleteOption = False,
    has_error: HasErrorOption = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many sessions, newest first.")] = 50,
    output_format: FormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """List recorded sessions, newest first. Admin shell sessions add component, user and host columns.

    Requests that belong to no session are not listed here; a note on stderr counts those that
    started in the same window (service, --after, --before) and gives the `requests list` command
    that shows them.
    """
    filters = _session_filter(ctx)
    window = filters.request_window()
    with _reading(source, store) as reading:
        summaries = reading.source.list_sessions(filters)
        outside = reading.source.count_requests(window)
    _emit_as(
        summaries,
        output_format,
        output,
        as_json=sessions_json,
        as_csv=sessions_csv,
        as_table=print_sessions_table,
    )
    if outside:
        noun = "request" if outside == 1 else "requests"
        command = _requests_command(window, source, store)
        typer.echo(f"{outside} {noun} outside any session in this window: {command}", err=True)


@sessions_app.command("show")
def show_session(
    session_id: Annotated[str, typer.Argument(help="The session's session.id.")],
    output_format: FormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Show one session's metadata: status, origin, start, end, last activity, duration, counts and
    attributes."""
    with _reading(source, store) as reading:
        summary = reading.source.get_session(session_id).summary
    _emit_as(
        summary,
        output_format,
        output,
        as_json=summary_json,
        as_csv=lambda one: sessions_csv([one]),
        as_table=print_session_detail,
    )


_EXPORT_FORMAT_HELP = (
    "json: whole sessions with their timelines; csv: one summary row per session. Without it, an "
    "--output file ending in .csv gets CSV."
)


@sessions_app.command("export")
def export_sessions(
    ctx: typer.Context,
    session_type: TypeOption = None,
    origin: OriginOption = None,
    component: ComponentOption = None,
    user: UserOption = None,
    service: ServiceOption = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    duration_greater: DurationOption = None,
    status: StatusOption = None,
    incomplete: IncompleteOption = False,
    has_error: HasErrorOption = False,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Export at most this many sessions, newest first.", show_default="all"),
    ] = None,
    output_format: Annotated[
        ExportFormat | None, typer.Option("--format", help=_EXPORT_FORMAT_HELP, show_default="json")
    ] = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Export every matching session: JSON holds each session's summary and timeline (as `replay
    --format json`), CSV one summary row per session (as `sessions list --format csv`)."""
    filters = _session_filter(ctx)
    csv_wanted = output_format is ExportFormat.csv or (
        output_format is None and output is not None and output.suffix.lower() == ".csv"
    )
    with _reading(source, store) as reading:
        summaries = reading.source.list_sessions(filters)
        if csv_wanted:
            _emit(output, sessions_csv(summaries))
            return

        def sessions() -> Iterator[Session]:
            for done, summary in enumerate(summaries, start=1):
                yield reading.source.get_session(summary.session_id)
                reading.progress(done, len(summaries))

        if output is None:
            write_sessions_json(sessions(), sys.stdout)
            return
        try:
            with output.open("w", encoding="utf-8") as handle:
                write_sessions_json(sessions(), handle)
        except OSError as error:
            _fail(f"cannot write {output}: {error.strerror or error}")


def _utc(ns: int | None) -> str:
    if ns is None:
        return "?"
    return datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@sessions_app.command("end")
def end_session(
    session_id: Annotated[str, typer.Argument(help="The session's session.id.")],
    reason: Annotated[str, typer.Option(help="End reason to record.")] = "manual",
    store: WritableStoreOption = None,
) -> None:
    """Mark a session that has no recorded end (an abandoned or stuck one) as ended now.

    This changes the embedded store only: the session gets status "ended", end time now and the given
    end reason. Tempo, Jaeger and OTLP files keep spans exactly as the collector sent them, so there
    the session stays without an end until its mcp.session span arrives. If that span reaches the
    embedded store later, its end replaces this one. A session that already has an end is left as
    it is.
    """
    with _writable_store(store) as session_store:
        ended = session_store.end_session(session_id, reason=reason)
        summary = session_store.get_summary(session_id)
    if ended:
        typer.echo(f"ended session {session_id} at {_utc(summary.end_ns)} ({summary.duration_seconds:.1f} s)")
    else:
        typer.echo(f"session {session_id} already ended at {_utc(summary.end_ns)}; nothing changed")


@sessions_app.command("prune")
def prune_sessions(
    before: Annotated[
        str,
        typer.Option(
            "--before", help="Remove what started before this ISO 8601 date or time (UTC without an offset)."
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be removed.")] = False,
    store: WritableStoreOption = None,
) -> None:
    """Delete old data from the embedded store: sessions that ended (status ended or error) and started
    before the date, with all their spans, and requests outside any session started before it, with
    the rest of their traces. Sessions without a recorded end (active, abandoned) are kept: end them
    first with `sessions end`. The file keeps its size; SQLite reuses the freed pages."""
    cutoff = _query(PruneQuery, before=before)
    with _writable_store(store) as session_store:
        removed = session_store.prune(cutoff.before_ns, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb} {removed.sessions} ended session(s) and {removed.requests} request(s) outside any "
        f"session ({removed.spans} span(s)) started before {_utc(cutoff.before_ns)}"
    )


@app.command()
def replay(
    session_id: Annotated[str, typer.Argument(help="The session's session.id.")],
    output_format: ReplayFormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Print one session chronologically: every message with its offset, duration and outcome."""
    with _reading(source, store) as reading:
        session = reading.source.get_session(session_id)
    _emit_replay(session, output_format, output, as_json=session_json, as_text=print_replay)


@requests_app.command("list")
def list_requests(
    service: ServiceOption = None,
    method: Annotated[
        str | None, typer.Option("--method", help="Only requests of this mcp.method.name (tools/call, ...).")
    ] = None,
    tool: Annotated[
        str | None, typer.Option("--tool", help="Only calls of this tool (gen_ai.tool.name).")
    ] = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    has_error: Annotated[bool, typer.Option("--has-error", help="Only failed requests.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many requests, newest first.")] = 50,
    output_format: FormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """List requests that belong to no session, newest first: each is its own trace (`requests show
    TRACE_ID` replays it). Such requests come from stateless HTTP servers without a conversation id
    and from in-process calls of the 2026-07-28 protocol."""
    filters = _query(
        RequestQuery,
        limit=limit,
        service=service,
        method=method,
        tool=tool,
        after=after,
        before=before,
        has_error=has_error,
    ).to_filter()
    with _reading(source, store) as reading:
        requests = reading.source.list_requests(filters)
    _emit_as(
        requests,
        output_format,
        output,
        as_json=requests_json,
        as_csv=requests_csv,
        as_table=print_requests_table,
    )


@requests_app.command("show")
def show_request(
    trace_id: Annotated[
        str, typer.Argument(help="The request's trace id (32 hex digits, from requests list).")
    ],
    output_format: ReplayFormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Print one trace chronologically, as `replay` prints a session: the requests it holds, then every
    span and event with its offset, duration and outcome."""
    with _reading(source, store) as reading:
        trace = reading.source.get_trace(trace_id)
    _emit_replay(trace, output_format, output, as_json=trace_json, as_text=print_trace)


@app.command()
def analytics(
    ctx: typer.Context,
    metric: Annotated[Metric, typer.Option("--metric", help="What to compute.")],
    period: Annotated[
        Period | None,
        typer.Option("--period", help="One row per UTC day or hour (not for peak_hours, top_tools)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many tools top_tools shows.")] = 10,
    session_type: TypeOption = None,
    origin: OriginOption = None,
    component: ComponentOption = None,
    user: UserOption = None,
    service: ServiceOption = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    duration_greater: DurationOption = None,
    status: StatusOption = None,
    incomplete: IncompleteOption = False,
    has_error: HasErrorOption = False,
    output_format: FormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Session analytics over every matching session: average duration, counts, unique users, peak
    hours (UTC), error rates, most used tools."""
    filters = _session_filter(ctx)
    try:
        check_options(metric.value, None if period is None else period.value, top)
    except ValueError as error:
        _fail(error, _USAGE_ERROR)
    # The source aggregates itself where its backend can (Tempo's TraceQL metrics).
    with _reading(source, store) as reading:
        report = run_analytics(
            reading.source, filters, metric.value, None if period is None else period.value, top=top
        )
    _emit_as(
        report, output_format, output, as_json=report_json, as_csv=report_csv, as_table=print_report_table
    )


class ServeTransport(str, Enum):
    streamable_http = "streamable-http"
    stdio = "stdio"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8678,
    transport: Annotated[
        ServeTransport, typer.Option(help="MCP transport.")
    ] = ServeTransport.streamable_http,
    store: Annotated[
        Path | None, typer.Option(help="Embedded store file (default $SHINZO_STORE_PATH).")
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="Open admin sessions file (default next to the store).")
    ] = None,
    exporter_endpoint: Annotated[
        str | None, typer.Option(help="OTLP endpoint (default OTEL_EXPORTER_OTLP_ENDPOINT; none: the store).")
    ] = None,
    exporter_protocol: Annotated[str | None, typer.Option(help="grpc or http/protobuf.")] = None,
    issuer: Annotated[str, typer.Option(help="Required JWT `iss` when a secret is set.")] = "session-buddy",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            "--allow-unauthenticated",
            help="Listen on a non-loopback --host without SHINZO_ADMIN_SECRET: anyone who can reach it "
            "may then read the sessions (user names, hosts, directories) and report sessions.",
        ),
    ] = False,
) -> None:
    """Run the admin shell tracking server: MCP tools track_session_start / track_session_end at
    /mcp, GET /health and GET /api/sessions, and say on stderr where it listens.
    JWT auth (tools and /api/sessions) is on when SHINZO_ADMIN_SECRET (or SESSION_BUDDY_SECRET) is
    set; secrets are read from the environment only. Without one it listens on loopback only, unless
    --allow-unauthenticated. --port 0 picks a free port."""
    import logging

    from shinzo_otel.admin.server import run_server  # the mcp SDK loads only for this command

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_server(
            host,
            port,
            transport=transport.value,
            log_level=log_level,
            allow_unauthenticated=allow_unauthenticated,
            store_path=store,
            state_path=state,
            exporter_endpoint=exporter_endpoint,
            exporter_protocol=exporter_protocol,
            issuer=issuer,
        )
    except KeyboardInterrupt:
        pass
    except ValueError as error:  # a bad exporter setting, or no secret on a public address
        _fail(error, _USAGE_ERROR)
    except OSError as error:  # the address cannot be listened on
        _fail(error)


def main() -> None:
    """Console script entry point (`shinzo-otel`)."""
    app()
