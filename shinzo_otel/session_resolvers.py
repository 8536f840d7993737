"""Session resolvers: logical sessions for stateless traffic (DESIGN.md "Sessions", step 3).

The 2026-07-28 protocol era and `stateless_http=True` have no protocol session: every request is
its own connection. A resolver maps a request to a stable key (a `_meta` entry, a header, the
authenticated subject); requests with the same key share one logical session, which ends after
`session_idle_timeout_millis` without requests. The key itself is never exported (it may be a user
identity); the session gets a fresh `session.id`.

Pass one as config `session_resolver`; without one, stateless requests stay standalone traces.

A resolver receives the native request context of the installed mcp: a `ServerRequestContext` on
mcp 2.x, a `RequestContext` on mcp 1.x (`request_id`, `meta`, `request`; its `session` is None, the
message has not reached the server yet). The built-ins below read both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token

SessionResolver = Callable[[Any], "str | None"]
"""`(native request context) -> session key or None`. Called on the request path: keep it cheap. An
exception counts as None."""


def _meta(ctx: Any) -> Mapping[str, Any]:
    """`params._meta` of the request: a mapping on mcp 2.x, a pydantic model whose extra keys hold
    the vendor entries on mcp 1.x."""
    meta = ctx.meta
    if isinstance(meta, Mapping):
        return meta
    extra = getattr(meta, "model_extra", None)
    return extra if isinstance(extra, Mapping) else {}


def meta_key(key: str) -> SessionResolver:
    """Resolve by a string entry of the request's `params._meta` (e.g. a client-chosen session key).

    Args:
        key: the `_meta` key, e.g. `"com.example/sessionKey"`.
    """

    def resolve(ctx: Any) -> str | None:
        value = _meta(ctx).get(key)
        return value if isinstance(value, str) and value else None

    return resolve


def header(name: str) -> SessionResolver:
    """Resolve by an HTTP request header (streamable HTTP and SSE only; None on stdio).

    Args:
        name: header name, case-insensitive (e.g. `"x-conversation-id"`).
    """

    def resolve(ctx: Any) -> str | None:
        headers = getattr(ctx.request, "headers", None)
        value = headers.get(name) if headers is not None else None
        return value if isinstance(value, str) and value else None

    return resolve


def auth_subject() -> SessionResolver:
    """Resolve by the authenticated principal of the mcp SDK's auth (`sub`, else the client id; mcp
    1.x tokens carry the client id only).

    One logical session per principal, ending when the principal is idle.
    """

    def resolve(ctx: Any) -> str | None:
        token = get_access_token()
        if token is None:
            return None
        subject = getattr(token, "subject", None)  # mcp 1.x's AccessToken has none
        return f"sub:{subject}" if subject else f"client:{token.client_id}"

    return resolve
