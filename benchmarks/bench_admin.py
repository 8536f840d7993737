"""Admin shell session starts under a burst (issue 13 item 11: 100 concurrent starts were serialised).

One `TrackingServer` (real pipeline: `ShinzoSpanProcessor`, embedded SQLite store, the SQLite state
file of open sessions), measured side by side in one run:

- `one at a time`: starts awaited one after the other (the cost of one start, nothing waiting);
- `burst`: the same number of starts launched together (one shell each, all in the same second, so
  every id needs the `-N` suffix search), as 100 shells starting at once would.

Reported: wall time of each, latency percentiles of the burst, and the ratio burst wall time /
sequential wall time (1.0: the burst costs what the starts cost one by one, no queueing on top).
Starts are called on `SessionTracker.handle_session_start`, the tool's body, so the MCP client and
transport (the same for every tool) do not drown the figure; every start must answer `tracked` with
a distinct id.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from opentelemetry.sdk.trace import TracerProvider

from benchmarks import median, percentile, quiet_logging, table
from shinzo_otel.admin.server import TrackingServer

_FULL = {"starts": 100, "rounds": 5}
_QUICK = {"starts": 10, "rounds": 1}


def _event(component: str) -> dict[str, Any]:
    return {
        "event_version": "1.0",
        "event_id": str(uuid.uuid4()),
        "component_name": component,
        "shell_type": "BenchShell",
        "timestamp": "2026-02-06T12:34:56.789Z",
        "pid": 4242,
        "user": {"username": "bench", "home": "/home/bench"},
        "hostname": "bench-host",
        "environment": {"python_version": "3.13.0", "platform": "Linux", "cwd": "/home/bench"},
        "metadata": {"component_version": "1.0.0"},
    }


async def _round(server: TrackingServer, starts: int, component: str) -> dict[str, Any]:
    tracker = server.tracker
    ids: list[str] = []

    async def start(latencies: list[float]) -> None:
        began = time.perf_counter()
        result = await tracker.handle_session_start(_event(component))
        latencies.append(time.perf_counter() - began)
        if result.status != "tracked" or result.session_id is None:
            raise RuntimeError(f"start not tracked: {result}")
        ids.append(result.session_id)

    sequential: list[float] = []
    began = time.perf_counter()
    for _ in range(starts):
        await start(sequential)
    sequential_seconds = time.perf_counter() - began

    burst: list[float] = []
    began = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(starts):
            group.start_soon(start, burst)
    burst_seconds = time.perf_counter() - began
    if len(set(ids)) != 2 * starts:
        raise RuntimeError(f"{2 * starts - len(set(ids))} duplicate session ids")
    return {
        "sequential_ms": sequential_seconds * 1000,
        "burst_ms": burst_seconds * 1000,
        "burst_p50_ms": percentile(burst, 50) * 1000,
        "burst_max_ms": max(burst) * 1000,
        "ratio": burst_seconds / sequential_seconds,
    }


async def _measure(quick: bool) -> dict[str, Any]:
    sizes = _QUICK if quick else _FULL
    with tempfile.TemporaryDirectory(prefix="shinzo-bench-admin-") as tmp:
        os.environ["SHINZO_STORE_PATH"] = str(Path(tmp) / "sessions.db")
        provider = TracerProvider()
        server = TrackingServer(tracer_provider=provider)
        try:
            rounds = [
                await _round(server, sizes["starts"], f"bench{index}") for index in range(sizes["rounds"])
            ]
        finally:
            await server.aclose()
            provider.shutdown()
    figures = {key: median([round_[key] for round_ in rounds]) for key in rounds[0]}
    return {
        "starts": sizes["starts"],
        "rounds": sizes["rounds"],
        **figures,
        "tables": [
            table(
                f"{sizes['starts']} admin shell starts, median of {sizes['rounds']} rounds",
                ["figure", "value"],
                [
                    ["one at a time, wall ms", round(figures["sequential_ms"], 1)],
                    ["burst (all at once), wall ms", round(figures["burst_ms"], 1)],
                    ["burst p50 latency, ms", round(figures["burst_p50_ms"], 1)],
                    ["burst max latency, ms", round(figures["burst_max_ms"], 1)],
                    ["burst / one at a time", round(figures["ratio"], 2)],
                ],
            )
        ],
        "notes": [
            "Each start: validation, one short SQLite transaction to reserve the id (the only part taken"
            " one at a time), the session span and its exported start marker, the span ids recorded.",
        ],
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Admin starts one at a time and in a burst; see the module docstring.

    Returns:
        `starts`, `rounds`, `sequential_ms`, `burst_ms`, `burst_p50_ms`, `burst_max_ms`, `ratio`
        (medians over the rounds), `tables`, `notes`.

    Raises:
        RuntimeError: a start was not tracked, or two starts got the same id.
    """
    quiet_logging()
    logging.getLogger("shinzo_otel.admin").setLevel(logging.WARNING)
    result: dict[str, Any] = anyio.run(_measure, quick)
    return result
