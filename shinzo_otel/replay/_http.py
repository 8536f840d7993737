"""The HTTP side of the Tempo and Jaeger readers: one httpx client, JSON answers, one-line errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx

from shinzo_otel.replay.source import SourceUnavailableError

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
"""Connect, read, write and pool timeout of every request to a backend, in seconds."""
_BODY_EXCERPT: Final = 200


def base_url(url: str) -> str:
    """`url` with `http://` prepended when it has no scheme, and no trailing slash."""
    return (url if "://" in url else f"http://{url}").rstrip("/")


class BackendAnswerError(SourceUnavailableError):
    """The backend was reached and answered a non-2xx status other than 404 (`status`), or a body
    that is not JSON (`status` 200). Readers catch it where another way of asking exists (a Tempo
    without TraceQL metrics); elsewhere it is a `SourceUnavailableError` like any other."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class JsonApi:
    """GETs JSON from one backend.

    Args:
        name: the backend's name for messages ("Tempo", "Jaeger").
        url: its base URL (credentials in the URL become HTTP basic auth, httpx's rule).
        timeout_seconds: see `DEFAULT_TIMEOUT_SECONDS`.
    """

    def __init__(self, name: str, url: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.name = name
        self.url = base_url(url)
        self._client = httpx.Client(
            base_url=self.url, timeout=timeout_seconds, headers={"Accept": "application/json"}
        )

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any | None:
        """The decoded JSON answer to `GET path?params`, or None when the backend answers 404.

        Raises:
            SourceUnavailableError: the backend cannot be reached or times out.
            BackendAnswerError: it answers another non-2xx status, or something that is not JSON.
        """
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as error:
            raise SourceUnavailableError(
                f"cannot reach {self.name} at {self.url}: {str(error) or type(error).__name__}"
            ) from error
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if not response.is_success:
            excerpt = " ".join(response.text.split())[:_BODY_EXCERPT]
            raise BackendAnswerError(
                f"{self.name} at {self.url} answered {response.status_code} to GET {path}: {excerpt}",
                response.status_code,
            )
        try:
            return response.json()
        except ValueError as error:
            raise BackendAnswerError(
                f"{self.name} at {self.url} answered GET {path} with something that is not JSON",
                response.status_code,
            ) from error

    def close(self) -> None:
        """Close the connection pool; idempotent."""
        self._client.close()
