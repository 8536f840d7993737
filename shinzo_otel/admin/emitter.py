"""Shell side: `SessionEventEmitter` reports an admin shell's start and end to a tracking server.

Each event is one call of the `track_session_start` / `track_session_end` tool over a real MCP
transport (streamable HTTP, or a stdio subprocess), bounded by a timeout. Tracking never gets in the
shell's way (seed 002, "graceful degradation"): every failure is logged and answered with None /
False, and after `failure_threshold` consecutive failures a circuit breaker stops calling for
`open_seconds` (seed 002: 3 failures, 60 s), then lets the next call through to probe the server.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import platform
import re
import socket
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters

from shinzo_otel._circuit_breaker import CircuitBreaker
from shinzo_otel.admin.auth import DEFAULT_ISSUER, create_token, resolve_secret
from shinzo_otel.admin.models import (
    COMPONENT_NAME_PATTERN,
    EVENT_VERSION,
    MAX_PATH_LENGTH,
    MAX_USERNAME_LENGTH,
    TRACK_SESSION_END,
    TRACK_SESSION_START,
)

SHINZO_ADMIN_ENDPOINT: Final = "SHINZO_ADMIN_ENDPOINT"
"""Environment variable: streamable HTTP URL of the tracking server's MCP endpoint (ours, read first)."""
SESSION_BUDDY_MCP_ENDPOINT: Final = "SESSION_BUDDY_MCP_ENDPOINT"
"""Environment variable: the same under seed 002's name, read when `SHINZO_ADMIN_ENDPOINT` is unset."""
DEFAULT_ENDPOINT: Final = "http://localhost:8678/mcp"
"""Where the tracking server listens by default (seed 002; `shinzo-otel serve`)."""
DEFAULT_TIMEOUT_SECONDS: Final = 5.0
DEFAULT_FAILURE_THRESHOLD: Final = 3
DEFAULT_OPEN_SECONDS: Final = 60.0

_logger = logging.getLogger(__name__)


def resolve_endpoint(endpoint: str | StdioServerParameters | None = None) -> str | StdioServerParameters:
    """`endpoint` if given, else `$SHINZO_ADMIN_ENDPOINT`, else `$SESSION_BUDDY_MCP_ENDPOINT`, else
    `DEFAULT_ENDPOINT`. Empty environment values count as unset."""
    if endpoint is not None:
        return endpoint
    return (
        os.environ.get(SHINZO_ADMIN_ENDPOINT)
        or os.environ.get(SESSION_BUDDY_MCP_ENDPOINT)
        or DEFAULT_ENDPOINT
    )


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in the environment nor in the password database
        return "unknown"


def _result_payload(result: types.CallToolResult) -> dict[str, Any]:
    """The result dict of one of our tools, also when it is a tool error (`isError`, status "error":
    the server answered, the event was refused). Raises ValueError for any other shape."""
    text = next((block.text for block in result.content if isinstance(block, types.TextContent)), "")
    payload = result.structured_content
    if payload is None:
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
    if not isinstance(payload, dict) or "status" not in payload:
        kind = "tool error" if result.is_error else "unexpected tool result"
        raise ValueError(f"{kind}: {text or payload!r}")
    return payload


