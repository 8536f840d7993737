"""Admin shell session events and results (seeds 001 and 004), validated with pydantic v2.

Validation rules, from seed 001's table:

| field | rule |
|---|---|
| `event_version` | must be `"1.0"` |
| `event_id` | a UUID version 4 (RFC 9562 section 5.4); stored in canonical lowercase form |
| `event_type` | `"session_start"` / `"session_end"`, set automatically |
| `component_name` | letters, digits, `_` and `-` only |
| `timestamp` | ISO 8601 with a time part (`2026-02-06T12:34:56.789Z`); naive times are UTC |
| `pid` | 1 to 4194304 (Linux `PID_MAX_LIMIT`, 2**22) |
| `user.username` | at most 100 characters, surrounding whitespace stripped |
| `user.home`, `environment.cwd` | at most 500 characters, surrounding whitespace stripped |
| `metadata` (start) | at most 64 keys and 16 KiB as compact JSON (ours: `MAX_START_METADATA_KEYS`) |
| `metadata` (end) | at most 16 keys and 4 KiB as compact JSON (ours: `MAX_END_METADATA_KEYS`) |

The metadata bounds are ours, not the seed's: each key becomes a span attribute of the session, and
the OpenTelemetry SDK keeps at most 128 attributes per span (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`),
evicting the oldest; beside the session's own attributes (fewer than 20), 64 + 16 metadata keys stay
well inside that.

A rule that fails raises `pydantic.ValidationError` whose message names the field and the rule, e.g.
`Invalid UUID v4 format: 'abc'` or `Invalid ISO 8601 timestamp: '2026-02-06' (needs a date and a time ...)`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

EVENT_VERSION: Final = "1.0"
"""The only event format version (seed 001)."""
COMPONENT_NAME_PATTERN: Final = r"^[A-Za-z0-9_-]+$"
"""What `component_name` may contain (seed 001): ASCII letters, digits, underscore and hyphen."""
MAX_PID: Final = 4_194_304
"""Largest accepted pid (seed 001): Linux's `PID_MAX_LIMIT` on 64-bit systems, 2**22."""
MAX_USERNAME_LENGTH: Final = 100
MAX_PATH_LENGTH: Final = 500
MAX_START_METADATA_KEYS: Final = 64
"""Most keys a start event's `metadata` may have (each becomes a session span attribute)."""
MAX_START_METADATA_BYTES: Final = 16 * 1024
"""Largest start event `metadata`, as compact UTF-8 JSON (non-JSON values as their `str`)."""
MAX_END_METADATA_KEYS: Final = 16
"""Most keys an end event's `metadata` may have (`exit_reason` included)."""
MAX_END_METADATA_BYTES: Final = 4 * 1024
"""Largest end event `metadata`, as compact UTF-8 JSON."""
TRACK_SESSION_START: Final = "track_session_start"
"""Name of the start tool (seed 004)."""
TRACK_SESSION_END: Final = "track_session_end"
"""Name of the end tool (seed 004)."""

_COMPONENT_NAME = re.compile(COMPONENT_NAME_PATTERN)
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)
_TIMESTAMP_EXAMPLE = "2026-02-06T12:34:56.789Z"


