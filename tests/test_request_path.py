"""The request path's edge cases: the SERVER span's parent and links when the client runs in the
server's process; content that pydantic's JSON encoder refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client
from opentelemetry.sdk.trace import TracerProvider

from tests.loopback import instrument_to_receiver
from tests.mcp_servers import make_lowlevel_server, spans_named
from tests.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parent.parent


def test_an_in_process_clients_span_is_the_parent_and_not_also_a_link(receiver: OtlpReceiver) -> None:
    """The client's CLIENT span is both current in the handler and the parent sent in `_meta`: it is
    the parent only; the one link is the session span (an enclosing span that is not the parent, such
    as an ASGI server span, is linked: tests/test_integrations.py)."""
    env = {**os.environ, "OTLP_ENDPOINT": receiver.http_endpoint}
    done = subprocess.run(
        [sys.executable, "-m", "tests.in_process_client"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    spans = receiver.spans()
    (call,) = spans_named(spans, "tools/call echo")
    (session,) = spans_named(spans, "mcp.session")
    assert call.parent_span_id is not None and call.trace_id != session.trace_id  # the client's trace
    assert [(link.trace_id, link.span_id) for link in call.links] == [(session.trace_id, session.span_id)]


@pytest.mark.anyio
async def test_a_call_whose_arguments_pydantic_cannot_encode_is_still_traced(
    receiver: OtlpReceiver, tracer_provider: TracerProvider
) -> None:
    """A lone surrogate (a client may send one as a JSON escape) fails pydantic's encoder: the content
    goes through `json.dumps` as before and the call keeps its span (the OTLP encoder then leaves out
    the attributes it cannot encode as UTF-8)."""
    server = make_lowlevel_server()
    observability = instrument_to_receiver(
        server, receiver, tracer_provider, server_name="request-path", enable_argument_collection=True
    )
    async with Client(server, mode="legacy") as client:
        await client.call_tool("echo", {"text": "a\ud800b"})
    observability.force_flush()
    (call,) = spans_named(receiver.spans(), "tools/call echo")
    assert call.attributes["gen_ai.tool.name"] == "echo"
    await observability.shutdown()
