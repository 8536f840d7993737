"""Configuration: one precedence (explicit > environment > default), validated once, one name per setting."""

from __future__ import annotations

import logging

import pytest

from shinzo_otel import ShinzoConfig
from shinzo_otel.config import ProcessorSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable the config reads starts unset, whatever the machine running the tests has."""
    for name in (
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_EXPORT_TIMEOUT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        "OTEL_METRICS_EXPORTER",
        "SHINZO_ENABLE_ARGUMENT_COLLECTION",
        "SHINZO_RETRY_BUFFER_MAX_SPANS",
        "SHINZO_RETRY_BUFFER_MAX_BYTES",
        "SHINZO_CIRCUIT_BREAKER_FAILURES",
        "SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    config = ShinzoConfig(server_name="s")
    assert (config.schedule_delay_millis, config.max_export_batch_size, config.max_queue_size) == (
        200,
        512,
        2048,
    )
    assert config.export_timeout_millis == 10000
    assert (config.retry_buffer_max_spans, config.retry_buffer_max_bytes) == (8192, 32 * 1024 * 1024)
    assert (config.circuit_breaker_failures, config.circuit_breaker_open_millis) == (3, 60000)
    assert config.enable_argument_collection is False
    assert config.exporter_endpoint is None and config.metrics_endpoint is None  # the embedded store
    assert config.exporter_protocol == "http/protobuf" and config.metrics_exporter == "otlp"


def test_environment_applies_and_an_explicit_value_wins(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "77")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "5000")
    monkeypatch.setenv("SHINZO_ENABLE_ARGUMENT_COLLECTION", "TRUE")
    monkeypatch.setenv("SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS", "1500")
    config = ShinzoConfig.coerce({"server_name": "s", "schedule_delay_millis": 100})
    assert config.max_queue_size == 77 and config.schedule_delay_millis == 100
    assert config.max_export_batch_size == 77  # the default batch never exceeds the queue
    assert config.enable_argument_collection is True and config.circuit_breaker_open_millis == 1500
    assert ShinzoConfig(server_name="s", enable_argument_collection=False).enable_argument_collection is False


@pytest.mark.parametrize(
    ("variable", "raw", "key", "default"),
    [
        ("SHINZO_CIRCUIT_BREAKER_FAILURES", "many", "circuit_breaker_failures", 3),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "max_queue_size", 2048),
        ("OTEL_BSP_EXPORT_TIMEOUT", "-5", "export_timeout_millis", 10000),
        ("SHINZO_ENABLE_ARGUMENT_COLLECTION", "yes please", "enable_argument_collection", False),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "exporter_protocol", "http/protobuf"),
        ("OTEL_METRICS_EXPORTER", "prometheus", "metrics_exporter", "otlp"),
    ],
)
def test_bad_environment_value_is_logged_and_the_default_used(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    raw: str,
    key: str,
    default: object,
):
    monkeypatch.setenv(variable, raw)
    with caplog.at_level(logging.WARNING, logger="shinzo_otel.config"):
        config = ShinzoConfig(server_name="s")
    assert getattr(config, key) == default
    (record,) = caplog.records
    assert variable in record.getMessage() and repr(raw) in record.getMessage()


def test_an_environment_batch_larger_than_the_queue_is_ignored(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096")
    config = ProcessorSettings(max_queue_size=1000)
    assert config.max_export_batch_size == 512
    assert "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4096" in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_queue_size": 0}, "max_queue_size"),
        ({"export_timeout_millis": "soon"}, "export_timeout_millis"),
        (
            {"max_queue_size": 10, "max_export_batch_size": 20},
            "max_export_batch_size .20. must be <= max_queue_size",
        ),
        ({"schedule_delay": 5}, "schedule_delay: unknown key"),
        ({"metrics_exporter": "console"}, "metrics_exporter"),
    ],
)
def test_bad_explicit_value_raises_naming_the_key(settings: dict[str, object], message: str):
    with pytest.raises(ValueError, match=message):
        ShinzoConfig.coerce({"server_name": "s", **settings})


def test_traces_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    config = ShinzoConfig(server_name="s")
    # OTLP exporter spec: the base URL gets the signal path, for each signal.
    assert config.exporter_endpoint == "http://collector:4318/v1/traces"
    assert config.metrics_endpoint == "http://collector:4318/v1/metrics"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://tempo:4318/v1/traces")
    config = ShinzoConfig(server_name="s")
    assert config.exporter_endpoint == "http://tempo:4318/v1/traces"  # signal-specific: as is
    assert config.metrics_endpoint == "http://collector:4318/v1/metrics"


def test_metrics_endpoint_precedence(monkeypatch: pytest.MonkeyPatch):
    explicit = ShinzoConfig(server_name="s", exporter_endpoint="http://collector:4318")
    assert explicit.metrics_endpoint == "http://collector:4318"  # the seed's one endpoint takes both
    own = ShinzoConfig(
        server_name="s", exporter_endpoint="http://tempo:4318", metrics_endpoint="http://m:4318"
    )
    assert own.metrics_endpoint == "http://m:4318"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4318/v1/metrics")
    assert ShinzoConfig(server_name="s", exporter_endpoint="http://tempo:4318").metrics_endpoint == (
        "http://metrics:4318/v1/metrics"
    )
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    # A traces-only variable says nothing about metrics (OTLP exporter spec).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://tempo:4318/v1/traces")
    assert ShinzoConfig(server_name="s").metrics_endpoint is None


def test_metrics_exporter_none_is_honoured(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    assert ShinzoConfig(server_name="s").metrics_exporter == "none"
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console, otlp")
    assert ShinzoConfig(server_name="s").metrics_exporter == "otlp"


def test_headers_from_the_environment_with_auth_on_top(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20x,X-Tenant=acme")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "X-Tenant=metrics")
    config = ShinzoConfig(server_name="s", exporter_auth={"type": "bearer", "token": "t0k"})
    assert config.resolved_headers("traces") == {"authorization": "Bearer t0k", "x-tenant": "acme"}
    assert config.resolved_headers("metrics") == {"authorization": "Bearer t0k", "x-tenant": "metrics"}


def test_a_config_is_resolved_once(monkeypatch: pytest.MonkeyPatch):
    config = ShinzoConfig(server_name="s")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "5")
    assert ShinzoConfig.coerce(config) is config and config.max_queue_size == 2048
