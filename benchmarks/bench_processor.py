"""Export cost per span and throughput: `ShinzoSpanProcessor` (privacy on) vs the SDK's `BatchSpanProcessor`.

Both processors get the same exporter class (a fresh instance each): a null exporter, which isolates
the CPU cost of the processor itself (for Shinzo: the privacy rules on the export thread), and the
official OTLP/gRPC exporter to a loopback receiver running in a process of its own (the real export
path; its decoding is not charged to the process measured).

The spans are real: `tools/call` SERVER spans recorded by `instrument_server` on an in-memory
`MCPServer`, taken before any processing. Each processor gets what it gets in real use: the SDK's
`BatchSpanProcessor` the SDK's spans (content encoded on the request path); `ShinzoSpanProcessor`
the light `RequestSpan`s that `instrument_server` makes when its processor is alone on the provider
(their span limits and content encoding left to the export thread, so counted here). Three shapes:
`args_off` (argument collection off), `args_on` (collection on; the arguments and the result hold
ordinary text, nothing to redact, as in most tool calls) and `args_on_secrets` (collection on; the
arguments and both copies of the text in the result hold an email address and a card number, which
the default privacy rules redact: the worst case, every span rewritten).

- Cost per span: CPU time of this process (every thread: the caller's `on_end`, the batch worker,
  the exporter) to hand a block of spans to `on_end` and `force_flush` them, divided by the block
  size; processors interleaved block by block, alternating which goes first. Ratio = Shinzo /
  BatchSpanProcessor, mean over the rounds, with a 95 % interval from resampling rounds (issue
  target <= 1.5 with content captured).
- Throughput, for each shape with content: one producer thread calls `on_end` as fast as the queue
  allows (it waits while the spans not yet exported reach 3/4 of the queue, 2048 by default), then
  flushes; spans/s = spans / wall time; rounds interleaved. Dropped spans (expect 0) and spans the
  receiver got are counted (issue target: Shinzo >= 0.8 of BatchSpanProcessor).
"""

from __future__ import annotations

import copy
import os
import time
from functools import partial
from typing import Any
from unittest import mock

import anyio
from mcp import Client
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from benchmarks import CountingExporter, bootstrap, interval_text, quiet_logging, ratio_of_means, table
from benchmarks._receiver import ReceiverProcess
from shinzo_otel import instrument_server
from shinzo_otel._request_span import RequestSpan
from shinzo_otel._semconv import GEN_AI_OPERATION_NAME
from shinzo_otel.processor import ShinzoSpanProcessor
from tests.mcp_servers import make_mcpserver
from tests.otlp_receiver import OtlpReceiver

_ORDINARY = "Forward the invoice to the finance team; reference INV-2041, due on the 30th."
_SECRETS = "Forward the invoice to bob@example.com; card 4111 1111 1111 1111; thanks, the finance team."
TEXTS = {"args_off": _ORDINARY, "args_on": _ORDINARY, "args_on_secrets": _SECRETS}
SHAPES = tuple(TEXTS)
CONTENT_SHAPES = ("args_on", "args_on_secrets")
EXPORTERS = ("null", "otlp_grpc")
PROCESSORS = ("batch", "shinzo")
_QUEUE = 2048  # the SDK default of both processors (OTEL_BSP_MAX_QUEUE_SIZE)
_FULL = {"spans": 200, "rounds": 15, "block": 1500, "throughput_spans": 20000, "throughput_rounds": 5}
_QUICK = {"spans": 10, "rounds": 2, "block": 50, "throughput_spans": 300, "throughput_rounds": 2}


