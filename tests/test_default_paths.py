"""What real users run, in their own processes: no `tracer_provider=` passed, a host that configured
OpenTelemetry itself or did not, and the zero-code path through `opentelemetry-instrument`
(STYLE.md item 9: use the configured global provider, create one only when there is none).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.mcp_servers import EXAMPLES, spans_named, wait_for_spans
from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.anyio

TESTS = Path(__file__).resolve().parent


async def test_zero_code_instrumentor_through_opentelemetry_instrument(receiver: OtlpReceiver):
    """`opentelemetry-instrument python examples/plain_server.py`: the server has no instrumentation
    code; the `shinzo_mcp` entry point instruments it when it is created."""
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint}
    command = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    params = StdioServerParameters(
        command=command, args=[sys.executable, str(EXAMPLES / "plain_server.py")], env=env
    )
    async with Client(params) as client:
        assert (await client.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}
    spans = await wait_for_spans(receiver, lambda spans: bool(spans_named(spans, "mcp.session")), timeout=30)
    (session,) = spans_named(spans, "mcp.session")
    assert session.resource["service.name"] == "plain-server"  # server_name = the server's name
    assert session.attributes["shinzo.session.origin"] == "stream"
    (call,) = spans_named(spans, "tools/call add")
    assert call.attributes["session.id"] == session.attributes["session.id"]
    assert "gen_ai.tool.call.arguments" not in call.attributes  # capture stays off by default


async def test_the_host_global_provider_is_used_and_keeps_working(receiver: OtlpReceiver, tmp_path: Path):
    names = tmp_path / "host-spans.txt"
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint, "HOST_SPANS_FILE": str(names)}
    params = StdioServerParameters(command=sys.executable, args=[str(TESTS / "host_server.py")], env=env)
    async with Client(params) as client:
        await client.call_tool("echo", {"text": "hi"})
    spans = await wait_for_spans(receiver, lambda spans: bool(spans_named(spans, "mcp.session")), timeout=30)
    (call,) = spans_named(spans, "tools/call echo")
    # Our spans come from the host's provider: its resource, not one of ours named after server_name.
    assert call.resource["service.name"] == "host-app"
    # The host's own processor still sees every span, ours included.
    seen = names.read_text(encoding="utf-8").splitlines()
    assert "tools/call echo" in seen and "mcp.session" in seen


def test_the_session_sampler_from_the_environment_on_the_provider_we_create(tmp_path: Path):
    """`OTEL_TRACES_SAMPLER=shinzo_session` reaches the TracerProvider `instrument_server` creates when
    the host has none (the SDK itself only knows its built-in sampler names)."""
    script = (
        "from mcp.server import MCPServer\n"
        "from shinzo_otel import instrument_server\n"
        "handle = instrument_server(MCPServer('s'), {'server_name': 's'})\n"
        "print(handle.tracer_provider.sampler.get_description())\n"
    )
    env = {
        **os.environ,
        "OTEL_TRACES_SAMPLER": "shinzo_session",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "SHINZO_STORE_PATH": str(tmp_path / "s.db"),
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SessionSampler{0.25}"
