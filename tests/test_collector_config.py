"""Static checks of collector_config/otelcol.yaml (no collector binary needed).

Component ids follow the Collector's ``type[/name]`` syntax
(https://opentelemetry.io/docs/collector/configuration/#basics); a pipeline may only name components
defined in the matching top-level section, or the collector refuses to start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

CONFIG_PATH = Path(__file__).resolve().parent.parent / "collector_config" / "otelcol.yaml"
SECTIONS = ("receivers", "processors", "exporters")
# Component types this config may use, all shipped in otelcol-contrib v0.144.0+; a typo fails here
# rather than at collector start-up.
KNOWN_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch"},
    "exporters": {"otlp_grpc", "file", "debug"},
}
COMPONENT_ID = re.compile(r"^(?P<type>[a-z][a-z0-9_]*)(/[^/\s]+)?$")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    pipelines = config["service"]["pipelines"]
    assert isinstance(pipelines, dict)
    return pipelines


def test_the_traces_and_metrics_pipelines_exist(config: dict[str, Any]) -> None:
    assert sorted(_pipelines(config)) == ["metrics", "traces"]


def test_pipelines_name_only_defined_components(config: dict[str, Any]) -> None:
    for name, pipeline in _pipelines(config).items():
        assert pipeline["receivers"], f"pipeline {name} has no receiver"
        assert pipeline["exporters"], f"pipeline {name} has no exporter"
        for section in SECTIONS:
            undefined = set(pipeline.get(section, [])) - set(config.get(section) or {})
            assert not undefined, f"pipeline {name} names undefined {section}: {sorted(undefined)}"


def test_every_defined_component_is_used_and_of_a_known_type(config: dict[str, Any]) -> None:
    for section in SECTIONS:
        used = {
            component for pipeline in _pipelines(config).values() for component in pipeline.get(section, [])
        }
        assert set(config[section]) == used, f"unused {section}: {sorted(set(config[section]) - used)}"
        for component_id in config[section]:
            match = COMPONENT_ID.match(component_id)
            assert match, f"{component_id!r} is not a type[/name] id"
            assert match["type"] in KNOWN_TYPES[section], f"unknown {section} type in {component_id!r}"


def test_memory_limiter_runs_first(config: dict[str, Any]) -> None:
    # The memory_limiter README: it must be the first processor so it can refuse data early.
    for name, pipeline in _pipelines(config).items():
        assert pipeline["processors"][0] == "memory_limiter", f"pipeline {name}"


def test_otlp_receiver_listens_on_loopback_standard_ports(config: dict[str, Any]) -> None:
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "127.0.0.1:4317"
    assert protocols["http"]["endpoint"] == "127.0.0.1:4318"


def test_backend_endpoint_comes_from_the_environment_with_a_default(config: dict[str, Any]) -> None:
    backend = config["exporters"]["otlp_grpc/backend"]
    assert backend["endpoint"] == "${env:SHINZO_BACKEND_ENDPOINT:-127.0.0.1:14317}"
    assert backend["tls"] == {"insecure": True}


def test_sessions_file_receives_traces_only(config: dict[str, Any]) -> None:
    # Replay reads sessions.jsonl as one ExportTraceServiceRequest per line: no metrics may land there.
    assert config["exporters"]["file/sessions"] == {"path": "./sessions.jsonl", "format": "json"}
    writers = [name for name, p in _pipelines(config).items() if "file/sessions" in p["exporters"]]
    assert writers == ["traces"]
