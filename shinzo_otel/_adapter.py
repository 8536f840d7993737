"""The adapter of the installed mcp major, chosen once at import (STYLE.md item 13).

Everything above the adapters (`_tracing`, sessions, the processor, export, the store, the CLI) is
unaware of the mcp version; each adapter is the only module that reads its major's internals:
`_mcp1` for mcp 1.x (low-level `Server`, its `FastMCP`, standalone FastMCP 2 and 3), `_mcp2` for
mcp 2.x (`Server`, `MCPServer`, FastMCP 4).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Final, Protocol

from shinzo_otel._tracing import RequestTracer

MCP_MAJOR: Final = int(version("mcp").split(".", 1)[0])
"""The major version of the installed `mcp` distribution."""


class Adapter(Protocol):
    """What `instrument_server` needs from an adapter module."""

    def check_server(self, server: Any) -> None:
        """Raise TypeError unless `server` is a server of this major that the adapter instruments."""

    def lowlevel_server(self, server: Any) -> Any:
        """The low-level `Server` behind `server` (the key of the instrumented-server registry)."""

    def method_known(self, server: Any) -> Callable[[str], bool]:
        """Whether `server` handles a method outside `_tracing.SPEC_METHODS`."""

    def target_lookup(self, server: Any) -> Callable[[str, str], bool | None]:
        """Whether `server` has a tool or prompt of that name; None when it cannot tell."""

    def install(self, server: Any, tracer: RequestTracer) -> object:
        """Hook `tracer` into `server`; returns what `uninstall` needs."""

    def uninstall(self, server: Any, installed: object) -> None:
        """Undo `install`."""


adapter: Final[Adapter] = importlib.import_module(
    "shinzo_otel._mcp2" if MCP_MAJOR >= 2 else "shinzo_otel._mcp1"
)
"""The adapter module of the installed mcp."""

if TYPE_CHECKING:  # mypy checks that both adapters implement the protocol
    from shinzo_otel import _mcp1, _mcp2

    _ADAPTERS: tuple[Adapter, ...] = (_mcp1, _mcp2)
