"""Admin shell session tracking (seeds 001-004) on the shinzo_otel OpenTelemetry pipeline.

Server side: `SessionTracker` turns validated start/end events into admin shell session spans;
`register_admin_tools` exposes it as the MCP tools `track_session_start` / `track_session_end`;
`shinzo_otel.admin.server` runs a ready tracking server (`shinzo-otel serve`). Shell side:
`SessionEventEmitter` calls those tools, and `AdminShellSession` / `AdminShell` emit start and end by
themselves.
"""

from shinzo_otel.admin.auth import AuthenticationError, TokenVerifier, create_token
from shinzo_otel.admin.emitter import SessionEventEmitter
from shinzo_otel.admin.models import (
    EnvironmentInfo,
    SessionEndEvent,
    SessionEndResult,
    SessionStartEvent,
    SessionStartResult,
    UserInfo,
)
from shinzo_otel.admin.shell import AdminShell, AdminShellSession
from shinzo_otel.admin.tools import register_admin_tools
from shinzo_otel.admin.tracker import LifecycleManager, SessionLifecycleManager, SessionTracker

__all__ = [
    "AdminShell",
    "AdminShellSession",
    "AuthenticationError",
    "EnvironmentInfo",
    "LifecycleManager",
    "SessionEndEvent",
    "SessionEndResult",
    "SessionEventEmitter",
    "SessionLifecycleManager",
    "SessionStartEvent",
    "SessionStartResult",
    "SessionTracker",
    "TokenVerifier",
    "UserInfo",
    "create_token",
    "register_admin_tools",
]
