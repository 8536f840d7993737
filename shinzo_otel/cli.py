"""The `shinzo-otel` command line: list, show, export, end, replay and analyse recorded sessions.

    shinzo-otel sessions list    [FILTERS] [--limit N] [--format table|json|csv] [--output FILE]
    shinzo-otel sessions show    SESSION_ID [--format table|json|csv] [--output FILE]
    shinzo-otel sessions export  [FILTERS] [--limit N] [--format json|csv] [--output FILE]
    shinzo-otel sessions end     SESSION_ID [--reason TEXT]
    shinzo-otel replay           SESSION_ID [--format text|json] [--output FILE]
    shinzo-otel analytics        --metric M [--period daily|hourly] [FILTERS] [--format ...] [--output FILE]

FILTERS are those of seed 002's `list-sessions`: --type, --component, --user, --service, --after,
--before, --duration-greater, --incomplete, --has-error (see `SessionFilter`). Every reading command
takes `--source` (`shinzo_otel.replay.sources.SOURCE_SPEC_HELP`; default the embedded store) or
`--store PATH` (the same as `--source sqlite:PATH`). Without `--format`, `--output` picks the format
from the file's suffix (`.json`, `.csv`), as seed 002's `--output sessions.csv` expects.

Failures the user can act on (unknown session, missing store, unreachable backend) print one line
`error: ...` on stderr and exit with status 1; bad arguments (an unknown source, a malformed date)
exit with status 2. Input a reader skips (a malformed file line) is reported as `warning: ...` on
stderr while the rest is read. A progress bar on stderr follows long reads when stderr is a terminal.

A new command is a decorated function: `@app.command()` (or `@sessions_app.command()`), with the
option aliases below (`SourceOption`, `OutputOption`, ...) for the usual flags.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shinzo_otel.replay.analytics import analyze
from shinzo_otel.replay.model import Session, SessionSummary
from shinzo_otel.replay.render import (
    print_replay,
    print_report_table,
    print_session_detail,
    print_sessions_table,
    report_csv,
    report_json,
    session_json,
    sessions_csv,
    sessions_json,
    summary_json,
    write_sessions_json,
)
from shinzo_otel.replay.source import ProgressCallback, ReplayError, SessionFilter, SessionSource
from shinzo_otel.replay.sources import SOURCE_SPEC_HELP, open_source
from shinzo_otel.store import SessionStore

_PIPE_WIDTH = 1000
"""Console width when stdout is not a terminal: nothing to fit, and wrapping would split ids."""
_FILE_WIDTH = 200
"""Console width of a table written to `--output`."""
_USAGE_ERROR = 2
"""Exit status of bad arguments, as click uses for its own usage errors."""

app = typer.Typer(
    name="shinzo-otel",
    help="Inspect, replay and analyse MCP sessions recorded by shinzo_otel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sessions_app = typer.Typer(help="List, show, export and end recorded sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")


class OutputFormat(str, Enum):
    """Output formats of `sessions list`, `sessions show` and `analytics`."""

    table = "table"
    json = "json"
    csv = "csv"


class ExportFormat(str, Enum):
    """Output formats of `sessions export`."""

    json = "json"
    csv = "csv"


class ReplayFormat(str, Enum):
    """Output formats of `replay`."""

    text = "text"
    json = "json"


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


SourceOption = Annotated[
    str | None,
    typer.Option("--source", help=f"Where to read sessions: {SOURCE_SPEC_HELP}.", show_default=False),
]
StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Embedded store file, the same as --source sqlite:PATH. Default: $SHINZO_STORE_PATH, "
        "else $XDG_DATA_HOME/shinzo-otel/sessions.db.",
        dir_okay=False,
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat | None,
    typer.Option("--format", help="Output format [default: table].", show_default=False),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write to this file instead of stdout. Without --format, .json and .csv files get that format.",
        dir_okay=False,
        show_default=False,
    ),
]
TypeOption = Annotated[
    str | None,
    typer.Option(
        "--type", help="Only sessions of this shinzo.session.type (mcp, manual, logical, admin_shell)."
    ),
]
ComponentOption = Annotated[
    str | None, typer.Option("--component", help="Only admin shell sessions of this component.")
]
UserOption = Annotated[str | None, typer.Option("--user", help="Only sessions whose user.name is this.")]
ServiceOption = Annotated[str | None, typer.Option("--service", help="Only sessions of this service.name.")]
AfterOption = Annotated[
    str | None,
    typer.Option(
        "--after", help="Only sessions started at or after this date or ISO 8601 time (UTC if no offset)."
    ),
]
BeforeOption = Annotated[
    str | None,
    typer.Option(
        "--before", help="Only sessions started before this date or ISO 8601 time (UTC if no offset)."
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
IncompleteOption = Annotated[
    bool, typer.Option("--incomplete", help="Only sessions without a recorded end (running or stuck).")
]
HasErrorOption = Annotated[
    bool, typer.Option("--has-error", help="Only sessions with a failed request or a failed session span.")
]


def _fail(message: object, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    text = value.strip()
    try:
        # fromisoformat takes "Z" only from Python 3.11 on.
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        _fail(f"{option}: {value!r} is not a date (2026-02-01) or ISO 8601 time", _USAGE_ERROR)


def _filters(
    limit: int | None,
    session_type: str | None,
    component: str | None,
    user: str | None,
    service: str | None,
    after: str | None,
    before: str | None,
    duration_greater: float | None,
    incomplete: bool,
    has_error: bool,
) -> SessionFilter:
    return SessionFilter(
        limit=limit,
        session_type=session_type,
        component=component,
        user=user,
        service=service,
        started_after=_moment(after, "--after"),
        started_before=_moment(before, "--before"),
        min_duration_seconds=duration_greater,
        status="active" if incomplete else None,
        has_error=True if has_error else None,
    )


@dataclass
class _Reading:
    """An open source and the progress callback of the command's bar."""

    source: SessionSource
    progress: ProgressCallback


