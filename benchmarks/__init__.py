"""Benchmarks of shinzo_otel against the mcp SDK's built-in tracing; run with `python -m benchmarks`.

Contract of a benchmark: a module `benchmarks/bench_<name>.py` exposing
`run(quick: bool = False) -> dict[str, Any]`. The runner (`benchmarks/__main__.py`) calls it in a
fresh interpreter (benchmarks may set the global TracerProvider, which can be set only once per
process) and stores the returned dict, which must be JSON-serialisable, under `<name>` in
`benchmarks/results.json`. Markdown: every entry of the optional key `"tables"` (made with `table`)
becomes a table in `benchmarks/results.md`, and the strings of the optional key `"notes"` follow it;
a result without tables is shown as a key/value table of its scalar values. `quick=True` means tiny
sizes: seconds, not minutes (the smoke test runs every benchmark that way).

The helpers below are shared by the benchmark modules.
"""

from __future__ import annotations

import logging
import math
import resource
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["CountingExporter", "median", "peak_rss_mib", "percentile", "quiet_logging", "table"]


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A table for `results.md`: `{"title", "columns", "rows"}`; each row has one cell per column."""
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(columns)} columns")
    return {"title": title, "columns": list(columns), "rows": [list(row) for row in rows]}


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence.

    Raises:
        ValueError: `values` is empty.
    """
    return percentile(values, 50)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) of a non-empty sequence, linear interpolation between ranks
    (numpy's default method).

    Raises:
        ValueError: `values` is empty or `q` is outside 0..100.
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, not {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (`getrusage`; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quiet_logging() -> None:
    """Keep per-request INFO logs (httpx, mcp, uvicorn) off the measured path.

    `MCPServer` calls `logging.basicConfig(level="INFO")` with a rich handler; configuring the root
    logger first turns that call into a no-op.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.WARNING)


class CountingExporter(SpanExporter):
    """Counts the spans it is given, then forwards them to `inner` or, without one, discards them.

    Args:
        inner: the exporter to forward to; None makes this a null exporter (isolates CPU cost).
    """

    def __init__(self, inner: SpanExporter | None = None) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.exported = 0
        """Spans handed to `export` so far (whatever the inner exporter answered)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self.exported += len(spans)
        return self._inner.export(spans) if self._inner is not None else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        if self._inner is not None:
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis) if self._inner is not None else True
