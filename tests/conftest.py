"""Shared fixtures: the anyio backend, a loopback OTLP receiver, a fresh TracerProvider per test, a
private default store."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.otlp_receiver import OtlpReceiver


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP receiver (gRPC and HTTP) on 127.0.0.1 that decodes the protobuf."""
    with OtlpReceiver() as rx:
        yield rx


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    """A private SDK TracerProvider (the global one can be set only once per process)."""
    provider = TracerProvider()
    yield provider
    provider.shutdown()


@pytest.fixture
def private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default store path (`SHINZO_STORE_PATH`, with the admin state file next to it) under
    tmp_path, and no admin secret or OTLP endpoint from the environment: the admin tracking server's
    tests take it for all their tests (`pytest.mark.usefixtures`)."""
    for name in ("SHINZO_ADMIN_SECRET", "SESSION_BUDDY_SECRET", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHINZO_STORE_PATH", str(tmp_path / "sessions.db"))
    return tmp_path / "sessions.db"


# --- one suite, two mcp majors ---------------------------------------------------------------------

MCP_MAJOR = int(version("mcp").split(".", 1)[0])
"""The installed mcp major: `make test` runs the suite once per environment (mcp 2.x, mcp 1.x)."""

_MCP2_IMPORTS = ("mcp", "mcp_types", "fastmcp", "tests.mcp_servers", "benchmarks")
"""What a top-level test module written against mcp 2.x imports (`mcp.Client`, `MCPServer`,
`mcp_types`, FastMCP 4, the 2.x test servers, the benchmarks, which drive 2.x servers)."""


@functools.cache
def _mcp2_only(path: Path) -> str | None:
    """Why the top-level test module at `path` cannot run under mcp 1.x, or None when it can (it
    does not touch mcp, nor imports a test module that does: store, privacy, processor, ...)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    if any(name.startswith("shinzo_otel.admin") for name in imported):
        return "the admin tracking server (shinzo-otel serve) is built on mcp 2.x MCPServer"
    for name in sorted(imported):
        if any(name == root or name.startswith(f"{root}.") for root in _MCP2_IMPORTS):
            return f"imports {name} (mcp 2.x); tests/mcp1 repeats the instrumentation tests on mcp 1.x"
        helper = path.parent / f"{name.removeprefix('tests.')}.py"
        if name.startswith("tests.") and helper.is_file() and _mcp2_only(helper):
            return f"imports {name}, which needs mcp 2.x"
    return None


collect_ignore = ["mcp1"] if MCP_MAJOR >= 2 else []
"""tests/mcp1 imports mcp 1.x (low-level decorators, `ClientSession`, FastMCP 2 / 3)."""


class _NotForThisMajor(pytest.Item):
    """One skipped test standing for a whole module that is never imported."""

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        pytest.skip(self.reason)


class _Mcp2OnlyModule(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        reason = _mcp2_only(self.path)
        yield _NotForThisMajor.from_parent(self, name=self.path.stem, reason=reason or "")


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Under mcp 1.x, a top-level module written against mcp 2.x is one skipped test, with its reason."""
    if MCP_MAJOR < 2 and module_path.parent == Path(__file__).parent and _mcp2_only(module_path):
        return _Mcp2OnlyModule.from_parent(parent, path=module_path)
    return None
