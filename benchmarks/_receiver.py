"""The loopback OTLP receiver in a process of its own, so that its decoding is not charged to the process
being measured: `python -m benchmarks._receiver`.

Prints its gRPC endpoint on the first line, then answers commands on stdin, one per line: `spans`
(the number of spans received so far, counted without decoding them into Python values), `clear`,
`quit`. Used through `ReceiverProcess`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType

_ROOT = Path(__file__).resolve().parent.parent


class ReceiverProcess:
    """`tests.otlp_receiver.OtlpReceiver` in a child process; a context manager."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._receiver"],
            cwd=_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.grpc_endpoint = self._read()

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ask("quit")
        self._process.wait(timeout=30)

    def spans(self) -> int:
        """Spans received so far."""
        return int(self._ask("spans"))

    def clear(self) -> None:
        self._ask("clear")

    def _ask(self, command: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._read()

    def _read(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the receiver process ended")
        return line.strip()


def _serve() -> None:
    sys.path.insert(0, str(_ROOT))
    from tests.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as receiver:
        print(receiver.grpc_endpoint, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "spans":
                count = sum(
                    len(scope.spans)
                    for request in receiver.trace_requests
                    for resource in request.resource_spans
                    for scope in resource.scope_spans
                )
                print(count, flush=True)
            elif command == "clear":
                receiver.clear()
                print("ok", flush=True)
            else:
                print("bye", flush=True)
                return


if __name__ == "__main__":
    _serve()
