"""Request-path CPU per tools/call: uninstrumented, the SDK's built-in OTel middleware, shinzo_otel off/on.

What is measured is CPU time, not wall time: `time.thread_time()` of the one thread that runs the
client, the transport and the server (an in-process event loop; for HTTP, httpx and uvicorn share it),
summed over a block of sequential calls. Export threads (the SDK's batch workers, ours included) and
the loopback receiver run on other threads and are not counted: this is what a request costs on the
request path. Wall time would add scheduler noise from everything else on the machine; CPU time does
not.

Same server kind and same transport for every variant, interleaved in one process. The machine's
speed is not steady: a pure-Python loop ran at 27 ms per 50 ms-block for seconds, then at 50 ms for
seconds (2-core VM, 2026-12-02), and blocks of 400 calls per variant, one after the other, swung as
much. So the blocks are short and the variants alternate fast: a pass runs, for every (server kind,
transport) cell, one block of a few calls per variant (5-40 ms for the five blocks of a cell), in an
order rotated every pass (A B C D E, B C D E A, ...); a round is ten passes, and a variant's figure for
a round is its CPU time over the round's blocks divided by their calls. A change of speed then falls
inside a cell's five blocks rarely, and drift and position effects cancel out. What the setup built
is frozen out of the garbage collector (`gc.freeze`) and a collection runs after every pass, outside
the blocks: the collections inside a block are its calls' own. Variants (one server
each):
- `none`: the SDK's built-in `OpenTelemetryMiddleware` removed: no server span at all.
- `sdk`: the SDK default, the built-in middleware, with a recording global SDK `TracerProvider` and a
  `BatchSpanProcessor` exporting OTLP/gRPC to a loopback receiver.
- `floor`: the SDK's built-in middleware removed and one recording SDK span with nine attributes
  started and ended around `call_next` in its place (its own provider, a `BatchSpanProcessor`, the
  same receiver): the least a server span costs with the SDK's tracer (no trace context read, none
  made current, no session). Issue 12 set the request-path target against this floor, measured at
  0.34-0.38x the SDK middleware on one machine and about 0.6x on another; measured in the same run,
  it shows where the machine of the run puts it.
- `shinzo_off`: `instrument_server` with argument collection off (the default), its own provider,
  `ShinzoSpanProcessor` (privacy rules on) exporting OTLP/gRPC to the same receiver; every other
  setting at its default but the export cadence (below).
- `shinzo_on`: the same with argument collection on (arguments and results JSON-encoded on the
  export thread, its processor being alone on its provider; the arguments hold an email address,
  which the privacy rules redact on export).

The global provider is set for every variant: the SDK client (`mcp.Client`) opens a CLIENT span per
request through it, so the client-side cost is the same in every variant and cancels out of the
"added" figures. The five blocks of a cell end with a flush of every processor involved, outside the
measured region, and every processor exports at the SDK's default cadence (5 s, longer than a block; ours
too, whose default is 200 ms): no export thread runs inside a measured block. An export thread
running concurrently costs the event-loop thread CPU on the transports whose loop polls (the legacy
in-memory streams here; stdio and HTTP in production), whichever processor it belongs to: measured
on the low-level server over the legacy transport, ours added 103 µs per call with its 200 ms
cadence against 39 µs at 5 s, while with every processor at 200 ms (the CLIENT spans' too) the SDK
middleware added 52 µs and ours 48 µs. With the SDK's exports always between blocks and ours
inside them, the comparison charged that cost to us alone.

The rounds are split over `_PROCESSES` fresh interpreters (one `spawn` worker process each), each
building its own servers and clients: a placement in memory (and a hash seed) that happens to favour
or hinder one variant lasts as long as its process, and showed as a bias of up to ~15 µs per call
between otherwise equal runs (arguments on measured below arguments off); pooled over processes, it
averages out instead of deciding a run's headline.

Figures: per round and cell, µs of CPU per call for each variant; added = variant − none (same round,
same cell); a cell's ratio = mean added (floor, shinzo) / mean added (sdk) over the rounds, with a
95 % interval from resampling whole rounds. Each such variant's headline combines the cells, each
weighted by the inverse variance of its own ratio: the in-process cells, whose noise is small, carry
it; the HTTP cells (~50-100 µs added to ~2 000 µs calls) carry little.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
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
from opentelemetry.trace import SpanKind

from benchmarks import bootstrap, interval_text, quiet_logging, ratio_of_means, table, weighted_ratio
from shinzo_otel import Observability, instrument_server
from tests.mcp_servers import make_lowlevel_server, make_mcpserver, serve_http
from tests.otlp_receiver import OtlpReceiver

VARIANTS = ("none", "sdk", "floor", "shinzo_off", "shinzo_on")
OURS = ("shinzo_off", "shinzo_on")
RATIOED = ("floor", *OURS)
"""The variants given a ratio to the SDK middleware (and a headline)."""
KINDS: dict[str, Callable[[], Any]] = {"lowlevel": make_lowlevel_server, "mcpserver": make_mcpserver}
TRANSPORTS = ("legacy", "inproc", "http")
"""`legacy`: `Client(server, mode="legacy")`, JSON-RPC over memory streams, one session.
`inproc`: `Client(server)`, the 2026-07-28 era, direct dispatch, no session.
`http`: streamable HTTP (stateful, legacy handshake) to uvicorn on 127.0.0.1, same event loop."""

ARGUMENTS = {"text": "reply to bob@example.com"}
_SDK_SCHEDULE_DELAY_MILLIS = 5000
"""`OTEL_BSP_SCHEDULE_DELAY`'s default, the `BatchSpanProcessor` of the `sdk` variant."""
_FULL = {"rounds": 60, "passes": 10, "calls": {"legacy": 10, "inproc": 25, "http": 2}, "warmup": 30}
"""A round is `passes` passes; a pass runs, per cell, one block of `calls[transport]` calls per
variant, back to back (5-40 ms for the five blocks of a cell): short enough for a change of the
machine's speed to fall inside a cell's five blocks rarely (see the module docstring)."""
_QUICK = {"rounds": 2, "passes": 2, "calls": {"legacy": 3, "inproc": 3, "http": 1}, "warmup": 2}
_PROCESSES = 6
"""Fresh interpreters the full run's rounds are split over (see the module docstring): 10 rounds
each."""


