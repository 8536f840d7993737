"""One-line session tracking for an admin shell: a context manager, or a base class (seed 002).

    with AdminShellSession("mahavishnu", shell_type="MahavishnuShell"):
        run_repl()

    class MahavishnuShell(AdminShell):
        component_name = "mahavishnu"

Both emit the start and the end by themselves; an `atexit` hook ends a session the shell forgot to
end (interpreter exit without `exit()`). Tracking never breaks the shell: without a tracking server
`session_id` is None and the shell runs as usual (seed 002, "graceful degradation").
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Final, TypeVar

import anyio

from shinzo_otel.admin.emitter import SessionEventEmitter

USER_EXIT: Final = "user_exit"
"""`exit_reason` of a clean exit (seed 004)."""
ERROR_EXIT: Final = "error"
"""`exit_reason` when the `with` block raised."""
PROCESS_EXIT: Final = "process_exit"
"""`exit_reason` when the interpreter exits with the session still open (the atexit hook)."""

_T = TypeVar("_T")


def _run_blocking(function: Callable[[], Awaitable[_T]], default: _T) -> _T:
    """Run `function` to completion from synchronous code; `default` if it could not run.

    In a thread with a running event loop (a sync call from async code) it runs on a helper thread,
    since that loop cannot be re-entered; the caller waits at most the emitter's timeout.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(function)
    results: list[_T] = []
    worker = threading.Thread(target=lambda: results.append(anyio.run(function)), daemon=True)
    worker.start()
    worker.join()
    return results[0] if results else default


class AdminShellSession:
    """Tracks one admin shell session: start on enter, end on exit, and at interpreter exit.

    Args:
        component_name: the component whose shell this is, e.g. `mahavishnu`.
        shell_type: the shell class name recorded with the session; default `"AdminShell"`.
        metadata: extra key/value data recorded with the session (e.g. the component version).
        emitter: the emitter to use; default `SessionEventEmitter(component_name)` configured from the
            environment (`SHINZO_ADMIN_ENDPOINT` / `SESSION_BUDDY_MCP_ENDPOINT`, secrets likewise).

    Use `with` (blocking, at most the emitter's timeout per event) or `async with`, or call
    `start()` / `end()` (or `astart()` / `aend()`) yourself. Nothing here raises because tracking
    failed.
    """

    def __init__(
        self,
        component_name: str,
        *,
        shell_type: str = "AdminShell",
        metadata: Mapping[str, Any] | None = None,
        emitter: SessionEventEmitter | None = None,
    ) -> None:
        self.emitter = emitter or SessionEventEmitter(component_name)
        self.shell_type = shell_type
        self.metadata = dict(metadata or {})
        self.session_id: str | None = None
        """The tracked session's id; None before start, after end, or when tracking is unavailable."""

    async def astart(self) -> str | None:
        """Emit the start event (once); the session id, or None if the session is not tracked."""
        if self.session_id is None:
            self.session_id = await self.emitter.emit_session_start(self.shell_type, self.metadata)
            if self.session_id is not None:
                atexit.register(self._at_exit)
        return self.session_id

    async def aend(self, exit_reason: str = USER_EXIT) -> bool:
        """Emit the end event of a tracked session; True if the server recorded it.

        The session counts as ended locally either way (no second end is sent); a stuck session can
        be ended with `shinzo-otel sessions end ID`.
        """
        session_id, self.session_id = self.session_id, None
        if session_id is None:
            return False
        atexit.unregister(self._at_exit)
        return await self.emitter.emit_session_end(session_id, {"exit_reason": exit_reason})

    def start(self) -> str | None:
        """`astart` for synchronous code."""
        return _run_blocking(self.astart, None)

    def end(self, exit_reason: str = USER_EXIT) -> bool:
        """`aend` for synchronous code."""
        return _run_blocking(lambda: self.aend(exit_reason), False)

    def _at_exit(self) -> None:
        self.end(PROCESS_EXIT)

    def __enter__(self) -> AdminShellSession:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.end(USER_EXIT if exc_type is None else ERROR_EXIT)

    async def __aenter__(self) -> AdminShellSession:
        await self.astart()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aend(USER_EXIT if exc_type is None else ERROR_EXIT)


class AdminShell:
    """Base (or mixin) for admin shells: `start()` reports the session start, `exit()` its end.

    Set `component_name` on the subclass; the shell type recorded is the subclass's name, and
    `session_metadata` (a class attribute) goes with the start event. Override `start` / `exit` to
    run your REPL and clean up, calling `super()` (seed 002: "any shell extending AdminShell gets
    session tracking automatically"). An interpreter exit without `exit()` still ends the session.

    `admin_session` is the shell's `AdminShellSession`, `session_emitter` the `SessionEventEmitter`
    it reports through (seed 002 calls it `session_tracker`: `shell.session_tracker.available`).
    """

    component_name: ClassVar[str] = "admin-shell"
    session_metadata: ClassVar[Mapping[str, Any]] = {}

    @property
    def admin_session(self) -> AdminShellSession:
        """This shell's `AdminShellSession`, created on first use."""
        session: AdminShellSession | None = self.__dict__.get("_shinzo_admin_session")
        if session is None:
            session = AdminShellSession(
                self.component_name, shell_type=type(self).__name__, metadata=self.session_metadata
            )
            self.__dict__["_shinzo_admin_session"] = session
        return session

    @property
    def session_id(self) -> str | None:
        """The tracked session's id, or None (not started, ended, or tracking unavailable)."""
        return self.admin_session.session_id

    @property
    def session_emitter(self) -> SessionEventEmitter:
        """The emitter that reports this shell's session start and end to the tracking server."""
        return self.admin_session.emitter

    @session_emitter.setter
    def session_emitter(self, emitter: SessionEventEmitter) -> None:
        self.admin_session.emitter = emitter

    # Seed 002's name for the emitter: `shell.session_tracker.available`, and its tests replace it
    # (`shell.session_tracker = mock_emitter`). It is not a `SessionTracker` (the server side).
    session_tracker = session_emitter

    def start(self) -> None:
        """Report the session start (blocking, bounded by the emitter's timeout)."""
        self.admin_session.start()

    def exit(self) -> None:
        """Report the session end (blocking, bounded by the emitter's timeout)."""
        self.admin_session.end(USER_EXIT)
