"""Scenario parts and checks that the mcp 2.x tests and their repeats on mcp 1.x (tests/mcp1) share, so
that both majors are held to the same rules. No mcp import: the servers and clients are each
major's own; these helpers only touch what both have in common (the `@server.tool()` decorator,
`Observability`, the spans at the loopback receiver)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import Observability, SessionTracker
from tests.loopback import operation_points, server_spans, spans_named, wait_for_spans
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

OPENTELEMETRY_INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
"""The zero-code launcher of opentelemetry-instrumentation, installed next to this interpreter."""


def client_meta(client_provider: TracerProvider, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`_meta` holding `extra` and the trace context of a fresh client span, as an instrumented client
    sends it (W3C `traceparent`)."""
    carrier: dict[str, Any] = dict(extra or {})
    with client_provider.get_tracer("client").start_as_current_span("agent step"):
        propagate.inject(carrier)
    return carrier


def traceparent_ids(meta: Mapping[str, Any]) -> tuple[str, str]:
    """(trace id, parent span id) of the W3C `traceparent` in `meta`: `00-{trace}-{span}-{flags}`."""
    _, trace_id, span_id, _ = str(meta["traceparent"]).split("-")
    return trace_id, span_id


def check_client_context_is_the_parent(spans: list[ReceivedSpan], meta: Mapping[str, Any]) -> None:
    """The one `tools/call echo` span, sent with `meta` (a `client_meta`), is a child of the client's
    span, in its trace, and links its session span."""
    (call,) = spans_named(spans, "tools/call echo")
    (session,) = spans_named(spans, "mcp.session")
    assert (call.trace_id, call.parent_span_id) == traceparent_ids(meta)
    # The session is a link, and the span still carries the session id.
    assert [(link.trace_id, link.span_id) for link in call.links] == [(session.trace_id, session.span_id)]
    assert call.attributes["session.id"] == session.attributes["session.id"]


async def start_manual_session(observability: Observability) -> SessionTracker:
    """Seed 000's manual API: enable session tracking with resource `resource-42` and metadata
    `user_id=u-1`; returns the manual session's tracker."""
    instrumentation = observability.instrumentation
    await instrumentation.enable_session_tracking("resource-42", metadata={"user_id": "u-1"})
    tracker = instrumentation.get_session_tracker()
    assert tracker is not None and tracker.is_session_active()
    return tracker


def check_manual_session(spans: list[ReceivedSpan], manual_id: str) -> ReceivedSpan:
    """After `start_manual_session`, an `echo` of `in-manual` with nothing better than the manual
    session and one of `own-session` on a connection (argument collection on): the first joined the
    manual session, the second kept its connection's session and carries the manual session's
    resource uuid and metadata. Returns the manual session span."""
    sessions = {span.attributes["shinzo.session.origin"]: span for span in spans_named(spans, "mcp.session")}
    assert set(sessions) == {"manual", "connection"}
    manual = sessions["manual"]
    assert manual.attributes["session.id"] == manual_id
    calls = {
        str(span.attributes["gen_ai.tool.call.arguments"]): span
        for span in spans_named(spans, "tools/call echo")
    }
    assert calls['{"text":"in-manual"}'].attributes["session.id"] == manual_id
    own = calls['{"text":"own-session"}']
    assert own.attributes["session.id"] == sessions["connection"].attributes["session.id"] != manual_id
    assert own.attributes["shinzo.resource.uuid"] == "resource-42"
    assert own.attributes["shinzo.session.metadata.user_id"] == "u-1"
    return manual


def check_invalid_requests_are_not_errors(receiver: OtlpReceiver) -> dict[Any, ReceivedSpan]:
    """After one request answered -32601 (method not found) and one -32602 (invalid params): their
    spans carry the code, no `error.type` and status UNSET, and the duration metric does not count
    them as errors. Returns the SERVER spans by `rpc.response.status_code`."""
    by_code = {
        span.attributes.get("rpc.response.status_code"): span for span in server_spans(receiver.spans())
    }
    for code in ("-32601", "-32602"):
        span = by_code[code]
        assert "error.type" not in span.attributes
        assert span.status_code == "UNSET"
    points = [p for p in operation_points(receiver) if "rpc.response.status_code" in p.attributes]
    assert {p.attributes["rpc.response.status_code"] for p in points} == {"-32601", "-32602"}
    assert not any("error.type" in p.attributes for p in points)
    return by_code


def add_wait_forever(server: Any) -> anyio.Event:
    """Register a tool `wait_forever` on `server` (`@server.tool()`); the event is set once a call of
    it has started."""
    started = anyio.Event()

    @server.tool()
    async def wait_forever() -> str:
        started.set()
        await anyio.sleep_forever()
        return "never"

    return started


def check_cancelled(receiver: OtlpReceiver) -> None:
    """The `wait_forever` call the client abandoned is recorded as cancelled, in its span and in the
    duration metric."""
    (span,) = spans_named(receiver.spans(), "tools/call wait_forever")
    assert span.attributes["error.type"] == "cancelled"
    assert span.status_code == "ERROR"
    (point,) = [
        p for p in operation_points(receiver) if p.attributes.get("gen_ai.tool.name") == "wait_forever"
    ]
    assert point.attributes["error.type"] == "cancelled"


def zero_code_launch(receiver: OtlpReceiver, *server: str) -> tuple[str, list[str], dict[str, str]]:
    """Command, arguments and environment that run the stdio server `python *server` under
    `opentelemetry-instrument`, exporting to `receiver` through our processor only (the SDK's own
    traces exporter off)."""
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
        "OTEL_TRACES_EXPORTER": "none",
    }
    return str(OPENTELEMETRY_INSTRUMENT), [sys.executable, *server], env


async def check_zero_code_session(receiver: OtlpReceiver, tool: str, service: str) -> None:
    """The zero-code server's session arrives with its one `tool` call in it, under `service`, and
    content capture stays off."""
    spans = await wait_for_spans(receiver, lambda spans: bool(spans_named(spans, "mcp.session")), timeout=30)
    (session,) = spans_named(spans, "mcp.session")
    (call,) = spans_named(spans, f"tools/call {tool}")
    assert call.attributes["session.id"] == session.attributes["session.id"]
    assert session.resource["service.name"] == service
    assert "gen_ai.tool.call.arguments" not in call.attributes  # content capture stays off
