"""The admin shell tracking server: `shinzo-otel serve`.

An instrumented `MCPServer` with `track_session_start` / `track_session_end`, served over streamable
HTTP at `http://127.0.0.1:8678/mcp` by default (seed 002), or over stdio. Alongside, plain HTTP:

- `GET /health` answers `{"status": "healthy"}` (seed 002's check).
- `GET /api/sessions` answers the recorded sessions as a JSON array, newest first (seed 002's
  monitoring example reads it). Query parameters are the options of `shinzo-otel sessions list`,
  parsed by the CLI's own model (`shinzo_otel.replay.query.SessionQuery`) into the same
  `SessionFilter`: `limit` (default 50), `type` (e.g. `admin_shell`), `origin`, `component`, `user`,
  `service`, `after` / `before` (ISO 8601 dates or date-times, UTC when naive), `duration_greater`
  (seconds; a session without an end counts until now), `status`, `incomplete=true` (no end
  recorded), `has_error=true`. Each element is the CLI's JSON summary
  (`sessions list --format json`: same fields, same `duration_seconds`, None while no end is
  recorded) plus seed 002's fields: `component_name`, `shell_type`, `pid`, `username`, `hostname`,
  `start_time`, `end_time`, `python_version`, `platform`, `working_directory`, `metadata`. A bad
  parameter answers 400 `{"error": "..."}`; with spans going to OTLP instead of the embedded store,
  501.

`/api/sessions` lists user names, hosts, directories and pids, so it is guarded like `/mcp`: the same
Host/Origin checks against DNS rebinding (the mcp SDK's `TransportSecurityMiddleware`, on for loopback
hosts: a foreign Host answers 421, a foreign Origin 403) and, when a secret is set, the same HS256
tokens, sent as `Authorization: Bearer <token>` (RFC 6750); a missing or refused token answers 401.

Spans go to the embedded store (`--store`, default `$SHINZO_STORE_PATH` or the XDG data directory)
unless an OTLP endpoint is given (`--exporter-endpoint` or `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`).
Authentication is on when `SHINZO_ADMIN_SECRET` or `SESSION_BUDDY_SECRET` is set (seed 004); without
it, `serve` listens on a loopback address only, unless told `allow_unauthenticated`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.to_thread
import uvicorn
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount

from shinzo_otel import _semconv as sc
from shinzo_otel.admin.auth import (
    AUTH_ERROR_PREFIX,
    DEFAULT_ISSUER,
    SESSION_BUDDY_SECRET,
    SHINZO_ADMIN_SECRET,
    AuthenticationError,
    token_verifier,
)
from shinzo_otel.admin.models import describe_validation_error
from shinzo_otel.admin.tools import register_admin_tools
from shinzo_otel.admin.tracker import DEFAULT_SERVICE_NAME, LifecycleManager, SessionTracker
from shinzo_otel.config import ExporterProtocol
from shinzo_otel.instrumentation import instrument_server
from shinzo_otel.replay.model import SessionSummary
from shinzo_otel.replay.query import SessionQuery
from shinzo_otel.replay.source import ReplayError, SessionFilter
from shinzo_otel.store import SessionStore, default_store_path

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8678
"""Seed 002's port."""
MCP_PATH: Final = "/mcp"
SESSIONS_PATH: Final = "/api/sessions"
HEALTH_PATH: Final = "/health"
SERVER_NAME: Final = DEFAULT_SERVICE_NAME
"""`service.name` of the tracking server's spans."""
_LOOPBACK_NAMES: Final = ("localhost",)

_logger = logging.getLogger(__name__)


class UnprotectedExposureError(ValueError):
    """`serve` was asked to listen beyond loopback without authentication (and without
    `allow_unauthenticated`)."""


