"""Smoke test of the benchmarks: each runs with tiny sizes and reports sane values (never timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bootstrap, median, percentile, ratio_of_means, table, weighted_ratio
from benchmarks.__main__ import discover, render_markdown

ROOT = Path(__file__).resolve().parent.parent
OURS = ("load", "overhead", "processor")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One `python -m benchmarks --quick` run of every benchmark: (results.json, results.md)."""
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text()


def test_runner_discovers_every_bench_module():
    files = {path.stem.removeprefix("bench_") for path in (ROOT / "benchmarks").glob("bench_*.py")}
    assert set(OURS) <= files
    assert discover() == sorted(files)


def test_results_record_machine_date_and_versions(quick_run):
    document, markdown = quick_run
    meta = document["meta"]
    assert meta["quick"] is True
    assert isinstance(meta["machine"]["cpu_count"], int) and meta["machine"]["cpu_count"] >= 1
    assert meta["date"][:2] == "20" and "T" in meta["date"]
    assert {"python", "mcp", "opentelemetry-sdk"} <= set(meta["versions"])
    assert sorted(document["benchmarks"]) == discover()
    for name in discover():
        assert "error" not in document["benchmarks"][name]
        assert f"## {name}" in markdown
    assert f"{meta['machine']['cpu_count']} cores" in markdown


def test_overhead_measures_every_cell(quick_run):
    result = quick_run[0]["benchmarks"]["overhead"]
    cells = {(cell["server"], cell["transport"]) for cell in result["cells"]}
    assert cells == {
        (server, transport)
        for server in ("lowlevel", "mcpserver")
        for transport in ("legacy", "inproc", "http")
    }
    for cell in result["cells"]:
        assert set(cell["cpu_us"]) == {"none", "sdk", "floor", "shinzo_off", "shinzo_on"}
        assert all(value > 0 for value in cell["cpu_us"].values())
        for variant in ("sdk", "floor", "shinzo_off", "shinzo_on"):
            assert cell["added_us"][variant] == pytest.approx(
                cell["cpu_us"][variant] - cell["cpu_us"]["none"], abs=0.11
            )
        for variant in ("floor", "shinzo_off", "shinzo_on"):
            assert set(cell["ratio"][variant]) == {"value", "low", "high"}
    for variant in ("floor", "shinzo_off", "shinzo_on"):
        weights = result["headline"][variant]["weights"]
        assert len(weights) == 6
        assert sum(weights.values()) == pytest.approx(1, abs=0.01) or not any(weights.values())
    assert len(result["tables"][0]["rows"]) == 6


def test_processor_exports_every_span(quick_run):
    result = quick_run[0]["benchmarks"]["processor"]
    assert {(row["exporter"], row["shape"]) for row in result["per_span"]} == {
        (exporter, shape)
        for exporter in ("null", "otlp_grpc")
        for shape in ("args_off", "args_on", "args_on_secrets")
    }
    for row in result["per_span"]:
        assert row["batch_us"] > 0 and row["shinzo_us"] > 0
        assert row["ratio"]["value"] == pytest.approx(row["shinzo_us"] / row["batch_us"], rel=0.02, abs=0.01)
    assert {(rate["shape"], rate["processor"]) for rate in result["throughput"]} == {
        (shape, processor) for shape in ("args_on", "args_on_secrets") for processor in ("batch", "shinzo")
    }
    for rate in result["throughput"]:
        assert rate["dropped"] == 0
        assert rate["offered"] == rate["exported"] == rate["received"] > 0
        assert rate["spans_per_second"] > 0
    assert set(result["throughput_ratio"]) == {"args_on", "args_on_secrets"}


