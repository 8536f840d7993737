"""The MCP tools `track_session_start` and `track_session_end` (seed 004) on any mcp 2.x server.

Arguments are seed 004's (the start event's fields, or `session_id`, `timestamp`, `event_type`,
`metadata`, plus `token` in both); results are the seed's dicts, as structured content and as JSON
text: `{"session_id": ..., "status": "tracked" | "ended" | "not_found" | "error", "error": ...}`.
Validation is the tracker's, so every invalid argument, including a missing one, is answered in that
shape rather than as a protocol error. Calls never fail at the protocol level; a result whose status
is `"error"` (a refused token, an invalid event, a failed lifecycle call) is a tool execution error,
`isError: true` (MCP "Tools", error handling), so that telemetry counts it (`error.type` `tool_error`).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Final

import mcp_types as types
from mcp.server import MCPServer, Server
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, WithJsonSchema

from shinzo_otel.admin.auth import (
    AUTH_ERROR_PREFIX,
    DEFAULT_ISSUER,
    AuthenticationError,
    TokenVerifier,
    token_verifier,
)
from shinzo_otel.admin.models import (
    TRACK_SESSION_END,
    TRACK_SESSION_START,
    SessionEndEvent,
    SessionEndResult,
    SessionStartEvent,
    SessionStartResult,
)
from shinzo_otel.admin.tracker import SessionTracker

_TOKEN_SCHEMA: Final = {
    "type": ["string", "null"],
    "description": "HS256 JWT; required when the tracking server has a shared secret (seed 004).",
}
_START_DESCRIPTION: Final = (
    "Track the start of an admin shell session. Answers "
    '{"session_id": "<component>-<YYYYMMDD-HHMMSS>", "status": "tracked" | "error", "error": null | "..."}.'
)
_END_DESCRIPTION: Final = (
    "Track the end of an admin shell session. Answers "
    '{"session_id": "...", "status": "ended" | "not_found" | "error", "error": null | "..."}.'
)
_logger = logging.getLogger(__name__)

_Handler = Callable[[Mapping[str, Any]], Awaitable[types.CallToolResult]]


def _inline_refs(schema: Any, definitions: Mapping[str, Any]) -> Any:
    """`schema` with every local `$ref` replaced by its definition (tool parameters have no `$defs`)."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline_refs(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline_refs(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline_refs(item, definitions) for item in schema]
    return schema


def _input_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    properties = _inline_refs(schema["properties"], schema.get("$defs", {}))
    return {
        "type": "object",
        "properties": {**properties, "token": _TOKEN_SCHEMA},
        "required": schema.get("required", []),
    }


_START_SCHEMA: Final = _input_schema(SessionStartEvent)
_END_SCHEMA: Final = _input_schema(SessionEndEvent)


class _AdminTools:
    """The two tool bodies, shared by both server kinds."""

    def __init__(self, tracker: SessionTracker, verifier: TokenVerifier | None) -> None:
        self._tracker = tracker
        self._verifier = verifier

    def _refusal(self, tool: str, arguments: Mapping[str, Any]) -> str | None:
        """The seed 004 error text if authentication is on and the token is refused."""
        if self._verifier is None:
            return None
        try:
            self._verifier.verify(arguments.get("token"))
        except AuthenticationError as error:
            _logger.warning("Authentication failed for %s: %s", tool, error)
            return f"{AUTH_ERROR_PREFIX}{error}"
        return None

    async def track_session_start(self, arguments: Mapping[str, Any]) -> types.CallToolResult:
        refusal = self._refusal(TRACK_SESSION_START, arguments)
        if refusal is not None:
            result = SessionStartResult(session_id=None, status="error", error=refusal)
        else:
            result = await self._tracker.handle_session_start(_event_fields(arguments))
        return _tool_result(result)

    async def track_session_end(self, arguments: Mapping[str, Any]) -> types.CallToolResult:
        refusal = self._refusal(TRACK_SESSION_END, arguments)
        if refusal is not None:
            session_id = arguments.get("session_id")
            result = SessionEndResult(
                session_id=session_id if isinstance(session_id, str) else "", status="error", error=refusal
            )
        else:
            result = await self._tracker.handle_session_end(_event_fields(arguments))
        return _tool_result(result)


def _event_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    # Absent and null arguments alike are left to the model's defaults and "Field required" checks.
    return {key: value for key, value in arguments.items() if key != "token" and value is not None}


