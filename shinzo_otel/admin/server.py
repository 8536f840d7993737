"""The admin shell tracking server: `shinzo-otel serve` (or `python -m shinzo_otel.admin.server`).

An instrumented `MCPServer` with `track_session_start` / `track_session_end`, served over streamable
HTTP at `http://127.0.0.1:8678/mcp` by default (seed 002), or over stdio. Alongside, plain HTTP:

- `GET /health` answers `{"status": "healthy"}` (seed 002's check).
- `GET /api/sessions` answers the recorded sessions as a JSON array, newest first (seed 002's
  monitoring example reads it). Query parameters are the options of `shinzo-otel sessions list`,
  with the same meaning (`SessionFilter`): `limit` (default 50), `type` (e.g. `admin_shell`),
  `component`, `user`, `service`, `after` / `before` (ISO 8601 dates or date-times, UTC when
  naive), `duration_greater` (seconds), `incomplete=true`, `has_error=true`.
  Each element is the CLI's JSON summary plus seed 002's fields: `component_name`, `shell_type`,
  `pid`, `username`, `hostname`, `start_time`, `end_time`, `python_version`, `platform`,
  `working_directory`, `metadata`; `duration_seconds` of a session still active is the time it has
  been running, so long-running shells can be found. A bad parameter answers 400
  `{"error": "..."}`; with spans going to OTLP instead of the embedded store, 501.

Spans go to the embedded store (`--store`, default `$SHINZO_STORE_PATH` or the XDG data directory)
unless an OTLP endpoint is given (`--exporter-endpoint` or `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`).
Authentication is on when `SHINZO_ADMIN_SECRET` or `SESSION_BUDDY_SECRET` is set (seed 004).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.to_thread
import uvicorn
from mcp.server import MCPServer
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount

from shinzo_otel import _semconv as sc
from shinzo_otel.admin.auth import DEFAULT_ISSUER
from shinzo_otel.admin.models import describe_validation_error
from shinzo_otel.admin.tools import register_admin_tools
from shinzo_otel.admin.tracker import SessionLifecycleManager, SessionTracker
from shinzo_otel.config import ExporterProtocol
from shinzo_otel.instrumentation import instrument_server
from shinzo_otel.replay.model import SessionSummary
from shinzo_otel.replay.source import ReplayError, SessionFilter
from shinzo_otel.store import SessionStore, default_store_path

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8678
"""Seed 002's port."""
MCP_PATH: Final = "/mcp"
SERVER_NAME: Final = "shinzo-otel-admin"
"""`service.name` of the tracking server's spans."""
_DEFAULT_LIMIT: Final = 50
_NS_PER_SECOND: Final = 1_000_000_000

_logger = logging.getLogger(__name__)


class TrackingServer:
    """The tracking server's parts: an instrumented `MCPServer` with the admin tools, and its app.

    Args:
        store_path: embedded store file; default `$SHINZO_STORE_PATH`, else the XDG data directory.
        exporter_endpoint: OTLP endpoint; default `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`; with none,
            spans go to the embedded store.
        exporter_protocol: `grpc` or `http/protobuf` (default per `ShinzoConfig`).
        state_path: open-session file; default next to the store (`SessionTracker`).
        secret: HS256 secret; default `$SHINZO_ADMIN_SECRET`, then `$SESSION_BUDDY_SECRET`; none: no auth.
        issuer: required `iss` of tokens; default `"session-buddy"`.
        tracer_provider: the TracerProvider to use (default: as `instrument_server` decides).
        lifecycle_manager: optional seed 003 lifecycle manager for the tracker.

    Raises:
        ValueError: a bad exporter setting (from `instrument_server`).
    """

    def __init__(
        self,
        *,
        store_path: str | Path | None = None,
        exporter_endpoint: str | None = None,
        exporter_protocol: ExporterProtocol | None = None,
        state_path: str | Path | None = None,
        secret: str | None = None,
        issuer: str = DEFAULT_ISSUER,
        tracer_provider: TracerProvider | None = None,
        lifecycle_manager: SessionLifecycleManager | None = None,
    ) -> None:
        self.mcp_server: MCPServer = MCPServer(SERVER_NAME)
        self.observability = instrument_server(
            self.mcp_server,
            {
                "server_name": SERVER_NAME,
                "exporter_endpoint": exporter_endpoint,
                "exporter_protocol": exporter_protocol,
                "store_path": None if store_path is None else str(store_path),
            },
            tracer_provider=tracer_provider,
        )
        self.tracker = SessionTracker(self.observability, lifecycle_manager, state_path=state_path)
        register_admin_tools(self.mcp_server, self.tracker, secret=secret, issuer=issuer)
        self._store_path: Path | None = None
        if self.observability.config.resolved_endpoint() is None:
            self._store_path = Path(store_path) if store_path is not None else default_store_path()
        self.mcp_server.custom_route("/health", methods=["GET"])(_health)
        self.mcp_server.custom_route("/api/sessions", methods=["GET"])(self._api_sessions)

    def asgi_app(self, host: str = DEFAULT_HOST) -> Starlette:
        """The ASGI app: MCP at `/mcp`, `/health`, `/api/sessions`. Its lifespan runs the MCP session
        manager and, at shutdown, `aclose()` (flushes spans). `host` sets the MCP endpoint's DNS
        rebinding protection (on for loopback hosts, as the SDK does). Build it once per server."""
        mcp_app = self.mcp_server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            try:
                async with self.mcp_server.session_manager.run():
                    yield
            finally:
                await self.aclose()

        return Starlette(routes=[Mount("/", app=mcp_app)], lifespan=lifespan)

    async def aclose(self) -> None:
        """Flush and stop exporting, and close the state file. Open admin sessions stay open (they are
        persisted): a shell that exits after a restart still ends its session."""
        await self.observability.shutdown()
        self.tracker.close()

    async def _api_sessions(self, request: Request) -> Response:
        try:
            query = _SessionQuery.model_validate(dict(request.query_params))
        except ValidationError as error:
            return JSONResponse({"error": describe_validation_error(error)}, status_code=400)
        if self._store_path is None:
            return JSONResponse(
                {"error": "spans are exported over OTLP; this server has no embedded store to read"},
                status_code=501,
            )
        try:
            summaries = await anyio.to_thread.run_sync(partial(_read_sessions, self._store_path, query))
        except ReplayError as error:
            return JSONResponse({"error": str(error)}, status_code=503)
        now_ns = time.time_ns()
        return JSONResponse([_session_record(summary, now_ns) for summary in summaries])