def test_load_keeps_sessions_apart_and_loses_nothing(quick_run):
    result = quick_run[0]["benchmarks"]["load"]
    clients, calls = result["sizes"]["clients"], result["sizes"]["calls"]
    for variant in ("none", "sdk", "shinzo"):
        data = result["load"][variant]
        assert data["calls"] == clients * calls
        assert 0 < data["p50_ms"] <= data["p99_ms"]
        assert data["peak_rss_mib"] > 0
    shinzo = result["load"]["shinzo"]
    assert shinzo["tool_spans"] == clients * (calls + 1)  # one warm-up call per session
    assert shinzo["sessions_seen"] == clients
    assert shinzo["wrong_session_spans"] == 0
    assert shinzo["duplicate_spans"] == 0
    assert shinzo["dropped"] == 0
    for run in ("baseline", "with_outage"):
        assert result["outage"][run]["spans_lost"] == 0
        assert result["outage"][run]["duplicate_spans"] == 0
        assert result["outage"][run]["dropped"] == 0
    assert "recovery_seconds" in result["outage"]["with_outage"]


def test_percentile_interpolates_between_ranks():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(value) for value in range(1, 101)], 99) == pytest.approx(99.01)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_ratio_interval_resamples_whole_rounds():
    # Every round has shinzo exactly twice the SDK: any resample gives 2, so the interval is [2, 2].
    assert bootstrap(
        10, ratio_of_means([2.0 * r for r in range(1, 11)], [float(r) for r in range(1, 11)])
    ) == {
        "value": 2.0,
        "low": 2.0,
        "high": 2.0,
    }
    noisy = bootstrap(6, ratio_of_means([1, 5, 1, 5, 1, 5], [2, 2, 2, 2, 2, 2]))
    assert noisy["value"] == 1.5 and noisy["low"] < 1.5 < noisy["high"]
    # A denominator that is not positive in most resamples: the figure is noise, no interval.
    assert bootstrap(4, ratio_of_means([1, 1, 1, 1], [-1, -1, 1, -1]))["low"] is None


def test_headline_weights_the_quiet_cells():
    quiet = ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0])  # ratio 0.5, no noise
    loud = ([1.0, 9.0, 1.0, 9.0, 1.0, 9.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0])  # ratio 2.5, noisy
    estimate, shares = weighted_ratio([quiet, loud], 6)
    assert shares[0] > 0.99 and estimate["value"] == pytest.approx(0.5, abs=0.01)


def test_markdown_renders_tables_notes_and_plain_results():
    document = {
        "meta": {
            "date": "2026-01-02T03:04:05+00:00",
            "quick": False,
            "machine": {"cpu_count": 2, "platform": "Linux"},
            "versions": {"python": "3.11.7"},
            "seconds": {"a": 1.0},
        },
        "benchmarks": {
            "a": {"tables": [table("T", ["x", "y"], [[1, None], ["p|q", 0.5]])], "notes": ["n1"]},
            "b": {"rows_written": 1200, "ratio": 0.75, "nested": {"ignored": 1}},
        },
    }
    markdown = render_markdown(document)
    assert "- Machine: 2 cores, Linux" in markdown
    assert "## a (1 s)\n\n**T**\n\n| x | y |\n|---|---|\n| 1 | – |\n| p\\|q | 0.5 |\n\n- n1" in markdown
    assert "| rows_written | 1,200 |\n| ratio | 0.75 |" in markdown
    assert "ignored" not in markdown
    with pytest.raises(ValueError):
        table("bad", ["x"], [[1, 2]])


def test_wrong_session_attribution_is_counted(receiver):
    """The load benchmark's separation check, on spans crafted so that one call carries the wrong
    session and another none: it must count both."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from benchmarks.bench_load import _attribution

    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("smoke")
    calls = [("c0", "s-a")] * 3 + [("c1", "s-b")] * 3 + [("c1", "s-a"), ("c0", None)]
    for client, session in calls:
        attributes = {"gen_ai.tool.call.arguments": json.dumps({"text": f"{client}-1 x"})}
        if session is not None:
            attributes.update({"session.id": session, "mcp.session.id": session})
        tracer.start_span("tools/call echo", attributes=attributes).end()
    provider.shutdown()
    assert _attribution(receiver) == {
        "tool_spans": 8,
        "wrong_session_spans": 2,
        "sessions_seen": 2,
        "duplicate_spans": 0,
    }
