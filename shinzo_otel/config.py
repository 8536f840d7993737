"""Configuration of `instrument_server`: the seed's config dict as a validated, typed model.

Precedence for every setting (STYLE.md item 7, the OTel SDK habit): explicit config key >
standard `OTEL_*` environment variable > built-in default. A bad explicit value raises
`ValueError` naming the key, at construction.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
        schedule_delay_millis (int): export at least this often; default 5000 (seed 000: every 5 s).
        max_export_batch_size (int): export as soon as this many spans wait; default 512. The seed's 10
            is accepted but makes one export per 10 spans, which caps throughput at high call rates.
        max_queue_size (int): spans waiting for export before new ones are dropped; default 2048.
        export_timeout_millis (int): bound of one OTLP export call; default 10000.

    Raises:
        ValueError: an unknown key or a bad value; the message names the key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    server_name: str = Field(min_length=1)
    server_version: str = "0.0.0"
    exporter_endpoint: str | None = None
    exporter_protocol: ExporterProtocol | None = None
    exporter_auth: ExporterAuth | None = None
    enable_argument_collection: bool = False
    store_path: str | None = None
    schedule_delay_millis: int = Field(default=5000, gt=0)
    max_export_batch_size: int = Field(default=512, gt=0)
    max_queue_size: int = Field(default=2048, gt=0)
    export_timeout_millis: int = Field(default=10000, gt=0)

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> ShinzoConfig:
        if self.max_export_batch_size > self.max_queue_size:
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
