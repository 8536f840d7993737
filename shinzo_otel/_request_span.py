"""The SERVER span of one inbound message, with the SDK's per-attribute work moved off the request path.

`Tracer.start_span` of the OTel SDK spends most of a span's cost on the request thread checking and
bounding every attribute under a lock and copying the span into a `ReadableSpan` at `end`. Our
SERVER span's attributes are strings and numbers we build ourselves, so `ServerSpans.start` makes a
`RequestSpan`: sampled by the provider's sampler (the SDK's default one decided in place, as it
decides), ids from its id generator, the same span context, parent and links as the SDK's; it keeps
its attributes in a plain dict, is handed over itself at `end` (it is immutable from then on, so no
copy), and gets the provider's span limits (and the JSON encoding of captured content) in `seal`:
- when our router is the provider's only span processor, the span goes straight to its server's
  `ShinzoSpanProcessor` and is sealed on the export thread;
- when the provider has other processors too (the host's own exporter), it goes through the
  provider's processors as the SDK's span does (our router routes it to ours) and is sealed at
  `end`, so every processor gets it complete.
A `RequestSpan` is an SDK `Span`: the handler's code, other instrumentations and exporters see one.
When the SDK's internal span metrics are on, or the SDK lacks what is mirrored here, the SDK's
tracer makes the span as always.

Private reads of the OTel SDK, each checked once, the SDK's span being the fallback:
`Tracer._span_limits`, `Tracer._instrumentation_scope`, `Tracer._is_enabled()`,
`SynchronousMultiSpanProcessor._span_processors` (and `_on_ending`, when present), and the fields
of `Span` that its methods use (`RequestSpan.__init__` sets them, the SDK's `Span.__init__` being
the costly part)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.trace import EventBase, Span, SpanProcessor, Tracer
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AnyValue, AttributeValue

_logger = logging.getLogger(__name__)

_PLAIN: Final = frozenset({str, bool, int, float})
"""Value types the SDK's attribute check keeps unchanged (no length limit set)."""
_UNSET: Final = Status(StatusCode.UNSET)
_RECORD_AND_SAMPLE: Final = Decision.RECORD_AND_SAMPLE
_DROP: Final = Decision.DROP
_SERVER: Final = SpanKind.SERVER
_FLAGS: Final = tuple(
    TraceFlags(sampled | random)
    for random in (0, getattr(TraceFlags, "RANDOM_TRACE_ID", 0))
    for sampled in (TraceFlags.DEFAULT, TraceFlags.SAMPLED)
)
"""Trace flags by `sampled + 2 * random_trace_id`, made once."""


def _mirrored(tracer: Tracer) -> bool:
    """Whether the SDK tracer has the parts `ServerSpans.start` mirrors, and its internal span
    metrics (which only its own `start_span` records) are off (a boolean per the OTel env spec)."""
    internal_metrics = os.environ.get(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "")
    return (
        internal_metrics.strip().lower() != "true"
        and hasattr(TraceFlags, "RANDOM_TRACE_ID")
        and hasattr(tracer, "_span_limits")
        and hasattr(tracer, "_instrumentation_scope")
        and callable(getattr(tracer, "_is_enabled", None))
        and isinstance(getattr(tracer.span_processor, "_span_processors", None), tuple)
    )


