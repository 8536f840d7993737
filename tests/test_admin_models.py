"""The event models: every rule of seed 001's validation table, accepted and rejected values."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from shinzo_otel.admin import SessionEndEvent, SessionEndResult, SessionStartEvent, SessionStartResult
from shinzo_otel.admin.models import describe_validation_error

V4 = "550e8400-e29b-41d4-a716-446655440000"
ALLOWED = "only letters, digits, underscore and hyphen are allowed"
NEEDS_T = "(needs a date and a time joined by 'T', e.g. 2026-02-06T12:34:56.789Z)"
EXPECTED = "(expected e.g. 2026-02-06T12:34:56.789Z)"


def start(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_version": "1.0",
        "event_id": V4,
        "component_name": "mahavishnu",
        "shell_type": "MahavishnuShell",
        "timestamp": "2026-02-06T12:34:56.789Z",
        "pid": 12345,
        "user": {"username": "john", "home": "/home/john"},
        "hostname": "server01",
        "environment": {"python_version": "3.13.0", "platform": "Linux-6.5.0-x86_64", "cwd": "/home/john"},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            event[section] = {**event[section], field: value}
        else:
            event[key] = value
    return event


def rejection(**changes: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        SessionStartEvent.model_validate(start(**changes))
    return describe_validation_error(caught.value)


def test_seed_example_is_valid_and_defaults_are_set() -> None:
    event = SessionStartEvent.model_validate(start())
    assert event.event_type == "session_start"
    assert event.metadata == {}
    assert event.timestamp == datetime(2026, 2, 6, 12, 34, 56, 789000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event_version": "1.1"}, "event_version: Input should be '1.0'"),
        ({"event_version": None}, "event_version: Input should be '1.0'"),
        ({"event_id": "not-a-uuid"}, "event_id: Invalid UUID v4 format: 'not-a-uuid'"),
        # A valid UUID, but version 1 (the third group starts with 1).
        (
            {"event_id": "550e8400-e29b-11d4-a716-446655440000"},
            "event_id: Invalid UUID v4 format: '550e8400-e29b-11d4-a716-446655440000' is a UUID of version 1",
        ),
        ({"event_id": 42}, "event_id: Invalid UUID v4 format: expected a string, got int"),
        ({"event_type": "session_end"}, "event_type: Input should be 'session_start'"),
        (
            {"component_name": "maha vishnu"},
            f"component_name: Invalid component_name 'maha vishnu': {ALLOWED}",
        ),
        (
            {"component_name": "maha.vishnu"},
            f"component_name: Invalid component_name 'maha.vishnu': {ALLOWED}",
        ),
        (
            {"component_name": ""},
            f"component_name: Invalid component_name '': {ALLOWED}",
        ),
        (
            {"component_name": "mähavishnu"},
            f"component_name: Invalid component_name 'mähavishnu': {ALLOWED}",
        ),
        (
            {"timestamp": "2026-02-06"},
            f"timestamp: Invalid ISO 8601 timestamp: '2026-02-06' {NEEDS_T}",
        ),
        (
            {"timestamp": "2026-02-06 12:34:56"},
            f"timestamp: Invalid ISO 8601 timestamp: '2026-02-06 12:34:56' {NEEDS_T}",
        ),
        (
            {"timestamp": "2026-02-06T13:45:67.890Z"},  # seed 003's own example has 67 seconds
            f"timestamp: Invalid ISO 8601 timestamp: '2026-02-06T13:45:67.890Z' {EXPECTED}",
        ),
        ({"timestamp": 1770381296}, "timestamp: Invalid ISO 8601 timestamp: expected a string, got int"),
        ({"pid": 0}, "pid: Input should be greater than or equal to 1"),
        ({"pid": 4194305}, "pid: Input should be less than or equal to 4194304"),
        ({"user__username": "u" * 101}, "user.username: String should have at most 100 characters"),
        ({"user__home": "/" * 501}, "user.home: String should have at most 500 characters"),
        ({"environment__cwd": "/" * 501}, "environment.cwd: String should have at most 500 characters"),
    ],
)
def test_start_event_rejections(changes: dict[str, Any], message: str) -> None:
    assert rejection(**changes) == message


def test_missing_fields_are_named() -> None:
    event = start()
    del event["hostname"], event["pid"]
    with pytest.raises(ValidationError) as caught:
        SessionStartEvent.model_validate(event)
    assert describe_validation_error(caught.value) == "pid: Field required; hostname: Field required"


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"event_id": uuid.UUID(V4)}, "event_id", V4),  # seed 001 pattern 3 passes a UUID object
        ({"event_id": V4.upper()}, "event_id", V4),  # stored canonical, so retries match
        ({"component_name": "session-buddy"}, "component_name", "session-buddy"),
        ({"component_name": "One_2-three"}, "component_name", "One_2-three"),
        ({"pid": 1}, "pid", 1),
        ({"pid": 4194304}, "pid", 4194304),
        ({"metadata": None}, "metadata", {}),  # seed-era emitters send null
        ({"metadata": {"adapters": ["a"]}}, "metadata", {"adapters": ["a"]}),
    ],
)
def test_start_event_accepted_values(changes: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(SessionStartEvent.model_validate(start(**changes)), field) == expected


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-02-06T12:34:56Z", datetime(2026, 2, 6, 12, 34, 56, tzinfo=timezone.utc)),
        ("2026-02-06T14:34:56+02:00", datetime(2026, 2, 6, 12, 34, 56, tzinfo=timezone.utc)),
        ("2026-02-06T12:34:56", datetime(2026, 2, 6, 12, 34, 56, tzinfo=timezone.utc)),  # naive: UTC
        ("2026-02-06t12:34:56.5z", datetime(2026, 2, 6, 12, 34, 56, 500000, tzinfo=timezone.utc)),
        (datetime(2026, 2, 6, 12, 34, 56), datetime(2026, 2, 6, 12, 34, 56, tzinfo=timezone.utc)),
    ],
)
def test_timestamps_with_a_time_part_are_accepted_as_utc(timestamp: Any, expected: datetime) -> None:
    parsed = SessionStartEvent.model_validate(start(timestamp=timestamp)).timestamp
    assert parsed == expected
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_user_and_path_fields_are_stripped_before_the_length_check() -> None:
    event = SessionStartEvent.model_validate(
        start(
            user__username=f"  {'u' * 100}\n", user__home=" /home/john ", environment__cwd=f"\t{'/' * 500} "
        )
    )
    assert event.user.username == "u" * 100
    assert event.user.home == "/home/john"
    assert event.environment.cwd == "/" * 500


def test_end_event_rules() -> None:
    event = SessionEndEvent.model_validate(
        {"session_id": "m-20260206-123456", "timestamp": "2026-02-06T13:45:07Z"}
    )
    assert event.event_type == "session_end"
    assert event.metadata == {}
    with pytest.raises(ValidationError) as caught:
        SessionEndEvent.model_validate(
            {"session_id": "m", "timestamp": "13:45", "event_type": "session_start"}
        )
    assert describe_validation_error(caught.value) == (
        f"event_type: Input should be 'session_end'; timestamp: Invalid ISO 8601 timestamp: '13:45' {NEEDS_T}"
    )


def test_result_shapes_are_the_seeds() -> None:
    assert SessionStartResult(session_id="m-1", status="tracked").model_dump() == {
        "session_id": "m-1",
        "status": "tracked",
        "error": None,
    }
    assert SessionEndResult(session_id="m-1", status="not_found").model_dump() == {
        "session_id": "m-1",
        "status": "not_found",
        "error": None,
    }
    with pytest.raises(ValidationError):
        SessionStartResult(session_id=None, status="ended")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SessionEndResult(session_id=None, status="ended")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "module", ["shinzo_otel.replay.model", "shinzo_otel.store", "shinzo_otel.admin.server"]
)
def test_modules_import_first_without_a_cycle(module: str) -> None:
    # The admin tracker imports the store, and the store and replay model read admin attribute names
    # (from `_semconv`); a fresh interpreter shows whether any of that closes an import cycle.
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
