"""The `shinzo-otel` CLI through its installed console script: every command in every format, exports
that parse back to the sessions they came from, and the error paths (one line on stderr, a non-zero
exit, never a traceback). Filter combinations run in process through typer's CliRunner.

The store is filled by a real SDK TracerProvider (tests/test_store.py); the OTLP JSON file by the OTLP
exporter's own encoder, written as the Collector's file exporter writes it (tests/test_readers.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import typer.main
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from pydantic import TypeAdapter
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

from shinzo_otel.cli import Metric, Period, app
from shinzo_otel.replay import Session, SessionCounts, SessionSummary
from shinzo_otel.replay.analytics import METRICS, PERIODS
from shinzo_otel.store import SHINZO_STORE_PATH, SessionStore
from tests.test_readers import collector_file_line
from tests.test_store import (
    SEARCH_ARGUMENTS,
    T0,
    admin_summary,
    complete_summary,
    finished_spans,
    incomplete_summary,
    record_admin_session,
    record_session,
    sqlite_tracer,
)

SCRIPT = Path(sys.executable).with_name("shinzo-otel")
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
SUMMARIES: TypeAdapter[list[SessionSummary]] = TypeAdapter(list[SessionSummary])
SESSIONS: TypeAdapter[list[Session]] = TypeAdapter(list[Session])
EXPECTED = [
    admin_summary("shell", T0 + 2 * 10**9),
    incomplete_summary("crashed", T0 + 10**9),
    complete_summary("complete"),
]
"""What the `db` fixture holds, newest first, as tests/test_store.py works it out."""


def _fill(path: Path) -> Path:
    with sqlite_tracer(path) as tracer:
        record_session(tracer, "complete")
        record_session(tracer, "crashed", T0 + 10**9, complete=False)
        record_admin_session(tracer, "shell", T0 + 2 * 10**9, component="mahavishnu", user="les", host="mbp")
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sessions, oldest first: complete (mcp), crashed (no end), shell (admin_shell). Read only."""
    return _fill(tmp_path_factory.mktemp("cli") / "sessions.db")