class _Collector(SpanProcessor):
    """Keeps every ended span as the SDK hands it to processors (before any privacy rule)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


async def _record_spans(shape: str, calls: int, *, light: bool) -> list[ReadableSpan]:
    """`calls` tools/call SERVER spans of `shape` from a real in-memory session, before any processing.

    `light=False`: the SDK's spans (what `BatchSpanProcessor` gets from the SDK's middleware,
    content encoded on the request path), taken by a second processor on the provider; the SDK's
    tracer makes them because its internal span metrics are on while the server is instrumented.
    `light=True`: our processor alone on the provider, as in `bench_overhead`, so the spans are
    `RequestSpan`s, taken where they reach our processor (`processor.on_end`, replaced for the
    recording), their span limits and content encoding still to be done on the export thread.
    """
    provider = TracerProvider()
    collector = _Collector()
    if not light:
        provider.add_span_processor(collector)
    server = make_mcpserver(provider)
    # While instrumenting, for the SDK's spans: its internal span metrics on, so its tracer makes ours.
    forced = {} if light else {OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED: "true"}
    with OtlpReceiver() as receiver, mock.patch.dict(os.environ, forced):
        observability = instrument_server(
            server,
            {
                "server_name": "bench-processor",
                "exporter_endpoint": receiver.grpc_endpoint,
                "exporter_protocol": "grpc",
                "enable_argument_collection": shape != "args_off",
            },
            tracer_provider=provider,
        )
        if light and observability.processor is not None:
            observability.processor.on_end = collector.on_end  # type: ignore[method-assign]
        async with Client(server, mode="legacy") as client:
            for _ in range(calls):
                await client.call_tool("echo", {"text": TEXTS[shape]})
        await observability.shutdown()
    return [span for span in collector.spans if (span.attributes or {}).get(GEN_AI_OPERATION_NAME)]


def _exporter(kind: str, endpoint: str) -> CountingExporter:
    inner: SpanExporter | None = None
    if kind == "otlp_grpc":
        inner = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    return CountingExporter(inner)


def _processor(kind: str, exporter: SpanExporter, shape: str) -> BatchSpanProcessor | ShinzoSpanProcessor:
    if kind == "batch":
        return BatchSpanProcessor(exporter)
    return ShinzoSpanProcessor(exporter, {"enable_argument_collection": shape != "args_off"})


def _spans_for(spans: list[ReadableSpan], count: int) -> list[ReadableSpan]:
    """`count` spans taken in turn from `spans`; a `RequestSpan` is copied first (its export thread
    completes it in place, which must happen for every span handed over, as in real traffic)."""
    return [_fresh(spans[index % len(spans)]) for index in range(count)]


def _fresh(span: ReadableSpan) -> ReadableSpan:
    if not isinstance(span, RequestSpan):
        return span
    copied = copy.copy(span)
    copied._attributes = dict(span._attributes)  # the one part the export thread changes in place
    return copied


def _block(processor: SpanProcessor, spans: list[ReadableSpan]) -> float:
    """µs of this process's CPU (every thread) per span to take `spans` through `on_end` and a flush."""
    started = time.process_time()
    for span in spans:
        processor.on_end(span)
    processor.force_flush()
    return (time.process_time() - started) / len(spans) * 1e6


def _throughput(
    processor: SpanProcessor, exporter: CountingExporter, spans: list[ReadableSpan]
) -> dict[str, float]:
    """Spans per second with a producer that never overfills the queue; and what was dropped."""
    limit = _QUEUE * 3 // 4
    started = time.perf_counter()
    for produced, span in enumerate(spans):
        while produced - exporter.exported >= limit:
            time.sleep(0.0002)
        processor.on_end(span)
    processor.force_flush()
    elapsed = time.perf_counter() - started
    if isinstance(processor, ShinzoSpanProcessor):
        dropped = sum(processor.dropped_spans.values())
    else:  # BatchSpanProcessor drops silently (a log line); what never reached the exporter is lost
        dropped = len(spans) - exporter.exported
    return {"spans_per_second": len(spans) / elapsed, "exported": exporter.exported, "dropped": dropped}


def _measure(quick: bool) -> dict[str, Any]:
    sizes = _QUICK if quick else _FULL
    quiet_logging()
    recorded = {
        (kind, shape): anyio.run(partial(_record_spans, shape, sizes["spans"], light=kind == "shinzo"))
        for kind in PROCESSORS
        for shape in SHAPES
    }
    cost: dict[tuple[str, str, str], list[float]] = {}
    throughput: dict[tuple[str, str], list[dict[str, float]]] = {}
    received: dict[tuple[str, str], int] = {}
    with ReceiverProcess() as receiver:
        pipelines = {
            (kind, exporter_kind, shape): _processor(
                kind, _exporter(exporter_kind, receiver.grpc_endpoint), shape
            )
            for kind in PROCESSORS
            for exporter_kind in EXPORTERS
            for shape in SHAPES
        }
        for round_index in range(sizes["rounds"]):
            order = PROCESSORS if round_index % 2 == 0 else PROCESSORS[::-1]
            for exporter_kind in EXPORTERS:
                for shape in SHAPES:
                    for kind in order:
                        block = _spans_for(recorded[kind, shape], sizes["block"])
                        value = _block(pipelines[kind, exporter_kind, shape], block)
                        cost.setdefault((kind, exporter_kind, shape), []).append(value)
            receiver.clear()
        for pipeline in pipelines.values():
            pipeline.shutdown()

        for round_index in range(sizes["throughput_rounds"]):
            order = PROCESSORS if round_index % 2 == 0 else PROCESSORS[::-1]
            for shape in CONTENT_SHAPES:
                for kind in order:
                    stream = _spans_for(recorded[kind, shape], sizes["throughput_spans"])
                    exporter = _exporter("otlp_grpc", receiver.grpc_endpoint)
                    processor = _processor(kind, exporter, shape)
                    throughput.setdefault((shape, kind), []).append(_throughput(processor, exporter, stream))
                    processor.shutdown()
                    received[shape, kind] = received.get((shape, kind), 0) + receiver.spans()
                    receiver.clear()
    return _report(cost, throughput, received, sizes)


