"""The SERVER span's parent and links when the client runs in the server's process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.mcp_servers import spans_named
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
