"""A tiny admin shell whose sessions are tracked as OpenTelemetry sessions.

Start a tracking server, then the shell, then look at the session:

    shinzo-otel serve                             # 127.0.0.1:8678
    python examples/admin_shell.py                # type Python; exit() or Ctrl-D ends the session
    curl 'http://127.0.0.1:8678/api/sessions?type=admin_shell'

The shell reports to `$SHINZO_ADMIN_ENDPOINT` (or `$SESSION_BUDDY_MCP_ENDPOINT`), default
`http://localhost:8678/mcp`. With no tracking server it says so and works untracked. Input can be
piped: `echo 'print(6 * 7)' | python examples/admin_shell.py`.
"""

from __future__ import annotations

import code
from collections.abc import Mapping
from typing import Any, ClassVar

from shinzo_otel.admin import AdminShell


class DemoShell(AdminShell, code.InteractiveConsole):
    """A Python REPL; `AdminShell` adds the session tracking (shell type: "DemoShell")."""

    component_name = "demo"
    session_metadata: ClassVar[Mapping[str, Any]] = {"component_version": "1.0.0"}

    def __init__(self) -> None:
        code.InteractiveConsole.__init__(self, locals={"shell": self})

    def run(self) -> None:
        self.start()
        if self.session_id is not None:
            banner = f"Session tracking: enabled (session {self.session_id})"
        else:
            banner = "Session tracking: disabled (no tracking server reachable); the shell works as usual"
        try:
            self.interact(banner=banner, exitmsg="")
        except SystemExit:
            pass  # exit() inside the shell
        finally:
            self.exit()


if __name__ == "__main__":
    DemoShell().run()