class _Variant:
    """One server per (kind, variant), what to flush after each of its blocks, what to shut down."""

    def __init__(
        self,
        server: Any,
        flush: list[Callable[[], object]],
        observability: Observability | None = None,
        provider: TracerProvider | None = None,
    ):
        self.server = server
        self.flush = flush
        self.observability = observability
        self.provider = provider


class _FloorMiddleware:
    """The `floor` variant: one recording SDK SERVER span with nine attributes around `call_next`."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        name = ctx.params.get("name") if ctx.params else None
        span = self._tracer.start_span(
            f"{ctx.method} {name}",
            kind=SpanKind.SERVER,
            attributes={
                "mcp.method.name": ctx.method,
                "mcp.protocol.version": ctx.protocol_version or "",
                "jsonrpc.request.id": str(ctx.request_id),
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": str(name),
                "network.transport": "pipe",
                "mcp.session.id": "floor",
                "session.id": "floor",
                "shinzo.session.origin": "connection",
            },
        )
        try:
            return await call_next(ctx)
        finally:
            span.end()


def _build(kind: str, variant: str, endpoint: str, global_bsp: BatchSpanProcessor) -> _Variant:
    server = KINDS[kind]()
    middleware: list[Any] = server.middleware
    if variant == "sdk":
        if not any(isinstance(m, OpenTelemetryMiddleware) for m in middleware):
            raise RuntimeError("the SDK's built-in OpenTelemetryMiddleware is not installed by default")
        return _Variant(server, [global_bsp.force_flush])
    middleware[:] = [m for m in middleware if not isinstance(m, OpenTelemetryMiddleware)]
    if variant == "none":
        return _Variant(server, [global_bsp.force_flush])
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"bench-{kind}-{variant}"}))
    if variant == "floor":
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
        floor_bsp = BatchSpanProcessor(exporter, schedule_delay_millis=_SDK_SCHEDULE_DELAY_MILLIS)
        provider.add_span_processor(floor_bsp)
        middleware.append(_FloorMiddleware(provider.get_tracer("bench-floor")))
        return _Variant(server, [global_bsp.force_flush, floor_bsp.force_flush], provider=provider)
    observability = instrument_server(
        server,
        {
            "server_name": f"bench-{kind}",
            "exporter_endpoint": endpoint,
            "exporter_protocol": "grpc",
            "enable_argument_collection": variant == "shinzo_on",
            # The SDK BatchSpanProcessor's default cadence, as the `sdk` variant's: no export thread
            # runs inside a measured block for any variant (see the module docstring).
            "schedule_delay_millis": _SDK_SCHEDULE_DELAY_MILLIS,
        },
        tracer_provider=provider,
    )
    return _Variant(server, [global_bsp.force_flush, observability.force_flush], observability)


async def _open_client(stack: AsyncExitStack, server: Any, transport: str) -> Client:
    if transport == "legacy":
        target: Any = server
    elif transport == "inproc":
        return await stack.enter_async_context(Client(server))
    else:
        url = await stack.enter_async_context(serve_http(server.streamable_http_app()))
        target = f"{url}/mcp"
    return await stack.enter_async_context(Client(target, mode="legacy"))


async def _block(client: Client, calls: int) -> float:
    """Seconds of this thread's CPU over `calls` sequential tools/call."""
    started = time.thread_time()
    for _ in range(calls):
        await client.call_tool("echo", ARGUMENTS)
    return time.thread_time() - started


