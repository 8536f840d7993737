"""Version-neutral test helpers: a loopback HTTP runner and span waiting (no mcp import)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import uvicorn

from tests.otlp_receiver import OtlpReceiver, ReceivedSpan


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
