"""Optional HS256 JWT authentication of the admin tracking tools (seed 004), with PyJWT.

Authentication is on when a shared secret is configured: explicitly, else in `SHINZO_ADMIN_SECRET`,
else in `SESSION_BUDDY_SECRET` (seed 004's variable). A tool call then needs a `token` argument holding
a JWT (RFC 7519) signed with HS256 and that secret, with an `exp` claim in the future and `iss` equal
to the configured issuer (default `"session-buddy"`, as the tokens of seed 004 carry). Anything else
is answered with seed 004's error shape, `"error": "❌ Authentication failed: <reason>"`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Final

import jwt

SHINZO_ADMIN_SECRET: Final = "SHINZO_ADMIN_SECRET"
"""Environment variable: the shared HS256 secret of the admin tracking tools (ours, read first)."""
SESSION_BUDDY_SECRET: Final = "SESSION_BUDDY_SECRET"
"""Environment variable: the same secret under seed 004's name, read when `SHINZO_ADMIN_SECRET` is unset."""
DEFAULT_ISSUER: Final = "session-buddy"
"""The `iss` claim required by default: seed 004's tokens carry `"iss": "session-buddy"`."""
ALGORITHM: Final = "HS256"
"""The only accepted JWS algorithm (seed 004); `alg: none` and asymmetric algorithms are refused."""
AUTH_ERROR_PREFIX: Final = "❌ Authentication failed: "
"""Prefix of the `error` of a refused call (seed 004)."""
DEFAULT_TOKEN_TTL_SECONDS: Final = 300
"""Lifetime of tokens minted by `create_token` when none is given: one emitter call needs seconds."""
_LEEWAY_SECONDS: Final = 10
"""Clock skew tolerated on `exp` and `iat` between a shell's host and the tracking server."""


class AuthenticationError(Exception):
    """A token was refused; `str(error)` is the one-line reason (never the token)."""


def resolve_secret(secret: str | None = None) -> tuple[str, str] | None:
    """The secret to use and where it came from, or None when authentication is off.

    Precedence: `secret` (when not None and not empty), then `$SHINZO_ADMIN_SECRET`, then
    `$SESSION_BUDDY_SECRET`; empty values count as unset.
    """
    if secret:
        return secret, "a secret"
    for name in (SHINZO_ADMIN_SECRET, SESSION_BUDDY_SECRET):
        value = os.environ.get(name)
        if value:
            return value, name
    return None


def token_verifier(secret: str | None = None, *, issuer: str = DEFAULT_ISSUER) -> TokenVerifier | None:
    """The verifier of the tracking server's tokens, or None when authentication is off: `secret`,
    else `$SHINZO_ADMIN_SECRET`, else `$SESSION_BUDDY_SECRET` (see `resolve_secret`), read now."""
    resolved = resolve_secret(secret)
    return None if resolved is None else TokenVerifier(resolved[0], issuer=issuer, source=resolved[1])


class TokenVerifier:
    """Checks the `token` argument of a tool call.

    Args:
        secret: the shared HS256 secret.
        issuer: the required `iss` claim.
        source: where the secret came from (an environment variable name), quoted in the "token
            required" message so an operator knows why authentication is on.
    """

    def __init__(self, secret: str, *, issuer: str = DEFAULT_ISSUER, source: str = "a secret") -> None:
        self._secret = secret
        self._issuer = issuer
        self._source = source

    @property
    def source(self) -> str:
        """Where the secret came from: an environment variable name, or "a secret" when given."""
        return self._source

    def verify(self, token: object) -> Mapping[str, Any]:
        """The claims of a valid `token`.

        Raises:
            AuthenticationError: the token is missing, not a string, malformed, wrongly signed, signed
                with another algorithm, expired, without `exp`/`iss`, or issued by someone else.
        """
        if token is None or token == "":
            raise AuthenticationError(f"Token required ({self._source} is set)")
        if not isinstance(token, str):
            raise AuthenticationError(f"Token must be a string, not {type(token).__name__}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("Token has expired") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError(f"Invalid token issuer (expected {self._issuer!r})") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("Invalid token signature") from None
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"Invalid token: {error}") from None
        return claims


def create_token(
    secret: str,
    *,
    subject: str = "admin-shell",
    issuer: str = DEFAULT_ISSUER,
    ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS,
) -> str:
    """An HS256 JWT with seed 004's claims: `user_id`, `iat`, `exp` (now + `ttl_seconds`),
    `type: "access"` and `iss`.

    Raises:
        ValueError: `secret` is empty or `ttl_seconds` is not positive.
    """
    if not secret:
        raise ValueError("secret must not be empty")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    now = int(time.time())
    claims = {"user_id": subject, "iat": now, "exp": now + ttl_seconds, "type": "access", "iss": issuer}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
