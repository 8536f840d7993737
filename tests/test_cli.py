"""The `shinzo-otel` CLI on a store filled by a real SDK TracerProvider: in process through typer's
CliRunner, and once through the installed console script."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shinzo_otel.cli import app
from shinzo_otel.store import SHINZO_STORE_PATH
from tests.test_store import SEARCH_ARGUMENTS, T0, record_session, session_attributes, sqlite_tracer

SCRIPT = Path(sys.executable).with_name("shinzo-otel")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Three sessions, oldest first: complete (mcp), crashed (no end), shell (admin_shell)."""
    path = tmp_path / "sessions.db"
    with sqlite_tracer(path) as tracer:
        record_session(tracer, "complete")
        record_session(tracer, "crashed", T0 + 10**9, complete=False)
        record_session(tracer, "shell", T0 + 2 * 10**9, session_type="admin_shell")
    return path


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_sessions_list_table(db: Path) -> None:
    result = _run("sessions", "list", "--store", str(db))

    assert result.exit_code == 0, result.output
    # Header cells are separated by ┃, body cells by │ (rich's default box).
    rows = [re.split("[│┃]", line)[1:-1] for line in result.stdout.splitlines() if line[:1] in ("│", "┃")]
    cells = [[cell.strip() for cell in row] for row in rows]
    assert cells[0] == [
        "Session ID",
        "Type",
        "Service",
        "Started (UTC)",
        "Duration",
        "Status",
        "Requests",
        "Errors",
    ]
    assert cells[1:] == [
        ["shell", "admin_shell", "test-server", "2023-11-14 22:13:22", "100 ms", "ended", "4", "1"],
        ["crashed", "mcp", "test-server", "2023-11-14 22:13:21", "—", "active", "2", "0"],
        ["complete", "mcp", "test-server", "2023-11-14 22:13:20", "100 ms", "ended", "4", "1"],
    ]


def test_sessions_list_limit_and_json(db: Path) -> None:
    result = _run("sessions", "list", "--limit", "2", "--format", "json", "--store", str(db))

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [item["session_id"] for item in data] == ["shell", "crashed"]
    crashed = data[1]
    assert (crashed["status"], crashed["end"], crashed["duration_seconds"]) == ("active", None, None)
    assert crashed["start"] == "2023-11-14T22:13:21Z"
    assert crashed["counts"] == {"spans": 3, "requests": 2, "tool_calls": 0, "errors": 0}
    assert crashed["attributes"] == session_attributes("crashed")


def test_sessions_list_csv(db: Path) -> None:
    result = _run("sessions", "list", "--format", "csv", "--store", str(db))

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["session_id"] for row in rows] == ["shell", "crashed", "complete"]
    complete = rows[2]
    assert {
        key: complete[key] for key in ("type", "start", "end", "duration_seconds", "status", "end_reason")
    } == {
        "type": "mcp",
        "start": "2023-11-14T22:13:20Z",
        "end": "2023-11-14T22:13:20.100000Z",
        "duration_seconds": "0.1",
        "status": "ended",
        "end_reason": "client_closed",
    }
    assert (complete["requests"], complete["tool_calls"], complete["errors"]) == ("4", "2", "1")
    assert json.loads(complete["attributes"])["shinzo.session.type"] == "mcp"
    assert (rows[1]["end"], rows[1]["duration_seconds"]) == ("", "")


def test_store_comes_from_the_environment(db: Path) -> None:
    result = _run("sessions", "list", "--format", "json", env={SHINZO_STORE_PATH: str(db)})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


def test_replay_text(db: Path) -> None:
    result = _run("replay", "complete", "--store", str(db))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    search = next(index for index, line in enumerate(lines) if "tools/call search" in line)
    assert lines[search].split()[:5] == ["+0.030s", "5.0", "ms", "ok", "tools/call"]
    assert lines[search + 1].strip() == f"arguments: {SEARCH_ARGUMENTS}"
    assert any(line.split()[:5] == ["+0.050s", "4.0", "ms", "ERROR", "tools/call"] for line in lines)


def test_replay_json(db: Path) -> None:
    result = _run("replay", "crashed", "--format", "json", "--store", str(db))

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["summary"]["session_id"], data["summary"]["status"]) == ("crashed", "active")
    assert [entry["name"] for entry in data["timeline"]] == ["initialize", "tools/list"]


@pytest.mark.parametrize(
    "command", [["replay", "no-such-session"], ["replay", "no-such-session", "--format", "json"]]
)
def test_unknown_session_is_one_line_and_exit_1(db: Path, command: list[str]) -> None:
    result = _run(*command, "--store", str(db))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: no session 'no-such-session' in {db}\n"


@pytest.mark.parametrize("command", [["sessions", "list"], ["replay", "complete"]])
def test_missing_store_is_one_line_and_exit_1(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nowhere" / "sessions.db"
    result = _run(*command, "--store", str(missing))

    assert result.exit_code == 1
    assert result.stderr == f"error: no session store at {missing} (nothing recorded there yet?)\n"
    assert not missing.parent.exists()


def test_installed_console_script(db: Path, tmp_path: Path) -> None:
    replayed = subprocess.run(
        [str(SCRIPT), "replay", "complete", "--format", "json", "--store", str(db)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["summary"]["counts"]["requests"] == 4

    failed = subprocess.run(
        [str(SCRIPT), "sessions", "list", "--store", str(tmp_path / "missing.db")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"error: no session store at {tmp_path / 'missing.db'} (nothing recorded there yet?)"
    ]
