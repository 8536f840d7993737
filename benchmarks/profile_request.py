"""Profile shinzo_otel's share of the request path: `python -m benchmarks.profile_request [--args-on]`.

Drives a low-level `Server` over the in-memory legacy transport (`Client(server, mode="legacy")`,
real JSON-RPC over memory streams) with `instrument_server` exporting OTLP/gRPC to a loopback
receiver, and a global SDK TracerProvider as in `bench_overhead` (so the client opens its CLIENT span
and propagates `traceparent`, as real clients with OTel do). Two views:

1. pyinstrument (statistical, 0.1 ms interval): the time spent in the pieces of the request tracer
   and processor, as a share of their own work (reading the message, start, finish) and in µs per
   call. The profiler inflates absolute times; the shares are the finding.
2. An interleaved A/B without a profiler, in CPU time of the request thread: argument collection off
   against on, on two otherwise identical servers, which isolates what recording arguments and
   results costs per call.

Not a benchmark (`run` is not defined), so the runner does not pick it up.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from typing import Any

import anyio
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pyinstrument import Profiler

from benchmarks import CountingExporter, median, quiet_logging
from shinzo_otel import Observability, instrument_server
from tests.mcp_servers import make_lowlevel_server
from tests.otlp_receiver import OtlpReceiver

ARGUMENTS = {"text": "reply to bob@example.com"}
_WATCHED = {
    "inbound_message": "reading the message (mcp 2.x adapter)",
    "RequestTracer._start": "start: attributes, session, parent, start_span",
    "Tracer.start_span": "  OTel SDK Tracer.start_span (attributes, links, sampler, on_start)",
    "SpanRouter.on_start": "    SpanRouter.on_start + ShinzoSpanProcessor.on_start",
    "_client_context": "  traceparent extraction from _meta",
    "RequestTracer._resolve_session": "  session resolution",
    "RequestTracer.finish": "finish: outcome, content, span.end",
    "_Span.end": "  span.end (processors' on_end)",
    "SpanRouter.on_end": "    SpanRouter.on_end + ShinzoSpanProcessor.on_end",
    "_json": "JSON encoding of arguments/results",
}


_ROOTS = frozenset({"inbound_message", "RequestTracer._start", "RequestTracer.finish"})


def _instrument(server: Any, endpoint: str, args_on: bool) -> Observability:
    return instrument_server(
        server,
        {
            "server_name": "profile",
            "exporter_endpoint": endpoint,
            "exporter_protocol": "grpc",
            "enable_argument_collection": args_on,
        },
        tracer_provider=TracerProvider(),
    )


async def _calls(client: Client, count: int) -> float:
    """µs of this thread's CPU per call (the request path; export threads excluded)."""
    started = time.thread_time()
    for _ in range(count):
        await client.call_tool("echo", ARGUMENTS)
    return (time.thread_time() - started) / count * 1e6


def _frame_times(profiler: Profiler) -> dict[str, float]:
    """Seconds per watched function (inclusive) inside the middleware's own work, counted once per
    stack; the client's spans, made by the same SDK, are left out."""
    totals: dict[str, float] = defaultdict(float)
    root = profiler.last_session.root_frame() if profiler.last_session else None
    stack: list[tuple[Any, frozenset[str]]] = [(root, frozenset())] if root is not None else []
    while stack:
        frame, seen = stack.pop()
        name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
        inside = bool(seen) or name in _ROOTS
        if inside and name in _WATCHED and name not in seen:
            totals[name] += frame.time
            seen = seen | {name}
        stack.extend((child, seen) for child in frame.children)
    return totals


async def _profile(args_on: bool, calls: int, rounds: int) -> None:
    quiet_logging()
    with OtlpReceiver() as receiver:
        global_bsp = BatchSpanProcessor(CountingExporter())
        global_provider = TracerProvider()
        global_provider.add_span_processor(global_bsp)
        trace.set_tracer_provider(global_provider)
        # Index 0: argument collection off, 1: on. The profile runs on the one `args_on` selects.
        servers = [make_lowlevel_server(), make_lowlevel_server()]
        observabilities = [
            _instrument(server, receiver.grpc_endpoint, capture)
            for server, capture in zip(servers, (False, True), strict=True)
        ]
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(Client(server, mode="legacy")) for server in servers]
            for client in clients:
                await _calls(client, 200)
            profiler = Profiler(interval=0.0001, async_mode="disabled")
            profiler.start()
            await _calls(clients[int(args_on)], calls)
            profiler.stop()
            samples: list[list[float]] = [[], []]
            for round_index in range(rounds):
                for index in (0, 1) if round_index % 2 == 0 else (1, 0):
                    samples[index].append(await _calls(clients[index], 200))
                    global_bsp.force_flush()
                    observabilities[index].force_flush()
        for observability in observabilities:
            await observability.shutdown()
        global_provider.shutdown()

    totals = _frame_times(profiler)
    # The middleware's own work: before and after `call_next` (which runs the tool itself).
    whole = sum(totals.get(name, 0.0) for name in _ROOTS)
    print(f"pyinstrument, {calls} calls, argument collection {'on' if args_on else 'off'}")
    print(f"{'middleware start + finish (its own work)':68s} {whole / calls * 1e6:7.1f} µs  100%")
    for name, label in _WATCHED.items():
        if name in totals:
            share = totals[name] / whole * 100 if whole else 0.0
            print(f"{label:68s} {totals[name] / calls * 1e6:7.1f} µs  {share:3.0f}%")
    content = median(samples[1]) - median(samples[0])
    print(
        f"\nA/B without profiler, {rounds} interleaved rounds of 200 calls: median "
        f"{median(samples[0]):.1f} µs per call with argument collection off, "
        f"{median(samples[1]):.1f} µs with it on: recording arguments and results costs "
        f"{content:.1f} µs per call on the request path."
    )


def main() -> None:
    """Parse the command line and print the profile."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_request", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--args-on", action="store_true", help="argument collection on")
    parser.add_argument("--calls", type=int, default=3000, help="calls profiled (default 3000)")
    parser.add_argument("--rounds", type=int, default=30, help="A/B rounds (default 30)")
    args = parser.parse_args()
    anyio.run(_profile, args.args_on, args.calls, args.rounds)


if __name__ == "__main__":
    main()
