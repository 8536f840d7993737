"""The scale-out layout of collector_config/ (agents -> gateways): what one gateway sees, what sampling
keeps, and the README's two-gateway try-out.

Without a collector binary these check the configs' structure (pyyaml) and, with a real server and
client, the facts about our spans the gateway config relies on. With `OTELCOL_BIN` (an
`otelcol-contrib` binary) the layout runs for real: one agent and two gateways on loopback.

Collector semantics relied on (opentelemetry-collector-contrib):
- `loadbalancing` exporter, `routing_key: attributes`: each batch is split per trace, resource and
  scope and keyed by `name=value` of `routing_attributes` found on the resource, scope or first span
  (exporter/loadbalancingexporter/trace_exporter.go); a missing attribute adds an empty value, so
  there is no trace id fallback unless an attribute carries the trace id.
- `tail_sampling` groups spans by trace id; `decision_wait_after_root_received` (v0.144.0) decides
  that long after a span without a parent arrives (processor/tailsamplingprocessor/processor.go).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from shinzo_otel import _semconv as sc
from shinzo_otel import instrument_server
from shinzo_otel.replay import SpanRecord
from shinzo_otel.replay.otlp_json import parse_traces, span_records
from shinzo_otel.store import SessionStore, SqliteSpanExporter
from tests.mcp_servers import make_mcpserver
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.shared_checks import client_meta
from tests.test_collector_config import (
    CONFIG_DIR,
    ENV_DEFAULT,
    OTELCOL_BIN,
    _free_port,
    default,
    load,
    otelcol,  # noqa: F401  (the fixture that skips without OTELCOL_BIN)
    pipelines,
)

ROUTING_ATTRIBUTE = "shinzo.routing.trace_id"
"""Set by the agents on spans without a session: their load-balancing key."""
STASH_ATTRIBUTE = "shinzo.sampling.trace_id"
"""Set by a gateway while a span carries its session's key as trace id: its own trace id."""
README = CONFIG_DIR / "README.md"


def statements(config: dict[str, Any], processor: str) -> list[str]:
    (group,) = config["processors"][processor]["trace_statements"]
    assert group["context"] == "span"
    return list(group["statements"])


# --- what one gateway sees ---------------------------------------------------------------------------


def test_agents_route_spans_by_session_and_the_rest_by_trace_id() -> None:
    agent = load("agent.yaml")
    balancer = agent["exporters"]["loadbalancing"]
    assert balancer["routing_key"] == "attributes"
    # The session id first: a span of a session has no routing attribute, so its key is the session's.
    assert balancer["routing_attributes"] == [sc.SESSION_ID, ROUTING_ATTRIBUTE]
    assert statements(agent, "transform/routing_key") == [
        f'set(attributes["{ROUTING_ATTRIBUTE}"], trace_id.string) where attributes["{sc.SESSION_ID}"] == nil'
    ]
    traces = pipelines(agent)["traces"]
    assert traces["processors"] == ["memory_limiter", "redaction", "transform/routing_key", "batch"]
    assert traces["exporters"] == ["loadbalancing"]
    # Redaction runs first and must never mask the routing key.
    assert sc.SESSION_ID in agent["processors"]["redaction"]["ignored_keys"]


