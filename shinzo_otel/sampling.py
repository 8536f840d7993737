"""Session-consistent head sampling: a session is kept or dropped as a unit, in every process.

A client that propagates a trace context in each request's `_meta` makes every request its own trace
(the client span is the parent, the session span only a link), so one session spans many traces. A
trace-id sampler (`TraceIdRatioBased`, `ParentBased`) then keeps a few requests of a session and drops
the rest. `SessionSampler` decides from the `session.id` the span starts with instead: every span of a
session gets the same answer, in this process and in any other process sampling with the same ratio.

Use it on the TracerProvider (`TracerProvider(sampler=SessionSampler(0.1))`), or with the standard
variables `OTEL_TRACES_SAMPLER=shinzo_session` and `OTEL_TRACES_SAMPLER_ARG=0.1` (the
`opentelemetry_traces_sampler` entry point, read by the SDK's configurator that OpenTelemetry
distros run, e.g. under `opentelemetry-instrument`).

Head sampling cannot know how a session will end: a dropped session is dropped even if it fails later.
To keep every session with an error or a slow call, sample everything here (the SDK default) and let
the gateways of `collector_config/` decide per session (collector_config/README.md).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_TRACES_SAMPLER_ARG
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from shinzo_otel import _semconv as sc

_logger = logging.getLogger(__name__)

SESSION_SAMPLER_NAME: Final = "shinzo_session"
"""`OTEL_TRACES_SAMPLER` value (and `opentelemetry_traces_sampler` entry point name) of `SessionSampler`."""


def _session_value(session_id: str) -> int:
    """The 64-bit number a session is sampled by: the first 8 bytes, big-endian, of the SHA-256 digest
    of the id's UTF-8 bytes. Any language can compute it, so servers in other runtimes can agree."""
    return int.from_bytes(hashlib.sha256(session_id.encode("utf-8")).digest()[:8], "big")


class SessionSampler(Sampler):
    """Keeps a share of sessions whole: the decision is a stable hash of `session.id`.

    For each new span, in this order:

    1. its start attributes carry a non-empty string `session.id`: sampled when
       `sha256(session.id)[:8]` (big-endian) `< ratio * 2**64`, the same answer for every span of the
       session in every process. A remote parent (the client's span) does not change it; a local
       parent does not either (a span that starts a session under another session's span).
    2. otherwise a local parent (a span of this process): its decision, as `ParentBased` does, so the
       spans the user's code and libraries open inside a request follow the request.
    3. otherwise (a root, or a remote parent only): the trace id ratio of `TraceIdRatioBased`; a remote
       parent's sampled flag is not followed, so requests outside any session are sampled by trace
       id with the same ratio whatever the client chose.

    shinzo_otel starts its session spans, session start markers and request spans with `session.id`
    among their start attributes, so rule 1 applies to all of them.

    Args:
        ratio: the share of sessions (and of traces outside sessions) kept, in [0.0, 1.0]; default
            1.0 (keep everything).

    Raises:
        ValueError: `ratio` is not a number in [0.0, 1.0].
    """

    def __init__(self, ratio: float = 1.0) -> None:
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be a number in [0.0, 1.0], got {ratio!r}")
        self._ratio = float(ratio)
        # The bound TraceIdRatioBased compares the trace id's low 64 bits with; session values too.
        self._bound = TraceIdRatioBased.get_bound_for_rate(self._ratio)

    @property
    def ratio(self) -> float:
        """The share of sessions kept, in [0.0, 1.0]."""
        return self._ratio

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        session_id = attributes.get(sc.SESSION_ID) if attributes else None
        if isinstance(session_id, str) and session_id:
            sampled = _session_value(session_id) < self._bound
        elif parent.is_valid and not parent.is_remote:
            sampled = parent.trace_flags.sampled
        else:
            sampled = trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self._bound
        # As the SDK's samplers do: a dropped span gets no attributes, the parent's trace state is kept.
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP,
            attributes if sampled else None,
            parent.trace_state if parent.is_valid else None,
        )

    def get_description(self) -> str:
        return f"SessionSampler{{{self._ratio}}}"


def session_sampler_from_arg(arg: str | None) -> SessionSampler:
    """The `shinzo_session` entry point of the `opentelemetry_traces_sampler` group.

    The SDK's configurator calls it with the text of `OTEL_TRACES_SAMPLER_ARG` (None when unset).

    Args:
        arg: the ratio as text, e.g. `"0.1"`; unset or blank means 1.0. A value that is not a number
            in [0.0, 1.0] is logged and 1.0 used (an environment value never stops the host).
    """
    if arg is None or not arg.strip():
        return SessionSampler()
    try:
        return SessionSampler(float(arg))
    except ValueError:
        _logger.warning(
            "%s=%r is not a ratio in [0.0, 1.0]; %s keeps every session",
            OTEL_TRACES_SAMPLER_ARG,
            arg,
            SESSION_SAMPLER_NAME,
        )
        return SessionSampler()
