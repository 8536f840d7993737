"""The `shinzo-otel` command line: list and replay the sessions in the embedded store.

    shinzo-otel sessions list [--limit N] [--format table|json|csv] [--store PATH]
    shinzo-otel replay SESSION_ID [--format text|json] [--store PATH]

`--store` defaults to `$SHINZO_STORE_PATH`, else `$XDG_DATA_HOME/shinzo-otel/sessions.db`
(`shinzo_otel.store.default_store_path`). Failures the user can act on (missing store, unknown
session) print one line on stderr and exit with status 1.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from shinzo_otel.replay.render import (
    print_replay,
    print_sessions_table,
    session_json,
    sessions_csv,
    sessions_json,
)
from shinzo_otel.replay.source import ReplayError, SessionFilter
from shinzo_otel.store import SessionStore

_PIPE_WIDTH = 1000
"""Console width when stdout is not a terminal: nothing to fit, and wrapping would split ids."""

app = typer.Typer(
    name="shinzo-otel",
    help="Inspect and replay MCP sessions recorded by shinzo_otel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sessions_app = typer.Typer(help="List and manage recorded sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")


class ListFormat(str, Enum):
    """Output formats of `sessions list`."""

    table = "table"
    json = "json"
    csv = "csv"


class ReplayFormat(str, Enum):
    """Output formats of `replay`."""

    text = "text"
    json = "json"


StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Session store file. Default: $SHINZO_STORE_PATH, else $XDG_DATA_HOME/shinzo-otel/sessions.db.",
        dir_okay=False,
        show_default=False,
    ),
]


def _stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH
    return console


def _open_store(store: Path | None) -> SessionStore:
    try:
        return SessionStore(store)
    except ReplayError as error:
        _fail(error)


def _fail(error: ReplayError) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)


@sessions_app.command("list")
def list_sessions(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many sessions, newest first.")] = 50,
    output_format: Annotated[ListFormat, typer.Option("--format", help="Output format.")] = ListFormat.table,
    store: StoreOption = None,
) -> None:
    """List recorded sessions, newest first."""
    with _open_store(store) as session_store:
        try:
            summaries = session_store.list_sessions(SessionFilter(limit=limit))
        except ReplayError as error:
            _fail(error)
    if output_format is ListFormat.json:
        typer.echo(sessions_json(summaries))
    elif output_format is ListFormat.csv:
        typer.echo(sessions_csv(summaries), nl=False)
    else:
        print_sessions_table(summaries, _stdout_console())


@app.command()
def replay(
    session_id: Annotated[str, typer.Argument(help="The session's session.id.")],
    output_format: Annotated[
        ReplayFormat, typer.Option("--format", help="Output format.")
    ] = ReplayFormat.text,
    store: StoreOption = None,
) -> None:
    """Print one session chronologically: every message with its offset, duration and outcome."""
    with _open_store(store) as session_store:
        try:
            session = session_store.get_session(session_id)
        except ReplayError as error:
            _fail(error)
    if output_format is ReplayFormat.json:
        typer.echo(session_json(session))
    else:
        print_replay(session, _stdout_console())


def main() -> None:
    """Console script entry point (`shinzo-otel`)."""
    app()