def test_the_default_pool_is_the_default_gateways() -> None:
    agent, gateway = load("agent.yaml"), load("gateway.yaml")
    hostnames = [
        default(host) for host in agent["exporters"]["loadbalancing"]["resolver"]["static"]["hostnames"]
    ]
    assert hostnames == ["127.0.0.1:4417", "127.0.0.1:4517"]
    # A gateway started with its defaults is the first of the pool.
    assert default(gateway["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]) == hostnames[0]


# --- what sampling keeps -----------------------------------------------------------------------------


def test_gateways_sample_under_a_session_key_and_restore_every_trace_id() -> None:
    gateway = load("gateway.yaml")
    traces = pipelines(gateway)["traces"]
    assert traces["processors"] == [
        "memory_limiter",
        "transform/session_key",
        "tail_sampling",
        "transform/trace_id",
        "batch",
    ]
    assert set(traces["exporters"]) == {"otlp_grpc/tempo", "otlp_grpc/jaeger", "file/sessions"}
    session = f'attributes["{sc.SESSION_ID}"]'
    stash = f'attributes["{STASH_ATTRIBUTE}"]'
    assert statements(gateway, "transform/session_key") == [
        # A stash from elsewhere must never be restored as a trace id.
        f'delete_key(attributes, "{STASH_ATTRIBUTE}")',
        f"set({stash}, trace_id.string) where IsString({session})",
        f"set(trace_id.string, Substring(SHA256({session}), 0, 32)) where IsString({session})",
    ]
    assert statements(gateway, "transform/trace_id") == [
        f"set(trace_id.string, {stash}) where {stash} != nil",
        f'delete_key(attributes, "{STASH_ATTRIBUTE}")',
        f'delete_key(attributes, "{ROUTING_ATTRIBUTE}")',  # the agents' routing key does not leave either
    ]
    # A key that cannot be computed leaves the span under its own trace id (sampled per trace); a trace
    # id that cannot be restored fails the batch instead of reaching a backend under the session key.
    assert gateway["processors"]["transform/session_key"]["error_mode"] == "ignore"
    assert gateway["processors"]["transform/trace_id"]["error_mode"] == "propagate"


def test_gateways_keep_every_session_with_an_error_or_a_slow_call() -> None:
    sampling = load("gateway.yaml")["processors"]["tail_sampling"]
    policies = {policy["name"]: policy for policy in sampling["policies"]}
    assert set(policies) == {"failed-spans", "failed-requests", "slow-calls", "baseline"}
    assert all(policy["type"] in policy for policy in sampling["policies"])
    assert policies["failed-spans"]["status_code"]["status_codes"] == ["ERROR"]
    failed_requests = policies["failed-requests"]["string_attribute"]
    assert (failed_requests["key"], failed_requests["values"], failed_requests["enabled_regex_matching"]) == (
        sc.ERROR_TYPE,
        [".+"],
        True,
    )
    [slow] = policies["slow-calls"]["ottl_condition"]["span"]
    assert slow == "kind == SPAN_KIND_SERVER and end_time_unix_nano - start_time_unix_nano > 2000000000"
    assert policies["baseline"]["type"] == "probabilistic"
    assert default(policies["baseline"]["probabilistic"]["sampling_percentage"]) == "10"


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match[1])


def test_a_session_is_decided_once_with_bounded_memory() -> None:
    sampling = load("gateway.yaml")["processors"]["tail_sampling"]
    # At the session's end (its root arrives) plus a grace, at the latest decision_wait after its start.
    assert 0 < _seconds(sampling["decision_wait_after_root_received"]) < _seconds(sampling["decision_wait"])
    # Late spans of a decided session follow the decision, kept or dropped, after it left memory too.
    caches = sampling["decision_cache"]
    assert caches["sampled_cache_size"] >= 10 * sampling["num_traces"]
    assert caches["non_sampled_cache_size"] >= 10 * sampling["num_traces"]
    assert pipelines(load("gateway.yaml"))["traces"]["processors"][0] == "memory_limiter"


def _arguments(tool: str, text: str) -> dict[str, str]:
    return {"reason": text} if tool == "fail" else {"text": text}


@pytest.mark.anyio
async def test_the_session_span_is_the_only_root_of_a_session(receiver: OtlpReceiver) -> None:
    """What `decision_wait_after_root_received` needs: under the session key, the one span without a
    parent is the session span, exported when the session ends, even when every request is its own
    trace under the client's span."""
    provider = TracerProvider()
    client_provider = TracerProvider()
    server = make_mcpserver(provider)
    observability = instrument_server(
        server,
        {"server_name": "roots", "exporter_endpoint": receiver.http_endpoint},
        tracer_provider=provider,
    )
    async with Client(server) as client:  # default mode: a conversation is the session
        for tool in ("echo", "nested", "fail"):
            meta = client_meta(client_provider, {"openai/session": "c-1"})
            await client.call_tool(tool, _arguments(tool, "x"), meta=meta)
    async with Client(server, mode="legacy") as client:  # the connection is the session
        for tool in ("echo", "nested"):
            await client.call_tool(tool, {"text": "x"}, meta=client_meta(client_provider))
        await client.call_tool("echo", {"text": "no client context"})
    await observability.shutdown()
    by_session: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in receiver.spans():
        if sc.SESSION_ID in span.attributes:
            by_session[str(span.attributes[sc.SESSION_ID])].append(span)
    assert len(by_session) == 2
    for members in by_session.values():
        roots = [span for span in members if span.parent_span_id is None]
        assert [span.name for span in roots] == [sc.SESSION_SPAN_NAME]
        assert len(members) > 4  # marker, calls, user spans
    provider.shutdown()
    client_provider.shutdown()


# --- the collectors' own ports and the README try-out ------------------------------------------------


def _telemetry(config: dict[str, Any]) -> dict[str, Any]:
    (reader,) = config["service"]["telemetry"]["metrics"]["readers"]
    prometheus = reader["pull"]["exporter"]["prometheus"]
    assert isinstance(prometheus, dict)
    return prometheus


@pytest.mark.parametrize(
    ("name", "port"), [("otelcol.yaml", "8888"), ("agent.yaml", "8888"), ("gateway.yaml", "8889")]
)
def test_every_collector_serves_its_metrics_on_loopback_on_a_port_you_can_move(name: str, port: str) -> None:
    prometheus = _telemetry(load(name))
    assert prometheus["host"] == "127.0.0.1"
    match = ENV_DEFAULT.match(prometheus["port"])
    assert match and (match["name"], match["default"]) == ("SHINZO_TELEMETRY_PORT", port)


def _resolve(value: Any, env: Mapping[str, str]) -> Any:
    """`value` with every `${env:NAME:-default}` replaced as the Collector would, given `env`."""
    if isinstance(value, dict):
        return {key: _resolve(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, env) for item in value]
    if isinstance(value, str) and (match := ENV_DEFAULT.match(value)):
        return env.get(match["name"], match["default"])
    return value


def try_out() -> list[tuple[str, dict[str, str]]]:
    """The commands of README.md's two-gateway try-out: (config file, environment) per collector."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    (block,) = [block for block in blocks if "gateway.yaml" in block and "agent.yaml" in block]
    commands = []
    for line in block.splitlines():
        match = re.fullmatch(
            r"((?:\w+=\S+ )*)otelcol-contrib --config collector_config/(\S+\.yaml)( &)?", line
        )
        if match:
            env = dict(pair.split("=", 1) for pair in match[1].split())
            commands.append((match[2], env))
    return commands


def test_the_readme_try_out_runs_as_written() -> None:
    commands = try_out()
    assert [name for name, _ in commands] == ["gateway.yaml", "gateway.yaml", "agent.yaml"]
    listening: list[str] = []
    gateways: list[str] = []
    files: list[str] = []
    for name, env in commands:
        config = _resolve(load(name), env)
        endpoints = [protocol["endpoint"] for protocol in config["receivers"]["otlp"]["protocols"].values()]
        telemetry = _telemetry(config)
        listening += [*endpoints, f"{telemetry['host']}:{telemetry['port']}"]
        if name == "gateway.yaml":
            gateways += endpoints
            files.append(config["exporters"]["file/sessions"]["path"])
        else:
            pool = config["exporters"]["loadbalancing"]["resolver"]["static"]["hostnames"]
    # No two collectors bind the same address, the agent's pool is exactly the two gateways, and each
    # gateway writes its own replay file.
    assert len(listening) == len(set(listening)) == 7, listening
    assert sorted(pool) == sorted(gateways)
    assert len(files) == len(set(files)) == 2


# --- with a real collector: one agent, two gateways --------------------------------------------------


@contextmanager
def running(name: str, env: Mapping[str, str], port: int, log: Path) -> Iterator[None]:
    """`otelcol --config collector_config/NAME` with `env`, once it listens on 127.0.0.1:`port`."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(OTELCOL_BIN), f"--config={CONFIG_DIR / name}"],
            env={**os.environ, **env},
            stdout=output,
            stderr=output,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log.read_text(errors="replace")[-3000:]
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert time.monotonic() < deadline, f"{name} did not listen on {port} within 30 s"
                time.sleep(0.2)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


def file_spans(path: Path) -> list[SpanRecord]:
    """The spans a file exporter wrote so far (one ExportTraceServiceRequest per line)."""
    if not path.exists():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        record for line in lines for record in span_records(parse_traces(json.loads(line)).resource_spans)
    ]


