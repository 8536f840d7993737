"""Open a replay source from a `--source` spec: the one place that knows every reader."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from shinzo_otel._store_reader import SessionStore
from shinzo_otel.replay.jaeger import JaegerSource
from shinzo_otel.replay.otlp_json import OtlpJsonFileSource
from shinzo_otel.replay.source import ProgressCallback, SessionSource, WarningCallback
from shinzo_otel.replay.tempo import TempoSource

SOURCE_SPEC_HELP: Final = (
    "sqlite:PATH (the embedded store, the default), file:PATH (OTLP JSON lines, the Collector file "
    "exporter's output), tempo:URL (Tempo's HTTP API, e.g. tempo:http://127.0.0.1:3200) or jaeger:URL "
    "(Jaeger's query API, e.g. jaeger:http://127.0.0.1:16686)"
)
"""What `open_source` accepts, in one sentence for help texts."""

SCHEMES: Final = ("sqlite", "file", "tempo", "jaeger")
"""The spec prefixes `open_source` knows."""


def open_source(
    spec: str | None,
    *,
    progress: ProgressCallback | None = None,
    warn: WarningCallback | None = None,
) -> SessionSource:
    """The `SessionSource` a spec names.

    Args:
        spec: `scheme:location`, see `SOURCE_SPEC_HELP`; None or "" means the embedded store at
            `shinzo_otel.store.default_store_path()`. `sqlite:` with an empty path means the same.
            A URL without `http://` or `https://` gets `http://`.
        progress: handed to readers that report progress (file, Tempo, Jaeger).
        warn: handed to readers that skip bad input (file, Tempo, Jaeger); default: logging.

    Raises:
        ValueError: the spec has no known scheme or no location.
        SourceUnavailableError: the store or file does not exist or cannot be opened (HTTP sources
            are contacted only when first read).
    """
    if not spec:
        return SessionStore()
    scheme, separator, location = spec.partition(":")
    if not separator or scheme not in SCHEMES:
        raise ValueError(f"unknown source {spec!r}: expected {SOURCE_SPEC_HELP}")
    if scheme == "sqlite":
        return SessionStore(Path(location).expanduser() if location else None)
    if not location:
        raise ValueError(f"source {spec!r} names no {'file' if scheme == 'file' else 'URL'}")
    if scheme == "file":
        return OtlpJsonFileSource(Path(location).expanduser(), progress=progress, warn=warn)
    if scheme == "tempo":
        return TempoSource(location, progress=progress, warn=warn)
    return JaegerSource(location, progress=progress, warn=warn)
