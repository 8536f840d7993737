"""A dead, flapping or hanging OTLP receiver never blocks or breaks a real MCP session."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import Observability, instrument_server
from tests.loopback import wait_until
from tests.mcp_servers import make_mcpserver, spans_named
from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.anyio


def _instrument(server: Any, endpoint: str, provider: TracerProvider, **settings: Any) -> Observability:
    config = {
        "server_name": "resilience",
        "exporter_endpoint": endpoint,
        "schedule_delay_millis": 100,
        **settings,
    }
    return instrument_server(server, config, tracer_provider=provider)


async def _calls(client: Client, count: int) -> None:
    for index in range(count):
        result = await client.call_tool("echo", {"text": f"call {index}"})
        assert not result.is_error


def _flush_until_drained(observability: Observability, seconds: float = 15) -> bool:
    return wait_until(observability.force_flush, seconds)


async def test_receiver_down_then_back_during_500_calls_loses_nothing(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    observability = _instrument(
        server,
        receiver.http_endpoint,
        tracer_provider,
        export_timeout_millis=300,
        circuit_breaker_failures=2,
        circuit_breaker_open_millis=300,
    )
    async with Client(server, mode="legacy") as client:
        await _calls(client, 150)
        receiver.stop()
        await _calls(client, 200)
        # The exports of those calls fail: the breaker opens (and is what lets them wait, unsent).
        processor = observability.processor
        assert await anyio.to_thread.run_sync(wait_until, lambda: processor.circuit_open)
        receiver.start()
        await _calls(client, 150)
    assert await anyio.to_thread.run_sync(_flush_until_drained, observability)
    spans = receiver.spans()
    assert len(spans_named(spans, "tools/call echo")) == 500
    assert len(spans) == observability.processor.exported_spans
    assert not any(observability.processor.dropped_spans.values())
    await observability.shutdown()


async def test_receiver_never_up_server_keeps_serving_with_bounded_memory(tracer_provider: TracerProvider):
    with OtlpReceiver() as dead:
        dead.stop()
        server = make_mcpserver(tracer_provider)
        observability = _instrument(
            server,
            dead.http_endpoint,
            tracer_provider,
            export_timeout_millis=200,
            max_queue_size=128,
            max_export_batch_size=64,
            retry_buffer_max_spans=200,
        )
        async with Client(server, mode="legacy") as client:
            await _calls(client, 1000)
        processor = observability.processor
        assert processor.pending_retries <= 200
        assert processor.queue_size <= 128
        dropped = processor.dropped_spans
        assert dropped["queue_full"] + dropped["buffer_full"] > 0
        await observability.shutdown()
    assert processor.exported_spans == 0
    # 1000 tool calls + initialize, initialized, the automatic tools/list, the session span, its marker.
    assert sum(processor.dropped_spans.values()) == 1005


async def test_receiver_that_never_answers_does_not_delay_tool_calls(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    server = make_mcpserver(tracer_provider)
    # The exporter would wait 20 s for an answer; calls finishing within 5 s cannot have waited for it.
    observability = _instrument(server, receiver.http_endpoint, tracer_provider, export_timeout_millis=20000)
    receiver.set_mode("hang")
    async with Client(server, mode="legacy") as client:
        await _calls(client, 5)  # exported within the schedule delay: the export thread now hangs
        await anyio.to_thread.run_sync(lambda: wait_until(lambda: len(receiver.raw_bytes) >= 1))
        with anyio.fail_after(5):
            await _calls(client, 300)
        assert not receiver.trace_requests  # nothing was answered meanwhile
    receiver.set_mode("ok")
    assert await anyio.to_thread.run_sync(_flush_until_drained, observability, 30)
    assert len(spans_named(receiver.spans(), "tools/call echo")) == 305
    assert receiver.rejected_requests >= 1  # the request that hung was answered only when released
    await observability.shutdown()