@contextmanager
def _reading(source: str | None, store: Path | None) -> Iterator[_Reading]:
    """Open the source, show progress and warnings on stderr, turn reader errors into `_fail`."""
    if source is not None and store is not None:
        _fail("give --source or --store, not both", _USAGE_ERROR)
    spec = f"sqlite:{store}" if store is not None else source
    stderr = Console(stderr=True, highlight=False)
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


def _emit_summaries(
    summaries: list[SessionSummary], output_format: OutputFormat, output: Path | None
) -> None:
    if output_format is OutputFormat.json:
        _emit(output, sessions_json(summaries))
    elif output_format is OutputFormat.csv:
        _emit(output, sessions_csv(summaries))
    else:
        _emit(output, table=lambda console: print_sessions_table(summaries, console))


@sessions_app.command("list")
def list_sessions(
    session_type: TypeOption = None,
    component: ComponentOption = None,
    user: UserOption = None,
    service: ServiceOption = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    duration_greater: DurationOption = None,
    incomplete: IncompleteOption = False,
    has_error: HasErrorOption = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many sessions, newest first.")] = 50,
    output_format: FormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """List recorded sessions, newest first. Admin shell sessions add component, user and host columns."""
    filters = _filters(
        limit, session_type, component, user, service, after, before, duration_greater, incomplete, has_error
    )
    with _reading(source, store) as reading:
        summaries = reading.source.list_sessions(filters)
    _emit_summaries(summaries, _format(output_format, output), output)


@sessions_app.command("show")
def show_session(
    session_id: Annotated[str, typer.Argument(help="The session's session.id.")],
    output_format: FormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Show one session's metadata: status, start, end, duration, counts and attributes."""
    with _reading(source, store) as reading:
        summary = reading.source.get_session(session_id).summary
    chosen = _format(output_format, output)
    if chosen is OutputFormat.json:
        _emit(output, summary_json(summary))
    elif chosen is OutputFormat.csv:
        _emit(output, sessions_csv([summary]))
    else:
        _emit(output, table=lambda console: print_session_detail(summary, console))


_EXPORT_FORMAT_HELP = (
    "json: whole sessions with their timelines (the default); csv: one summary row per session."
)


@sessions_app.command("export")
def export_sessions(
    session_type: TypeOption = None,
    component: ComponentOption = None,
    user: UserOption = None,
    service: ServiceOption = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    duration_greater: DurationOption = None,
    incomplete: IncompleteOption = False,
    has_error: HasErrorOption = False,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Export at most this many sessions, newest first [default: all]."),
    ] = None,
    output_format: Annotated[
        ExportFormat | None, typer.Option("--format", help=_EXPORT_FORMAT_HELP, show_default=False)
    ] = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Export every matching session: JSON holds each session's summary and timeline (as `replay
    --format json`), CSV one summary row per session (as `sessions list --format csv`)."""
    filters = _filters(
        limit, session_type, component, user, service, after, before, duration_greater, incomplete, has_error
    )
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


@sessions_app.command("end")
def end_session(
    session_id: Annotated[str, typer.Argument(help="The session's session.id.")],
    reason: Annotated[str, typer.Option(help="End reason to record.")] = "manual",
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Mark a session that has no recorded end (a crashed or stuck one) as ended now.

    This changes the embedded SQLite store only: the session gets status "ended", end time now and
    the given end reason (seed 002 `end-session`). Remote backends are not touched: Tempo and Jaeger
    keep spans exactly as the collector sent them, so there the session stays without an end until
    its mcp.session span arrives. If that span reaches the embedded store later, its end replaces
    this one. A session that already has an end is left as it is.
    """
    if source is not None and not source.startswith("sqlite:"):
        _fail(
            "sessions end changes the embedded store only (--store or --source sqlite:PATH); "
            "Tempo, Jaeger and files keep spans as they were sent",
            _USAGE_ERROR,
        )
    with _reading(source, store) as reading:
        session_store = cast(SessionStore, reading.source)  # a sqlite: spec or none, checked above
        ended = session_store.end_session(session_id, reason=reason)
        summary = session_store.get_summary(session_id)
    end = summary.end.strftime("%Y-%m-%d %H:%M:%S") if summary.end else "?"
    if ended:
        typer.echo(f"ended session {session_id} at {end} UTC ({summary.duration_seconds:.1f} s)")
    else:
        typer.echo(f"session {session_id} already ended at {end} UTC; nothing changed")


@app.command()
def replay(
    session_id: Annotated[str, typer.Argument(help="The session's session.id.")],
    output_format: Annotated[
        ReplayFormat, typer.Option("--format", help="Output format.")
    ] = ReplayFormat.text,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Print one session chronologically: every message with its offset, duration and outcome."""
    with _reading(source, store) as reading:
        session = reading.source.get_session(session_id)
    if output_format is ReplayFormat.json:
        _emit(output, session_json(session))
    else:
        _emit(output, table=lambda console: print_replay(session, console))


@app.command()
def analytics(
    metric: Annotated[Metric, typer.Option("--metric", help="What to compute.")],
    period: Annotated[
        Period | None,
        typer.Option("--period", help="One row per UTC day or hour (not for peak_hours, top_tools)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many tools top_tools shows.")] = 10,
    session_type: TypeOption = None,
    component: ComponentOption = None,
    user: UserOption = None,
    service: ServiceOption = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    duration_greater: DurationOption = None,
    incomplete: IncompleteOption = False,
    has_error: HasErrorOption = False,
    output_format: FormatOption = None,
    output: OutputOption = None,
    source: SourceOption = None,
    store: StoreOption = None,
) -> None:
    """Session analytics over every matching session: average duration, counts, unique users, peak
    hours (UTC), error rates, most used tools."""
    filters = _filters(
        None, session_type, component, user, service, after, before, duration_greater, incomplete, has_error
    )
    with _reading(source, store) as reading:
        summaries = reading.source.list_sessions(filters)
    try:
        report = analyze(
            summaries,
            metric.value,
            None if period is None else period.value,
            top=top,
        )
    except ValueError as error:
        _fail(error, _USAGE_ERROR)
    chosen = _format(output_format, output)
    if chosen is OutputFormat.json:
        _emit(output, report_json(report))
    elif chosen is OutputFormat.csv:
        _emit(output, report_csv(report))
    else:
        _emit(output, table=lambda console: print_report_table(report, console))


class ServeTransport(str, Enum):
    streamable_http = "streamable-http"
    stdio = "stdio"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port (seed 002: 8678).")] = 8678,
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
) -> None:
    """Run the admin shell tracking server: MCP tools track_session_start / track_session_end at
    /mcp, GET /health and GET /api/sessions (seeds 002-004). JWT auth is on when SHINZO_ADMIN_SECRET
    (or SESSION_BUDDY_SECRET) is set; secrets are read from the environment only."""
    import logging

    from shinzo_otel.admin.server import run_server  # the mcp SDK loads only for this command

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_server(
            host,
            port,
            transport=transport.value,
            log_level=log_level,
            store_path=store,
            state_path=state,
            exporter_endpoint=exporter_endpoint,
            exporter_protocol=exporter_protocol,
            issuer=issuer,
        )
    except KeyboardInterrupt:
        pass
    except ValueError as error:  # a bad exporter setting
        _fail(error, _USAGE_ERROR)


def main() -> None:
    """Console script entry point (`shinzo-otel`)."""
    app()