class RequestSpan(Span):
    """An SDK `Span` whose attributes stay a plain dict until it is `seal`ed (see the module doc).

    Made by `ServerSpans.start` only; every method behaves as the SDK's. Attributes set by the
    handler's code that are not plain strings, booleans or numbers, or under a value length limit,
    turn the dict into the SDK's `BoundedAttributes` at once (checked and bounded as usual).
    """

    # What every such span starts with, shared until a span sets its own.
    _kind = SpanKind.SERVER
    _trace_config = None
    _record_exception = True
    _set_status_on_exception = True
    _record_end_metrics: Callable[[], None] | None = None
    _status = _UNSET
    _events: Any = ()  # a BoundedList once an event is added: most spans never get one
    _links: Any = ()
    _deferred: tuple[tuple[str, Callable[[Any], str | None], Any], ...] = ()
    _end_time: int | None = None
    _seal_at_end = False
    _sealed = False

    def __init__(  # the SDK's Span.__init__ is not called: it is what this class saves
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        links: Sequence[Link],
        tracer: Tracer,
        processor: SpanProcessor,
        *,
        seal_at_end: bool = False,
    ) -> None:
        self._name = name
        self._context = context
        self._parent = parent
        self._instrumentation_info = tracer.instrumentation_info
        self._instrumentation_scope = tracer._instrumentation_scope
        self._resource = tracer.resource
        self._sampler = tracer.sampler
        self._span_processor = processor
        self._limits = tracer._span_limits
        self._lock = threading.Lock()
        self._attributes: Any = attributes
        if links:
            self._links = links  # checked and bounded in seal (the SDK's `_new_links`)
        if seal_at_end:
            self._seal_at_end = True
        self._start_time = time_ns()

    def set_attribute(self, key: str, value: AnyValue) -> None:
        self.set_attributes({key: value})

    def set_attributes(self, attributes: Mapping[str, AnyValue]) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Setting attribute on ended span.")
                return
            plain_kept = self._limits.max_span_attribute_length is None
            for key, value in attributes.items():
                if self._deferred:  # a value set later wins over deferred content, as it would
                    self._deferred = tuple(item for item in self._deferred if item[0] != key)
                current = self._attributes
                if type(current) is dict:
                    if plain_kept and type(value) in _PLAIN and type(key) is str and key:
                        current.pop(key, None)  # a key set again moves last, as in BoundedAttributes
                        current[key] = value
                        continue
                    self._resolve_deferred()
                    current = self._attributes = self._bounded(immutable=False)
                current[key] = value

    def _add_event(self, event: EventBase) -> None:
        with self._lock:
            if self._end_time is None:
                if type(self._events) is not BoundedList:  # made on first use, as the SDK's span has it
                    self._events = BoundedList.from_seq(self._limits.max_events, self._events)
                self._events.append(event)
                return
        _logger.warning("Tried adding an event to an ended span.")

    def _add_link(self, link: Link) -> None:
        with self._lock:
            if self._end_time is None:
                self._links = [*self._links, link]  # checked and bounded in seal, as the start's
                return
        _logger.warning("Tried adding a link to an ended span.")

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
        processor = self._span_processor
        if self._seal_at_end:  # other processors get it now: complete, as the SDK's copy would be
            self.seal()
            on_ending = getattr(processor, "_on_ending", None)
            if on_ending is not None:
                on_ending(self)
        processor.on_end(self)

    def defer_attribute(self, key: str, encode: Callable[[Any], str | None], value: Any) -> None:
        """Set `key` to `encode(value)`, encoded on the export thread (`seal`) rather than now: for
        content the request holds anyway (arguments, a result), whose encoding need not delay the
        answer. The attribute takes its place now (for the count limit and the order, as if set
        now). `value` must not change afterwards (the SDK writes the same objects to the wire)."""
        with self._lock:
            if self._end_time is not None:
                return
            if type(self._attributes) is dict:
                self._attributes.pop(key, None)
                self._attributes[key] = ""  # its place; the value comes in _resolve_deferred
                self._deferred += ((key, encode, value),)
                return
            encoded = _encoded(key, encode, value)  # already bounded: a rare span, done now
            if encoded is not None:
                self._attributes[key] = encoded

    def seal(self) -> None:
        """On the export thread, once the span has ended: the deferred attributes, then the
        provider's span limits on all of them, as the SDK applies them when they are set (count,
        value length, types), and on its links. Never raises: content that fails to encode is left
        out. Done once: at `end` when other processors get the span, else on our export thread."""
        if self._sealed:
            return
        self._sealed = True
        self._resolve_deferred()
        if self._links:
            self._links = self._new_links(self._links)
        attributes = self._attributes
        if type(attributes) is not dict:
            return
        limits = self._limits
        if (
            (limits.max_span_attributes is not None and len(attributes) > limits.max_span_attributes)
            or limits.max_span_attribute_length is not None
            or not _PLAIN.issuperset(map(type, attributes.values()))
        ):
            self._attributes = self._bounded(immutable=True)

    def _resolve_deferred(self) -> None:
        """Encode the deferred attributes in their places (the attributes are a dict meanwhile)."""
        attributes = self._attributes
        for key, encode, value in self._deferred:
            encoded = _encoded(key, encode, value)
            if encoded is None:
                attributes.pop(key, None)
            else:
                attributes[key] = encoded
        self._deferred = ()

    def _bounded(self, *, immutable: bool) -> BoundedAttributes:
        return BoundedAttributes(
            self._limits.max_span_attributes,
            self._attributes,
            immutable=immutable,
            max_value_len=self._limits.max_span_attribute_length,
        )


