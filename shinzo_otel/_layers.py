"""The layer order of the package, in one place: a module imports modules of its own layer or of the
layers below it, never above.

Data flows one way (DESIGN.md "Data flow"): the lower layers capture spans and export them (to OTLP or
to the embedded store), the upper layers read stores and backends back and present them, the
applications sit on top. The embedded store is split along the same line: its writer
(`_store_writer`, the exporter) and its reader (`_store_reader`) share the schema below both
(`_store_schema`) and never import each other, so the exporter loads neither the read side nor rich,
typer or httpx.

`tests/test_layers.py` parses every module's imports (`ast`, nothing runs) and fails when a module
imports a layer above its own (importing `a.b.c` imports the packages `a` and `a.b` too; imports
under `if TYPE_CHECKING:` do not run and do not count), when a module is missing from this table or
listed but gone, and when a module below the read layer imports one of `READ_SIDE_LIBRARIES`. A new
module goes into the lowest layer its imports allow.
"""

from __future__ import annotations

from typing import Final

LAYERS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    (
        "base",
        (
            "shinzo_otel",  # its public names load lazily: it imports nothing at run time
            "shinzo_otel._semconv",
            "shinzo_otel._sqlite",
            "shinzo_otel._version",
            "shinzo_otel._layers",
        ),
    ),
    # The span and session model every reader produces and the store's writer folds spans with.
    ("model", ("shinzo_otel.replay", "shinzo_otel.replay.model")),
    ("store schema", ("shinzo_otel._store_schema",)),
    (
        "capture and export",
        (
            "shinzo_otel._prefilter",
            "shinzo_otel.privacy",
            "shinzo_otel.config",
            "shinzo_otel.sessions",
            "shinzo_otel.session_resolvers",
            "shinzo_otel.sampling",
            "shinzo_otel._request_span",
            "shinzo_otel._tracing",
            "shinzo_otel._transport",
            "shinzo_otel._mcp1",
            "shinzo_otel._mcp2",
            "shinzo_otel._adapter",
            "shinzo_otel._circuit_breaker",
            "shinzo_otel._pipeline",
            "shinzo_otel.processor",
            "shinzo_otel._routing",
            "shinzo_otel._store_writer",
            "shinzo_otel._export",
            "shinzo_otel.instrumentation",
            "shinzo_otel.instrumentor",
        ),
    ),
    (
        "admin shells",
        (
            "shinzo_otel.admin",
            "shinzo_otel.admin.auth",
            "shinzo_otel.admin.models",
            "shinzo_otel.admin.state",
            "shinzo_otel.admin.tracker",
            "shinzo_otel.admin.tools",
            "shinzo_otel.admin.emitter",
            "shinzo_otel.admin.shell",
        ),
    ),
    (
        "read",
        (
            "shinzo_otel.replay.source",
            "shinzo_otel.replay.query",
            "shinzo_otel.replay._memory",
            "shinzo_otel.replay._http",
            "shinzo_otel.replay.otlp_json",
            "shinzo_otel.replay.tempo",
            "shinzo_otel.replay.jaeger",
            "shinzo_otel.replay.analytics",
            "shinzo_otel._store_reader",
        ),
    ),
    ("present", ("shinzo_otel.replay.render", "shinzo_otel.replay.sources", "shinzo_otel.store")),
    ("applications", ("shinzo_otel.admin.server", "shinzo_otel.cli")),
)
"""(layer name, modules) from the bottom up."""

READ_LAYER: Final = "read"
"""The lowest layer that may import `READ_SIDE_LIBRARIES`."""
READ_SIDE_LIBRARIES: Final = ("rich", "typer", "httpx")
"""Top-level packages of terminals, command lines and HTTP clients: read side only."""
