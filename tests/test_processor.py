"""ShinzoSpanProcessor: privacy on export, fail closed, retry buffer, circuit breaker, drop accounting."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import ShinzoSpanProcessor
from shinzo_otel._circuit_breaker import CircuitBreaker
from shinzo_otel.privacy import REDACTED, REDACTED_KEYS_ATTRIBUTE, PrivacyRules, RedactionMatch
from tests.loopback import http_processor, wait_until
from tests.otlp_receiver import OtlpReceiver


def _processor(receiver: OtlpReceiver, timeout: float = 2, **settings: Any) -> ShinzoSpanProcessor:
    """A processor exporting OTLP/HTTP to `receiver`; `timeout` (seconds) is the export timeout."""
    settings.setdefault("schedule_delay_millis", 60000)  # exports only when the test asks (or a batch fills)
    return http_processor(receiver, timeout, **settings)


def _end_spans(provider: TracerProvider, count: int, **attributes: Any) -> None:
    tracer = provider.get_tracer("test")
    for index in range(count):
        with tracer.start_as_current_span(f"work {index % 3}", attributes=attributes):
            pass


def test_privacy_rules_apply_to_every_span_on_export(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    processor = _processor(receiver, enable_argument_collection=True)
    tracer_provider.add_span_processor(processor)
    _end_spans(
        tracer_provider,
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


def test_content_attributes_dropped_when_collection_off(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    processor = _processor(receiver)  # enable_argument_collection defaults to False
    tracer_provider.add_span_processor(processor)
    _end_spans(tracer_provider, 1, **{"gen_ai.tool.call.result": "private result", "gen_ai.tool.name": "t"})
    assert processor.force_flush()
    (span,) = receiver.spans()
    assert "gen_ai.tool.call.result" not in span.attributes and span.attributes["gen_ai.tool.name"] == "t"
    processor.shutdown()


def test_redaction_failure_drops_the_span_fail_closed(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    def broken(match: RedactionMatch) -> str | None:
        raise RuntimeError("callback bug")

    processor = _processor(receiver, privacy=PrivacyRules(callback=broken))
    tracer_provider.add_span_processor(processor)
    _end_spans(tracer_provider, 2, password="raw-secret-value")
    _end_spans(tracer_provider, 3, harmless="value")
    assert processor.force_flush()
    assert len(receiver.spans()) == 3
    assert not any(b"raw-secret-value" in body for body in receiver.raw_bytes)
    assert processor.dropped_spans["redaction_failure"] == 2
    processor.shutdown()


def test_full_batches_are_exported_at_once(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    processor = _processor(receiver, max_export_batch_size=50, max_queue_size=1000)
    tracer_provider.add_span_processor(processor)
    _end_spans(tracer_provider, 200)  # the 60 s schedule never fires: only full batches go out
    receiver.wait_for_spans(200, timeout=30)
    sizes = [
        sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        for request in receiver.trace_requests
    ]
    assert sizes == [50, 50, 50, 50]
    processor.shutdown()


def test_outage_within_the_buffer_loses_nothing_and_sends_nothing_twice(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    # A 503 answer is refused, not timed out, only if its round trip stays under 90 % of the timeout:
    # 0.3 s was too tight for a loaded machine under coverage (one failure: a 50-span chunk counted
    # as export_timeout). 0.75 s stays below the exporter's first backoff (0.8-1.2 s), so it never
    # waits to retry a 503 and each refusal takes one round trip.
    processor = _processor(
        receiver,
        max_export_batch_size=50,
        timeout=0.75,
        circuit_breaker_failures=2,
        circuit_breaker_open_millis=3000,
    )
    tracer_provider.add_span_processor(processor)
    _end_spans(tracer_provider, 100)
    assert processor.force_flush()
    receiver.set_mode("unavailable")  # HTTP 503: nothing stored, so the spans are kept
    _end_spans(tracer_provider, 300)
    assert not processor.force_flush()
    assert wait_until(lambda: processor.circuit_open)  # the sender's second refusal opened it
    assert processor.pending_retries == 300
    receiver.set_mode("ok")
    _end_spans(tracer_provider, 100)
    # The breaker lets a probe through once its open time has passed; then the buffer drains.
    assert wait_until(processor.force_flush)
    spans = receiver.spans()
    assert len(spans) == 500 and len({span.span_id for span in spans}) == 500
    assert processor.exported_spans == 500 and not any(processor.dropped_spans.values())
    processor.shutdown()


def test_an_export_that_times_out_is_never_sent_again(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    processor = _processor(receiver, timeout=0.5)
    tracer_provider.add_span_processor(processor)
    receiver.set_mode("hang")  # the request arrives, the answer never comes: stored or not, nobody knows
    _end_spans(tracer_provider, 5)
    assert not processor.force_flush()
    assert processor.dropped_spans["export_timeout"] == 5 and processor.pending_retries == 0
    receiver.set_mode("ok")
    _end_spans(tracer_provider, 1)
    assert processor.force_flush()
    assert len(receiver.raw_bytes) == 2  # the hung request and the new span's: no resend
    assert len(receiver.spans()) == 1 and processor.exported_spans == 1
    processor.shutdown()


def test_dead_endpoint_memory_bounded_and_drops_counted(tracer_provider: TracerProvider):
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
        tracer_provider.add_span_processor(processor)
        _end_spans(tracer_provider, 1000)
        processor.force_flush()
        assert processor.pending_retries <= 100
        assert processor.queue_size <= 64
        dropped = processor.dropped_spans
        assert dropped["buffer_full"] + dropped["queue_full"] >= 1000 - 100 - 64
        processor.shutdown()
    # Every span ended is accounted for: exported, or dropped by a reason.
    assert processor.exported_spans == 0
    assert sum(processor.dropped_spans.values()) == 1000
    assert processor.dropped_spans["shutdown"] >= 1


def test_retry_buffer_bounded_in_bytes(receiver: OtlpReceiver, tracer_provider: TracerProvider):
    receiver.set_mode("unavailable")
    processor = _processor(
        receiver,
        retry_buffer_max_bytes=20_000,
        max_export_batch_size=10,  # bytes are counted once more than a batch waits
        timeout=0.2,
        circuit_breaker_failures=1,
    )
    tracer_provider.add_span_processor(processor)
    _end_spans(tracer_provider, 100, payload="x" * 1000)  # about 1.2 kB each: the buffer keeps ~16
    processor.force_flush()
    assert 0 < processor.pending_retries < 20
    assert processor.dropped_spans["buffer_full"] == 100 - processor.pending_retries
    processor.shutdown()


def test_processor_metrics_use_sdk_self_observability_names(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
):
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    url = f"{receiver.http_endpoint}/v1/traces"
    processor = ShinzoSpanProcessor(
        lambda: OTLPSpanExporter(endpoint=url), {"max_queue_size": 100}, meter_provider=meter_provider
    )
    tracer_provider.add_span_processor(processor)
    _end_spans(tracer_provider, 7)
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
    assert processed[None] == 7 and processed["queue_full"] == 0 and processed["export_timeout"] == 0
    (capacity,) = points["otel.sdk.processor.span.queue.capacity"]
    assert capacity.value == 100 and capacity.attributes["otel.component.type"] == "shinzo_span_processor"
    processor.shutdown()
    meter_provider.shutdown()


def test_circuit_breaker_opens_after_threshold_and_probes():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=3, open_seconds=60, clock=lambda: now[0])
    assert not breaker.record_failure() and not breaker.record_failure()
    assert breaker.allow()  # two failures: still closed
    assert breaker.record_failure()  # the third opens it
    assert not breaker.allow() and breaker.is_open and breaker.seconds_until_probe() == 60
    now[0] = 59.9
    assert not breaker.allow()
    now[0] = 60.0
    assert breaker.allow()  # the probe
    assert breaker.record_failure()  # probe failed: open again for 60 s
    assert not breaker.allow()
    now[0] = 120.0
    assert breaker.record_success()  # it was open: recovered
    assert breaker.allow() and not breaker.is_open and not breaker.record_success()


def test_circuit_breaker_rejects_bad_arguments():
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0, open_seconds=1)
    with pytest.raises(ValueError, match="open_seconds"):
        CircuitBreaker(failure_threshold=1, open_seconds=-1)


def test_bad_explicit_settings_raise_value_error_naming_the_key(receiver: OtlpReceiver):
    exporter = OTLPSpanExporter(endpoint=f"{receiver.http_endpoint}/v1/traces")
    with pytest.raises(ValueError, match="max_queue_size"):
        ShinzoSpanProcessor(exporter, {"max_queue_size": 0})
    with pytest.raises(ValueError, match="max_export_batch_size"):
        ShinzoSpanProcessor(exporter, {"max_queue_size": 10, "max_export_batch_size": 20})
    with pytest.raises(ValueError, match="schedule_delay: unknown key"):
        ShinzoSpanProcessor(exporter, {"schedule_delay": 10})
