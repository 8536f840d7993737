"""Attribute, event, span and metric names, pinned in one place.

Standard names follow the OpenTelemetry GenAI semantic conventions for MCP
(https://github.com/open-telemetry/semantic-conventions-genai/blob/main/docs/gen-ai/mcp.md, status
Development) and the general `session.*` conventions
(https://opentelemetry.io/docs/specs/semconv/general/session/). The Python
`opentelemetry-semantic-conventions` package marks its `mcp.*` constants as moved, so we do not
import them. Names of our own live under the `shinzo.` prefix.
"""

from __future__ import annotations

from typing import Final

# --- MCP server span (semconv gen-ai/mcp.md) -------------------------------------------------------
MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_PROTOCOL_VERSION: Final = "mcp.protocol.version"
MCP_SESSION_ID: Final = "mcp.session.id"
MCP_RESOURCE_URI: Final = "mcp.resource.uri"
JSONRPC_REQUEST_ID: Final = "jsonrpc.request.id"
RPC_RESPONSE_STATUS_CODE: Final = "rpc.response.status_code"
ERROR_TYPE: Final = "error.type"
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_PROMPT_VARIABLE_PREFIX: Final = "gen_ai.prompt.variable."
NETWORK_TRANSPORT: Final = "network.transport"
NETWORK_PROTOCOL_NAME: Final = "network.protocol.name"
NETWORK_PROTOCOL_VERSION: Final = "network.protocol.version"
CLIENT_ADDRESS: Final = "client.address"
CLIENT_PORT: Final = "client.port"

EXECUTE_TOOL: Final = "execute_tool"
"""`gen_ai.operation.name` value for `tools/call`."""
TOOL_ERROR: Final = "tool_error"
"""`error.type` value for a tool result with `isError: true`."""

# --- Sessions (semconv general/session.md) ---------------------------------------------------------
SESSION_ID: Final = "session.id"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
"""A conversation id the client sent (vendor `_meta` keys, W3C baggage); semconv gen-ai registry."""
SESSION_START_EVENT: Final = "session.start"
SESSION_END_EVENT: Final = "session.end"

# --- Our own names ---------------------------------------------------------------------------------
SESSION_SPAN_NAME: Final = "mcp.session"
"""The INTERNAL span that covers one session from start to end."""
SESSION_START_SPAN_NAME: Final = "mcp.session.start"
"""A zero-length child of the session span, exported as soon as a session starts, so that a session
whose process dies before the session span ends is still visible with its id, start and attributes."""
SESSION_TYPE: Final = "shinzo.session.type"
"""What kind of session this is: see `SessionType`."""
SESSION_ORIGIN: Final = "shinzo.session.origin"
"""Where the session's identity comes from (`protocol`, `connection`, `stream`, `conversation`,
`resolver`, `manual`, `admin_shell`): see `shinzo_otel.sessions.SessionOrigin`. Says whether a session
is a protocol fact or a grouping we made."""
SESSION_IDLE_TIMEOUT: Final = "shinzo.session.idle_timeout"
"""Seconds (int) after which a session without an end and without activity is `abandoned` for readers
(config `session_idle_timeout_millis`); logical sessions are also ended by the server after it."""
SESSION_END_REASON: Final = "shinzo.session.end_reason"
RESOURCE_UUID: Final = "shinzo.resource.uuid"
SESSION_METADATA_PREFIX: Final = "shinzo.session.metadata."
METHOD_ORIGINAL: Final = "shinzo.mcp.method.original"
"""The raw method name of a message whose `mcp.method.name` is `_OTHER` (a method the server does not
have): kept on the span for debugging, never a metric attribute nor part of a span name."""
TARGET_ORIGINAL: Final = "shinzo.mcp.target.original"
"""The raw tool or prompt name of a call whose `gen_ai.tool.name` / `gen_ai.prompt.name` is `_OTHER`
(a name the server does not have), likewise kept off span names and metrics."""
CLIENT_NAME: Final = "shinzo.client.name"
CLIENT_VERSION: Final = "shinzo.client.version"

EVENT_TYPE: Final = "shinzo.event.type"
EVENT_INPUT: Final = "shinzo.event.input"
EVENT_OUTPUT: Final = "shinzo.event.output"
EVENT_ERROR: Final = "shinzo.event.error"
EVENT_METADATA: Final = "shinzo.event.metadata"
EVENT_DURATION_MS: Final = "shinzo.event.duration_ms"

# --- Admin shell sessions (seeds 001-004): semconv registry names where they exist
# (https://opentelemetry.io/docs/specs/semconv/registry/attributes/, process/user/host/os) ---------
PROCESS_PID: Final = "process.pid"
PROCESS_RUNTIME_VERSION: Final = "process.runtime.version"
PROCESS_WORKING_DIRECTORY: Final = "process.working_directory"
USER_NAME: Final = "user.name"
HOST_NAME: Final = "host.name"
OS_TYPE: Final = "os.type"
OS_DESCRIPTION: Final = "os.description"
ADMIN_COMPONENT: Final = "shinzo.admin.component"
"""The component whose admin shell this is (seed 001 `component_name`), e.g. `mahavishnu`."""
ADMIN_SHELL_TYPE: Final = "shinzo.admin.shell_type"
"""The shell class name (seed 001 `shell_type`)."""
ADMIN_HOME: Final = "shinzo.admin.home"
"""The user's home directory (seed 001 `user.home`)."""
ADMIN_EVENT_ID: Final = "shinzo.admin.event_id"
"""The UUID v4 of the start event; a repeated start with the same id is the same session."""

# --- Metrics (semconv gen-ai/mcp.md, histograms in seconds) ----------------------------------------
MCP_SERVER_OPERATION_DURATION: Final = "mcp.server.operation.duration"
MCP_SERVER_SESSION_DURATION: Final = "mcp.server.session.duration"
OPERATION_DURATION_ATTRIBUTES: Final = (
    MCP_METHOD_NAME,
    ERROR_TYPE,
    GEN_AI_TOOL_NAME,
    GEN_AI_PROMPT_NAME,
    RPC_RESPONSE_STATUS_CODE,
    GEN_AI_OPERATION_NAME,
    MCP_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
    NETWORK_PROTOCOL_NAME,
    NETWORK_PROTOCOL_VERSION,
)
"""Attributes of `mcp.server.operation.duration` (semconv); never a session id."""
SESSION_DURATION_ATTRIBUTES: Final = (
    MCP_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
    NETWORK_PROTOCOL_NAME,
    NETWORK_PROTOCOL_VERSION,
)
"""Attributes of `mcp.server.session.duration` taken from the session span (semconv), beside
`error.type` when the session ended with an error; never a session id."""
OPERATION_DURATION_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
SESSION_DURATION_BUCKETS: Final = (
    *OPERATION_DURATION_BUCKETS,
    600,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
    259200,
    604800,
)
"""The semconv buckets extended past 300 s to a week: sessions often last hours."""

INSTRUMENTATION_NAME: Final = "shinzo_otel"

# --- The processor's own metrics (semconv otel/sdk-metrics.md, SDK self-observability) ------------
OTEL_SDK_PROCESSOR_SPAN_PROCESSED: Final = "otel.sdk.processor.span.processed"
OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE: Final = "otel.sdk.processor.span.queue.size"
OTEL_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY: Final = "otel.sdk.processor.span.queue.capacity"
OTEL_COMPONENT_TYPE: Final = "otel.component.type"
OTEL_COMPONENT_NAME: Final = "otel.component.name"