def _parse_timestamp(value: object) -> datetime:
    """An ISO 8601 date-time with a time part, as an aware UTC datetime (naive input is UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if "T" not in value.upper():
            raise ValueError(
                f"Invalid ISO 8601 timestamp: {value!r} (needs a date and a time joined by 'T',"
                f" e.g. {_TIMESTAMP_EXAMPLE})"
            )
        try:
            moment = _DATETIME.validate_python(value, strict=False)
        except ValidationError:
            raise ValueError(
                f"Invalid ISO 8601 timestamp: {value!r} (expected e.g. {_TIMESTAMP_EXAMPLE})"
            ) from None
    else:
        raise ValueError(f"Invalid ISO 8601 timestamp: expected a string, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _none_as_empty(value: object) -> object:
    # Seed-era emitters send `"metadata": null` when there is none.
    return {} if value is None else value


def metadata_size(metadata: Mapping[str, Any]) -> int:
    """`metadata` as compact UTF-8 JSON, in bytes (values JSON cannot hold count as their `str`)."""
    return len(json.dumps(metadata, default=str, separators=(",", ":"), ensure_ascii=False).encode())


def _bounded(max_keys: int, max_bytes: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(metadata: dict[str, Any]) -> dict[str, Any]:
        # Keys first: counting them is cheap, and a huge mapping is refused without serializing it.
        if len(metadata) > max_keys:
            raise ValueError(f"at most {max_keys} keys allowed, got {len(metadata)}")
        size = metadata_size(metadata)
        if size > max_bytes:
            raise ValueError(f"at most {max_bytes} bytes of JSON allowed, got {size}")
        return metadata

    return check


Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]
"""An ISO 8601 date-time string (or datetime) with a time part, normalized to aware UTC."""
StartMetadata = Annotated[
    dict[str, Any],
    BeforeValidator(_none_as_empty),
    AfterValidator(_bounded(MAX_START_METADATA_KEYS, MAX_START_METADATA_BYTES)),
]
EndMetadata = Annotated[
    dict[str, Any],
    BeforeValidator(_none_as_empty),
    AfterValidator(_bounded(MAX_END_METADATA_KEYS, MAX_END_METADATA_BYTES)),
]
_Username = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_USERNAME_LENGTH)]
_Path = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_PATH_LENGTH)]


class UserInfo(BaseModel):
    """Who runs the shell (seed 001): `username` (<= 100 chars) and `home` (<= 500 chars), both
    stripped of surrounding whitespace."""

    model_config = ConfigDict(frozen=True)

    username: _Username = Field(description="Login name of the shell's user (at most 100 characters).")
    home: _Path = Field(description="The user's home directory (at most 500 characters).")


class EnvironmentInfo(BaseModel):
    """Where the shell runs (seed 001): Python version, platform string and working directory
    (`cwd`, <= 500 chars, stripped)."""

    model_config = ConfigDict(frozen=True)

    python_version: str = Field(description="Python version of the shell, e.g. 3.13.0.")
    platform: str = Field(description="Platform string, e.g. Linux-6.5.0-x86_64 (platform.platform()).")
    cwd: _Path = Field(description="Working directory of the shell (at most 500 characters).")


class SessionStartEvent(BaseModel):
    """An admin shell started (seed 001 / seed 004 `track_session_start` arguments).

    Raises:
        pydantic.ValidationError: a rule of the module's table fails.
    """

    model_config = ConfigDict(frozen=True)

    event_version: Literal["1.0"] = Field(description='Event format version; must be "1.0".')
    event_id: str = Field(description="Unique id of this event, a UUID v4; a retry reuses it.")
    event_type: Literal["session_start"] = Field(default="session_start", description="Always session_start.")
    component_name: str = Field(
        pattern=COMPONENT_NAME_PATTERN,
        description="Component whose shell this is (letters, digits, _ and -), e.g. mahavishnu.",
    )
    shell_type: str = Field(description="Shell class name, e.g. MahavishnuShell.")
    timestamp: Timestamp = Field(
        description="Start time, ISO 8601 with a time part, e.g. 2026-02-06T12:34:56Z."
    )
    pid: int = Field(ge=1, le=MAX_PID, description="Process id of the shell (1-4194304).")
    user: UserInfo
    hostname: str = Field(description="Host name of the shell's machine.")
    environment: EnvironmentInfo
    metadata: StartMetadata = Field(
        default_factory=dict,
        description=f"Optional extra key/value data: at most {MAX_START_METADATA_KEYS} keys and"
        f" {MAX_START_METADATA_BYTES} bytes as JSON.",
    )

    @field_validator("event_id", mode="before")
    @classmethod
    def _uuid4(cls, value: object) -> str:
        text = str(value) if isinstance(value, uuid.UUID) else value
        if not isinstance(text, str):
            raise ValueError(f"Invalid UUID v4 format: expected a string, got {type(value).__name__}")
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            raise ValueError(f"Invalid UUID v4 format: {text!r}") from None
        if parsed.version != 4 or parsed.variant != uuid.RFC_4122:
            raise ValueError(f"Invalid UUID v4 format: {text!r} is a UUID of version {parsed.version}")
        return str(parsed)

    @field_validator("component_name", mode="before")
    @classmethod
    def _component_name(cls, value: object) -> object:
        # Checked here as well as by `pattern`, for a message that says what is allowed.
        if isinstance(value, str) and not _COMPONENT_NAME.fullmatch(value):
            raise ValueError(
                f"Invalid component_name {value!r}: only letters, digits, underscore and hyphen are allowed"
            )
        return value


class SessionEndEvent(BaseModel):
    """An admin shell exited (seed 001 / seed 004 `track_session_end` arguments).

    `metadata["exit_reason"]`, when present, becomes the session's end reason.

    Raises:
        pydantic.ValidationError: `timestamp` has no time part or is not ISO 8601, or a field is missing.
    """

    model_config = ConfigDict(frozen=True)

    event_type: Literal["session_end"] = Field(default="session_end", description="Always session_end.")
    session_id: str = Field(description="The session_id that track_session_start returned.")
    timestamp: Timestamp = Field(
        description="End time, ISO 8601 with a time part, e.g. 2026-02-06T13:45:07Z."
    )
    metadata: EndMetadata = Field(
        default_factory=dict,
        description='Optional extra key/value data, e.g. {"exit_reason": "user_exit"}: at most'
        f" {MAX_END_METADATA_KEYS} keys and {MAX_END_METADATA_BYTES} bytes as JSON.",
    )


class SessionStartResult(BaseModel):
    """What `handle_session_start` and `track_session_start` answer (seed 001).

    `status` is `"tracked"` (with `session_id`) or `"error"` (with `error`, and `session_id` None).
    """

    model_config = ConfigDict(frozen=True)

    session_id: str | None
    status: Literal["tracked", "error"]
    error: str | None = None


class SessionEndResult(BaseModel):
    """What `handle_session_end` and `track_session_end` answer (seed 001).

    `session_id` is always the id the end event named; `status` is `"ended"`, `"not_found"` (no such
    session) or `"error"` (with `error`).
    """

    model_config = ConfigDict(frozen=True)

    session_id: str
    status: Literal["ended", "error", "not_found"]
    error: str | None = None


def describe_validation_error(error: ValidationError) -> str:
    """`error` on one line: `field: message` per problem, joined by `; `, without pydantic's
    "Value error, " prefix (e.g. `event_id: Invalid UUID v4 format: 'abc'`)."""
    problems = []
    for problem in error.errors(include_url=False):
        location = ".".join(str(part) for part in problem["loc"]) or "event"
        problems.append(f"{location}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)