def shinzo(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script; assert it never prints a traceback."""
    result = subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def ok(result: subprocess.CompletedProcess[str] | Result) -> str:
    code = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert (code, result.stderr) == (0, ""), result.stderr
    return result.stdout


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in process (typer's CliRunner): the same app as the console script, without the
    interpreter start-up, for the variations of a command."""
    return CliRunner().invoke(app, list(map(str, args)), env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for outputs, holding `sessions.jsonl`: a bad line, then a session as the Collector's
    file exporter writes it after the OTLP exporter's own encoder."""
    directory = tmp_path_factory.mktemp("cli-files")
    spans = finished_spans(lambda tracer: record_session(tracer, "from-file"))
    (directory / "sessions.jsonl").write_text(f"{{not json\n{collector_file_line(encode_spans(spans))}\n")
    return directory


def _closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


@pytest.fixture(scope="module")
def runs(db: Path, files: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every independent console-script run of this module, started together: each costs about 0.7 s
    of interpreter start-up, and they only read."""
    calls: dict[str, list[str | Path]] = {
        "list": ["sessions", "list", "--store", db],
        "list-json": ["sessions", "list", "--format", "json", "--store", db],
        "list-csv": ["sessions", "list", "--format", "csv", "--store", db],
        "list-to-csv": [
            "sessions",
            "list",
            "--type",
            "admin_shell",
            "--output",
            files / "s.csv",
            "--store",
            db,
        ],
        "show": ["sessions", "show", "complete", "--store", db],
        "show-json": ["sessions", "show", "shell", "--format", "json", "--store", db],
        "show-csv": ["sessions", "show", "crashed", "--format", "csv", "--store", db],
        "export": ["sessions", "export", "--store", db],
        "export-csv": ["sessions", "export", "--format", "csv", "--store", db],
        "replay": ["replay", "complete", "--store", db],
        "replay-json": ["replay", "crashed", "--format", "json", "--store", db],
        "analytics": ["analytics", "--metric", "top_tools", "--store", db],
        "analytics-json": [
            "analytics",
            "--metric",
            "count",
            "--period",
            "daily",
            "--format",
            "json",
            "--store",
            db,
        ],
        "analytics-csv": ["analytics", "--metric", "error_rate", "--format", "csv", "--store", db],
        "file-source": [
            "sessions",
            "list",
            "--format",
            "json",
            "--source",
            f"file:{files / 'sessions.jsonl'}",
        ],
        "unknown-replay": ["replay", "no-such-session", "--store", db],
        "version": ["--version"],
        "unreachable": ["sessions", "list", "--source", f"jaeger:http://127.0.0.1:{_closed_port()}"],
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        started = {name: pool.submit(shinzo, *args) for name, args in calls.items()}
    return {name: future.result() for name, future in started.items()}


def table_cells(text: str) -> list[list[str]]:
    """Header and body cells of rich tables (header cells are separated by ┃, body cells by │)."""
    rows = [re.split("[│┃]", line)[1:-1] for line in text.splitlines() if line[:1] in ("│", "┃")]
    return [[cell.strip() for cell in row] for row in rows]


def summaries_from_csv(text: str) -> list[SessionSummary]:
    """Rebuild summaries from `sessions list --format csv` (shinzo_otel.replay.render.CSV_COLUMNS)."""
    summaries = []
    for row in csv.DictReader(io.StringIO(text)):
        summary = SessionSummary(
            session_id=row["session_id"],
            type=row["type"] or None,
            service=row["service"] or None,
            start_ns=int(row["start_ns"]),
            end_ns=int(row["end_ns"]) if row["end_ns"] else None,
            status=row["status"],  # type: ignore[arg-type]
            end_reason=row["end_reason"] or None,
            counts=SessionCounts(
                spans=int(row["spans"]),
                requests=int(row["requests"]),
                tool_calls=int(row["tool_calls"]),
                errors=int(row["errors"]),
                tools=json.loads(row["tools"]),
            ),
            attributes=json.loads(row["attributes"]),
            last_activity_ns=int(row["last_activity_ns"]),
        )
        # The derived columns agree with what they are derived from.
        assert row["start"] == summary.start.isoformat().replace("+00:00", "Z")
        assert row["last_activity"] == summary.last_activity.isoformat().replace("+00:00", "Z")
        assert (row["origin"] or None, row["conversation_id"] or None) == (
            summary.origin,
            summary.conversation_id,
        )
        assert row["duration_seconds"] == (
            "" if summary.duration_seconds is None else str(summary.duration_seconds)
        )
        assert (row["component"] or None, row["user"] or None, row["host"] or None) == (
            summary.component,
            summary.user,
            summary.host,
        )
        summaries.append(summary)
    return summaries


# --- sessions list ---------------------------------------------------------------------------------


def test_sessions_list_table_shows_admin_columns(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    # crashed has no end: the Last activity column appears (its tools/list ended at +21 ms).
    assert table_cells(ok(runs["list"])) == [
        ["Session ID", "Type", "Origin", "Component", "User", "Host", "Service", "Started (UTC)", "Duration",
         "Last activity (UTC)", "Status", "Requests", "Errors"],
        ["shell", "admin_shell", "—", "mahavishnu", "les", "mbp", "test-server", "2023-11-14 22:13:22",
         "5.0 s", "2023-11-14 22:13:27", "ended", "0", "0"],
        ["crashed", "mcp", "—", "—", "—", "—", "test-server", "2023-11-14 22:13:21", "—",
         "2023-11-14 22:13:21", "active", "2", "0"],
        ["complete", "mcp", "—", "—", "—", "—", "test-server", "2023-11-14 22:13:20", "100 ms",
         "2023-11-14 22:13:20", "ended", "4", "1"],
    ]  # fmt: skip


def test_sessions_list_table_without_admin_sessions(db: Path) -> None:
    cells = table_cells(ok(run("sessions", "list", "--type", "mcp", "--source", f"sqlite:{db}")))
    assert cells[0] == [
        "Session ID",
        "Type",
        "Origin",
        "Service",
        "Started (UTC)",
        "Duration",
        "Last activity (UTC)",
        "Status",
        "Requests",
        "Errors",
    ]
    assert [row[0] for row in cells[1:]] == ["crashed", "complete"]
    # Without a session lacking an end, no Last activity column.
    ended = table_cells(ok(run("sessions", "list", "--type", "mcp", "--status", "ended", "--store", db)))
    assert ended[0] == [
        "Session ID", "Type", "Origin", "Service", "Started (UTC)", "Duration", "Status", "Requests", "Errors"
    ]  # fmt: skip


def test_sessions_list_json_and_csv_parse_back_to_the_sessions(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    assert SUMMARIES.validate_json(ok(runs["list-json"])) == EXPECTED
    assert summaries_from_csv(ok(runs["list-csv"])) == EXPECTED


def test_sessions_list_output_file_takes_its_format_from_the_suffix(
    runs: dict[str, subprocess.CompletedProcess[str]], db: Path, files: Path, tmp_path: Path
) -> None:
    # Seed 002: `list-sessions --type admin_shell --output sessions.csv`.
    assert ok(runs["list-to-csv"]) == ""
    assert summaries_from_csv((files / "s.csv").read_text()) == EXPECTED[:1]
    assert ok(run("sessions", "list", "--output", tmp_path / "s.json", "--store", db)) == ""
    assert SUMMARIES.validate_json((tmp_path / "s.json").read_text()) == EXPECTED
    assert ok(run("sessions", "list", "--output", tmp_path / "s.txt", "--store", db)) == ""
    assert [row[0] for row in table_cells((tmp_path / "s.txt").read_text())[1:]] == [
        "shell",
        "crashed",
        "complete",
    ]


def _ids(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [
        item["session_id"]
        for item in json.loads(ok(run("sessions", "list", "--format", "json", *args, env=env)))
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["shell", "crashed", "complete"]),
        (["--limit", "1"], ["shell"]),
        (["--type", "admin_shell"], ["shell"]),
        (["--component", "mahavishnu"], ["shell"]),
        (["--user", "les"], ["shell"]),
        (["--user", "nobody"], []),
        (["--service", "test-server", "--type", "mcp"], ["crashed", "complete"]),
        (["--incomplete"], ["crashed"]),
        (["--has-error"], ["complete"]),
        # crashed has no end: it counts as running until now, years after T0.
        (["--duration-greater", "1"], ["shell", "crashed"]),
        (["--after", "2023-11-14T22:13:21Z"], ["shell", "crashed"]),
        (["--after", "2023-11-14T22:13:21", "--before", "2023-11-14T22:13:22"], ["crashed"]),
        (["--before", "2023-11-15"], ["shell", "crashed", "complete"]),
        (["--after", "2023-11-15"], []),
    ],
)
def test_sessions_list_filters(db: Path, args: list[str], expected: list[str]) -> None:
    assert _ids(*args, "--store", str(db)) == expected


def test_store_comes_from_the_environment(db: Path) -> None:
    assert _ids(env={SHINZO_STORE_PATH: str(db)}) == ["shell", "crashed", "complete"]


# --- sessions show ---------------------------------------------------------------------------------


def test_sessions_show_in_every_format(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    fields = dict(row for row in table_cells(ok(runs["show"])) if len(row) == 2)
    assert fields["Status"] == "ended (client_closed)"
    assert fields["Start time"] == "2023-11-14 22:13:20 UTC"
    assert fields["Duration"] == "0.100 seconds (100 ms)"
    assert (fields["Requests"], fields["Tool calls"], fields["Errors"]) == ("4", "2", "1")
    assert fields["Tools"] == "fail ×1, search ×1"

    shown = json.loads(ok(runs["show-json"]))
    assert (
        shown["duration_seconds"] == 5.0
    )  # seed 002: `show-session ID --format json | jq .duration_seconds`
    assert (shown["component"], shown["user"], shown["host"]) == ("mahavishnu", "les", "mbp")
    assert SessionSummary.model_validate(shown) == EXPECTED[0]
    assert summaries_from_csv(ok(runs["show-csv"])) == [EXPECTED[1]]


# --- sessions export -------------------------------------------------------------------------------


def test_sessions_export_json_and_csv_parse_back_to_the_sessions(
    runs: dict[str, subprocess.CompletedProcess[str]], db: Path, tmp_path: Path
) -> None:
    with SessionStore(db) as store:
        sessions = [store.get_session(summary.session_id) for summary in EXPECTED]
    assert SESSIONS.validate_json(ok(runs["export"])) == sessions
    assert (
        ok(run("sessions", "export", "--incomplete", "--output", tmp_path / "stuck.json", "--store", db))
        == ""
    )
    assert SESSIONS.validate_json((tmp_path / "stuck.json").read_text()) == sessions[1:2]
    assert summaries_from_csv(ok(runs["export-csv"])) == EXPECTED


# --- sessions end ----------------------------------------------------------------------------------


def test_sessions_end_ends_an_incomplete_session_once(db: Path, tmp_path: Path) -> None:
    store = shutil.copy(db, tmp_path / "sessions.db")
    ended = ok(shinzo("sessions", "end", "crashed", "--reason", "stale", "--store", store))
    assert re.fullmatch(r"ended session crashed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \([\d.]+ s\)\n", ended)
    with SessionStore(store) as reader:
        summary = reader.get_summary("crashed")
    assert (summary.status, summary.end_reason) == ("ended", "stale")
    assert _ids("--incomplete", "--store", str(store)) == []
    again = ok(run("sessions", "end", "crashed", "--store", store))
    assert again.startswith("session crashed already ended at ") and again.endswith("; nothing changed\n")


@pytest.mark.parametrize("command", ["end", "prune"])
def test_commands_that_change_the_store_offer_no_other_source(command: str) -> None:
    """They change the embedded store only: --store, and no --source listing backends they refuse."""
    help_text = ok(run("sessions", command, "--help"))
    assert "--store" in help_text
    assert "--source" not in help_text
    assert "tempo:URL" not in help_text
    result = run("sessions", command, "s", "--source", "tempo:http://127.0.0.1:3200")
    assert result.exit_code == 2
    assert "No such option: --source" in result.stderr


# --- replay ----------------------------------------------------------------------------------------


def test_replay_text(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    lines = ok(runs["replay"]).splitlines()
    search = next(index for index, line in enumerate(lines) if "tools/call search" in line)
    assert lines[search].split()[:5] == ["+0.030s", "5.0", "ms", "ok", "tools/call"]
    assert lines[search + 1].strip() == f"arguments: {SEARCH_ARGUMENTS}"
    assert any(line.split()[:5] == ["+0.050s", "4.0", "ms", "ERROR", "tools/call"] for line in lines)


def test_replay_json(runs: dict[str, subprocess.CompletedProcess[str]], db: Path, tmp_path: Path) -> None:
    data = json.loads(ok(runs["replay-json"]))
    assert (data["summary"]["session_id"], data["summary"]["status"]) == ("crashed", "active")
    assert [entry["name"] for entry in data["timeline"]] == ["initialize", "tools/list"]
    assert (
        ok(run("replay", "complete", "--format", "json", "--output", tmp_path / "r.json", "--store", db))
        == ""
    )
    with SessionStore(db) as store:
        assert Session.model_validate_json((tmp_path / "r.json").read_text()) == store.get_session("complete")


# --- analytics -------------------------------------------------------------------------------------


def test_analytics_in_every_format(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    # complete: search and fail once each; shell: none; crashed: none.
    assert table_cells(ok(runs["analytics"])) == [
        ["tool", "calls", "sessions"],
        ["fail", "1", "1"],
        ["search", "1", "1"],
    ]
    report = json.loads(ok(runs["analytics-json"]))
    assert (report["sessions"], report["rows"]) == (3, [{"period": "2023-11-14", "sessions": 3}])
    # 1 failed session (complete) of 3; 1 failed request of 6 (complete 4, crashed 2).
    assert list(csv.DictReader(io.StringIO(ok(runs["analytics-csv"])))) == [
        {
            "period": "all",
            "sessions": "3",
            "failed_sessions": "1",
            "session_error_rate": str(1 / 3),
            "requests": "6",
            "failed_requests": "1",
            "request_error_rate": str(1 / 6),
        }
    ]


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_runs_with_filters(db: Path, metric: str) -> None:
    result = CliRunner().invoke(
        app,
        ["analytics", "--metric", metric, "--type", "admin_shell", "--format", "json", "--store", str(db)],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sessions"] == 1


def test_cli_choices_are_the_analytics_ones() -> None:
    assert tuple(metric.value for metric in Metric) == METRICS
    assert tuple(period.value for period in Period) == PERIODS


# --- other sources and error paths -----------------------------------------------------------------


def test_file_source_reads_on_past_a_malformed_line(
    runs: dict[str, subprocess.CompletedProcess[str]], files: Path
) -> None:
    result = runs["file-source"]
    assert result.returncode == 0
    path = files / "sessions.jsonl"
    assert result.stderr.startswith(f"warning: {path}:1: skipped, not an OTLP JSON trace request (")
    assert len(result.stderr.splitlines()) == 1
    assert SUMMARIES.validate_json(result.stdout) == [complete_summary("from-file")]


def test_unknown_session_is_one_line_and_exit_1(
    runs: dict[str, subprocess.CompletedProcess[str]], db: Path
) -> None:
    result = runs["unknown-replay"]
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: no session 'no-such-session' in {db}\n"
    shown = run("sessions", "show", "no-such-session", "--store", db)
    assert (shown.exit_code, shown.stdout, shown.stderr) == (1, "", result.stderr)


def test_missing_store_is_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "sessions.db"
    result = run("sessions", "list", "--store", missing)
    assert result.exit_code == 1
    assert result.stderr == f"error: no session store at {missing} (nothing recorded there yet?)\n"
    assert not missing.parent.exists()


def test_unreachable_backend_is_one_line_and_exit_1(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    result = runs["unreachable"]
    url = str(result.args[-1]).removeprefix("jaeger:")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach Jaeger at {url}: ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["sessions", "list", "--source", "bogus:x"],
            "error: unknown source 'bogus:x': expected sqlite:PATH",
        ),
        (
            ["sessions", "list", "--after", "yesterday"],
            "error: --after: 'yesterday': Input should be a valid",
        ),
        (["requests", "list", "--before", "2026-13-01"], "error: --before: '2026-13-01': Input should be a"),
        (["sessions", "prune", "--before", "soon"], "error: --before: 'soon': Input should be a valid"),
        (
            ["sessions", "list", "--store", "a.db", "--source", "sqlite:b.db"],
            "error: give --source or --store",
        ),
        (
            ["analytics", "--metric", "peak_hours", "--period", "daily"],
            "error: --period does not apply to peak_hours",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(db: Path, args: list[str], message: str) -> None:
    result = run(*args, env={SHINZO_STORE_PATH: str(db)})
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1


# --- version and help ------------------------------------------------------------------------------


def test_version_is_the_installed_distribution(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    match = re.search(r'^version = "([^"]+)"$', PYPROJECT.read_text(encoding="utf-8"), re.MULTILINE)
    assert match is not None
    assert ok(runs["version"]) == f"shinzo-otel {match.group(1)}\n"


def _help(*command: str) -> str:
    """`--help` of a command with the boxes and line wrapping of rich taken out."""
    wide = {"COLUMNS": "300"}  # nothing cut short with an ellipsis
    return " ".join(re.sub("[│╭╮╰╯─]", " ", ok(run(*command, "--help", env=wide))).split())


def test_help_shows_the_defaults() -> None:
    listing = _help("sessions", "list")
    assert (
        "Output format. Without it, an --output file ending in .json or .csv gets that format. "
        "[default: (table)]" in listing
    )
    assert "Show at most this many sessions, newest first. [default: 50]" in listing
    assert "[default: ($SHINZO_STORE_PATH, else $XDG_DATA_HOME/shinzo-otel/sessions.db)]" in listing
    export = _help("sessions", "export")
    assert "Export at most this many sessions, newest first. [default: (all)]" in export
    assert "gets CSV. [default: (json)]" in export
    assert "gets JSON. [default: (text)]" in _help("replay")
    assert "gets JSON. [default: (text)]" in _help("requests", "show")


def _command_paths(group: TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            paths += _command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def test_help_never_cites_internal_seeds() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    paths = _command_paths(root)
    assert ("requests", "show") in paths  # the walk reaches every level
    for path in paths:
        assert "seed" not in _help(*path).lower(), path


# --- replay --output -------------------------------------------------------------------------------


def test_replay_output_suffix_picks_the_format(db: Path, tmp_path: Path) -> None:
    assert ok(run("replay", "complete", "--output", tmp_path / "r.json", "--store", db)) == ""
    with SessionStore(db) as store:
        assert Session.model_validate_json((tmp_path / "r.json").read_text()) == store.get_session("complete")
    assert ok(run("replay", "complete", "--output", tmp_path / "r.txt", "--store", db)) == ""
    assert (tmp_path / "r.txt").read_text().startswith("Session complete  type mcp")
    # An explicit --format wins over the suffix.
    assert ok(run("replay", "complete", "--format", "text", "-o", tmp_path / "t.json", "--store", db)) == ""
    assert (tmp_path / "t.json").read_text().startswith("Session complete  type mcp")
