"""The SERVER span made off the SDK's tracer (`shinzo_otel._request_span`) exports what the SDK's span
would: the same server, client and calls are run on a provider whose only span processor is ours
(the span goes straight to it), on one that also has a host processor (the span goes through the
provider's processors), and, as the oracle, with the SDK's tracer making the span (forced by the
SDK's internal span metrics, which only its own tracer records); what the loopback receiver and the
host's processor get must be the same."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler

from tests.loopback import instrument_to_receiver
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

_MINTED = frozenset({"session.id", "mcp.session.id"})
"""Attributes whose values are minted per run (compared for presence only)."""


def _server(provider: TracerProvider) -> MCPServer:
    server = MCPServer("span-api")
    user_tracer = provider.get_tracer("user.code")

    @server.tool()
    def annotate(text: str) -> str:
        """What a handler does with the current span, valid and invalid alike."""
        span = trace.get_current_span()
        span.set_attribute("app.text", text)
        span.set_attributes({"app.count": 3, "app.ratio": 0.5, "app.ok": True})
        span.set_attribute("app.text", text + "!")  # set again: last value, moved last
        span.set_attribute("gen_ai.tool.call.arguments", "set by the handler")  # wins over the capture
        span.set_attribute("app.tags", ["a", "b"])
        span.set_attribute("app.map", {"a map": "kept by the SDK"})  # type: ignore[arg-type]
        span.set_attribute("", "an empty key")
        span.add_event("app.checkpoint", {"step": 1, "where": ["x", "y"]})
        try:
            raise ValueError("handled inside the tool")
        except ValueError as error:
            span.record_exception(error)
        with user_tracer.start_as_current_span("user.work"):
            return text.upper()

    @server.tool()
    def refuse(text: str) -> str:
        """Fails: the span's status and error type."""
        raise RuntimeError(f"refused {text}")

    return server


_WAYS = ("alone", "with-host", "sdk-span")


async def _run(
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    way: str,
    *,
    sampler: Sampler | None = None,
    mode: str | None = None,
    meta: dict[str, Any] | None = None,
    **limits: Any,
) -> tuple[list[ReceivedSpan], list[tuple[Any, ...]]]:
    """What the receiver got, and what a host processor got (empty for `alone`)."""
    provider = TracerProvider(span_limits=SpanLimits(**limits), sampler=sampler)
    host = _HostExporter()
    if way != "alone":
        provider.add_span_processor(SimpleSpanProcessor(host))
    server = _server(provider)
    with monkeypatch.context() as patch:
        if way == "sdk-span":
            patch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
        observability = instrument_to_receiver(
            server, receiver, provider, server_name="span-api", enable_argument_collection=True
        )
    receiver.clear()
    async with Client(server) if mode is None else Client(server, mode=mode) as client:
        await client.call_tool(
            "annotate", {"text": "a fairly long argument, longer than the limit"}, meta=meta
        )
        await client.call_tool("refuse", {"text": "no"}, meta=meta)
    observability.force_flush()
    spans = receiver.spans()
    await observability.shutdown()
    provider.shutdown()
    return spans, sorted(host.seen)


def _without_minted(attributes: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(key, "minted" if key in _MINTED else value) for key, value in attributes.items()]