async def _health(_: Request) -> Response:
    return JSONResponse({"status": "healthy"})


class _SessionQuery(BaseModel):
    """Query parameters of `GET /api/sessions`: the options of `shinzo-otel sessions list`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(default=_DEFAULT_LIMIT, ge=1)
    type: str | None = None
    component: str | None = None
    user: str | None = None
    service: str | None = None
    after: datetime | None = None
    before: datetime | None = None
    duration_greater: float | None = Field(default=None, ge=0)
    incomplete: bool = False
    has_error: bool = False

    def store_filter(self) -> SessionFilter:
        """The same `SessionFilter` the CLI builds from the same options."""
        return SessionFilter(
            limit=self.limit,
            session_type=self.type,
            component=self.component,
            user=self.user,
            service=self.service,
            started_after=self.after,
            started_before=self.before,
            min_duration_seconds=self.duration_greater,
            status="active" if self.incomplete else None,
            has_error=True if self.has_error else None,
        )


def _read_sessions(path: Path, query: _SessionQuery) -> list[SessionSummary]:
    if not path.is_file():
        return []  # nothing exported yet
    with SessionStore(path) as store:
        return store.list_sessions(query.store_filter())


def _session_record(summary: SessionSummary, now_ns: int) -> dict[str, Any]:
    """The CLI's JSON summary plus seed 002's session fields."""
    record = summary.model_dump(mode="json")
    attributes = summary.attributes
    metadata_prefix = sc.SESSION_METADATA_PREFIX
    record.update(
        component_name=attributes.get(sc.ADMIN_COMPONENT),
        shell_type=attributes.get(sc.ADMIN_SHELL_TYPE),
        pid=attributes.get(sc.PROCESS_PID),
        username=attributes.get(sc.USER_NAME),
        hostname=attributes.get(sc.HOST_NAME),
        start_time=record["start"],
        end_time=record["end"],
        duration_seconds=((summary.end_ns or now_ns) - summary.start_ns) / _NS_PER_SECOND,
        python_version=attributes.get(sc.PROCESS_RUNTIME_VERSION),
        platform=attributes.get(sc.OS_DESCRIPTION),
        working_directory=attributes.get(sc.PROCESS_WORKING_DIRECTORY),
        metadata={
            key.removeprefix(metadata_prefix): value
            for key, value in attributes.items()
            if key.startswith(metadata_prefix)
        },
    )
    return record


# --- running it -------------------------------------------------------------------------------------

Transport = Literal["streamable-http", "stdio"]


async def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    transport: Transport = "streamable-http",
    log_level: str = "warning",
    **options: Any,
) -> None:
    """Run the tracking server until interrupted (SIGINT / SIGTERM over HTTP, stdin EOF over stdio).

    Args:
        host, port: where to listen over HTTP (ignored for stdio); default 127.0.0.1:8678.
        transport: `streamable-http` (default) or `stdio`.
        log_level: uvicorn's log level.
        options: `TrackingServer` arguments (`store_path`, `exporter_endpoint`, `state_path`, ...).
    """
    tracking = TrackingServer(**options)
    if transport == "stdio":
        try:
            await tracking.mcp_server.run_stdio_async()
        finally:
            await tracking.aclose()
        return
    config = uvicorn.Config(tracking.asgi_app(host), host=host, port=port, log_level=log_level, lifespan="on")
    await uvicorn.Server(config).serve()


def run_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, **options: Any) -> None:
    """`serve` for synchronous callers (the `shinzo-otel serve` command); blocks until stopped."""
    anyio.run(partial(serve, host, port, **options))
