"""SessionSampler: a session is kept or dropped as a unit, the same way in every process.

Real TracerProviders and real spans (InMemorySpanExporter), then a real `MCPServer` with real clients
whose every request carries its own client trace context in `_meta` (each request its own trace, the
session span only linked), exporting to the loopback OTLP receiver. Session ids are deterministic
where the test picks them, so the ratio checks cannot flake.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shinzo_otel.sampling import (
    SESSION_SAMPLER_NAME,
    SessionSampler,
    session_sampler_from_arg,
)
from tests.loopback import instrument_to_receiver
from tests.mcp_servers import make_mcpserver
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.shared_checks import client_meta

SESSION_ID = "session.id"


def documented_decision(session_id: str, ratio: float) -> bool:
    """The rule of the SessionSampler docstring, computed here independently of the module."""
    value = int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big")
    return value < round(ratio * 2**64)


def ids_kept(ratio: float, wanted: bool, count: int) -> list[str]:
    """`count` deterministic session ids whose documented decision at `ratio` is `wanted`."""
    found = [f"pick-{n}" for n in range(10_000) if documented_decision(f"pick-{n}", ratio) is wanted]
    return found[:count]


def remote_parent(trace_id: int, sampled: bool) -> Any:
    """A context whose span is a remote parent (as a client propagated it) with this trace id."""
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(trace_id, 0x1234, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(parent))


class Recorder:
    """A real TracerProvider with a sampler and an in-memory exporter."""

    def __init__(self, sampler: Sampler) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test")

    def session(self, session_id: str, client_trace_id: int, client_sampled: bool) -> None:
        """What a server does for one request of a session: a SERVER span under the client's remote
        parent with the session id among its start attributes, and a user span inside it."""
        context = remote_parent(client_trace_id, client_sampled)
        with (
            self.tracer.start_as_current_span(
                "tools/call echo",
                context=context,
                kind=trace.SpanKind.SERVER,
                attributes={SESSION_ID: session_id},
            ),
            self.tracer.start_as_current_span("user.work"),
        ):
            pass

    def names_by_trace(self) -> dict[int, list[str]]:
        result: dict[int, list[str]] = defaultdict(list)
        for span in self.exporter.get_finished_spans():
            assert span.context is not None
            result[span.context.trace_id].append(span.name)
        return result

    def kept_sessions(self) -> set[str]:
        return {
            str(span.attributes[SESSION_ID])
            for span in self.exporter.get_finished_spans()
            if span.attributes and SESSION_ID in span.attributes
        }

    def shutdown(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def recorders() -> Iterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for recorder in made:
        recorder.shutdown()


def test_independent_providers_keep_the_same_sessions(recorders: list[Recorder]) -> None:
    # Two processes serving requests of the same 200 sessions: different trace ids, clients that
    # alternately sample and do not; the kept sessions must be the same, whatever the trace.
    first, second = Recorder(SessionSampler(0.5)), Recorder(SessionSampler(0.5))
    recorders += [first, second]
    session_ids = [f"session-{n}" for n in range(200)]
    for n, session_id in enumerate(session_ids):
        first.session(session_id, client_trace_id=10_000 + n, client_sampled=n % 2 == 0)
        second.session(session_id, client_trace_id=90_000 + n, client_sampled=n % 2 == 1)
    kept = first.kept_sessions()
    assert kept == second.kept_sessions()
    assert kept == {session_id for session_id in session_ids if documented_decision(session_id, 0.5)}
    assert 0 < len(kept) < len(session_ids)
    # A kept request keeps the user's span inside it (local parent followed): both, or neither.
    for recorder in (first, second):
        assert all(names == ["user.work", "tools/call echo"] for names in recorder.names_by_trace().values())


def test_a_remote_parent_does_not_override_the_session_decision(recorders: list[Recorder]) -> None:
    recorder = Recorder(SessionSampler(0.5))
    recorders.append(recorder)
    (kept,) = ids_kept(0.5, True, 1)
    (dropped,) = ids_kept(0.5, False, 1)
    recorder.session(kept, client_trace_id=1, client_sampled=False)
    recorder.session(dropped, client_trace_id=2, client_sampled=True)
    assert recorder.kept_sessions() == {kept}


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9])
def test_the_keep_ratio_is_within_a_binomial_bound(recorders: list[Recorder], ratio: float) -> None:
    recorder = Recorder(SessionSampler(ratio))
    recorders.append(recorder)
    count = 4000
    tracer = recorder.tracer
    for n in range(count):
        tracer.start_span("mcp.session", attributes={SESSION_ID: f"ratio-{n:05d}"}).end()
    kept = len(recorder.kept_sessions())
    # Four standard deviations of Binomial(count, ratio): the ids are fixed, so this never flakes,
    # and a hash that is not uniform (or a wrong bound) lands far outside.
    assert abs(kept - count * ratio) <= 4 * math.sqrt(count * ratio * (1 - ratio)), kept


@pytest.mark.parametrize(("ratio", "expected"), [(0.0, 0), (1.0, 300)])
def test_ratio_zero_keeps_nothing_and_one_everything(
    recorders: list[Recorder], ratio: float, expected: int
) -> None:
    recorder = Recorder(SessionSampler(ratio))
    recorders.append(recorder)
    for n in range(300):
        recorder.tracer.start_span("mcp.session", attributes={SESSION_ID: f"edge-{n}"}).end()
    assert len(recorder.kept_sessions()) == expected


def test_spans_without_a_session_follow_a_local_parent_else_the_trace_id_ratio(
    recorders: list[Recorder],
) -> None:
    recorder = Recorder(SessionSampler(0.5))
    recorders.append(recorder)
    tracer = recorder.tracer
    bound = round(0.5 * 2**64)
    below, above = bound - 1, bound  # low 64 bits of the trace id, kept and dropped by the ratio
    high = 7 << 64  # the high bits play no part, as in TraceIdRatioBased
    # Roots and remote parents without a session: the trace id decides, not the client's flag.
    tracer.start_span("outside kept", context=remote_parent(high | below, sampled=False)).end()
    tracer.start_span("outside dropped", context=remote_parent(high | above, sampled=True)).end()
    # A kept session whose trace id the ratio would drop: its child without a session id follows it.
    (kept,) = ids_kept(0.5, True, 1)
    with tracer.start_as_current_span(
        "tools/call echo", context=remote_parent(high | above, sampled=True), attributes={SESSION_ID: kept}
    ):
        tracer.start_span("httpx GET").end()
    # And a dropped session's child is dropped, though the ratio would keep its trace id.
    (dropped,) = ids_kept(0.5, False, 1)
    with tracer.start_as_current_span(
        "tools/call echo", context=remote_parent(high | below, sampled=True), attributes={SESSION_ID: dropped}
    ):
        tracer.start_span("httpx GET").end()
    assert recorder.names_by_trace() == {
        high | below: ["outside kept"],
        high | above: ["httpx GET", "tools/call echo"],
    }


def test_a_kept_span_keeps_its_attributes_and_the_parent_trace_state() -> None:
    sampler = SessionSampler(1.0)
    state = trace.TraceState([("vendor", "value")])
    parent = SpanContext(5, 6, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=state)
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    kept = sampler.should_sample(context, 5, "tools/call echo", attributes={SESSION_ID: "s", "a": 1})
    assert dict(kept.attributes) == {SESSION_ID: "s", "a": 1}
    assert kept.trace_state == state
    dropped = SessionSampler(0.0).should_sample(context, 5, "tools/call echo", attributes={SESSION_ID: "s"})
    assert dict(dropped.attributes) == {}
    assert SessionSampler(0.25).get_description() == "SessionSampler{0.25}"


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan"), "0.5", True])
def test_a_bad_ratio_is_a_clear_error(ratio: Any) -> None:
    with pytest.raises(ValueError, match=r"ratio must be a number in \[0.0, 1.0\]"):
        SessionSampler(ratio)


# --- configuration from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG ------------------------------


def test_the_entry_point_builds_a_session_sampler_from_the_argument(caplog: pytest.LogCaptureFixture) -> None:
    (entry_point,) = entry_points(group="opentelemetry_traces_sampler", name=SESSION_SAMPLER_NAME)
    factory = entry_point.load()
    assert factory is session_sampler_from_arg
    assert factory("0.25").ratio == 0.25
    assert factory(None).ratio == 1.0
    assert factory(" ").ratio == 1.0
    # A bad environment value is logged and everything kept: it never stops the host.
    assert factory("lots").ratio == 1.0
    assert factory("2").ratio == 1.0
    assert "OTEL_TRACES_SAMPLER_ARG='lots'" in caplog.text


# --- a real server: every request its own trace, sessions whole or absent -------------------------


def _by_session(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    result: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        if SESSION_ID in span.attributes:
            result[str(span.attributes[SESSION_ID])].append(span)
    return result


def _assert_whole_sessions(spans: list[ReceivedSpan], ratio: float, calls_per_session: int) -> int:
    """Every session present is whole (its session span, start marker, every call and the user's span
    inside `nested`), was kept by the documented rule, and no request of an absent session leaked.
    Returns how many sessions were kept."""
    sessions = _by_session(spans)
    for session_id, members in sessions.items():
        names = sorted(span.name for span in members)
        assert names.count("mcp.session") == 1, (session_id, names)
        assert names.count("mcp.session.start") == 1, (session_id, names)
        assert names.count("tools/call echo") + names.count("tools/call nested") == calls_per_session
        assert names.count("user.work") == names.count("tools/call nested")
        assert documented_decision(session_id, ratio), session_id
        # Each call is its own trace under the client's span, the session span only linked.
        session_span = next(span for span in members if span.name == "mcp.session")
        calls = [span for span in members if span.name.startswith("tools/call")]
        assert len({span.trace_id for span in calls}) == calls_per_session
        assert all(session_span.trace_id != span.trace_id for span in calls)
    return len(sessions)


@pytest.mark.anyio
async def test_a_real_server_keeps_conversations_whole_in_default_mode(
    receiver: OtlpReceiver,
) -> None:
    provider = TracerProvider(sampler=SessionSampler(0.5))
    client_provider = TracerProvider()
    unsampled_client = TracerProvider(sampler=ALWAYS_OFF)
    server = make_mcpserver(provider)
    observability = instrument_to_receiver(server, receiver, provider, server_name="sampled")
    conversations = 16
    async with Client(server) as client:  # default mode: 2026-07-28, sessions from conversation ids
        for n in range(conversations):
            # Half the clients did not sample their own span: the session decides all the same.
            clients = client_provider if n % 2 else unsampled_client
            for tool in ("echo", "nested"):
                meta = client_meta(clients, {"openai/session": f"conv-{n}"})
                await client.call_tool(tool, {"text": str(n)}, meta=meta)
    await observability.shutdown()  # ends the logical sessions
    kept = _assert_whole_sessions(receiver.spans(), 0.5, calls_per_session=2)
    assert kept <= conversations
    provider.shutdown()
    client_provider.shutdown()
    unsampled_client.shutdown()


@pytest.mark.anyio
async def test_a_real_server_keeps_legacy_sessions_whole(receiver: OtlpReceiver) -> None:
    provider = TracerProvider(sampler=SessionSampler(0.5))
    client_provider = TracerProvider(sampler=ALWAYS_ON)
    server = make_mcpserver(provider)
    observability = instrument_to_receiver(server, receiver, provider, server_name="sampled")
    connections = 12
    for n in range(connections):
        async with Client(server, mode="legacy") as client:  # one session per connection
            for tool in ("echo", "nested", "echo"):
                await client.call_tool(tool, {"text": str(n)}, meta=client_meta(client_provider))
    await observability.shutdown()
    kept = _assert_whole_sessions(receiver.spans(), 0.5, calls_per_session=3)
    assert kept <= connections
    provider.shutdown()
    client_provider.shutdown()
