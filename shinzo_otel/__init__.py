"""shinzo_otel: OpenTelemetry instrumentation for MCP servers."""
