"""ShinzoSpanProcessor: privacy on export, fail closed, retry buffer, circuit breaker, drop accounting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import ShinzoSpanProcessor
from shinzo_otel._pipeline import CircuitBreaker
from shinzo_otel.privacy import REDACTED, REDACTED_KEYS_ATTRIBUTE, PrivacyRules, RedactionMatch
from tests.otlp_receiver import OtlpReceiver


def _processor(receiver: OtlpReceiver, **settings: Any) -> ShinzoSpanProcessor:
    exporter = OTLPSpanExporter(
        endpoint=f"{receiver.http_endpoint}/v1/traces", timeout=settings.pop("timeout", 2)
    )
    settings.setdefault("schedule_delay_millis", 60000)  # exports only when the test asks
    return ShinzoSpanProcessor(exporter, **settings)


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    tracer_provider = TracerProvider()
    yield tracer_provider
    tracer_provider.shutdown()


def _end_spans(provider: TracerProvider, count: int, **attributes: Any) -> None:
    tracer = provider.get_tracer("test")
    for index in range(count):
        with tracer.start_as_current_span(f"work {index % 3}", attributes=attributes):
            pass


def _accounted(processor: ShinzoSpanProcessor) -> int:
    return processor.exported_spans + sum(processor.dropped_spans.values()) + processor.pending_retries


def test_privacy_rules_apply_to_every_span_on_export(receiver: OtlpReceiver, provider: TracerProvider):
    processor = _processor(receiver, capture_content=True)
    provider.add_span_processor(processor)
    _end_spans(
        provider,
        1,
        **{
            "db.password": "hunter2-hunter2",
            "http.request.header.authorization": "Bearer abcdefghijklmnopqrstuvwxyz",
            "gen_ai.tool.call.arguments": '{"user": {"api_key": "k-123456789", "name": "Ada"}}',
            "session.id": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",  # identity: never scrubbed
        },
    )
    assert processor.force_flush()
    (span,) = receiver.spans()
    assert span.attributes["db.password"] == REDACTED
    assert span.attributes["http.request.header.authorization"] == REDACTED
    assert span.attributes["gen_ai.tool.call.arguments"] == '{"user":{"api_key":"[REDACTED]","name":"Ada"}}'
    assert span.attributes["session.id"] == "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
    redacted = span.attributes[REDACTED_KEYS_ATTRIBUTE]
    assert isinstance(redacted, tuple) and "db.password" in redacted
    for body in receiver.raw_bytes:
        assert b"hunter2" not in body and b"k-123456789" not in body and b"abcdefghijklmnop" not in body
    processor.shutdown()


def test_content_attributes_dropped_when_collection_off(receiver: OtlpReceiver, provider: TracerProvider):
    processor = _processor(receiver)  # capture_content defaults to False
    provider.add_span_processor(processor)
    _end_spans(provider, 1, **{"gen_ai.tool.call.result": "private result", "gen_ai.tool.name": "t"})
    assert processor.force_flush()
    (span,) = receiver.spans()
    assert "gen_ai.tool.call.result" not in span.attributes and span.attributes["gen_ai.tool.name"] == "t"
    processor.shutdown()


def test_redaction_failure_drops_the_span_fail_closed(receiver: OtlpReceiver, provider: TracerProvider):
    def broken(match: RedactionMatch) -> str | None:
        raise RuntimeError("callback bug")

    processor = _processor(receiver, privacy=PrivacyRules(callback=broken))
    provider.add_span_processor(processor)
    _end_spans(provider, 2, password="raw-secret-value")
    _end_spans(provider, 3, harmless="value")
    assert processor.force_flush()
    assert len(receiver.spans()) == 3
    assert not any(b"raw-secret-value" in body for body in receiver.raw_bytes)
    assert processor.dropped_spans["redaction_failure"] == 2
    processor.shutdown()


def test_outage_within_the_buffer_loses_nothing(receiver: OtlpReceiver, provider: TracerProvider):
    processor = _processor(
        receiver,
        max_export_batch_size=50,
        timeout=0.3,
        circuit_breaker_failures=2,
        circuit_breaker_open_millis=200,
    )
    provider.add_span_processor(processor)
    _end_spans(provider, 100)
    assert processor.force_flush()
    receiver.set_mode("unavailable")
    _end_spans(provider, 300)
    assert not processor.force_flush()
    deadline = time.monotonic() + 10
    while not processor.circuit_open and time.monotonic() < deadline:  # the sender retries, then opens
        time.sleep(0.01)
    assert processor.circuit_open and processor.pending_retries == 300
    receiver.set_mode("ok")
    _end_spans(provider, 100)
    # The breaker lets a probe through once its open time has passed; then the buffer drains.
    deadline = time.monotonic() + 10
    while not processor.force_flush() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(receiver.spans()) == 500
    assert processor.exported_spans == 500 and not any(processor.dropped_spans.values())
    processor.shutdown()


def test_dead_endpoint_memory_bounded_and_drops_counted(provider: TracerProvider):
    with OtlpReceiver() as dead:
        dead.stop()  # nothing listens on its ports: connection refused
        processor = _processor(
            dead,
            max_queue_size=64,
            max_export_batch_size=32,
            retry_buffer_max_spans=100,
            timeout=0.2,
            circuit_breaker_open_millis=60000,
        )
        provider.add_span_processor(processor)
        _end_spans(provider, 1000)
        processor.force_flush()
        assert processor.pending_retries <= 100
        assert processor.queue_size <= 64
        dropped = processor.dropped_spans
        assert dropped["buffer_full"] + dropped["queue_full"] >= 1000 - 100 - 64
        processor.shutdown()
    # Every span ended is accounted for: exported, dropped by a reason, or (before shutdown) waiting.
    assert processor.exported_spans == 0
    assert sum(processor.dropped_spans.values()) == 1000
    assert processor.dropped_spans["shutdown"] >= 1


def test_retry_buffer_bounded_in_bytes(receiver: OtlpReceiver, provider: TracerProvider):
    receiver.set_mode("unavailable")
    processor = _processor(receiver, retry_buffer_max_bytes=20_000, timeout=0.2, circuit_breaker_failures=1)
    provider.add_span_processor(processor)
    _end_spans(provider, 100, payload="x" * 1000)  # about 1.2 kB each: the buffer keeps ~16
    processor.force_flush()
    assert 0 < processor.pending_retries < 20
    assert processor.dropped_spans["buffer_full"] == 100 - processor.pending_retries
    processor.shutdown()


def test_processor_metrics_use_sdk_self_observability_names(receiver: OtlpReceiver, provider: TracerProvider):
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    processor = _processor(receiver, meter_provider=meter_provider, max_queue_size=100)
    provider.add_span_processor(processor)
    _end_spans(provider, 7)
    assert processor.force_flush()
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points[metric.name] = list(metric.data.data_points)
    processed = {
        point.attributes.get("error.type"): point.value
        for point in points["otel.sdk.processor.span.processed"]
    }
    assert processed[None] == 7 and processed["queue_full"] == 0
    (capacity,) = points["otel.sdk.processor.span.queue.capacity"]
    assert capacity.value == 100 and capacity.attributes["otel.component.type"] == "shinzo_span_processor"
    processor.shutdown()
    meter_provider.shutdown()


def test_circuit_breaker_opens_after_threshold_and_probes():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=3, open_seconds=60, clock=lambda: now[0])
    for _ in range(2):
        breaker.record(False)
    assert breaker.allow()  # two failures: still closed
    breaker.record(False)
    assert not breaker.allow() and breaker.is_open
    now[0] = 59.9
    assert not breaker.allow()
    now[0] = 60.0
    assert breaker.allow()  # the probe
    breaker.record(False)  # probe failed: open again for 60 s
    assert not breaker.allow()
    now[0] = 120.0
    breaker.record(True)
    assert breaker.allow() and not breaker.is_open


def test_bad_explicit_settings_raise_value_error(receiver: OtlpReceiver):
    exporter = OTLPSpanExporter(endpoint=f"{receiver.http_endpoint}/v1/traces")
    with pytest.raises(ValueError, match="otel_bsp_max_queue_size"):
        ShinzoSpanProcessor(exporter, max_queue_size=0)
    with pytest.raises(ValueError, match="max_export_batch_size"):
        ShinzoSpanProcessor(exporter, max_queue_size=10, max_export_batch_size=20)


def test_bad_environment_value_falls_back_with_a_warning(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setenv("SHINZO_CIRCUIT_BREAKER_FAILURES", "many")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "77")
    processor = _processor(receiver)
    assert "SHINZO_CIRCUIT_BREAKER_FAILURES" in caplog.text
    assert processor._max_queue_size == 77
    processor.shutdown()