def _report(
    cost: dict[tuple[str, str, str], list[float]],
    throughput: dict[tuple[str, str], list[dict[str, float]]],
    received: dict[tuple[str, str], int],
    sizes: dict[str, int],
) -> dict[str, Any]:
    rounds = sizes["rounds"]
    per_span: list[dict[str, Any]] = []
    for exporter_kind in EXPORTERS:
        for shape in SHAPES:
            batch, shinzo = cost["batch", exporter_kind, shape], cost["shinzo", exporter_kind, shape]
            per_span.append(
                {
                    "exporter": exporter_kind,
                    "shape": shape,
                    "batch_us": round(sum(batch) / rounds, 2),
                    "shinzo_us": round(sum(shinzo) / rounds, 2),
                    "ratio": bootstrap(rounds, ratio_of_means(shinzo, batch)),
                }
            )
    rates = [
        {
            "shape": shape,
            "processor": kind,
            "spans_per_second": round(sum(run["spans_per_second"] for run in runs) / len(runs)),
            "dropped": int(sum(run["dropped"] for run in runs)),
            "exported": int(sum(run["exported"] for run in runs)),
            "received": received[shape, kind],
            "offered": sizes["throughput_spans"] * len(runs),
        }
        for (shape, kind), runs in throughput.items()
    ]
    throughput_ratio = {
        shape: bootstrap(
            sizes["throughput_rounds"],
            ratio_of_means(
                [run["spans_per_second"] for run in throughput[shape, "shinzo"]],
                [run["spans_per_second"] for run in throughput[shape, "batch"]],
            ),
        )
        for shape in CONTENT_SHAPES
    }
    return {
        "per_span": per_span,
        "throughput": rates,
        "throughput_ratio": throughput_ratio,
        "sizes": sizes,
        "tables": [
            table(
                "Export cost per span, on_end + batch + export (µs of CPU of the exporting process, every "
                "thread; ratio = Shinzo with privacy / BatchSpanProcessor, 95 % interval)",
                ["exporter", "span shape", "BatchSpanProcessor µs", "ShinzoSpanProcessor µs", "ratio"],
                [
                    [
                        row["exporter"],
                        row["shape"],
                        row["batch_us"],
                        row["shinzo_us"],
                        interval_text(row["ratio"]),
                    ]
                    for row in per_span
                ],
            ),
            table(
                "Export throughput to the loopback OTLP/gRPC receiver (spans with content, privacy on)",
                ["span shape", "processor", "spans/s", "offered", "exported", "received", "dropped"],
                [
                    [
                        rate["shape"],
                        rate["processor"],
                        rate["spans_per_second"],
                        rate["offered"],
                        rate["exported"],
                        rate["received"],
                        rate["dropped"],
                    ]
                    for rate in rates
                ],
            ),
        ],
        "notes": [
            "Throughput ratio, Shinzo / BatchSpanProcessor: "
            + ", ".join(f"{shape} {interval_text(ratio)}" for shape, ratio in throughput_ratio.items())
            + ".",
            f"Cost: {rounds} interleaved rounds of {sizes['block']} spans per processor; throughput: "
            f"{sizes['throughput_rounds']} interleaved rounds of {sizes['throughput_spans']} spans, the "
            "producer waits while 3/4 of the 2048-span queue is unexported; the receiver runs in its own "
            "process.",
        ],
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Cost per span and throughput of both processors, side by side.

    Returns:
        `per_span` (per exporter and span shape: CPU µs per span of each processor and the ratio with
        its 95 % interval), `throughput` (per processor: spans/s, offered, exported, received by the
        receiver, dropped), `throughput_ratio` (Shinzo / batch, with its interval), `sizes`, `tables`,
        `notes`.
    """
    return _measure(quick)
