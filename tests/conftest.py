"""Shared fixtures: the anyio backend, a loopback OTLP receiver, a fresh TracerProvider per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.otlp_receiver import OtlpReceiver


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP receiver (gRPC and HTTP) on 127.0.0.1 that decodes the protobuf."""
    with OtlpReceiver() as rx:
        yield rx


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    """A private SDK TracerProvider (the global one can be set only once per process)."""
    provider = TracerProvider()
    yield provider
    provider.shutdown()
