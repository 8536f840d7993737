"""Which server's pipeline a span belongs to, when several servers share one TracerProvider.

Each `instrument_server` call has its own `ShinzoSpanProcessor` (its own privacy rules, exporter and
shutdown). The provider gets one `SpanRouter`, which hands each span to exactly one of them: the
processor of the server whose request was being handled when the span started (the request tracer
marks it in `CURRENT_PROCESSOR`), else the first processor attached to that
provider that is still running (spans started outside any request: an ASGI server span, a
background task). One server's shutdown detaches its processor; the others keep exporting.
"""

from __future__ import annotations

import threading
import weakref
from contextvars import ContextVar

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from shinzo_otel.processor import ShinzoSpanProcessor

CURRENT_PROCESSOR: ContextVar[ShinzoSpanProcessor | None] = ContextVar(
    "shinzo_otel_current_processor", default=None
)
"""The processor whose pipeline spans started in this context belong to (when it is attached to their
provider). The request tracer sets it (and resets it with its token) around each request of a
server, before any span of the request (session spans included) starts."""


class SpanRouter(SpanProcessor):
    """The one span processor `instrument_server` adds to a TracerProvider; see the module doc.

    The owner of each span is decided at start and recorded by span id (the span handed to `on_end`
    is a copy of the one started), so a span always ends in the pipeline it started in.
    """

    def __init__(self) -> None:
        self._members: tuple[ShinzoSpanProcessor, ...] = ()
        # Detached (shut down) processors keep the spans of their server's requests and drop them,
        # rather than another server exporting them under its own privacy rules.
        self._detached: weakref.WeakSet[ShinzoSpanProcessor] = weakref.WeakSet()
        self._owners: dict[int, ShinzoSpanProcessor] = {}

    @property
    def members(self) -> tuple[ShinzoSpanProcessor, ...]:
        return self._members

    def add(self, processor: ShinzoSpanProcessor) -> None:
        if processor not in self._members:
            self._members = (*self._members, processor)

    def remove(self, processor: ShinzoSpanProcessor) -> None:
        self._members = tuple(member for member in self._members if member is not processor)
        self._detached.add(processor)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        members = self._members
        owner = CURRENT_PROCESSOR.get()
        if owner is None or not (owner in members or owner in self._detached):
            if not members:
                return
            owner = members[0]
        self._owners[span.context.span_id] = owner
        owner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        owner = self._owners.pop(span.context.span_id, None) if span.context is not None else None
        if owner is not None:  # None: the span started before any processor was attached
            owner.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all([member.force_flush(timeout_millis) for member in self._members])

    def shutdown(self) -> None:
        """The provider shuts down: every attached processor stops."""
        members, self._members = self._members, ()
        for member in members:
            member.shutdown()


def routes_alone(processors: tuple[SpanProcessor, ...]) -> bool:
    """Whether a provider's span processors are only our router (no host processor to hand spans to)."""
    return len(processors) == 1 and type(processors[0]) is SpanRouter


_lock = threading.Lock()
_routers: weakref.WeakKeyDictionary[TracerProvider, SpanRouter] = weakref.WeakKeyDictionary()


def attach(provider: TracerProvider, processor: ShinzoSpanProcessor) -> None:
    """Route `provider`'s spans to `processor` too (adding the provider's router on first use)."""
    with _lock:
        router = _routers.get(provider)
        if router is None:
            router = _routers[provider] = SpanRouter()
            provider.add_span_processor(router)
        router.add(processor)


def detach(provider: TracerProvider, processor: ShinzoSpanProcessor) -> bool:
    """Stop routing spans to `processor` (its spans still open end in it, counted as dropped once it
    is shut down). Returns True when no processor is left on `provider`."""
    with _lock:
        router = _routers.get(provider)
        if router is None:
            return True
        router.remove(processor)
        return not router.members
