"""Overhead per tools/call: uninstrumented, the SDK's built-in OTel middleware, shinzo_otel off/on.

Same server object kind and same transport for every variant, measured interleaved in one process:
for every (server kind, transport) cell, each round runs one block of calls per variant, in an order
rotated every round (A B C D, B C D A, ...) so that drift and position effects cancel out. Every call
is timed; a variant's figure is the median over all its calls (robust to the odd GC or scheduler
pause, which on the HTTP path would otherwise swamp a block mean).

Variants (the server is built once per variant):
- `none`: the SDK's built-in `OpenTelemetryMiddleware` removed: no server span at all.
- `sdk`: the SDK default, the built-in middleware, with a recording global SDK `TracerProvider` and a
  `BatchSpanProcessor` exporting OTLP/gRPC to a loopback receiver.
- `shinzo_off`: `instrument_server` with argument collection off (the default), its own provider,
  `ShinzoSpanProcessor` (privacy rules on) exporting OTLP/gRPC to the same receiver.
- `shinzo_on`: the same with argument collection on: arguments and results are JSON-encoded on the
  request path and scrubbed by the default privacy rules on the export thread (the arguments hold an
  email address, which is redacted).

The global provider is set for every variant: the SDK client (`mcp.Client`) opens a CLIENT span per
request through it, so the client-side cost is the same in every variant and cancels out of the
"added" figures. Every block ends with a flush of every processor involved, outside the timed region:
blocks start with empty queues, no export runs inside a timed block unless the 5 s timer fires, and
each variant's export work is not charged to the next one. Hence the figures are request-path cost;
the export-thread cost per span (privacy, OTLP encoding) is what `bench_processor` measures.

added µs = median(variant) − median(none) for the same cell; ratio = shinzo added / sdk added
(None when the SDK's added µs is not positive, i.e. lost in the noise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
from mcp import Client
from mcp.server._otel import OpenTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from benchmarks import median, percentile, quiet_logging, table
from shinzo_otel import Observability, instrument_server
from tests.mcp_servers import make_lowlevel_server, make_mcpserver, serve_http
from tests.otlp_receiver import OtlpReceiver

VARIANTS = ("none", "sdk", "shinzo_off", "shinzo_on")
KINDS: dict[str, Callable[[], Any]] = {"lowlevel": make_lowlevel_server, "mcpserver": make_mcpserver}
TRANSPORTS = ("legacy", "inproc", "http")
"""`legacy`: `Client(server, mode="legacy")`, JSON-RPC over memory streams, one session.
`inproc`: `Client(server)`, the 2026-07-28 era, direct dispatch, no session.
`http`: streamable HTTP (stateful, legacy handshake) to uvicorn on 127.0.0.1, same event loop."""

ARGUMENTS = {"text": "reply to bob@example.com"}
_FULL = {"rounds": 30, "calls": {"legacy": 150, "inproc": 250, "http": 60}, "warmup": 30}
_QUICK = {"rounds": 2, "calls": {"legacy": 5, "inproc": 5, "http": 3}, "warmup": 2}


class _Variant:
    """One server per (kind, variant) and what to flush after each of its blocks."""

    def __init__(self, server: Any, flush: list[Callable[[], object]], observability: Observability | None):
        self.server = server
        self.flush = flush
        self.observability = observability


def _build(kind: str, variant: str, endpoint: str, global_bsp: BatchSpanProcessor) -> _Variant:
    server = KINDS[kind]()
    middleware: list[Any] = server.middleware
    if variant == "none":
        middleware[:] = [m for m in middleware if not isinstance(m, OpenTelemetryMiddleware)]
        return _Variant(server, [global_bsp.force_flush], None)
    if variant == "sdk":
        if not any(isinstance(m, OpenTelemetryMiddleware) for m in middleware):
            raise RuntimeError("the SDK's built-in OpenTelemetryMiddleware is not installed by default")
        return _Variant(server, [global_bsp.force_flush], None)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"bench-{kind}-{variant}"}))
    observability = instrument_server(
        server,
        {
            "server_name": f"bench-{kind}",
            "exporter_endpoint": endpoint,
            "exporter_protocol": "grpc",
            "enable_argument_collection": variant == "shinzo_on",
        },
        tracer_provider=provider,
    )
    return _Variant(server, [global_bsp.force_flush, observability.processor.force_flush], observability)


async def _open_client(stack: AsyncExitStack, server: Any, transport: str) -> Client:
    if transport == "legacy":
        target: Any = server
    elif transport == "inproc":
        return await stack.enter_async_context(Client(server))
    else:
        url = await stack.enter_async_context(serve_http(server.streamable_http_app()))
        target = f"{url}/mcp"
    return await stack.enter_async_context(Client(target, mode="legacy"))


async def _block(client: Client, calls: int) -> list[float]:
    """µs of each of `calls` sequential tools/call."""
    times: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        await client.call_tool("echo", ARGUMENTS)
        times.append((time.perf_counter() - started) * 1e6)
    return times


def _ratio(ours: float, sdk: float) -> float | None:
    return round(ours / sdk, 2) if sdk > 0 else None


async def _measure(quick: bool) -> dict[str, Any]:
    sizes = _QUICK if quick else _FULL
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        raise RuntimeError("bench_overhead sets the global TracerProvider: run it in a fresh process")
    quiet_logging()
    with OtlpReceiver() as receiver:
        global_provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "bench-global"}))
        global_bsp = BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True))
        global_provider.add_span_processor(global_bsp)
        trace.set_tracer_provider(global_provider)
        variants = {
            (kind, variant): _build(kind, variant, receiver.grpc_endpoint, global_bsp)
            for kind in KINDS
            for variant in VARIANTS
        }
        samples: dict[tuple[str, str, str], list[float]] = {}
        async with AsyncExitStack() as stack:
            clients = {
                (kind, transport, variant): await _open_client(
                    stack, variants[kind, variant].server, transport
                )
                for kind in KINDS
                for transport in TRANSPORTS
                for variant in VARIANTS
            }
            for (kind, _, variant), client in clients.items():
                await _block(client, sizes["warmup"])
                for flush in variants[kind, variant].flush:
                    flush()
            started = time.monotonic()
            for round_index in range(sizes["rounds"]):
                shift = round_index % len(VARIANTS)
                order = VARIANTS[shift:] + VARIANTS[:shift]
                for transport in TRANSPORTS:
                    calls = sizes["calls"][transport]
                    for kind in KINDS:
                        for variant in order:
                            times = await _block(clients[kind, transport, variant], calls)
                            samples.setdefault((kind, transport, variant), []).extend(times)
                            for flush in variants[kind, variant].flush:
                                flush()
                receiver.clear()
            elapsed = time.monotonic() - started
        for variant in variants.values():
            if variant.observability is not None:
                await variant.observability.shutdown()
        global_provider.shutdown()
    return _report(samples, sizes, elapsed)


def _report(
    samples: dict[tuple[str, str, str], list[float]], sizes: dict[str, Any], elapsed: float
) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    for kind in KINDS:
        for transport in TRANSPORTS:
            medians = {variant: median(samples[kind, transport, variant]) for variant in VARIANTS}
            spread = {
                variant: percentile(samples[kind, transport, variant], 75)
                - percentile(samples[kind, transport, variant], 25)
                for variant in VARIANTS
            }
            added = {variant: medians[variant] - medians["none"] for variant in VARIANTS[1:]}
            cells.append(
                {
                    "server": kind,
                    "transport": transport,
                    "median_us": {variant: round(value, 1) for variant, value in medians.items()},
                    "iqr_us": {variant: round(value, 1) for variant, value in spread.items()},
                    "added_us": {variant: round(value, 1) for variant, value in added.items()},
                    "ratio_shinzo_off": _ratio(added["shinzo_off"], added["sdk"]),
                    "ratio_shinzo_on": _ratio(added["shinzo_on"], added["sdk"]),
                }
            )
    totals = {
        variant: sum(cell["added_us"][variant] for cell in cells)
        for variant in ("sdk", "shinzo_off", "shinzo_on")
    }
    overall_off = _ratio(totals["shinzo_off"], totals["sdk"])
    overall_on = _ratio(totals["shinzo_on"], totals["sdk"])
    rows = [
        [
            cell["server"],
            cell["transport"],
            cell["median_us"]["none"],
            cell["added_us"]["sdk"],
            cell["added_us"]["shinzo_off"],
            cell["added_us"]["shinzo_on"],
            cell["ratio_shinzo_off"],
            cell["ratio_shinzo_on"],
        ]
        for cell in cells
    ]
    return {
        "cells": cells,
        "ratio_shinzo_off_overall": overall_off,
        "ratio_shinzo_on_overall": overall_on,
        "rounds": sizes["rounds"],
        "calls_per_block": sizes["calls"],
        "seconds": round(elapsed, 1),
        "tables": [
            table(
                "Overhead per tools/call (median µs added to the uninstrumented server; "
                "ratio = ours / SDK's)",
                [
                    "server",
                    "transport",
                    "uninstrumented µs",
                    "SDK built-in +µs",
                    "shinzo args off +µs",
                    "shinzo args on +µs",
                    "ratio off",
                    "ratio on",
                ],
                rows,
            )
        ],
        "notes": [
            f"Overall ratio (sum of added µs over the 6 cells): args off {overall_off}, "
            f"args on {overall_on}.",
            f"{sizes['rounds']} interleaved rounds; blocks of {sizes['calls']} calls per variant; median "
            "over every call; "
            "a global SDK TracerProvider is set for every variant, so the client's own CLIENT span "
            "costs the same everywhere; flushes happen outside the timed blocks.",
        ],
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the four variants on 2 server kinds × 3 transports; sets the global TracerProvider.

    Returns:
        `cells` (per server kind and transport: median and interquartile range of µs per call per
        variant, added µs, ratios),
        `ratio_shinzo_off_overall` / `ratio_shinzo_on_overall`, sizes, `tables`, `notes`.

    Raises:
        RuntimeError: a global TracerProvider is already set (run it in a fresh process).
    """
    result: dict[str, Any] = anyio.run(_measure, quick)
    return result
