"""Transport facts of one inbound message, read from the Starlette `Request` that both mcp majors hand
their handlers on HTTP and SSE (None on stdio and in memory). Shared by the adapters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.util.types import AttributeValue

from shinzo_otel import _semconv as sc


def http_attributes(request: Any) -> dict[str, AttributeValue]:
    """`network.*` and the real peer (`client.address`, `client.port`) of an HTTP request."""
    attributes: dict[str, AttributeValue] = {sc.NETWORK_TRANSPORT: "tcp", sc.NETWORK_PROTOCOL_NAME: "http"}
    scope = getattr(request, "scope", None)
    if isinstance(scope, Mapping) and isinstance(scope.get("http_version"), str):
        attributes[sc.NETWORK_PROTOCOL_VERSION] = scope["http_version"]
    client = getattr(request, "client", None)
    if client is not None:
        attributes[sc.CLIENT_ADDRESS] = client.host
        attributes[sc.CLIENT_PORT] = client.port
    return attributes


def sse_session_id(request: Any) -> str | None:
    """The SSE transport's `?session_id=` of the POST that carried the message."""
    query_params = getattr(request, "query_params", None)
    value = query_params.get("session_id") if query_params is not None else None
    return value if isinstance(value, str) and value else None