def _measure_in_process(
    quick: bool, first_round: int, rounds: int
) -> tuple[dict[tuple[str, str, str], list[float]], float]:
    """`rounds` interleaved rounds (rotation continuing from `first_round`) in this process: µs of CPU
    per call, per (kind, transport, variant), one value per round; and the seconds they took."""
    result: tuple[dict[tuple[str, str, str], list[float]], float] = anyio.run(
        _measure, quick, first_round, rounds
    )
    return result


async def _measure(
    quick: bool, first_round: int, rounds: int
) -> tuple[dict[tuple[str, str, str], list[float]], float]:
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
        cpu: dict[tuple[str, str, str], list[float]] = {}
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
            # What the setup made is never collected again: the collections inside a block are the
            # calls' own, not a walk over the servers and clients built above.
            gc.collect()
            gc.freeze()
            flushes = {
                kind: list(dict.fromkeys(f for variant in VARIANTS for f in variants[kind, variant].flush))
                for kind in KINDS
            }
            started = time.monotonic()
            passes = sizes["passes"]
            for round_index in range(first_round, first_round + rounds):
                seconds: dict[tuple[str, str, str], float] = dict.fromkeys(clients, 0.0)
                for pass_index in range(round_index * passes, (round_index + 1) * passes):
                    shift = pass_index % len(VARIANTS)
                    order = VARIANTS[shift:] + VARIANTS[:shift]
                    for transport in TRANSPORTS:
                        for kind in KINDS:
                            for variant in order:
                                key = (kind, transport, variant)
                                seconds[key] += await _block(clients[key], sizes["calls"][transport])
                            for flush in flushes[kind]:
                                flush()
                    gc.collect()
                for (kind, transport, variant), total in seconds.items():
                    calls = passes * sizes["calls"][transport]
                    cpu.setdefault((kind, transport, variant), []).append(total / calls * 1e6)
                receiver.clear()
            elapsed = time.monotonic() - started
        for variant in variants.values():
            if variant.observability is not None:
                await variant.observability.shutdown()
            if variant.provider is not None:
                variant.provider.shutdown()
        global_provider.shutdown()
    return cpu, elapsed


