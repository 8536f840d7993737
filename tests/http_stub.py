"""A loopback HTTP server answering GETs from a route function: the backend HTTP APIs (Tempo, Jaeger)
the replay readers' tests and benchmarks talk to. No mcp import: both mcp majors' tests use it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, bytes, str]
"""(status, body, Content-Type)."""
Route = Callable[[str, dict[str, str]], Answer]
"""(path, query: the last value of each parameter) -> answer."""
JsonRoute = Callable[[str, dict[str, str]], tuple[int, Any]]
"""(path, query) -> (status, JSON body)."""
_Stub = TypeVar("_Stub", bound="HttpStub")


def json_answer(body: Any, status: int = 200, **dumps: Any) -> Answer:
    """`body` as a JSON answer; `dumps` are `json.dumps` options (`separators=(",", ":")`: compact)."""
    return status, json.dumps(body, **dumps).encode(), "application/json"


def json_route(route: JsonRoute, **dumps: Any) -> Route:
    """The `Route` of a route that answers (status, JSON body); `dumps` as in `json_answer`."""

    def answer(path: str, query: dict[str, str]) -> Answer:
        status, body = route(path, query)
        return json_answer(body, status, **dumps)

    return answer


class HttpStub:
    """An HTTP server on 127.0.0.1 answering GETs with `route`, from entering its context to leaving it.

    It keeps every (path, query) received in `requests` and counts the body bytes it sent in
    `bytes_sent`; `reset` clears both.
    """

    def __init__(self, route: Route) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bytes_sent = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(url.query).items()}
                stub.requests.append((url.path, query))
                status, body, kind = route(url.path, query)
                stub.bytes_sent += len(body)
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        self.requests.clear()
        self.bytes_sent = 0

    def __enter__(self: _Stub) -> _Stub:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
