"""The version of the installed `shinzo-otel` distribution, in one place.

`shinzo-otel --version` prints it, and the instrumentation reports it as the instrumentation scope
version of its tracer and meter (OTel trace API, `get_tracer(name, version)`).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from typing import Final

DISTRIBUTION: Final = "shinzo-otel"
"""The distribution name in `pyproject.toml`."""
UNKNOWN_VERSION: Final = "0+unknown"
"""What `version()` answers when the package runs from a source tree that was never installed (a valid
PEP 440 local version, so tools that parse it do not fail)."""


@cache
def version() -> str:
    """The installed distribution's version (`importlib.metadata`, read once per process), or
    `UNKNOWN_VERSION` when `shinzo-otel` is importable but not installed."""
    try:
        return distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN_VERSION