async def _sessions_through(provider: TracerProvider, endpoint: str) -> None:
    """Five legacy sessions, each request its own trace under a client span; only the last one fails."""
    client_provider = TracerProvider()
    server = make_mcpserver(provider)
    observability = instrument_server(
        server, {"server_name": "scale-out", "exporter_endpoint": endpoint}, tracer_provider=provider
    )
    for n in range(5):
        async with Client(server, mode="legacy") as client:
            for tool in ("echo", "nested", "fail" if n == 4 else "echo"):
                meta = client_meta(client_provider)
                await client.call_tool(tool, _arguments(tool, str(n)), meta=meta)
    await observability.shutdown()
    client_provider.shutdown()


@pytest.mark.usefixtures("otelcol")
def test_two_gateways_keep_a_failing_session_whole_and_drop_healthy_ones(tmp_path: Path) -> None:
    gateways = [_free_port(), _free_port()]
    files = [tmp_path / "gw1.jsonl", tmp_path / "gw2.jsonl"]
    http_port = _free_port()
    dead = {
        "SHINZO_TEMPO_ENDPOINT": f"127.0.0.1:{_free_port()}",
        "SHINZO_JAEGER_ENDPOINT": f"127.0.0.1:{_free_port()}",
    }
    gateway_env = [
        {
            **dead,
            "SHINZO_GATEWAY_ENDPOINT": f"127.0.0.1:{port}",
            "SHINZO_SESSIONS_FILE": str(file),
            "SHINZO_TELEMETRY_PORT": str(_free_port()),
            "SHINZO_SAMPLING_PERCENTAGE": "0",  # no baseline: only the failing session may be kept
        }
        for port, file in zip(gateways, files, strict=True)
    ]
    agent_env = {
        "SHINZO_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{_free_port()}",
        "SHINZO_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
        "SHINZO_GATEWAY_1": f"127.0.0.1:{gateways[0]}",
        "SHINZO_GATEWAY_2": f"127.0.0.1:{gateways[1]}",
        "SHINZO_METRICS_FILE": str(tmp_path / "metrics.jsonl"),
        "SHINZO_TELEMETRY_PORT": str(_free_port()),
    }
    store = tmp_path / "reference.db"
    with (
        running("gateway.yaml", gateway_env[0], gateways[0], tmp_path / "gw1.log"),
        running("gateway.yaml", gateway_env[1], gateways[1], tmp_path / "gw2.log"),
        running("agent.yaml", agent_env, http_port, tmp_path / "agent.log"),
    ):
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "scale-out"}))
        provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(store)))
        try:
            anyio.run(_sessions_through, provider, f"http://127.0.0.1:{http_port}")
        finally:
            provider.shutdown()
        with SessionStore(store) as reference:
            sessions = {
                summary.session_id: {
                    (r["trace_id"], r["span_id"]) for r in reference.spans_for_session(summary.session_id)
                }
                for summary in reference.list_sessions()
            }
            failing = [
                sid
                for sid in sessions
                if any(r["name"] == "tools/call fail" for r in reference.spans_for_session(sid))
            ]
        assert len(sessions) == 5 and len(failing) == 1
        expected = sessions[failing[0]]
        # Decided when its session span arrives (plus 5 s); it ended last, so the others are decided too.
        deadline = time.monotonic() + 90
        while True:
            written = [file_spans(file) for file in files]
            holders = [spans for spans in written if any(span["session_id"] == failing[0] for span in spans)]
            if (
                holders
                and {(s["trace_id"], s["span_id"]) for s in holders[0] if s["session_id"] == failing[0]}
                == expected
            ):
                break
            assert time.monotonic() < deadline, f"the failing session was not written whole: {written}"
            time.sleep(0.5)
    # On one gateway only, whole, under its own trace ids (the reference's), no helper attribute left.
    assert len(holders) == 1
    kept = [span for spans in written for span in spans if span["session_id"] is not None]
    assert {span["session_id"] for span in kept} == {failing[0]}
    assert not any(
        STASH_ATTRIBUTE in span["attributes"] or ROUTING_ATTRIBUTE in span["attributes"]
        for spans in written
        for span in spans
    )
