"""Configuration of `instrument_server` and `ShinzoSpanProcessor`: one typed model, resolved once.

Precedence for every setting, one mechanism (pydantic-settings; STYLE.md item 7, the OTel SDK habit):
explicit value > environment variable > built-in default. Each setting has one name (the config
key) and its environment variables are declared next to it (`_Env`); nothing else reads them.

- A bad explicit value raises `ValueError` at construction, naming the key.
- A bad environment value is logged as a warning and the default used (a process must not fail to
  start because of a typo in its environment).

`ProcessorSettings` holds what the span pipeline needs (content capture, privacy, batching,
resilience); `ShinzoConfig` adds the server identity, the exporter and the sessions.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar
from urllib.parse import urlsplit

from opentelemetry.environment_variables import OTEL_METRICS_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_EXPORT_TIMEOUT,
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_HEADERS,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_HEADERS,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
)
from opentelemetry.util.re import parse_env_headers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shinzo_otel.privacy import PrivacyRules

_logger = logging.getLogger(__name__)

ExporterProtocol = Literal["grpc", "http/protobuf"]
MetricsExporter = Literal["otlp", "none"]

SHINZO_ENABLE_ARGUMENT_COLLECTION: Final = "SHINZO_ENABLE_ARGUMENT_COLLECTION"
"""
.. envvar:: SHINZO_ENABLE_ARGUMENT_COLLECTION

`true` turns on `enable_argument_collection` (OTel boolean: `true` or `false`, any case). Default: off.
"""
SHINZO_RETRY_BUFFER_MAX_SPANS: Final = "SHINZO_RETRY_BUFFER_MAX_SPANS"
"""
.. envvar:: SHINZO_RETRY_BUFFER_MAX_SPANS

`retry_buffer_max_spans`: spans kept while the endpoint refuses them. Default: 8192.
"""
SHINZO_RETRY_BUFFER_MAX_BYTES: Final = "SHINZO_RETRY_BUFFER_MAX_BYTES"
"""
.. envvar:: SHINZO_RETRY_BUFFER_MAX_BYTES

`retry_buffer_max_bytes`: the same bound in approximate bytes. Default: 33554432 (32 MiB).
"""
SHINZO_CIRCUIT_BREAKER_FAILURES: Final = "SHINZO_CIRCUIT_BREAKER_FAILURES"
"""
.. envvar:: SHINZO_CIRCUIT_BREAKER_FAILURES

`circuit_breaker_failures`: consecutive failed exports that open the circuit. Default: 3 (seed 002).
"""
SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS: Final = "SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS"
"""
.. envvar:: SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS

