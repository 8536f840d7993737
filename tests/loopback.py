"""Version-neutral test helpers (no mcp import, so that the tests of both mcp majors share them): a
loopback HTTP runner, instrumentation and processors exporting to the loopback OTLP receiver, span
selection and waiting."""

from __future__ import annotations

import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import uvicorn
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import Observability, ShinzoSpanProcessor, instrument_server
from tests.otlp_receiver import OtlpReceiver, ReceivedDataPoint, ReceivedSpan


@asynccontextmanager
async def serve_http(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1; yields the base URL.

    Args:
        sock: a bound socket to serve on (a port reserved earlier); default a new ephemeral port.
    """
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


async def wait_for_spans(
    receiver: OtlpReceiver, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 15.0
) -> list[ReceivedSpan]:
    """`OtlpReceiver.wait_for_spans` off the event loop, so an in-process server keeps running."""
    return await anyio.to_thread.run_sync(partial(receiver.wait_for_spans, predicate, timeout))


def spans_named(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    """The spans called `name`."""
    return [span for span in spans if span.name == name]


def server_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """The SERVER spans: one per MCP message."""
    return [span for span in spans if span.kind == "SERVER"]


def by_session(spans: list[ReceivedSpan]) -> dict[Any, list[ReceivedSpan]]:
    """`spans` grouped by their `session.id` (None: no session)."""
    groups: dict[Any, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        groups[span.attributes.get("session.id")].append(span)
    return groups


def operation_points(receiver: OtlpReceiver) -> list[ReceivedDataPoint]:
    """The `mcp.server.operation.duration` points `receiver` got."""
    return receiver.metrics()["mcp.server.operation.duration"]


def instrument_to_receiver(
    server: Any, receiver: OtlpReceiver, provider: TracerProvider, *, server_name: str, **config: Any
) -> Observability:
    """`instrument_server(server)` on `provider`, exporting over OTLP/HTTP to `receiver`; `config` adds
    settings. A test module binds its server name once:
    `_instrument = partial(instrument_to_receiver, server_name=...)`."""
    return instrument_server(
        server,
        {"server_name": server_name, "exporter_endpoint": receiver.http_endpoint, **config},
        tracer_provider=provider,
    )


def http_processor(receiver: OtlpReceiver, timeout: float = 5, **settings: Any) -> ShinzoSpanProcessor:
    """A processor exporting over OTLP/HTTP to `receiver`, `timeout` seconds per export (the exporter's
    timeout and `export_timeout_millis`); `settings` are the processor's other settings."""
    url = f"{receiver.http_endpoint}/v1/traces"
    settings["export_timeout_millis"] = int(timeout * 1000)
    return ShinzoSpanProcessor(lambda: OTLPSpanExporter(endpoint=url, timeout=timeout), settings)


def wait_until(condition: Callable[[], bool], seconds: float = 20) -> bool:
    """Poll `condition` until it holds (True) or `seconds` have passed (False); blocks the thread."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
