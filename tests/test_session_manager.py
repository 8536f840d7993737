"""`SessionManager`: identity attributes outlive the SDK's attribute limit; a released session is
neither ended nor exported by shutdown."""

from __future__ import annotations

import os

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shinzo_otel.sessions import LogicalSessions, SessionManager, SessionOrigin
from tests.loopback import wait_until


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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_ends_its_own_idle_sessions():
    """After fork (gunicorn --preload) the child has no logical session of the parent's and its own
    thread ending idle sessions."""
    manager, _ = _manager()
    logical = LogicalSessions(manager, idle_timeout_seconds=0.2)
    parents = logical.session_for("conversation:c-1", SessionOrigin.CONVERSATION, lambda: ({}, {}))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports through the pipe and never returns into pytest
        try:
            childs = logical.session_for("conversation:c-1", SessionOrigin.CONVERSATION, lambda: ({}, {}))
            ended = wait_until(lambda: childs.ended, 20)
            os.write(write, b"1" if childs is not parents and ended else b"0")
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
        logical.close()