`circuit_breaker_open_millis`: how long the open circuit refuses exports before one probe.
Default: 60000 (seed 002).
"""

DEFAULT_SCHEDULE_DELAY_MILLIS: Final = 200
"""Our default export interval. The seed's 5 s (and the OTel SDK's) is an upper bound: at low load a
span is exported within a fifth of a second of ending, so a crash loses only the last moments; under
load the batch fills first and is exported at once."""

_DEFAULT_BATCH_SIZE: Final = 512
_DEFAULT_QUEUE_SIZE: Final = 2048
_TRUE_FALSE: Final = {"true": True, "false": False}


def _as_is(variable: str, raw: str) -> object:
    return raw


def _otel_bool(variable: str, raw: str) -> object:
    """OTel boolean environment values: `true` or `false`, any case; anything else is invalid."""
    value = _TRUE_FALSE.get(raw.lower())
    if value is None:
        raise ValueError("expected true or false")
    return value


def _signal_url(signal: str) -> Callable[[str, str], object]:
    """`OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL: the signal path is appended (OTLP exporter spec);
    the signal-specific variables are full URLs."""

    def parse(variable: str, raw: str) -> object:
        return f"{raw.rstrip('/')}/v1/{signal}" if variable == OTEL_EXPORTER_OTLP_ENDPOINT else raw

    return parse


def _metrics_exporter(variable: str, raw: str) -> object:
    """`OTEL_METRICS_EXPORTER` is a comma-separated list; we act on `none` and `otlp` only."""
    names = {name.strip().lower() for name in raw.split(",")}
    if names == {"none"}:
        return "none"
    return "otlp" if "otlp" in names else raw


@dataclass(frozen=True)
class _Env:
    """The environment variables a setting is read from (the first one set wins), and how a raw
    value becomes the setting's value (before validation)."""

    variables: tuple[str, ...]
    parse: Callable[[str, str], object] = _as_is

    def read(self) -> tuple[str, str] | None:
        """(variable, raw value) of the first variable set to a non-blank value, or None."""
        for variable in self.variables:
            raw = os.environ.get(variable, "").strip()
            if raw:
                return variable, raw
        return None


def _env(*variables: str, parse: Callable[[str, str], object] = _as_is) -> _Env:
    return _Env(variables, parse)


PositiveInt = Annotated[int, Field(gt=0)]


class _Environment(PydanticBaseSettingsSource):
    """Every setting that was not given explicitly: from its environment variables, validated one by
    one (a bad value is logged and skipped, so its default applies), plus the defaults that depend on
    other settings (a batch never larger than the queue; metrics next to an explicit endpoint)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field itself

    def __call__(self) -> dict[str, Any]:
        explicit = self.current_state
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            env = next((item for item in field.metadata if isinstance(item, _Env)), None)
            found = None if env is None or name in explicit else env.read()
            if env is None or found is None:
                continue
            variable, raw = found
            try:
                values[name] = _validator(self.settings_cls, name).validate_python(env.parse(variable, raw))
            except ValueError as error:  # pydantic's ValidationError is a ValueError
                reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
                _logger.warning("Ignoring %s=%r (%s); using the default", variable, raw, reason)
        fields = self.settings_cls.model_fields
        if "max_queue_size" in fields:
            self._batch_within_queue(explicit, values)
        if "metrics_endpoint" in fields and "metrics_endpoint" not in {*explicit, *values}:
            # The seed's one endpoint is a collector taking every signal; a traces-only endpoint from
            # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT says nothing about metrics (OTLP exporter spec).
            endpoint = explicit.get("exporter_endpoint")
            if endpoint:
                values["metrics_endpoint"] = endpoint
        return values

    @staticmethod
    def _batch_within_queue(explicit: Mapping[str, Any], values: dict[str, Any]) -> None:
        queue = explicit.get("max_queue_size", values.get("max_queue_size", _DEFAULT_QUEUE_SIZE))
        batch = values.get("max_export_batch_size")
        if batch is not None and isinstance(queue, int) and batch > queue:
            _logger.warning(
                "Ignoring %s=%d (larger than max_queue_size %d); using the default",
                OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
                batch,
                queue,
            )
            del values["max_export_batch_size"]
        if "max_export_batch_size" not in {*explicit, *values} and isinstance(queue, int) and queue > 0:
            values["max_export_batch_size"] = min(_DEFAULT_BATCH_SIZE, queue)


@functools.cache
def _validator(settings_cls: type[BaseModel], name: str) -> TypeAdapter[Any]:
    field = settings_cls.model_fields[name]
    return TypeAdapter(Annotated[(field.annotation, *field.metadata)])  # type: ignore[arg-type]


_Settings = TypeVar("_Settings", bound="ProcessorSettings")


class ProcessorSettings(BaseSettings):
    """The settings of the span pipeline (`ShinzoSpanProcessor`); `ShinzoConfig` has them too.

    Keys (explicit > environment variable > default):
        enable_argument_collection (bool): record tool arguments, results, prompt variables, tool
            error messages and event payloads; when False they are also removed from every span on
            export, whoever set them. Default `SHINZO_ENABLE_ARGUMENT_COLLECTION`, else False.
        privacy (PrivacyRules | dict): redaction rules, or the keyword arguments of
            `PrivacyRules.from_env`; default `PrivacyRules.from_env()` (the built-in patterns plus the
            `SHINZO_REDACT_*` variables).
        schedule_delay_millis (int): the longest a finished span waits before export; default
            `OTEL_BSP_SCHEDULE_DELAY`, else 200 (the seed's 5 s is an upper bound).
        max_export_batch_size (int): spans per export; a batch this full is exported at once; default
            `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, else 512 (at most `max_queue_size`).
        max_queue_size (int): spans waiting for export; more are dropped (`queue_full`); default
            `OTEL_BSP_MAX_QUEUE_SIZE`, else 2048.
        export_timeout_millis (int): how long one export may take, the OTLP exporter's own retries
            included (it is the timeout of the exporters built from a `ShinzoConfig`), and the bound
            of `shutdown()`; default `OTEL_BSP_EXPORT_TIMEOUT`, else 10000.
        retry_buffer_max_spans, retry_buffer_max_bytes (int): bound of the spans waiting for the
            sender, those the endpoint refused included; beyond it the oldest are dropped
            (`buffer_full`). Bytes are approximate, counted once more than one batch waits. Defaults
            `SHINZO_RETRY_BUFFER_MAX_*`, else 8192 spans and 32 MiB.
        circuit_breaker_failures, circuit_breaker_open_millis (int): consecutive failed exports that
            open the circuit breaker, and how long it refuses exports before one probe; defaults
            `SHINZO_CIRCUIT_BREAKER_*`, else 3 and 60000 (seed 002).

    Raises:
        ValueError: an unknown key or a bad explicit value; the message names the key.
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    enable_argument_collection: Annotated[bool, _env(SHINZO_ENABLE_ARGUMENT_COLLECTION, parse=_otel_bool)] = (
        False
    )
    privacy: PrivacyRules = Field(default_factory=PrivacyRules.from_env)
    schedule_delay_millis: Annotated[PositiveInt, _env(OTEL_BSP_SCHEDULE_DELAY)] = (
        DEFAULT_SCHEDULE_DELAY_MILLIS
    )
    max_export_batch_size: Annotated[PositiveInt, _env(OTEL_BSP_MAX_EXPORT_BATCH_SIZE)] = _DEFAULT_BATCH_SIZE
    max_queue_size: Annotated[PositiveInt, _env(OTEL_BSP_MAX_QUEUE_SIZE)] = _DEFAULT_QUEUE_SIZE
    export_timeout_millis: Annotated[PositiveInt, _env(OTEL_BSP_EXPORT_TIMEOUT)] = 10_000
    retry_buffer_max_spans: Annotated[PositiveInt, _env(SHINZO_RETRY_BUFFER_MAX_SPANS)] = 8192
    retry_buffer_max_bytes: Annotated[PositiveInt, _env(SHINZO_RETRY_BUFFER_MAX_BYTES)] = 32 * 1024 * 1024
    circuit_breaker_failures: Annotated[PositiveInt, _env(SHINZO_CIRCUIT_BREAKER_FAILURES)] = 3
    circuit_breaker_open_millis: Annotated[PositiveInt, _env(SHINZO_CIRCUIT_BREAKER_OPEN_MILLIS)] = 60_000

    _label: ClassVar[str] = "settings"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values, then `_Environment` (our variables only, leniently); no dotenv or secrets."""
        return init_settings, _Environment(settings_cls)

    @field_validator("privacy", mode="before")
    @classmethod
    def _privacy_rules(cls, value: object) -> object:
        if isinstance(value, Mapping):
            known = {field.name for field in dataclasses.fields(PrivacyRules)}
            unknown = sorted(str(key) for key in value if key not in known)
            if unknown:
                raise ValueError(
                    f"unknown key {', '.join(unknown)}; PrivacyRules has {', '.join(sorted(known))}"
                )
            return PrivacyRules.from_env(**dict(value))
        return value

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> ProcessorSettings:
        if self.max_export_batch_size > self.max_queue_size:
            raise ValueError(
                f"max_export_batch_size ({self.max_export_batch_size}) must be <= max_queue_size "
                f"({self.max_queue_size})"
            )
        return self

    @classmethod
    def coerce(cls: type[_Settings], config: _Settings | Mapping[str, Any]) -> _Settings:
        """Accept an instance (returned as is: it was resolved when built) or the seed's dict.

        Raises:
            ValueError: one line per problem, each naming the key (`exporter_auth.token: ...`).
        """
        if isinstance(config, cls):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"{cls._label} must be a mapping or {cls.__name__}, not {type(config).__name__}")
        if not all(isinstance(key, str) for key in config):
            raise ValueError(f"invalid shinzo_otel {cls._label}: keys must be strings")
        try:
            return cls(**config)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                key = ".".join(str(part) for part in error["loc"]) or cls._label
                message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(f"{key}: {message}")
            raise ValueError(f"invalid shinzo_otel {cls._label}: " + "; ".join(problems)) from None


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


class ShinzoConfig(ProcessorSettings):
    """Everything `instrument_server` can be told; every key is optional except the server identity.

    Keys (seed 000 plus our own; explicit > environment variable > default), besides those of
    `ProcessorSettings` (content capture, privacy, batching, retry buffer, circuit breaker):
        server_name (str): `service.name` of the TracerProvider we create when the host has none.
        server_version (str): `service.version`, likewise.
        exporter_endpoint (str | None): OTLP endpoint of traces. For `http/protobuf` a URL without a
            path gets `/v1/traces`; a URL with a path is used as is. Default
            `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`;
            when none is set, spans go to the embedded SQLite store instead.
        exporter_protocol ("grpc" | "http/protobuf"): default `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`,
            then `OTEL_EXPORTER_OTLP_PROTOCOL`, then `http/protobuf` (the OTLP spec default).
        exporter_auth (ExporterAuth | dict | None): credentials, merged over
            `OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]HEADERS`.
        metrics_endpoint (str | None): OTLP endpoint of metrics, when we export them (no host
            MeterProvider); same URL rule with `/v1/metrics`. Default
            `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, then `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/metrics`,
            then an explicit `exporter_endpoint` (a `/v1/traces` path becomes `/v1/metrics`); none:
            no metrics exported by us. An endpoint that does not take metrics (HTTP 404, gRPC
            UNIMPLEMENTED: Tempo, a traces-only gateway) is reported once and metrics stop.
        metrics_exporter ("otlp" | "none"): `none` exports no metrics of ours; default
            `OTEL_METRICS_EXPORTER` (`none`, or a list containing `otlp`), else `otlp`.
        store_path (str | None): SQLite file of the embedded store; default `SHINZO_STORE_PATH`, then
            `$XDG_DATA_HOME/shinzo-otel/sessions.db` (read by the store).
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
        ValueError: an unknown key or a bad explicit value; the message names the key.
    """

    server_name: str = Field(min_length=1)
    server_version: str = "0.0.0"
    exporter_endpoint: Annotated[
        str | None,
        _env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, parse=_signal_url("traces")),
    ] = None
    exporter_protocol: Annotated[
        ExporterProtocol, _env(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL)
    ] = "http/protobuf"
    exporter_auth: ExporterAuth | None = None
    metrics_endpoint: Annotated[
        str | None,
        _env(OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, parse=_signal_url("metrics")),
    ] = None
    metrics_exporter: Annotated[MetricsExporter, _env(OTEL_METRICS_EXPORTER, parse=_metrics_exporter)] = (
        "otlp"
    )
    store_path: str | None = None
    session_resolver: Callable[[Any], str | None] | None = None
    session_idle_timeout_millis: int = Field(default=30 * 60 * 1000, gt=0)
    conversation_meta_keys: tuple[str, ...] = ("openai/session", "vscode.conversationId", "sessionID")
    conversation_baggage_keys: tuple[str, ...] = ("session.id", "gen_ai.conversation.id")

    _label: ClassVar[str] = "config"

    @field_validator("exporter_endpoint", "metrics_endpoint", mode="after")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        """Blank is none; otherwise an `http://` or `https://` URL with a host. Without a scheme the
        OTLP exporters fail only later (HTTP: no connection adapter; gRPC: a TLS handshake with a
        plaintext collector), so it is refused here rather than guessed."""
        value = value.strip() if value is not None else None
        if not value:
            return None
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(
                f"{value!r} is not an http:// or https:// URL (write http://{value} for a plaintext "
                "collector, https:// for TLS)"
            )
        return value

    def resolved_headers(self, signal: Literal["traces", "metrics"] = "traces") -> dict[str, str]:
        """Headers of `signal`'s exporter: `OTEL_EXPORTER_OTLP_{TRACES|METRICS}_HEADERS`, else
        `OTEL_EXPORTER_OTLP_HEADERS` (read here because headers passed to an exporter replace them),
        with `exporter_auth` taking precedence. Keys lower-case."""
        variable = (
            OTEL_EXPORTER_OTLP_TRACES_HEADERS if signal == "traces" else OTEL_EXPORTER_OTLP_METRICS_HEADERS
        )
        env = os.environ.get(variable) or os.environ.get(OTEL_EXPORTER_OTLP_HEADERS, "")
        headers = {key.lower(): value for key, value in parse_env_headers(env, liberal=True).items()}
        if self.exporter_auth is not None:
            headers.update(self.exporter_auth.headers())
        return headers
