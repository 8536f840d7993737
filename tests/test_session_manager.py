"""`SessionManager`: identity attributes outlive the SDK's attribute limit; a released session is
neither ended nor exported by shutdown."""

from __future__ import annotations

from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shinzo_otel.sessions import SessionManager, SessionOrigin


def _manager(max_attributes: int = 128) -> tuple[SessionManager, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=max_attributes))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return SessionManager(provider.get_tracer("test"), idle_timeout_seconds=60), exporter


def test_identity_survives_the_attribute_limit():
    manager, exporter = _manager(max_attributes=8)
    many = {f"shinzo.session.metadata.k{index}": "v" for index in range(20)}
    session = manager.start(SessionOrigin.CONVERSATION, attributes=many)
    manager.end(session, "completed")
    for span in exporter.get_finished_spans():  # the start marker and the session span
        attributes = dict(span.attributes or {})
        assert attributes["session.id"] == session.session_id
        assert attributes["shinzo.session.origin"] == "conversation"
        assert attributes["shinzo.session.type"] == "logical"
        assert attributes["shinzo.session.idle_timeout"] == 60


def test_a_released_session_is_left_open_by_shutdown():
    manager, exporter = _manager()
    kept, released = manager.start(SessionOrigin.MANUAL), manager.start(SessionOrigin.ADMIN_SHELL)
    manager.release(released)
    manager.end_all("shutdown")
    ended = [span for span in exporter.get_finished_spans() if span.name == "mcp.session"]
    assert [dict(span.attributes or {})["session.id"] for span in ended] == [kept.session_id]
    assert manager.get(released.session_id) is None