def _tool_result(result: SessionStartResult | SessionEndResult) -> types.CallToolResult:
    """The seed's dict as structured content and JSON text; `isError` when its status is "error"."""
    payload = result.model_dump(mode="json")
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(payload))],
        structured_content=payload,
        is_error=result.status == "error",
    )


def register_admin_tools(
    server: MCPServer | Server[Any],
    tracker: SessionTracker,
    *,
    secret: str | None = None,
    issuer: str = DEFAULT_ISSUER,
) -> None:
    """Add `track_session_start` and `track_session_end` (seed 004) to `server`. Call once per server.

    Args:
        server: an `MCPServer` (tools added with `add_tool`) or a low-level `Server` (its `tools/list`
            and `tools/call` handlers are wrapped: other tools keep working, a server without tools
            gains the capability).
        tracker: handles the events.
        secret: HS256 secret that turns authentication on; default `$SHINZO_ADMIN_SECRET`, then
            `$SESSION_BUDDY_SECRET` (read now). With none, calls are accepted with or without a token.
        issuer: the `iss` claim tokens must carry; default `"session-buddy"` (seed 004).

    Raises:
        TypeError: `server` is neither kind.
    """
    tools = _AdminTools(tracker, token_verifier(secret, issuer=issuer))
    specs = (
        (
            TRACK_SESSION_START,
            _START_DESCRIPTION,
            _START_SCHEMA,
            SessionStartResult,
            tools.track_session_start,
        ),
        (TRACK_SESSION_END, _END_DESCRIPTION, _END_SCHEMA, SessionEndResult, tools.track_session_end),
    )
    if isinstance(server, MCPServer):
        for name, description, schema, result_model, handler in specs:
            server.add_tool(
                _tool_function(name, schema, result_model, handler), name=name, description=description
            )
    elif isinstance(server, Server):
        _wrap_lowlevel(
            server,
            [
                types.Tool(
                    name=name,
                    description=description,
                    input_schema=schema,
                    output_schema=result_model.model_json_schema(),
                )
                for name, description, schema, result_model, _ in specs
            ],
            {name: handler for name, _, _, _, handler in specs},
        )
    else:
        raise TypeError(
            f"register_admin_tools expects an MCPServer or a low-level Server, not {type(server).__name__}"
        )


def _tool_function(
    name: str, schema: Mapping[str, Any], result_model: type[BaseModel], handler: _Handler
) -> Callable[..., Awaitable[types.CallToolResult]]:
    """A keyword-only function for `MCPServer.add_tool` whose parameters advertise `schema` and
    whose output schema is `result_model`'s.

    Every parameter accepts any value and defaults to None, so MCPServer's own argument validation
    lets everything through to the tracker, which answers problems in the seed's result shape.
    """

    async def tool(**arguments: Any) -> types.CallToolResult:
        return await handler(arguments)

    parameters = [
        inspect.Parameter(
            field,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[Any, WithJsonSchema(field_schema)],
        )
        for field, field_schema in schema["properties"].items()
    ]
    tool.__name__ = name
    # Annotated[CallToolResult, Model]: the result is passed through as built, `Model` is the schema.
    return_annotation = Annotated[types.CallToolResult, result_model]
    tool.__signature__ = inspect.Signature(parameters, return_annotation=return_annotation)  # type: ignore[attr-defined]
    return tool


def _wrap_lowlevel(
    server: Server[Any], admin_tools: list[types.Tool], handlers: Mapping[str, _Handler]
) -> None:
    listed = server.get_request_handler("tools/list")
    called = server.get_request_handler("tools/call")

    async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams) -> Any:
        if listed is None:
            return types.ListToolsResult(tools=admin_tools)
        result = await listed.handler(ctx, params)
        # Ours go on the last page only, so that a paginating handler does not list them twice.
        if not isinstance(result, types.ListToolsResult) or result.next_cursor is not None:
            return result
        return result.model_copy(update={"tools": [*result.tools, *admin_tools]})

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> Any:
        handler = handlers.get(params.name)
        if handler is None:
            if called is None:
                raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
            return await called.handler(ctx, params)
        return await handler(params.arguments or {})

    server.add_request_handler("tools/list", types.PaginatedRequestParams, on_list_tools)
    server.add_request_handler("tools/call", types.CallToolRequestParams, on_call_tool)