def _report(
    cpu: dict[tuple[str, str, str], list[float]], sizes: dict[str, Any], elapsed: float
) -> dict[str, Any]:
    rounds = sizes["rounds"]
    added: dict[tuple[str, str, str], list[float]] = {
        (kind, transport, variant): [
            value - base
            for value, base in zip(cpu[kind, transport, variant], cpu[kind, transport, "none"], strict=True)
        ]
        for kind in KINDS
        for transport in TRANSPORTS
        for variant in VARIANTS[1:]
    }
    cells: list[dict[str, Any]] = []
    for kind in KINDS:
        for transport in TRANSPORTS:
            sdk = added[kind, transport, "sdk"]
            cells.append(
                {
                    "server": kind,
                    "transport": transport,
                    "cpu_us": {
                        variant: round(sum(cpu[kind, transport, variant]) / rounds, 1) for variant in VARIANTS
                    },
                    "added_us": {
                        variant: round(sum(added[kind, transport, variant]) / rounds, 1)
                        for variant in VARIANTS[1:]
                    },
                    "ratio": {
                        variant: bootstrap(rounds, ratio_of_means(added[kind, transport, variant], sdk))
                        for variant in RATIOED
                    },
                }
            )
    headline: dict[str, Any] = {}
    for variant in RATIOED:
        estimate, shares = weighted_ratio(
            [
                (
                    added[cell["server"], cell["transport"], variant],
                    added[cell["server"], cell["transport"], "sdk"],
                )
                for cell in cells
            ],
            rounds,
        )
        headline[variant] = {
            **estimate,
            "weights": {
                f"{cell['server']}/{cell['transport']}": share
                for cell, share in zip(cells, shares, strict=True)
            },
        }
    rows = [
        [
            cell["server"],
            cell["transport"],
            cell["cpu_us"]["none"],
            cell["added_us"]["sdk"],
            cell["added_us"]["floor"],
            cell["added_us"]["shinzo_off"],
            cell["added_us"]["shinzo_on"],
            interval_text(cell["ratio"]["floor"]),
            interval_text(cell["ratio"]["shinzo_off"]),
            interval_text(cell["ratio"]["shinzo_on"]),
            headline["shinzo_off"]["weights"][f"{cell['server']}/{cell['transport']}"],
        ]
        for cell in cells
    ]
    return {
        "cells": cells,
        "headline": headline,
        "rounds": rounds,
        "processes": sizes["processes"],
        "passes_per_round": sizes["passes"],
        "calls_per_block": sizes["calls"],
        "seconds": round(elapsed, 1),
        "tables": [
            table(
                "Request-path CPU per tools/call (µs of the event-loop thread; added = variant − "
                "uninstrumented; ratio = added / SDK added, 95 % interval; floor = one SDK span with "
                "nine attributes around call_next)",
                [
                    "server",
                    "transport",
                    "uninstrumented µs",
                    "SDK built-in +µs",
                    "floor +µs",
                    "shinzo args off +µs",
                    "shinzo args on +µs",
                    "ratio floor",
                    "ratio off",
                    "ratio on",
                    "headline weight",
                ],
                rows,
            )
        ],
        "notes": [
            f"Headline (cells weighted by the inverse variance of their ratio): args off "
            f"{interval_text(headline['shinzo_off'])}, args on {interval_text(headline['shinzo_on'])}; "
            f"the floor (one SDK span with nine attributes, no context made current, no session) "
            f"{interval_text(headline['floor'])}.",
            f"{rounds} rounds of {sizes['passes']} interleaved passes in {sizes['processes']} fresh "
            f"process(es); a pass runs, per cell, one block of {sizes['calls']} calls per variant, in "
            "an order rotated every pass; CPU time of the "
            "thread running client, transport and server (export threads excluded); a global SDK "
            "TracerProvider is set for every variant, so the client's own CLIENT span costs the same "
            "everywhere; flushes happen outside the measured blocks, and every processor exports at "
            f"the SDK's default cadence ({_SDK_SCHEDULE_DELAY_MILLIS} ms, ours too): no export thread "
            "runs inside a block (see the benchmark's docstring for why).",
        ],
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the five variants on 2 server kinds × 3 transports, the rounds split over fresh
    interpreters (`_PROCESSES`; one for `quick`), each of which sets its global TracerProvider.

    Returns:
        `cells` (per server kind and transport: mean CPU µs per call per variant, added µs, the three
        ratios with their 95 % intervals), `headline` (per `RATIOED` variant: the combined ratio, its
        interval and each cell's weight), sizes, `tables`, `notes`.

    Raises:
        Exception: what a measuring process raised.
    """
    sizes = _QUICK if quick else _FULL
    processes = 1 if quick else _PROCESSES
    per_process = sizes["rounds"] // processes
    cpu: dict[tuple[str, str, str], list[float]] = {}
    elapsed = 0.0
    for index in range(processes):
        # A fresh interpreter per part: each sets its own global TracerProvider and builds its own
        # servers (see the module docstring).
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as executor:
            part, seconds = executor.submit(
                _measure_in_process, quick, index * per_process, per_process
            ).result()
        for key, values in part.items():
            cpu.setdefault(key, []).extend(values)
        elapsed += seconds
    return _report(cpu, {**sizes, "rounds": per_process * processes, "processes": processes}, elapsed)
