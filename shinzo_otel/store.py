"""The embedded local session store: an OTel span exporter writing to SQLite, and its reader.

With no OTLP endpoint configured, spans go here and the `shinzo-otel` CLI reads them back, so a
newcomer sees sessions without running any server (DESIGN.md "Embedded default").

- `SqliteSpanExporter` writes finished spans (the exporter side, `shinzo_otel._store_writer`);
- `SessionStore` reads sessions, requests outside any session and whole traces, ends stale sessions
  and prunes old data (the read side, `shinzo_otel._store_reader`);
- `default_store_path` / `SHINZO_STORE_PATH` say where the file lives.

Both sides share the schema (`shinzo_otel._store_schema`, which documents the tables, indexes and
migrations) and never import each other. The database runs in WAL mode so the CLI can read while a
server writes. This module only gathers the public names; code inside the package imports the side
it needs, so the exporter never loads the read side (layer order: `shinzo_otel._layers`).
"""

from shinzo_otel._store_reader import PruneResult, SessionStore
from shinzo_otel._store_schema import SHINZO_STORE_PATH, default_store_path
from shinzo_otel._store_writer import SqliteSpanExporter

__all__ = ["SHINZO_STORE_PATH", "PruneResult", "SessionStore", "SqliteSpanExporter", "default_store_path"]
