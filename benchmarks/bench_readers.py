"""The Tempo reader at scale (issue 14 item 4): what `sessions list` and `analytics` ask of a Tempo
holding 10 000 sessions.

A loopback HTTP server answers as Tempo 2.10.8 does (shapes of tests/fixtures/tempo: `/api/search` with
`select()`, `most_recent=true` and `limit` / `spss`, `/api/metrics/query_range`) over a synthetic
dataset shaped as the instrumentation writes it: per session a trace holding an `mcp.session` span
(1 in 10 sessions has none: its process died), an `mcp.session.start` marker, `initialize`,
`notifications/initialized`, `tools/list` and 1 to 6 `tools/call` SERVER spans (1 call in 15 fails),
sessions 1 to 30 s long, 10 s apart. The server counts the requests and the bytes it sends.

Measured, side by side:

- `sessions list` (the default page of 50, as the CLI asks it: `list_sessions` and `count_requests`),
  and `sessions list --incomplete --status abandoned` style filters: requests, bytes, seconds;
- what the previous reader read for the same list: every trace whole (bytes of the trace-by-id
  answers of all sessions, computed, not fetched);
- `analytics` for each metric at the full size and at a tenth of it: the number of requests must be
  the same (TraceQL metrics, independent of the number of sessions).
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from benchmarks import table
from shinzo_otel.replay import RequestFilter, SessionFilter
from shinzo_otel.replay.analytics import METRICS
from shinzo_otel.replay.tempo import TempoSource
from tests.http_stub import HttpStub, json_route

_FULL = {"sessions": 10_000}
_QUICK = {"sessions": 300}
_T0 = 1_796_000_000  # unix s, 2026-11-30
_STEP = 10
_TOOLS = ("search", "fetch", "summarize", "write", "fail")
_SERVICE = "bench-srv"
_REQUEST_EXTRA = {
    "mcp.protocol.version": "2025-11-25",
    "jsonrpc.request.id": "7",
    "network.transport": "pipe",
}
_RESOURCE = {
    "service.name": _SERVICE,
    "service.version": "1.0.0",
    "service.instance.id": "6f0b1d5e-2f4c-4a57-9a43-3c1f4f0d2a11",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.45.0",
}


@dataclass
class _Span:
    span_id: str
    name: str
    kind: str
    start: int
    end: int
    attributes: dict[str, Any]
    status: str = "unset"


@dataclass
class _Trace:
    trace_id: str
    session_id: str
    spans: list[_Span] = field(default_factory=list)

    @property
    def start(self) -> int:
        return min(span.start for span in self.spans)


def _dataset(sessions: int, seed: int = 7) -> list[_Trace]:
    rng = random.Random(seed)
    traces = []
    for n in range(sessions):
        session_id = f"{n:032x}"
        start = (_T0 + n * _STEP) * 10**9
        trace = _Trace(f"{n + 1:032x}", session_id)
        base = {"session.id": session_id, "shinzo.session.type": "mcp", "shinzo.session.origin": "connection"}
        base["shinzo.session.idle_timeout"] = 1800
        base["shinzo.client.name"] = "bench-client"
        base["mcp.protocol.version"] = "2025-11-25"
        base["network.transport"] = "pipe"
        trace.spans.append(_Span(f"{n:012x}0000", "mcp.session.start", "internal", start, start, dict(base)))
        clock = start + 1_000_000
        for index, method in enumerate(("initialize", "notifications/initialized", "tools/list")):
            attributes = {"session.id": session_id, "mcp.method.name": method, **_REQUEST_EXTRA}
            span_id = f"{n:012x}01{index:02x}"
            trace.spans.append(_Span(span_id, method, "server", clock, clock + 500_000, attributes))
            clock += 1_000_000
        for call in range(rng.randint(1, 6)):
            tool = rng.choice(_TOOLS)
            attributes = {
                "session.id": session_id,
                "mcp.method.name": "tools/call",
                "gen_ai.tool.name": tool,
                "gen_ai.operation.name": "execute_tool",
                **_REQUEST_EXTRA,
            }
            span = _Span(
                f"{n:012x}02{call:02x}", f"tools/call {tool}", "server", clock, clock + 2_000_000, attributes
            )
            if tool == "fail":
                span.status = "error"
                attributes["error.type"] = "tool_error"
            trace.spans.append(span)
            clock += rng.randint(100_000_000, 4_000_000_000)
        if n % 10:
            ended = {**base, "shinzo.session.end_reason": "connection_closed"}
            trace.spans.append(_Span(f"{n:012x}0300", "mcp.session", "internal", start, clock, ended))
        traces.append(trace)
    return traces


def _value(value: Any) -> dict[str, Any]:
    return {"intValue": str(value)} if isinstance(value, int) else {"stringValue": str(value)}


def _render(span: _Span, keys: list[str], name: bool) -> dict[str, Any]:
    attributes = {**span.attributes, "kind": span.kind, "status": span.status, "service.name": _SERVICE}
    out: dict[str, Any] = {
        "spanID": span.span_id,
        "startTimeUnixNano": str(span.start),
        "attributes": [{"key": key, "value": _value(attributes[key])} for key in keys if key in attributes],
    }
    if span.end > span.start:
        out["durationNanos"] = str(span.end - span.start)
    if name:
        out["name"] = span.name
    return out


_SELECT = re.compile(r"select\(([^)]*)\)")
_IDS = re.compile(r'span\.session\.id = "([0-9a-f]+)"')


class _FakeTempo(HttpStub):
    """The Tempo HTTP API over `traces`, for the searches and metrics queries the reader sends; it
    counts the requests it gets and the bytes it sends (compact JSON, as Tempo's)."""

    def __init__(self, traces: list[_Trace]) -> None:
        super().__init__(json_route(self.answer, separators=(",", ":")))
        self.traces = sorted(traces, key=lambda trace: -trace.start)
        self.by_session = {trace.session_id: trace for trace in traces}

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/search":
            return 200, self._search(query)
        if path == "/api/metrics/query_range":
            return 200, self._metrics(query)
        if path == "/api/metrics/query":
            whole = {**query, "step": f"{int(query['end']) - int(query['start'])}s"}
            series = self._metrics(whole)["series"]
            return 200, {
                "series": [
                    {"labels": entry["labels"], "value": sum(s.get("value", 0) for s in entry["samples"])}
                    for entry in series
                ]
            }
        return 404, {}

    def _search(self, query: dict[str, str]) -> dict[str, Any]:
        q = query["q"]
        selected = _SELECT.search(q)
        keys = [key.strip().split(".", 1)[-1] for key in (selected.group(1).split(",") if selected else [])]
        keys = [key.strip() for key in keys]
        start, end = int(query["start"]) * 10**9, int(query["end"]) * 10**9
        limit, spss = int(query["limit"]), int(query.get("spss", 3))
        if "mcp.session.start" in q:
            candidates: Iterator[_Trace] = (t for t in self.traces if start <= t.start <= end)

            def wanted(span: _Span) -> bool:
                return span.name in ("mcp.session", "mcp.session.start")
        elif "span.session.id = nil" in q:
            candidates, wanted = iter(()), lambda span: False
        else:
            ids = _IDS.findall(q)
            candidates = (self.by_session[i] for i in ids if i in self.by_session)

            def wanted(span: _Span) -> bool:
                return True

        out = []
        for trace in candidates:
            spans = [_render(s, keys, "name" in keys) for s in trace.spans if wanted(s)]
            if spans:
                spanset = {"spans": spans[:spss], "matched": len(spans)}
                out.append(
                    {
                        "traceID": trace.trace_id.lstrip("0"),
                        "rootServiceName": _SERVICE,
                        "startTimeUnixNano": str(trace.start),
                        "spanSet": spanset,
                        "spanSets": [spanset],
                    }
                )
        out.sort(key=lambda trace: -int(trace["startTimeUnixNano"]))
        return {"traces": out[:limit], "metrics": {"inspectedBytes": "0", "completedJobs": 1, "totalJobs": 1}}

    def _metrics(self, query: dict[str, str]) -> dict[str, Any]:
        q, step = query["q"], int(query["step"].rstrip("s"))
        start, end = int(query["start"]), int(query["end"])
        if q.startswith('{ name = "mcp.session.start"'):
            spans = [s for t in self.traces for s in t.spans if s.name == "mcp.session.start"]
        elif q.startswith('{ name = "mcp.session"'):
            spans = [s for t in self.traces for s in t.spans if s.name == "mcp.session"]
        elif "span.session.id = nil" in q:
            spans = []  # every request of this dataset belongs to a session
        elif "gen_ai.tool.name != nil" in q:
            spans = [s for t in self.traces for s in t.spans if "gen_ai.tool.name" in s.attributes]
        elif "status = error" in q:
            spans = [s for t in self.traces for s in t.spans if s.status == "error"]
        else:
            spans = [s for t in self.traces for s in t.spans if s.kind == "server"]
        by = re.search(r"by \(([^)]*)\)", q)
        keys = [key.strip() for key in by.group(1).split(",")] if by else []
        function = q.rsplit("|", 1)[1].strip().split("(")[0]
        series: dict[tuple[tuple[str, str], ...], dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for span in spans:
            moment = span.start // 10**9
            if not start <= moment < end:
                continue
            stamp = (moment // step + 1) * step
            labels = tuple((key, str(span.attributes.get(key.split(".", 1)[1], "nil"))) for key in keys)
            seconds = (span.end - span.start) / 1e9
            if function == "histogram_over_time":
                bucket = 2.0 ** max(0, int(span.end - span.start).bit_length()) / 1e9
                series[(*labels, ("__bucket", repr(bucket)))][stamp] += 1
            elif function == "sum_over_time":
                series[labels][stamp] += seconds
            elif function == "max_over_time":
                series[labels][stamp] = max(series[labels][stamp], seconds)
            else:
                series[labels][stamp] += 1
        out = []
        for labels, values in series.items():
            rendered = [
                {"key": k, "value": {"doubleValue": float(v)} if k == "__bucket" else {"stringValue": v}}
                for k, v in labels
            ] or [{"key": "__name__", "value": {"stringValue": function}}]
            samples = [
                {"timestampMs": str(stamp * 1000), **({"value": values[stamp]} if values.get(stamp) else {})}
                for stamp in range(start // step * step, end + 1, step)
            ]
            out.append({"labels": rendered, "samples": samples})
        return {"series": out, "metrics": {"completedJobs": 1, "totalJobs": 1}}


def _whole_trace_bytes(traces: list[_Trace]) -> int:
    """Bytes of the trace-by-id answers of every trace (what the previous reader fetched for a
    list): Tempo's v2 answer, one resource and scope per span as in the recorded 11-trace-v2-session-L3
    (base64 ids, every attribute; no arguments, results or events, which would only add to it)."""
    resource = {"attributes": [{"key": k, "value": _value(v)} for k, v in _RESOURCE.items()]}
    total = 0
    for trace in traces:
        batches = [
            {
                "resource": resource,
                "scopeSpans": [
                    {
                        "scope": {"name": "shinzo_otel", "version": "0.1.0"},
                        "spans": [
                            {
                                "traceId": base64.b64encode(bytes.fromhex(trace.trace_id)).decode(),
                                "spanId": base64.b64encode(bytes.fromhex(span.span_id)).decode(),
                                "name": span.name,
                                "kind": f"SPAN_KIND_{span.kind.upper()}",
                                "startTimeUnixNano": str(span.start),
                                "endTimeUnixNano": str(span.end),
                                "attributes": [
                                    {"key": k, "value": _value(v)} for k, v in span.attributes.items()
                                ],
                                "status": {},
                            }
                        ],
                    }
                ],
            }
            for span in trace.spans
        ]
        body = {"trace": {"resourceSpans": batches}, "metrics": {}}
        total += len(json.dumps(body, separators=(",", ":")))
    return total


def _measure(fake: _FakeTempo, call: Any) -> tuple[int, int, float, Any]:
    """Requests, bytes sent and seconds of one `call()` (the counts are exact; the time is one run's,
    for scale only), and its result."""
    fake.reset()
    started = time.perf_counter()
    result = call()
    return len(fake.requests), fake.bytes_sent, time.perf_counter() - started, result


def run(quick: bool = False) -> dict[str, Any]:
    sizes = _QUICK if quick else _FULL
    traces = _dataset(sizes["sessions"])
    small = _dataset(max(sizes["sessions"] // 10, 10))
    window = {
        "started_after": datetime.fromtimestamp(_T0, timezone.utc),
        "started_before": datetime.fromtimestamp(_T0 + sizes["sessions"] * _STEP + 3600, timezone.utc),
    }
    with _FakeTempo(traces) as fake, _FakeTempo(small) as fake_small:
        # Tempo's defaults, the metrics window unlimited so that one query covers the dataset's days.
        source = TempoSource(fake.url, metrics_max_seconds=None)
        source_small = TempoSource(fake_small.url, metrics_max_seconds=None)
        try:
            lists = []
            for label, filters in (
                ("sessions list (50 newest)", SessionFilter(**window)),
                ("sessions list --status abandoned", SessionFilter(status="abandoned", **window)),
                ("sessions list --limit all", SessionFilter(limit=None, **window)),
            ):
                requests, sent, seconds, summaries = _measure(fake, lambda f=filters: source.list_sessions(f))
                lists.append([label, len(summaries), requests, sent, seconds])
            requests, sent, seconds, _ = _measure(
                fake, lambda: source.count_requests(RequestFilter(limit=None, **window))
            )
            lists.append(["count of requests outside any session", "–", requests, sent, seconds])
            session_span_bytes = lists[2][3]
            whole = _whole_trace_bytes(traces)
            metrics_rows = []
            for metric in METRICS:
                full_requests, full_bytes, full_seconds, _ = _measure(
                    fake, lambda m=metric: source.analytics(SessionFilter(**window), m)
                )
                small_requests, _, _, _ = _measure(
                    fake_small, lambda m=metric: source_small.analytics(SessionFilter(**window), m)
                )
                metrics_rows.append([metric, full_requests, small_requests, full_bytes, full_seconds])
        finally:
            source.close()
            source_small.close()
    constant = all(row[1] == row[2] for row in metrics_rows)
    return {
        "sessions": sizes["sessions"],
        "whole_trace_bytes": whole,
        "list_all_bytes": session_span_bytes,
        "analytics_requests_constant": constant,
        "tables": [
            table(
                f"sessions list over {sizes['sessions']:,} sessions (loopback Tempo, search limit 500)",
                ["question", "sessions", "requests", "bytes read", "seconds"],
                lists,
            ),
            table(
                "analytics through TraceQL metrics: requests at the full size and at a tenth of it",
                [
                    "metric",
                    f"requests ({sizes['sessions']:,})",
                    f"requests ({len(small):,})",
                    "bytes",
                    "seconds",
                ],
                metrics_rows,
            ),
        ],
        "notes": [
            f"Fetching every trace whole, as the previous reader did for a list, reads {whole:,} bytes "
            f"(trace-by-id answers, computed); listing all sessions from their session spans and "
            f"counting their requests reads {session_span_bytes:,}.",
            "The default page stops after the first search page holding the 50 newest sessions, then "
            "reads the spans of those 50 only.",
            f"analytics requests independent of the number of sessions: {constant}.",
        ],
    }