def transport_security(host: str) -> TransportSecuritySettings:
    """The Host/Origin checks of a server listening on `host`: the mcp SDK's own defaults (on for
    127.0.0.1, localhost and ::1, where a browser page must not reach the server through a DNS name it
    controls; off elsewhere, where the Host header is whatever name clients use)."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP addresses (127.0.0.0/8, ::1); False for anything else,
    host names included (they may resolve anywhere)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TrackingServer:
    """The tracking server's parts: an instrumented `MCPServer` with the admin tools, and its app.

    Args:
        store_path: embedded store file; default `$SHINZO_STORE_PATH`, else the XDG data directory.
        exporter_endpoint: OTLP endpoint; default `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`; with none,
            spans go to the embedded store.
        exporter_protocol: `grpc` or `http/protobuf` (default per `ShinzoConfig`).
        state_path: open-session file; default next to the store (`SessionTracker`).
        secret: HS256 secret; default `$SHINZO_ADMIN_SECRET`, then `$SESSION_BUDDY_SECRET`; none: no auth.
            It guards the tools and `/api/sessions` alike.
        issuer: required `iss` of tokens; default `"session-buddy"`.
        tracer_provider: the TracerProvider to use (default: as `instrument_server` decides).
        meter_provider: the MeterProvider of the session-duration metric (as `instrument_server`).
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
        meter_provider: MeterProvider | None = None,
        lifecycle_manager: LifecycleManager | None = None,
    ) -> None:
        self.mcp_server: MCPServer = MCPServer(SERVER_NAME)
        config: dict[str, Any] = {"server_name": SERVER_NAME}
        # Unset options stay out of the config, so that its environment variables apply.
        for key, value in (
            ("exporter_endpoint", exporter_endpoint),
            ("exporter_protocol", exporter_protocol),
            ("store_path", None if store_path is None else str(store_path)),
        ):
            if value is not None:
                config[key] = value
        self.observability = instrument_server(
            self.mcp_server, config, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        self.tracker = SessionTracker(lifecycle_manager, pipeline=self.observability, state_path=state_path)
        register_admin_tools(self.mcp_server, self.tracker, secret=secret, issuer=issuer)
        self._verifier = token_verifier(secret, issuer=issuer)
        self._request_checks = TransportSecurityMiddleware(transport_security(DEFAULT_HOST))
        self._store_path: Path | None = None
        if self.observability.config.exporter_endpoint is None:
            self._store_path = Path(store_path) if store_path is not None else default_store_path()
        self.mcp_server.custom_route(HEALTH_PATH, methods=["GET"])(_health)
        self.mcp_server.custom_route(SESSIONS_PATH, methods=["GET"])(self._api_sessions)

    @property
    def authentication(self) -> str | None:
        """Where the secret that turns authentication on comes from (an environment variable name,
        or "a secret" when given), None when authentication is off."""
        return None if self._verifier is None else self._verifier.source

    def asgi_app(self, host: str = DEFAULT_HOST) -> Starlette:
        """The ASGI app: MCP at `/mcp`, `/health`, `/api/sessions`. Its lifespan runs the MCP session
        manager and, at shutdown, `aclose()` (flushes spans). `host` is where it listens: it sets the
        Host/Origin checks (`transport_security`) of `/mcp` and `/api/sessions` alike. Build it once
        per server."""
        security = transport_security(host)
        self._request_checks = TransportSecurityMiddleware(security)
        mcp_app = self.mcp_server.streamable_http_app(
            streamable_http_path=MCP_PATH, host=host, transport_security=security
        )

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            try:
                async with self.mcp_server.session_manager.run():
                    yield
            finally:
                await self.aclose()

        return Starlette(routes=[Mount("/", app=mcp_app)], lifespan=lifespan)

    async def aclose(self) -> None:
        """Close the tracker (its open admin sessions stay open, persisted: a shell that exits after
        a restart still ends its session), then flush and stop exporting."""
        self.tracker.close()
        await self.observability.shutdown()

    async def _api_sessions(self, request: Request) -> Response:
        refused = await self._request_checks.validate_request(request)
        if refused is not None:
            return refused
        refusal = self._authentication_refusal(request)
        if refusal is not None:
            return JSONResponse(
                {"error": f"{AUTH_ERROR_PREFIX}{refusal}"},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{SERVER_NAME}"'},
            )
        try:
            filters = SessionQuery.model_validate(dict(request.query_params)).to_filter()
        except ValidationError as error:
            return JSONResponse({"error": describe_validation_error(error)}, status_code=400)
        if self._store_path is None:
            return JSONResponse(
                {"error": "spans are exported over OTLP; this server has no embedded store to read"},
                status_code=501,
            )
        try:
            summaries = await anyio.to_thread.run_sync(partial(_read_sessions, self._store_path, filters))
        except ReplayError as error:
            return JSONResponse({"error": str(error)}, status_code=503)
        return JSONResponse([_session_record(summary) for summary in summaries])

    def _authentication_refusal(self, request: Request) -> str | None:
        """Why the request's bearer token is refused, None when it is accepted or auth is off."""
        if self._verifier is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            self._verifier.verify(token.strip() if scheme.lower() == "bearer" else None)
        except AuthenticationError as error:
            _logger.warning("Authentication failed for %s: %s", SESSIONS_PATH, error)
            return str(error)
        return None


async def _health(_: Request) -> Response:
    return JSONResponse({"status": "healthy"})


def _read_sessions(path: Path, filters: SessionFilter) -> list[SessionSummary]:
    if not path.is_file():
        return []  # nothing exported yet
    with SessionStore(path) as store:
        return store.list_sessions(filters)


def _session_record(summary: SessionSummary) -> dict[str, Any]:
    """The CLI's JSON summary plus seed 002's session fields (names of values already in it)."""
    record = summary.model_dump(mode="json")
    attributes = summary.attributes
    metadata_prefix = sc.SESSION_METADATA_PREFIX
    record.update(
        component_name=summary.component,
        shell_type=attributes.get(sc.ADMIN_SHELL_TYPE),
        pid=attributes.get(sc.PROCESS_PID),
        username=summary.user,
        hostname=summary.host,
        start_time=record["start"],
        end_time=record["end"],
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


def check_exposure(host: str, authentication: str | None, allow_unauthenticated: bool) -> None:
    """Refuse to listen beyond loopback without authentication: `/api/sessions` would show user
    names, hosts and directories, and the tools would accept any report, to anyone who can connect.

    Raises:
        UnprotectedExposureError: `host` is not loopback, no secret is set and
            `allow_unauthenticated` is False.
    """
    if is_loopback(host) or authentication is not None or allow_unauthenticated:
        return
    raise UnprotectedExposureError(
        f"refusing to listen on {host} without authentication: anyone who can reach it could list the"
        f" sessions (user names, hosts, directories) and report sessions. Set {SHINZO_ADMIN_SECRET}"
        f" (or {SESSION_BUDDY_SECRET}), or allow it explicitly (--allow-unauthenticated)."
    )


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when `host` is an IPv6 address).

    Raises:
        OSError: the address cannot be used (taken, not local, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise OSError(error.errno, f"cannot listen on {host}:{port}: {error.strerror or error}") from None


def _base_url(sock: socket.socket) -> str:
    address, port = sock.getsockname()[:2]
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


def _announce(message: str) -> None:
    # stderr: over stdio, stdout is the MCP channel.
    print(f"shinzo-otel serve: {message}", file=sys.stderr, flush=True)


async def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    transport: Transport = "streamable-http",
    log_level: str = "warning",
    allow_unauthenticated: bool = False,
    **options: Any,
) -> None:
    """Run the tracking server until interrupted (SIGINT / SIGTERM over HTTP, stdin EOF over stdio).

    Once listening it prints one line on stderr, e.g. `shinzo-otel serve: listening on
    http://127.0.0.1:8678 (MCP http://127.0.0.1:8678/mcp, GET /api/sessions, GET /health);
    authentication on (SHINZO_ADMIN_SECRET)`.

    Args:
        host, port: where to listen over HTTP (ignored for stdio); default 127.0.0.1:8678; port 0
            picks a free port (the line above says which).
        transport: `streamable-http` (default) or `stdio`.
        log_level: uvicorn's log level.
        allow_unauthenticated: listen on a non-loopback `host` even without a secret.
        options: `TrackingServer` arguments (`store_path`, `exporter_endpoint`, `state_path`, ...).

    Raises:
        UnprotectedExposureError: a non-loopback `host` without a secret nor `allow_unauthenticated`.
        OSError: the address cannot be listened on.
        ValueError: a bad exporter setting.
    """
    if transport == "stdio":
        tracking = TrackingServer(**options)
        _announce(f"MCP over stdio; authentication {_auth_state(tracking.authentication)}")
        try:
            await tracking.mcp_server.run_stdio_async()
        finally:
            await tracking.aclose()
        return
    resolved = token_verifier(options.get("secret"), issuer=options.get("issuer", DEFAULT_ISSUER))
    check_exposure(host, None if resolved is None else resolved.source, allow_unauthenticated)
    sock = _listen(host, port)
    try:
        tracking = TrackingServer(**options)
    except BaseException:
        sock.close()
        raise
    config = uvicorn.Config(tracking.asgi_app(host), log_level=log_level, lifespan="on")
    url = _base_url(sock)
    _announce(
        f"listening on {url} (MCP {url}{MCP_PATH}, GET {SESSIONS_PATH}, GET {HEALTH_PATH});"
        f" authentication {_auth_state(tracking.authentication)}"
    )
    await uvicorn.Server(config).serve(sockets=[sock])


def _auth_state(source: str | None) -> str:
    if source is None:
        return "off (no SHINZO_ADMIN_SECRET / SESSION_BUDDY_SECRET)"
    return f"on ({source})"


def run_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, **options: Any) -> None:
    """`serve` for synchronous callers (the `shinzo-otel serve` command); blocks until stopped."""
    anyio.run(partial(serve, host, port, **options))
