"""Benchmarks of shinzo_otel against the mcp SDK's built-in tracing; run with `python -m benchmarks`.

Contract of a benchmark: a module `benchmarks/bench_<name>.py` exposing
`run(quick: bool = False) -> dict[str, Any]`. The runner (`benchmarks/__main__.py`) calls it in a
fresh interpreter (benchmarks may set the global TracerProvider, which can be set only once per
process) and stores the returned dict, which must be JSON-serialisable, under `<name>` in
`benchmarks/results.json`. Markdown: every entry of the optional key `"tables"` (made with `table`)
becomes a table in `benchmarks/results.md`, and the strings of the optional key `"notes"` follow it;
a result without tables is shown as a key/value table of its scalar values. `quick=True` means tiny
sizes: seconds, not minutes (the smoke test runs every benchmark that way).

The helpers below are shared by the benchmark modules. Ratios come with a 95 % interval: rounds are
interleaved (every variant measured in every round), so a ratio is computed on the round means and
its interval by resampling whole rounds (`bootstrap`), which keeps what the variants share in one
round (machine load, frequency) together.
"""

from __future__ import annotations

import logging
import math
import random
import resource
import statistics
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = [
    "CountingExporter",
    "Estimate",
    "bootstrap",
    "interval_text",
    "median",
    "peak_rss_mib",
    "percentile",
    "quiet_logging",
    "ratio_of_means",
    "table",
    "weighted_ratio",
]


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


Estimate = dict[str, Any]
"""`{"value", "low", "high"}`: a figure and its 95 % interval (None where it cannot be computed)."""

_RESAMPLES = 2000
_SEED = 20260101


def bootstrap(rounds: int, statistic: Callable[[Sequence[int]], float]) -> Estimate:
    """`statistic` over all rounds, and its 95 % percentile-bootstrap interval.

    Args:
        rounds: how many rounds were measured (at least 2).
        statistic: a function of a list of round indices (with repeats) returning the figure, or NaN
            where it is undefined (a ratio over a sum that is not positive).

    Returns:
        `{"value", "low", "high"}`, rounded to 2 decimals; the bounds are None when more than 5 % of
        the resamples are undefined (the figure is lost in the noise). Resampling uses a fixed seed,
        so the same data gives the same interval.
    """
    value = statistic(range(rounds))
    generator = random.Random(_SEED)
    samples = [statistic([generator.randrange(rounds) for _ in range(rounds)]) for _ in range(_RESAMPLES)]
    finite = sorted(sample for sample in samples if math.isfinite(sample))
    if not math.isfinite(value) or len(finite) < 0.95 * _RESAMPLES:
        return {"value": round(value, 2) if math.isfinite(value) else None, "low": None, "high": None}
    return {
        "value": round(value, 2),
        "low": round(percentile(finite, 2.5), 2),
        "high": round(percentile(finite, 97.5), 2),
    }


def ratio_of_means(
    numerators: Sequence[float], denominators: Sequence[float]
) -> Callable[[Sequence[int]], float]:
    """The statistic mean(numerators) / mean(denominators) over the given rounds (paired by index);
    NaN when the denominator is not positive."""

    def statistic(indices: Sequence[int]) -> float:
        denominator = statistics.fmean(denominators[index] for index in indices)
        if denominator <= 0:
            return math.nan
        return statistics.fmean(numerators[index] for index in indices) / denominator

    return statistic


def weighted_ratio(
    cells: Sequence[tuple[Sequence[float], Sequence[float]]], rounds: int
) -> tuple[Estimate, list[float]]:
    """One ratio for several cells, each weighted by the inverse variance of its own ratio (cells whose
    noise is small carry the figure; a cell lost in noise carries next to nothing).

    Args:
        cells: per cell, (numerators, denominators) per round, rounds aligned across cells.
        rounds: how many rounds.

    Returns:
        The combined ratio with its 95 % interval (whole rounds resampled across every cell at once),
        and each cell's share of the weight (summing to 1).
    """
    statistics_by_cell = [ratio_of_means(numerators, denominators) for numerators, denominators in cells]
    generator = random.Random(_SEED)
    resampled = [[generator.randrange(rounds) for _ in range(rounds)] for _ in range(_RESAMPLES)]
    weights = []
    for statistic in statistics_by_cell:
        values = [value for value in (statistic(indices) for indices in resampled) if math.isfinite(value)]
        spread = statistics.pvariance(values) if len(values) >= 0.95 * _RESAMPLES else math.inf
        weights.append(0.0 if spread == math.inf else 1 / max(spread, 1e-9))
    total = sum(weights)
    if total == 0:
        return {"value": None, "low": None, "high": None}, [0.0 for _ in cells]
    shares = [weight / total for weight in weights]

    def combined(indices: Sequence[int]) -> float:
        # A cell undefined in one resample drops out of it; the others keep their relative weights.
        pairs = [
            (share, value)
            for share, statistic in zip(shares, statistics_by_cell, strict=True)
            if share and math.isfinite(value := statistic(indices))
        ]
        weight = sum(share for share, _ in pairs)
        return sum(share * value for share, value in pairs) / weight if weight else math.nan

    return bootstrap(rounds, combined), [round(share, 3) for share in shares]


def interval_text(estimate: Estimate) -> str:
    """`1.23 [1.10, 1.35]`, or `1.23 [noise]` without bounds, or `–`."""
    if estimate["value"] is None:
        return "–"
    if estimate["low"] is None:
        return f"{estimate['value']} [noise]"
    return f"{estimate['value']} [{estimate['low']}, {estimate['high']}]"


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
