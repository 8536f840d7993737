"""The Collector configs of collector_config/: static checks, the redaction patterns against the SDK's,
and, when `OTELCOL_BIN` points at an `otelcol-contrib` binary, `validate` on each file and an end-to-end
pass (real SDK -> collector on loopback -> file exporter -> replay).

Component ids follow the Collector's ``type[/name]`` syntax
(https://opentelemetry.io/docs/collector/configuration/#basics); a pipeline may only name components
defined in the matching top-level section, or the collector refuses to start.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from shinzo_otel import _semconv as sc
from shinzo_otel.privacy import DEFAULT_KEY_PATTERNS, DEFAULT_VALUE_PATTERNS, SAFE_KEYS
from shinzo_otel.replay import SessionFilter
from shinzo_otel.replay.otlp_json import OtlpJsonFileSource
from shinzo_otel.store import SessionStore, SqliteSpanExporter
from tests.test_readers import SERVICE, two_sessions

CONFIG_DIR = Path(__file__).resolve().parent.parent / "collector_config"
CONFIGS = ("otelcol.yaml", "agent.yaml", "gateway.yaml")
REDACTING = ("otelcol.yaml", "agent.yaml")
SECTIONS = ("receivers", "processors", "exporters")
# Component types these configs may use, all shipped in otelcol-contrib v0.144.0+; a typo fails here
# rather than at collector start-up.
KNOWN_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "redaction", "tail_sampling", "transform"},
    "exporters": {"otlp_grpc", "file", "debug", "loadbalancing"},
}
COMPONENT_ID = re.compile(r"^(?P<type>[a-z][a-z0-9_]*)(/[^/\s]+)?$")
ENV_DEFAULT = re.compile(r"^\$\{env:(?P<name>[A-Z0-9_]+):-(?P<default>[^}]*)\}$")
OTELCOL_BIN = os.environ.get("OTELCOL_BIN")


def load(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((CONFIG_DIR / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def default(value: str) -> str:
    """The default of a `${env:NAME:-default}` value (the Collector's env provider syntax)."""
    match = ENV_DEFAULT.match(value)
    assert match, f"{value!r} is not ${{env:NAME:-default}}"
    return match["default"]


def pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    result = config["service"]["pipelines"]
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize("name", CONFIGS)
def test_pipelines_name_only_defined_components(name: str) -> None:
    config = load(name)
    for pipeline_name, pipeline in pipelines(config).items():
        assert pipeline["receivers"], f"pipeline {pipeline_name} has no receiver"
        assert pipeline["exporters"], f"pipeline {pipeline_name} has no exporter"
        for section in SECTIONS:
            undefined = set(pipeline.get(section, [])) - set(config.get(section) or {})
            assert not undefined, (
                f"{name}: pipeline {pipeline_name} names undefined {section}: {sorted(undefined)}"
            )


@pytest.mark.parametrize("name", CONFIGS)
def test_every_defined_component_is_used_and_of_a_known_type(name: str) -> None:
    config = load(name)
    for section in SECTIONS:
        used = {
            component for pipeline in pipelines(config).values() for component in pipeline.get(section, [])
        }
        assert set(config[section]) == used, (
            f"{name}: unused {section}: {sorted(set(config[section]) - used)}"
        )
        for component_id in config[section]:
            match = COMPONENT_ID.match(component_id)
            assert match, f"{component_id!r} is not a type[/name] id"
            assert match["type"] in KNOWN_TYPES[section], f"unknown {section} type in {component_id!r}"


@pytest.mark.parametrize("name", CONFIGS)
def test_memory_limiter_runs_first_and_batch_last(name: str) -> None:
    # The memory_limiter README: first, so it can refuse data early. Batching last sends full batches.
    for pipeline_name, pipeline in pipelines(load(name)).items():
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: {pipeline_name}"
        assert pipeline["processors"][-1] == "batch", f"{name}: {pipeline_name}"


@pytest.mark.parametrize(("name", "grpc", "http"), [("otelcol.yaml", 4317, 4318), ("agent.yaml", 4317, 4318)])
def test_sdk_facing_receivers_listen_on_loopback_standard_ports(name: str, grpc: int, http: int) -> None:
    protocols = load(name)["receivers"]["otlp"]["protocols"]
    assert default(protocols["grpc"]["endpoint"]) == f"127.0.0.1:{grpc}"
    assert default(protocols["http"]["endpoint"]) == f"127.0.0.1:{http}"


def test_single_gateway_exports_to_tempo_jaeger_and_the_replay_file() -> None:
    config = load("otelcol.yaml")
    exporters = config["exporters"]
    assert pipelines(config)["traces"]["processors"] == ["memory_limiter", "redaction", "batch"]
    assert set(pipelines(config)["traces"]["exporters"]) >= {
        "otlp_grpc/tempo",
        "otlp_grpc/jaeger",
        "file/sessions",
    }
    assert default(exporters["otlp_grpc/tempo"]["endpoint"]) == "127.0.0.1:24317"
    assert default(exporters["otlp_grpc/jaeger"]["endpoint"]) == "127.0.0.1:14317"
    # Replay reads the file as one ExportTraceServiceRequest per line: JSON, and no metrics in it.
    assert exporters["file/sessions"]["format"] == "json"
    assert default(exporters["file/sessions"]["path"]) == "./sessions.jsonl"
    writers = [
        name for name, pipeline in pipelines(config).items() if "file/sessions" in pipeline["exporters"]
    ]
    assert writers == ["traces"]


@pytest.mark.parametrize("name", REDACTING)
def test_redaction_repeats_the_sdk_default_patterns(name: str) -> None:
    redaction = load(name)["processors"]["redaction"]
    # Keys: the SDK searches case-insensitively (privacy.DEFAULT_KEY_PATTERNS), RE2 needs (?i).
    assert redaction["blocked_key_patterns"] == [
        f"(?i){pattern}" for pattern in DEFAULT_KEY_PATTERNS.values()
    ]
    assert redaction["blocked_values"] == list(DEFAULT_VALUE_PATTERNS.values())
    assert set(SAFE_KEYS) <= set(redaction["ignored_keys"])
    assert {sc.NETWORK_TRANSPORT, sc.NETWORK_PROTOCOL_NAME} <= set(redaction["ignored_keys"])
    assert redaction["allow_all_keys"] is True  # the allow list is empty: without this, every key goes
    assert redaction["redact_all_types"] is True  # integers as text, as the SDK checks them
    assert pipelines(load(name))["traces"]["processors"].index("redaction") == 1


@pytest.mark.parametrize(
    "pattern", [*(f"(?i){p}" for p in DEFAULT_KEY_PATTERNS.values()), *DEFAULT_VALUE_PATTERNS.values()]
)
def test_redaction_patterns_stay_within_re2(pattern: str) -> None:
    # RE2 (Go regexp) has no lookaround and no backreferences; Python compiling them catches typos.
    re.compile(pattern)
    assert not re.search(r"\(\?<?[=!]|\\[1-9]", pattern), pattern


def test_redaction_key_patterns_match_like_the_sdk() -> None:
    patterns = [
        re.compile(p) for p in load("otelcol.yaml")["processors"]["redaction"]["blocked_key_patterns"]
    ]
    secrets = ("Authorization", "X-API-Key", "refreshToken", "DB_PASSWORD")
    for key in (*secrets, "author", "max_tokens", "session.id"):
        assert any(p.search(key) for p in patterns) is (key in secrets), key


# The scale-out layout (routing by session, per-session sampling): tests/test_collector_routing.py.


# --- with a real collector ---------------------------------------------------------------------------


@pytest.fixture
def otelcol() -> str:
    if not OTELCOL_BIN or not shutil.which(OTELCOL_BIN):
        pytest.skip("set OTELCOL_BIN to an otelcol-contrib binary to run the collector tests")
    return OTELCOL_BIN


@pytest.mark.parametrize("name", CONFIGS)
def test_the_collector_validates_each_config(otelcol: str, name: str) -> None:
    result = subprocess.run(
        [otelcol, "validate", f"--config={CONFIG_DIR / name}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def collector(otelcol: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """otelcol.yaml running on free loopback ports; yields (OTLP/HTTP base URL, sessions file)."""
    http_port = _free_port()
    sessions = tmp_path / "sessions.jsonl"
    env = {
        **os.environ,
        "SHINZO_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{_free_port()}",
        "SHINZO_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
        # Nothing listens there: those exporters retry in their own queues, the file gets everything.
        "SHINZO_TEMPO_ENDPOINT": f"127.0.0.1:{_free_port()}",
        "SHINZO_JAEGER_ENDPOINT": f"127.0.0.1:{_free_port()}",
        "SHINZO_SESSIONS_FILE": str(sessions),
        "SHINZO_METRICS_FILE": str(tmp_path / "metrics.jsonl"),
        "SHINZO_TELEMETRY_PORT": str(_free_port()),
    }
    log = (tmp_path / "otelcol.log").open("wb")
    process = subprocess.Popen(
        [otelcol, f"--config={CONFIG_DIR / 'otelcol.yaml'}"], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "otelcol.log").read_text(errors="replace")[-3000:]
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", http_port)) == 0:
                    break
            assert time.monotonic() < deadline, "the collector did not open its OTLP/HTTP port within 30 s"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{http_port}", sessions
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_sdk_to_collector_to_file_to_replay(collector: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, sessions_file = collector
    store = tmp_path / "reference.db"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(store)))
    try:
        anyio.run(two_sessions, provider, endpoint)
    finally:
        provider.shutdown()
    with SessionStore(store) as reference:
        expected = {
            summary.session_id: reference.get_session(summary.session_id)
            for summary in reference.list_sessions()
        }
    assert len(expected) == 2

    deadline = time.monotonic() + 30
    while True:  # the file exporter flushes about every second
        replayed = (
            OtlpJsonFileSource(sessions_file).list_sessions(SessionFilter(limit=None))
            if sessions_file.exists()
            else []
        )
        if {summary.session_id for summary in replayed if summary.end_ns} == set(expected):
            break
        assert time.monotonic() < deadline, f"sessions in the file after 30 s: {replayed}"
        time.sleep(0.5)
    source = OtlpJsonFileSource(sessions_file)
    for session_id, session in expected.items():
        from_file = source.get_session(session_id)
        # The redaction processor may add its own counters to a span; everything else must survive.
        assert from_file.summary.counts == session.summary.counts
        assert (from_file.summary.start_ns, from_file.summary.end_ns) == (
            session.summary.start_ns,
            session.summary.end_ns,
        )
        assert [(e.name, e.timestamp_ns, e.status) for e in from_file.timeline] == [
            (e.name, e.timestamp_ns, e.status) for e in session.timeline
        ]