class _HostExporter(SpanExporter):
    """A host's exporter: what each of our spans held when it was exported (as an exporter that
    encodes at once sees it; not redacted: privacy is our pipeline's)."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            if span.instrumentation_scope is not None and span.instrumentation_scope.name == "shinzo_otel":
                self.seen.append(
                    (
                        span.name,
                        _without_minted(dict(span.attributes or {})),
                        span.dropped_attributes,
                        [(event.name, len(event.attributes or {})) for event in span.events],
                        span.dropped_events,
                        len(span.links),
                        span.context.trace_state.to_header() if span.context is not None else None,
                    )
                )
        return SpanExportResult.SUCCESS


def _comparable(spans: list[ReceivedSpan]) -> list[tuple[Any, ...]]:
    """Everything but ids and times; a span's parent as the parent's name."""
    names = {span.span_id: span.name for span in spans}
    return sorted(
        (
            span.name,
            span.kind,
            names.get(span.parent_span_id or "", span.parent_span_id is not None),
            _without_minted(span.attributes),
            [(event.name, sorted(_without_minted(event.attributes))) for event in span.events],
            len(span.links),
            span.status_code,
            span.status_message,
            span.scope_name,
        )
        for span in spans
    )


@pytest.mark.anyio
@pytest.mark.parametrize("mode", [None, "legacy"], ids=["default-client", "legacy-client"])
@pytest.mark.parametrize(
    "limits",
    [{}, {"max_span_attribute_length": 12, "max_span_attributes": 14, "max_events": 1}],
    ids=["default-limits", "tight-limits"],
)
async def test_the_server_span_exports_what_the_sdks_span_exports(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, limits: dict[str, int], mode: str | None
) -> None:
    """The default client (2026-07-28 era, no session) and a legacy one (a session per connection:
    the SERVER span links the session span)."""
    ours, _ = await _run(receiver, monkeypatch, "alone", mode=mode, **limits)
    with_host, host_got = await _run(receiver, monkeypatch, "with-host", mode=mode, **limits)
    oracle, host_got_from_sdk = await _run(receiver, monkeypatch, "sdk-span", mode=mode, **limits)
    assert _comparable(ours) == _comparable(oracle)
    assert _comparable(with_host) == _comparable(oracle)
    assert host_got == host_got_from_sdk  # complete (captured content, limits) when handed over
    assert {seen[0] for seen in host_got} >= {"tools/call annotate", "tools/call refuse"}
    (annotate,) = [span for span in ours if span.name == "tools/call annotate"]
    (work,) = [span for span in ours if span.name == "user.work"]
    assert work.parent_span_id == annotate.span_id and work.trace_id == annotate.trace_id
    assert annotate.attributes["app.tags"] == ("a", "b")
    assert "" not in annotate.attributes  # an empty key is dropped
    if limits:
        assert [event.name for event in annotate.events] == ["exception"]  # the oldest dropped
        assert annotate.attributes["gen_ai.tool.call.arguments"] == "set by the h"
        assert annotate.attributes["app.text"] == "a fairly lon"  # 12 characters
        assert len(annotate.attributes) == 14
    else:
        assert [event.name for event in annotate.events] == ["app.checkpoint", "exception"]
        assert annotate.attributes["gen_ai.tool.call.arguments"] == "set by the handler"
        (refuse,) = [span for span in ours if span.name == "tools/call refuse"]
        assert refuse.attributes["gen_ai.tool.call.arguments"] == '{"text":"no"}'  # captured
        assert annotate.attributes["app.text"] == "a fairly long argument, longer than the limit!"
        keys = list(annotate.attributes)
        assert keys.index("app.text") > keys.index("app.ok")  # set again: moved after the later keys


@pytest.mark.anyio
async def test_a_sampler_that_drops_everything_drops_the_server_span_and_the_call_still_works(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for way in _WAYS:
        spans, host_got = await _run(receiver, monkeypatch, way, sampler=ALWAYS_OFF)
        assert (spans, host_got) == ([], []), way


_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
_PARENT_ID = "00f067aa0ba902b7"


@pytest.mark.anyio
@pytest.mark.parametrize("sampled", [True, False], ids=["sampled-parent", "unsampled-parent"])
async def test_a_propagated_parent_decides_as_with_the_sdks_span(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, sampled: bool
) -> None:
    """The SDK's default sampler (parent-based, always on) follows the client's `traceparent`: the
    same trace, parent and trace state, or nothing recorded when the parent is not sampled."""
    meta = {"traceparent": f"00-{_TRACE_ID}-{_PARENT_ID}-0{int(sampled)}", "tracestate": "vendor=opaque"}
    got = {way: await _run(receiver, monkeypatch, way, meta=meta) for way in _WAYS}
    assert _comparable(got["alone"][0]) == _comparable(got["sdk-span"][0])
    assert _comparable(got["with-host"][0]) == _comparable(got["sdk-span"][0])
    assert got["with-host"][1] == got["sdk-span"][1]
    calls = [span for span in got["alone"][0] if span.name.startswith("tools/call")]
    if sampled:
        assert len(calls) == 2
        assert {(span.trace_id, span.parent_span_id) for span in calls} == {(_TRACE_ID, _PARENT_ID)}
        host_calls = [seen for seen in got["with-host"][1] if seen[0].startswith("tools/call")]
        assert [seen[-1] for seen in host_calls] == ["vendor=opaque"] * 2
    else:
        assert calls == []
        assert not [seen for seen in got["with-host"][1] if seen[0].startswith("tools/call")]
