"""Configuration of `instrument_server`: the seed's config dict as a validated, typed model.

Precedence for every setting (STYLE.md item 7, the OTel SDK habit): explicit config key >
standard `OTEL_*` environment variable > built-in default. A bad explicit value raises
`ValueError` naming the key, at construction.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_HEADERS,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
)
from opentelemetry.util.re import parse_env_headers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shinzo_otel.privacy import PrivacyRules

ExporterProtocol = Literal["grpc", "http/protobuf"]


class ExporterAuth(BaseModel):
    """Credentials for the OTLP endpoint, sent as request headers (seed 000 `exporter_auth`).

    - `{"type": "bearer", "token": T}` -> `Authorization: Bearer T`
    - `{"type": "apiKey", "api_key": K}` -> `X-API-Key: K`
    - `{"type": "basic", "username": U, "password": P}` -> `Authorization: Basic base64(U:P)` (RFC 7617)

    Raises:
        ValueError: the fields required by `type` are missing (raised through `ShinzoConfig`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["bearer", "apiKey", "basic"]
    token: str | None = None
    api_key: str | None = None
    username: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _require_fields(self) -> ExporterAuth:
        required = {"bearer": ("token",), "apiKey": ("api_key",), "basic": ("username", "password")}[
            self.type
        ]
        missing = [name for name in required if not getattr(self, name)]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required for {self.type} auth")
        return self

    def headers(self) -> dict[str, str]:
        """The HTTP headers (gRPC metadata) carrying these credentials."""
        if self.type == "bearer":
            return {"authorization": f"Bearer {self.token}"}
        if self.type == "apiKey":
            return {"x-api-key": str(self.api_key)}
        raw = f"{self.username}:{self.password}".encode()
        return {"authorization": f"Basic {base64.b64encode(raw).decode()}"}


class ShinzoConfig(BaseModel):
    """Everything `instrument_server` can be told; every key is optional except the server identity.

    Keys (seed 000 plus our own):
        server_name (str): `service.name` of the TracerProvider we create when the host has none.
        server_version (str): `service.version`, likewise.
        exporter_endpoint (str | None): OTLP endpoint. For `http/protobuf` a URL without a path gets
            `/v1/traces` appended (as `OTEL_EXPORTER_OTLP_ENDPOINT` does); a URL with a path is used as
            is. Default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then `OTEL_EXPORTER_OTLP_ENDPOINT`; when
            none is set, spans go to the embedded SQLite store instead.
        exporter_protocol ("grpc" | "http/protobuf" | None): default `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`,
            then `OTEL_EXPORTER_OTLP_PROTOCOL`, then `http/protobuf` (the OTLP spec default).
        exporter_auth (ExporterAuth | dict | None): credentials, merged over `OTEL_EXPORTER_OTLP_HEADERS`.
        enable_argument_collection (bool): record tool arguments, results, prompt variables, tool error
            messages and event payloads. Default False: none of them is recorded at all.
        store_path (str | None): SQLite file of the embedded store; default `SHINZO_STORE_PATH`, then
            `$XDG_DATA_HOME/shinzo-otel/sessions.db`.
        schedule_delay_millis, max_export_batch_size, max_queue_size, export_timeout_millis (int):
            batching; defaults `OTEL_BSP_*`, else 5000 ms (seed 000: every 5 s), 512, 2048, 10000 ms.
            The seed's batch size of 10 is accepted but caps throughput at high call rates.
        retry_buffer_max_spans, retry_buffer_max_bytes (int): bound of the buffer that keeps spans of
            failed exports for retry; defaults `SHINZO_RETRY_BUFFER_MAX_*`, else 8192 and 32 MiB.
        circuit_breaker_failures, circuit_breaker_open_millis (int): consecutive failures that stop
            exports, and for how long before a probe; defaults `SHINZO_CIRCUIT_BREAKER_*`, else 3 and
            60000 (seed 002).
        privacy (PrivacyRules | dict | None): redaction rules, or the keyword arguments of
            `PrivacyRules.from_env`; default the built-in patterns plus `SHINZO_REDACT_*` variables.
        session_resolver (callable | None): logical sessions for stateless traffic (2026-07-28 era,
            `stateless_http=True`): `(ServerRequestContext) -> key | None`; see
            `shinzo_otel.session_resolvers` for built-ins. Default None: stateless requests stay
            standalone traces with no session id.
        session_idle_timeout_millis (int): a logical session with no request for this long ends, and
            a session of any kind silent this long without an end is shown as `abandoned` by the CLI;
            default 1800000 (30 min, the mcp SDK's HTTP session idle timeout).
        conversation_meta_keys (tuple[str, ...]): `params._meta` keys whose string value is a
            conversation id the client sent (notes/clients.md): default `openai/session` (ChatGPT),
            `vscode.conversationId` (VS Code), `sessionID` (OpenCode); `()` turns them off.
        conversation_baggage_keys (tuple[str, ...]): W3C baggage entries (in `params._meta["baggage"]`
            or the HTTP `baggage` header) that carry a conversation id: default `session.id`,
            `gen_ai.conversation.id`; `()` turns them off. A conversation id is exported as
            `gen_ai.conversation.id`; in the 2026-07-28 era it is the session (DESIGN.md "Sessions").

    Raises:
        ValueError: an unknown key or a bad value; the message names the key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    server_name: str = Field(min_length=1)
    server_version: str = "0.0.0"
    exporter_endpoint: str | None = None
    exporter_protocol: ExporterProtocol | None = None
    exporter_auth: ExporterAuth | None = None
    enable_argument_collection: bool = False
    store_path: str | None = None
    schedule_delay_millis: int | None = Field(default=None, gt=0)
    max_export_batch_size: int | None = Field(default=None, gt=0)
    max_queue_size: int | None = Field(default=None, gt=0)
    export_timeout_millis: int | None = Field(default=None, gt=0)
    retry_buffer_max_spans: int | None = Field(default=None, gt=0)
    retry_buffer_max_bytes: int | None = Field(default=None, gt=0)
    circuit_breaker_failures: int | None = Field(default=None, gt=0)
    circuit_breaker_open_millis: int | None = Field(default=None, gt=0)
    privacy: PrivacyRules | None = None
    session_resolver: Callable[[Any], str | None] | None = None
    session_idle_timeout_millis: int = Field(default=30 * 60 * 1000, gt=0)
    conversation_meta_keys: tuple[str, ...] = ("openai/session", "vscode.conversationId", "sessionID")
    conversation_baggage_keys: tuple[str, ...] = ("session.id", "gen_ai.conversation.id")

    @field_validator("privacy", mode="before")
    @classmethod
    def _privacy_rules(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return PrivacyRules.from_env(**dict(value))
        return value

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> ShinzoConfig:
        if (
            self.max_export_batch_size
            and self.max_queue_size
            and self.max_export_batch_size > self.max_queue_size
        ):
            raise ValueError("max_export_batch_size must be <= max_queue_size")
        return self

    @classmethod
    def coerce(cls, config: ShinzoConfig | Mapping[str, Any]) -> ShinzoConfig:
        """Accept a `ShinzoConfig` or the seed's dict.

        Raises:
            ValueError: one line per problem, each naming the key (`exporter_auth.token: ...`).
        """
        if isinstance(config, ShinzoConfig):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"config must be a mapping or ShinzoConfig, not {type(config).__name__}")
        try:
            return cls.model_validate(dict(config))
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                key = ".".join(str(part) for part in error["loc"]) or "config"
                message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(f"{key}: {message}")
            raise ValueError("invalid shinzo_otel config: " + "; ".join(problems)) from None

    # --- resolution against the environment (explicit > env > default) ---------------------------

    def resolved_endpoint(self) -> str | None:
        """The OTLP traces endpoint, or None when spans go to the embedded store."""
        if self.exporter_endpoint:
            return self.exporter_endpoint
        return os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or os.environ.get(
            OTEL_EXPORTER_OTLP_ENDPOINT
        )

    def resolved_protocol(self) -> ExporterProtocol:
        """The OTLP protocol; an unknown environment value falls back to `http/protobuf`."""
        if self.exporter_protocol:
            return self.exporter_protocol
        env = os.environ.get(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) or os.environ.get(
            OTEL_EXPORTER_OTLP_PROTOCOL
        )
        return "grpc" if env == "grpc" else "http/protobuf"

    def resolved_headers(self) -> dict[str, str]:
        """`OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`, with `exporter_auth` taking precedence."""
        env = os.environ.get(OTEL_EXPORTER_OTLP_TRACES_HEADERS) or os.environ.get(
            OTEL_EXPORTER_OTLP_HEADERS, ""
        )
        headers = {key.lower(): value for key, value in parse_env_headers(env, liberal=True).items()}
        if self.exporter_auth is not None:
            headers.update(self.exporter_auth.headers())
        return headers
