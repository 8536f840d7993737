"""Load and outage: 100 concurrent streamable HTTP sessions × 50 tools/call against one server.

The server (`MCPServer` with an `echo` tool, stateful streamable HTTP, uvicorn on 127.0.0.1) runs in
its own process, started by this module (`python -m benchmarks.bench_load serve VARIANT ENDPOINT`),
so that its peak RSS and CPU time are its own; on a machine with two or more cores it is pinned to
core 0 and the clients and the loopback OTLP/gRPC receiver (this process) to core 1. Every client
opens its session and makes one warm-up call (the SDK client fetches `tools/list` after the first
call of a tool), then all start together. The server's CPU time is read from `/proc` when the timed
calls start and again once their spans have all reached the receiver, so "server CPU µs per call"
includes the export work (privacy rules, OTLP encoding) and is the steadiest figure here.

Variants of the server:
- `none`: the SDK's built-in OTel middleware removed, no TracerProvider.
- `sdk`: the SDK default (built-in middleware) with a global SDK `TracerProvider` and a
  `BatchSpanProcessor` exporting OTLP/gRPC to the receiver.
- `shinzo`: `instrument_server` with argument collection on and the default privacy rules (the
  arguments hold an email address), exporting OTLP/gRPC to the receiver; every other setting default.

Scenarios:
- `load`: each client calls as fast as it can (the server saturates): p50/p99 latency per call,
  calls/s, server CPU per call, peak RSS; for `shinzo`, session separation computed from the spans
  received: each argument names its client, so a `tools/call` span whose `session.id` is not the one
  its client's other calls carry counts as attributed to the wrong session (expect 0).
- `outage`: `shinzo` with the same sessions paced over ~20 s (one call per client every ~0.4 s); the
  receiver is stopped for 10 s, 3 s after the calls start, in the second of two runs. Reported:
  spans lost (expected `tools/call` and `mcp.session` spans never received; expect 0 within the
  retry buffer), duplicates (expect 0), the p99 change against the run without outage, peak RSS, and
  how long after the receiver came back the last span arrived. The circuit breaker opens after its
  default 3 failed exports but stays open 5 s (`SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS=5000`) instead of
  the default 60 s, so that the run does not spend a minute waiting for the probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from benchmarks import peak_rss_mib, percentile, quiet_logging, table
from tests.otlp_receiver import OtlpReceiver

_ROOT = Path(__file__).resolve().parent.parent
_TOOL_SPAN = "tools/call echo"
_SESSION_SPAN = "mcp.session"
_FULL = {
    "clients": 100,
    "calls": 50,
    "outage_seconds": 10.0,
    "paced_seconds": 20.0,
    "outage_after_seconds": 3.0,
    "span_wait_seconds": 60.0,
}
_QUICK = {
    "clients": 4,
    "calls": 5,
    "outage_seconds": 1.5,
    "paced_seconds": 3.0,
    "outage_after_seconds": 0.5,
    "span_wait_seconds": 30.0,
}
LOAD_VARIANTS = ("none", "sdk", "shinzo")


_SERVER_CORE = 0
_CLIENT_CORE = 1


def _pin(core: int) -> None:
    """Run this process on one core (the server on one, clients and receiver on the other), if there
    are two; this keeps the scheduler from moving work between them mid-run."""
    if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, all threads (`/proc/PID/stat`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the server process ---------------------------------------------------------------------------


def _serve(variant: str, endpoint: str) -> None:
    """Serve the variant on an ephemeral port; print the port, then, after SIGINT, a stats line."""
    quiet_logging()
    _pin(_SERVER_CORE)
    import uvicorn
    from mcp.server._otel import OpenTelemetryMiddleware

    from tests.mcp_servers import make_mcpserver

    server = make_mcpserver(name=f"load-{variant}")
    shutdown: Any = None
    stats: dict[str, Any] = {}
    if variant == "none":
        server.middleware[:] = [m for m in server.middleware if not isinstance(m, OpenTelemetryMiddleware)]
    elif variant == "sdk":
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        trace.set_tracer_provider(provider)
        shutdown = provider.shutdown
    else:
        from shinzo_otel import instrument_server

        observability = instrument_server(
            server,
            {
                "server_name": "load-shinzo",
                "exporter_endpoint": endpoint,
                "exporter_protocol": "grpc",
                "enable_argument_collection": True,
            },
        )

        def shutdown() -> None:
            anyio.run(observability.shutdown)
            stats["exported"] = observability.processor.exported_spans
            stats["dropped"] = dict(observability.processor.dropped_spans)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before the port is printed: a client may connect before uvicorn has started, and
    # waits in the backlog instead of being refused.
    sock.listen(2048)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        server.streamable_http_app(), log_level="warning", access_log=False, lifespan="on"
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it shut down on
        uvicorn.Server(config).run(sockets=[sock])
    if shutdown is not None:
        shutdown()
    stats["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(json.dumps(stats), flush=True)


@dataclass
class _ServerProcess:
    process: subprocess.Popen[str]
    port: int
    log: Path
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(
        cls, variant: str, endpoint: str, log: Path, env: dict[str, str] | None = None
    ) -> _ServerProcess:
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bench_load", "serve", variant, endpoint],
                cwd=_ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**os.environ, **(env or {})},
            )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            process.kill()
            process.wait()
            raise RuntimeError(f"load server did not start: {line!r}; see {log.read_text()[-2000:]}")
        return cls(process, int(line), log)

    def stop(self) -> dict[str, Any]:
        """SIGINT (uvicorn's graceful shutdown), then the server's own stats line."""
        self.process.send_signal(signal.SIGINT)
        try:
            out, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self.process.returncode != 0 or not lines:
            raise RuntimeError(
                f"load server failed ({self.process.returncode}): {self.log.read_text()[-2000:]}"
            )
        self.stats = json.loads(lines[-1])
        return self.stats


# --- the clients ------------------------------------------------------------------------------------


async def _drive(
    url: str,
    clients: int,
    calls: int,
    paced_seconds: float | None,
    on_go: Callable[[], None] | None = None,
) -> tuple[list[float], float]:
    """Run the sessions; returns the latency of every timed call (s) and the load phase duration (s).

    `on_go` is called once every session is open and warmed up, just before the timed calls start.
    """
    latencies: list[float] = []
    connected = 0
    all_connected = anyio.Event()
    go = anyio.Event()
    interval = paced_seconds / calls if paced_seconds else 0.0

    async def session(index: int) -> None:
        nonlocal connected
        async with Client(url, mode="legacy") as client:
            await client.call_tool("echo", {"text": f"c{index}-warmup bob@example.com"})
            connected += 1
            if connected == clients:
                all_connected.set()
            await go.wait()
            next_call = time.perf_counter() + random.uniform(0, interval)
            for call in range(calls):
                if interval:
                    await anyio.sleep(max(0.0, next_call - time.perf_counter()))
                    next_call += interval
                started = time.perf_counter()
                await client.call_tool("echo", {"text": f"c{index}-{call} bob@example.com"})
                latencies.append(time.perf_counter() - started)

    async with anyio.create_task_group() as group:
        for index in range(clients):
            group.start_soon(session, index)
        await all_connected.wait()
        if on_go is not None:
            on_go()
        started = time.perf_counter()
        go.set()
    return latencies, time.perf_counter() - started


# --- spans --------------------------------------------------------------------------------------------


def _span_names(receiver: OtlpReceiver) -> Counter[str]:
    """Span names received (unique span ids: a retried export counts once), without a full decode."""
    seen: set[bytes] = set()
    names: Counter[str] = Counter()
    for request in receiver.trace_requests:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    if span.span_id not in seen:
                        seen.add(span.span_id)
                        names[span.name] += 1
    return names


async def _wait_for(receiver: OtlpReceiver, expected: dict[str, int], timeout: float) -> float | None:
    """Wait until `expected` span counts have arrived; monotonic time they did, None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = await anyio.to_thread.run_sync(_span_names, receiver)
        if all(names[name] >= count for name, count in expected.items()):
            return time.monotonic()
        await anyio.sleep(0.25)
    return None


def _duplicates(receiver: OtlpReceiver) -> int:
    """Spans received more than once (same span id)."""
    ids = [
        span.span_id
        for request in receiver.trace_requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    return len(ids) - len(set(ids))


def _attribution(receiver: OtlpReceiver) -> dict[str, int]:
    """Session separation from the tools/call spans: wrong-session spans and sessions seen."""
    sessions_by_client: dict[str, Counter[Any]] = defaultdict(Counter)
    spans = [span for span in receiver.spans() if span.name == _TOOL_SPAN]
    unique = {span.span_id: span for span in spans}
    unattributed = 0
    for span in unique.values():
        session_id = span.attributes.get("session.id")
        arguments = json.loads(str(span.attributes.get("gen_ai.tool.call.arguments", "{}")))
        client = str(arguments.get("text", "")).split("-", 1)[0]
        if session_id is None or span.attributes.get("mcp.session.id") != session_id:
            unattributed += 1
            continue
        sessions_by_client[client][session_id] += 1
    # A client's session is the one most of its calls carry; every other call is misattributed, and
    # a session id shared by two clients is misattributed for the smaller one.
    wrong = unattributed
    owners: Counter[Any] = Counter()
    for counts in sessions_by_client.values():
        (main, main_count), *_ = counts.most_common(1)
        owners[main] += 1
        wrong += sum(counts.values()) - main_count
    shared = sum(count - 1 for count in owners.values() if count > 1)
    return {
        "tool_spans": len(unique),
        "wrong_session_spans": wrong + shared,
        "sessions_seen": len(owners),
        "duplicate_spans": len(spans) - len(unique),
    }


def _latency_summary(latencies: list[float], duration: float) -> dict[str, float]:
    return {
        "calls": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "calls_per_second": round(len(latencies) / duration, 1),
        "seconds": round(duration, 1),
    }


# --- scenarios ----------------------------------------------------------------------------------------


async def _load(variant: str, sizes: dict[str, Any], receiver: OtlpReceiver, logs: Path) -> dict[str, Any]:
    receiver.clear()
    server = _ServerProcess.start(variant, receiver.grpc_endpoint, logs / f"load-{variant}.log")
    try:
        url = f"http://127.0.0.1:{server.port}/mcp"
        cpu_at_go: list[float] = []
        pid = server.process.pid
        latencies, duration = await _drive(
            url, sizes["clients"], sizes["calls"], None, on_go=lambda: cpu_at_go.append(_cpu_seconds(pid))
        )
        if variant != "none":  # count the export work of these calls too
            expected = {_TOOL_SPAN: sizes["clients"] * (sizes["calls"] + 1)}
            await _wait_for(receiver, expected, sizes["span_wait_seconds"])
        cpu = _cpu_seconds(pid) - cpu_at_go[0]
        result: dict[str, Any] = _latency_summary(latencies, duration)
        result["server_cpu_us_per_call"] = round(cpu / len(latencies) * 1e6)
        result["server_core_busy_percent"] = round(cpu / duration * 100)
    finally:
        stats = server.stop()  # a graceful shutdown: the server flushes what it has not exported
    result["peak_rss_mib"] = stats["peak_rss_mib"]
    if variant == "shinzo":
        result.update(_attribution(receiver))
        result["dropped"] = sum(stats["dropped"].values())
    return result


async def _paced(sizes: dict[str, Any], receiver: OtlpReceiver, logs: Path, outage: bool) -> dict[str, Any]:
    receiver.clear()
    name = "outage" if outage else "paced"
    server = _ServerProcess.start(
        "shinzo", receiver.grpc_endpoint, logs / f"{name}.log", {"SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS": "5000"}
    )
    pid = server.process.pid
    cpu_at_go: list[float] = []
    going = anyio.Event()
    restarted: float | None = None

    def on_go() -> None:
        cpu_at_go.append(_cpu_seconds(pid))
        going.set()

    async def play_outage() -> None:
        nonlocal restarted
        await going.wait()
        await anyio.sleep(sizes["outage_after_seconds"])
        await anyio.to_thread.run_sync(receiver.stop)
        await anyio.sleep(sizes["outage_seconds"])
        await anyio.to_thread.run_sync(receiver.start)
        restarted = time.monotonic()

    try:
        url = f"http://127.0.0.1:{server.port}/mcp"
        async with anyio.create_task_group() as group:
            if outage:
                group.start_soon(play_outage)
            latencies, duration = await _drive(
                url, sizes["clients"], sizes["calls"], sizes["paced_seconds"], on_go=on_go
            )
        expected = {_TOOL_SPAN: sizes["clients"] * (sizes["calls"] + 1), _SESSION_SPAN: sizes["clients"]}
        arrived = await _wait_for(receiver, expected, sizes["span_wait_seconds"])
        cpu = _cpu_seconds(pid) - cpu_at_go[0]
        names = _span_names(receiver)
    finally:
        stats = server.stop()
    result: dict[str, Any] = _latency_summary(latencies, duration)
    result["server_cpu_us_per_call"] = round(cpu / len(latencies) * 1e6)
    result["server_core_busy_percent"] = round(cpu / duration * 100)
    result["peak_rss_mib"] = stats["peak_rss_mib"]
    result["spans_lost"] = sum(max(0, count - names[span]) for span, count in expected.items())
    result["duplicate_spans"] = _duplicates(receiver)
    result["dropped"] = sum(stats["dropped"].values())
    result["dropped_by_reason"] = {reason: count for reason, count in stats["dropped"].items() if count}
    if outage and restarted is not None and arrived is not None:
        result["recovery_seconds"] = round(max(0.0, arrived - restarted), 1)
    return result


async def _measure(quick: bool) -> dict[str, Any]:
    sizes = _QUICK if quick else _FULL
    quiet_logging()
    _pin(_CLIENT_CORE)
    load: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="shinzo-bench-load-") as tmp, OtlpReceiver() as receiver:
        logs = Path(tmp)
        for variant in LOAD_VARIANTS:
            started = time.monotonic()
            load[variant] = await _load(variant, sizes, receiver, logs)
            load[variant]["wall_seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        paced = await _paced(sizes, receiver, logs, outage=False)
        paced["wall_seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        outage = await _paced(sizes, receiver, logs, outage=True)
        outage["wall_seconds"] = round(time.monotonic() - started, 1)
    return _report(sizes, load, paced, outage)


def _report(
    sizes: dict[str, Any], load: dict[str, dict[str, Any]], paced: dict[str, Any], outage: dict[str, Any]
) -> dict[str, Any]:
    base = load["none"]
    ratios = {
        variant: {
            "p50": round(load[variant]["p50_ms"] / base["p50_ms"], 2),
            "p99": round(load[variant]["p99_ms"] / base["p99_ms"], 2),
        }
        for variant in LOAD_VARIANTS
    }
    shinzo = load["shinzo"]
    cpu = {variant: load[variant]["server_cpu_us_per_call"] for variant in LOAD_VARIANTS}
    sdk_cpu_added = cpu["sdk"] - cpu["none"]
    cpu_ratio = round((cpu["shinzo"] - cpu["none"]) / sdk_cpu_added, 2) if sdk_cpu_added > 0 else None
    return {
        "sizes": sizes,
        "load": load,
        "latency_ratio_to_none": ratios,
        "server_cpu_added_ratio": cpu_ratio,
        "outage": {
            "baseline": paced,
            "with_outage": outage,
            "p99_change_ms": round(outage["p99_ms"] - paced["p99_ms"], 2),
        },
        "tables": [
            table(
                f"Load: {sizes['clients']} streamable HTTP sessions × {sizes['calls']} calls, saturating",
                [
                    "server",
                    "p50 ms",
                    "p99 ms",
                    "p50 ratio",
                    "p99 ratio",
                    "calls/s",
                    "server CPU µs/call",
                    "server core busy %",
                    "peak RSS MiB",
                ],
                [
                    [
                        variant,
                        load[variant]["p50_ms"],
                        load[variant]["p99_ms"],
                        ratios[variant]["p50"],
                        ratios[variant]["p99"],
                        load[variant]["calls_per_second"],
                        cpu[variant],
                        load[variant]["server_core_busy_percent"],
                        load[variant]["peak_rss_mib"],
                    ]
                    for variant in LOAD_VARIANTS
                ],
            ),
            table(
                "Session separation under load (shinzo, from the spans received)",
                ["tools/call spans", "sessions seen", "wrong-session spans", "duplicates", "dropped"],
                [
                    [
                        shinzo["tool_spans"],
                        shinzo["sessions_seen"],
                        shinzo["wrong_session_spans"],
                        shinzo["duplicate_spans"],
                        shinzo["dropped"],
                    ]
                ],
            ),
            table(
                f"Outage: receiver down {sizes['outage_seconds']:g} s during a paced load "
                f"({sizes['paced_seconds']:g} s), shinzo",
                [
                    "run",
                    "p50 ms",
                    "p99 ms",
                    "server CPU µs/call",
                    "spans lost",
                    "duplicates",
                    "dropped",
                    "peak RSS MiB",
                    "recovery s",
                ],
                [
                    [
                        run,
                        data["p50_ms"],
                        data["p99_ms"],
                        data["server_cpu_us_per_call"],
                        data["spans_lost"],
                        data["duplicate_spans"],
                        data["dropped"],
                        data["peak_rss_mib"],
                        data.get("recovery_seconds", "-"),
                    ]
                    for run, data in (("receiver up", paced), ("receiver down", outage))
                ],
            ),
        ],
        "notes": [
            f"Server CPU added per call (from the timed calls' start until their spans were received, "
            f"export work included), shinzo / SDK built-in: {cpu_ratio}.",
            "Latency is per tools/call as the client sees it; with every client calling back to back, "
            "it is mostly queueing behind the other sessions, and the clients (with the receiver) on "
            "one core are the bottleneck when the server core is not 100 % busy: the server CPU per "
            "call is then the figure that shows the server's own cost.",
            f"Outage p99 change: {round(outage['p99_ms'] - paced['p99_ms'], 2)} ms; spans dropped by the "
            f"server, by reason: {outage['dropped_by_reason'] or 'none'}.",
        ],
    }


def run(quick: bool = False) -> dict[str, Any]:
    """The load and outage scenarios (server in a subprocess; needs ~3 min in full, seconds quick).

    Returns:
        `load` (per variant: calls, p50_ms, p99_ms, calls_per_second, seconds, peak_rss_mib; for
        shinzo also tool_spans, wrong_session_spans, sessions_seen, duplicate_spans, dropped),
        `latency_ratio_to_none`, `outage` (`baseline`, `with_outage`: the same plus spans_lost,
        recovery_seconds; `p99_change_ms`), `sizes`, `tables`, `notes`.

    Raises:
        RuntimeError: a server process did not start or failed.
    """
    result: dict[str, Any] = anyio.run(_measure, quick)
    return result


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "serve":
    _serve(sys.argv[2], sys.argv[3])