def _encoded(key: str, encode: Callable[[Any], str | None], value: Any) -> str | None:
    try:
        return encode(value)
    except Exception:  # e.g. a circular reference in a result: the span keeps everything else
        _logger.debug("shinzo_otel could not encode %s; left out", key, exc_info=True)
        return None


def set_content(span: trace.Span, key: str, encode: Callable[[Any], str | None], value: Any) -> None:
    """`span.set_attribute(key, encode(value))` unless `encode` gives None; for a `RequestSpan` the
    encoding is deferred to the export thread (`RequestSpan.defer_attribute`).

    Raises:
        Exception: what `encode` raises, for any other span.
    """
    if type(span) is RequestSpan:
        span.defer_attribute(key, encode, value)
        return
    encoded = encode(value)
    if encoded is not None:
        span.set_attribute(key, encoded)


class ServerSpans:
    """Starts the SERVER span of each inbound message of one server (see the module docstring).

    Args:
        tracer: the server's tracer (of the resolved TracerProvider).
        processor: the server's `ShinzoSpanProcessor`, which gets its spans; None when spans go
            elsewhere (the SDK's tracer is then always used).
        sole_processor: `(the provider's span processors) -> bool`, True when they are only ours.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        processor: SpanProcessor | None,
        sole_processor: Callable[[tuple[SpanProcessor, ...]], bool],
    ) -> None:
        self._tracer = tracer
        self._sole_processor = sole_processor
        # The provider's span processors last seen, and whether they are only ours: the provider
        # replaces its tuple when a processor is added.
        self._alone: tuple[object, bool] = ((), False)
        self._light: tuple[Tracer, SpanProcessor] | None = None
        if processor is not None and isinstance(tracer, Tracer) and _mirrored(tracer):
            self._light = tracer, processor

    def start(
        self,
        name: str,
        context: Context | None,
        parent: SpanContext,
        attributes: dict[str, AttributeValue],
        links: Sequence[Link],
    ) -> trace.Span:
        """Start a SERVER span as `Tracer.start_span(name, context, SpanKind.SERVER, attributes,
        links)` does.

        Args:
            parent: the span context current in `context` (the current one when `context` is None),
                which the caller has already read.
            attributes: handed over: the span keeps this dict as its own.
        """
        light = self._light
        if light is None or not light[0]._is_enabled():
            return self._tracer.start_span(
                name, context=context, kind=_SERVER, attributes=attributes, links=links
            )
        sdk, processor = light
        # As Tracer.start_span (opentelemetry-sdk), without the per-attribute work.
        ids = sdk.id_generator
        parent_span: SpanContext | None = parent
        if parent.is_valid:
            trace_id = parent.trace_id
            random_trace_id = parent.trace_flags.random_trace_id
        else:
            parent_span = None
            trace_id = ids.generate_trace_id()
            random_trace_id = ids.is_trace_id_random()
        sampler = sdk.sampler
        if sampler is DEFAULT_ON:
            # The SDK's default, ParentBased(ALWAYS_ON), decided here as it decides: the parent's
            # decision (ALWAYS_ON or ALWAYS_OFF), sampled for a root; the parent's trace state; no
            # attributes added.
            sampled = parent_span is None or parent.trace_flags.sampled
            decision = _RECORD_AND_SAMPLE if sampled else _DROP
            trace_state = None if parent_span is None else parent.trace_state
            own = attributes
        else:
            result = sampler.should_sample(context, trace_id, name, _SERVER, attributes, links)
            decision, trace_state = result.decision, result.trace_state
            own = result.attributes.copy()
        flags = _FLAGS[(decision is _RECORD_AND_SAMPLE) + 2 * bool(random_trace_id)]
        span_context = SpanContext(trace_id, ids.generate_span_id(), False, flags, trace_state)
        if decision is _DROP:
            return NonRecordingSpan(span_context)
        processors = sdk.span_processor._span_processors
        alone = self._alone
        if alone[0] is not processors:
            alone = self._alone = (processors, self._sole_processor(processors))
        if alone[1]:
            span = RequestSpan(name, span_context, parent_span, own, links, sdk, processor)
            processor.on_start(span, context)
        else:  # the host's processors too, through the provider's (our router routes to ours)
            span = RequestSpan(
                name, span_context, parent_span, own, links, sdk, sdk.span_processor, seal_at_end=True
            )
            sdk.span_processor.on_start(span, parent_context=context)
        return span
