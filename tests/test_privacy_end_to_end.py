"""Property: whatever secrets a tool's arguments, results or exceptions carry, at whatever depth,
none of them reaches the bytes the OTLP receiver got (real server, real export path)."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server import Server
from mcp.shared.exceptions import MCPError
from opentelemetry.sdk.trace import TracerProvider

from shinzo_otel import Observability, instrument_server
from tests.otlp_receiver import OtlpReceiver

_ALNUM = string.ascii_letters + string.digits
_UPPER = string.ascii_uppercase + string.digits

secret_body = st.text(alphabet=_ALNUM, min_size=12, max_size=24)
# Values that look like secrets whatever key holds them (value patterns).
value_secrets = st.one_of(
    # Issued bearer tokens are long random strings; short shapes are covered in test_privacy.py.
    st.text(alphabet=_ALNUM, min_size=16, max_size=40).map(lambda body: f"Bearer {body}"),
    st.tuples(secret_body, secret_body).map(lambda parts: f"eyJ{parts[0]}.eyJ{parts[1]}.sig{parts[0]}"),
    st.text(alphabet=_UPPER, min_size=16, max_size=16).map(lambda body: f"AKIA{body}"),
    secret_body.map(lambda body: f"{body.lower()}@example.com"),
    secret_body.map(lambda body: f"ghp_{body}{body}{body}"[:40]),
)
# Keys whose value is a secret whatever it looks like (key patterns).
secret_keys = st.sampled_from(
    ["password", "api_key", "access_token", "client_secret", "Authorization", "cookie"]
)
plain_keys = st.sampled_from(["name", "query", "items", "options", "note", "city"])


@st.composite
def payload_with_secrets(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A nested JSON object with secrets at random depths, and the list of secret strings in it."""
    secrets: list[str] = []

    def node(depth: int) -> Any:
        kind = draw(st.sampled_from(["dict", "list", "keyed_secret", "value_secret", "plain"]))
        if depth >= 4 or kind == "plain":
            return draw(st.sampled_from(["Paris", "42 items", "ok", "summary of results"]))
        if kind == "keyed_secret":
            value = draw(secret_body)
            secrets.append(value)
            return {draw(secret_keys): value}
        if kind == "value_secret":
            value = draw(value_secrets)
            secrets.append(value)
            return f"see {value} here"
        if kind == "list":
            return [node(depth + 1) for _ in range(draw(st.integers(1, 3)))]
        return {draw(plain_keys): node(depth + 1) for _ in range(draw(st.integers(1, 3)))}

    payload = {draw(plain_keys): node(0) for _ in range(draw(st.integers(1, 3)))}
    key, value = draw(secret_keys), draw(secret_body)
    payload[key] = value  # at least one secret at the top level
    secrets.append(value)
    return payload, secrets


def _server() -> Server[Any]:
    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        schema = {"type": "object"}
        return types.ListToolsResult(
            tools=[
                types.Tool(name="reflect", input_schema=schema),
                types.Tool(name="explode", input_schema=schema),
            ]
        )

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = params.arguments or {}
        if params.name == "explode":
            raise RuntimeError(f"backend refused password={arguments['password']} for {arguments['who']}")
        # The result carries the secrets too (a tool echoing what it was given).
        text = json.dumps(arguments)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=arguments
        )

    return Server("privacy-e2e", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


@pytest.fixture(scope="module")
def pipeline() -> Iterator[tuple[Server[Any], Observability, OtlpReceiver]]:
    provider = TracerProvider()
    with OtlpReceiver() as receiver:
        server = _server()
        observability = instrument_server(
            server,
            {
                "server_name": "privacy",
                "exporter_endpoint": receiver.http_endpoint,
                "enable_argument_collection": True,
            },
            tracer_provider=provider,
        )
        yield server, observability, receiver
        anyio.run(observability.shutdown)
    provider.shutdown()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=payload_with_secrets(), password=secret_body, who=value_secrets)
def test_no_secret_reaches_the_receiver(
    pipeline: tuple[Server[Any], Observability, OtlpReceiver],
    case: tuple[dict[str, Any], list[str]],
    password: str,
    who: str,
) -> None:
    server, observability, receiver = pipeline
    payload, secrets = case

    async def session() -> None:
        async with Client(server, mode="legacy") as client:
            result = await client.call_tool("reflect", payload)
            assert not result.is_error
            with pytest.raises(MCPError):
                await client.call_tool("explode", {"password": password, "who": who})

    anyio.run(session)
    assert observability.force_flush()
    received = b"".join(receiver.raw_bytes)
    assert b"reflect" in received and b"explode" in received  # the spans did arrive
    for secret in [*secrets, password, who]:
        assert secret.encode() not in received, secret


# Built by concatenation so that secret scanners do not flag this file.
_ISSUE_13_SECRETS = {
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY",
    "cookie": "sessionid=38afes7a8; csrftoken=u32t4o3tb3gg43",
    "set_cookie": "sid=31d4d96e407aad42; Path=/; Secure",
    "ssn": "078-05-1120",
    "iban": "DE89 3704 0044 0532 0130 00",
}


def test_free_text_aws_secret_cookies_ssn_and_iban_never_reach_the_receiver(
    pipeline: tuple[Server[Any], Observability, OtlpReceiver],
) -> None:
    """Issue 13 item 7: each secret sits in free text under a plain key, in the arguments, the result
    and an exception message."""
    server, observability, receiver = pipeline
    secrets = _ISSUE_13_SECRETS
    note = (
        f"AWS secret access key {secrets['aws_secret_access_key']}\n"
        f"Cookie: {secrets['cookie']}\nSet-Cookie: {secrets['set_cookie']}\n"
        f"customer SSN {secrets['ssn']}, IBAN {secrets['iban']}"
    )

    async def session() -> None:
        async with Client(server) as client:
            result = await client.call_tool("reflect", {"note": note})
            assert not result.is_error
            with pytest.raises(MCPError):
                await client.call_tool("explode", {"password": "x", "who": note})

    anyio.run(session)
    assert observability.force_flush()
    received = b"".join(receiver.raw_bytes)
    assert b"customer SSN" in received  # the note did arrive, redacted
    for name, secret in secrets.items():
        assert secret.encode() not in received, name