class SessionEventEmitter:
    """Reports one component's admin shell sessions to a tracking server (seed 002's emitter).

    Args:
        component_name: the component (seed 001 rule: letters, digits, `_` and `-`), e.g. `mahavishnu`.
        endpoint: the tracking server: a streamable HTTP URL, or `StdioServerParameters` to start it
            as a subprocess per call. Default: see `resolve_endpoint` (`http://localhost:8678/mcp`).
        token: a JWT sent with every call, for servers with authentication on.
        secret: shared HS256 secret; when given (or found in `$SHINZO_ADMIN_SECRET` /
            `$SESSION_BUDDY_SECRET` and no `token` is given), a short-lived token is minted per call.
        issuer: `iss` of minted tokens; default `"session-buddy"` (seed 004).
        timeout_seconds: bound of one call, connection included; default 5.
        failure_threshold: consecutive failures that open the circuit breaker; default 3 (seed 002).
        open_seconds: how long the open circuit skips calls; default 60 (seed 002).

    Raises:
        ValueError: an argument is out of range or `component_name` breaks the seed 001 rule.

    Failures (server down, timeout, refused token, invalid event) never raise: the emit methods log
    them and answer None / False. Use from one event loop at a time.
    """

    def __init__(
        self,
        component_name: str,
        *,
        endpoint: str | StdioServerParameters | None = None,
        token: str | None = None,
        secret: str | None = None,
        issuer: str = DEFAULT_ISSUER,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        open_seconds: float = DEFAULT_OPEN_SECONDS,
    ) -> None:
        if not re.fullmatch(COMPONENT_NAME_PATTERN, component_name):
            raise ValueError(f"component_name {component_name!r} must match {COMPONENT_NAME_PATTERN}")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.component_name = component_name
        self.endpoint = resolve_endpoint(endpoint)
        self._token = token
        resolved = None if token is not None else resolve_secret(secret)
        self._secret = None if resolved is None else resolved[0]
        self._issuer = issuer
        self._timeout_seconds = timeout_seconds
        self._breaker = CircuitBreaker(failure_threshold, open_seconds)  # checks both arguments

    @property
    def available(self) -> bool:
        """False while the circuit breaker is open (calls are skipped), True otherwise."""
        return self._breaker.allow()

    async def emit_session_start(
        self, shell_type: str, metadata: Mapping[str, Any] | None = None
    ) -> str | None:
        """Report that this process's shell started.

        Args:
            shell_type: the shell class name, e.g. `MahavishnuShell`.
            metadata: extra key/value data recorded with the session.

        Returns:
            The session id, or None when the session is not tracked (see the log for why).
        """
        event: dict[str, Any] = {
            "event_version": EVENT_VERSION,
            "event_id": str(uuid.uuid4()),
            "event_type": "session_start",
            "component_name": self.component_name,
            "shell_type": shell_type,
            "timestamp": _utc_now(),
            "pid": os.getpid(),
            # Cut to the server's limits (seed 001) so that a deep directory does not lose the session.
            "user": {
                "username": _username()[:MAX_USERNAME_LENGTH],
                "home": os.path.expanduser("~")[:MAX_PATH_LENGTH],
            },
            "hostname": socket.gethostname(),
            "environment": {
                "python_version": platform.python_version(),
                "platform": platform.platform(),
                "cwd": os.getcwd()[:MAX_PATH_LENGTH],
            },
            "metadata": dict(metadata or {}),
        }
        payload = await self._call(TRACK_SESSION_START, event)
        if payload is None:
            return None
        if payload.get("status") != "tracked":
            _logger.warning("session start not tracked: %s", payload.get("error"))
            return None
        session_id = payload.get("session_id")
        return session_id if isinstance(session_id, str) else None

    async def emit_session_end(self, session_id: str, metadata: Mapping[str, Any] | None = None) -> bool:
        """Report that the shell of `session_id` exited.

        Args:
            session_id: what `emit_session_start` returned.
            metadata: extra key/value data; `exit_reason` becomes the session's end reason.

        Returns:
            True if the server ended the session, False otherwise (see the log for why).
        """
        event = {
            "event_type": "session_end",
            "session_id": session_id,
            "timestamp": _utc_now(),
            "metadata": dict(metadata or {}),
        }
        payload = await self._call(TRACK_SESSION_END, event)
        if payload is None:
            return False
        if payload.get("status") != "ended":
            _logger.warning("session end not recorded (%s): %s", payload.get("status"), payload.get("error"))
            return False
        return True

    def _auth_token(self) -> str | None:
        if self._secret is not None:
            return create_token(self._secret, issuer=self._issuer)
        return self._token

    async def _call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        """Call `tool` once; its result dict, or None after a failure or while the circuit is open."""
        if not self._breaker.allow():
            _logger.debug("session tracking paused (circuit breaker open): %s not sent", tool)
            return None
        token = self._auth_token()
        if token is not None:
            arguments = {**arguments, "token": token}
        try:
            with anyio.fail_after(self._timeout_seconds):
                async with Client(self.endpoint) as client:
                    result = await client.call_tool(tool, arguments)
            payload = _result_payload(result)
        except Exception as error:  # graceful degradation (seed 002): the shell goes on untracked
            _logger.info(
                "session tracking unavailable (%s): %s failed: %r", self._describe_endpoint(), tool, error
            )
            if self._breaker.record_failure():
                _logger.warning(
                    "Circuit breaker opened: session tracking paused for %.1f s after repeated failures",
                    self._breaker.open_seconds,
                )
            return None
        if self._breaker.record_success():
            _logger.info("Circuit breaker closed: session tracking resumed (%s)", self._describe_endpoint())
        return payload

    def _describe_endpoint(self) -> str:
        if isinstance(self.endpoint, StdioServerParameters):
            return f"stdio: {self.endpoint.command}"
        return self.endpoint
