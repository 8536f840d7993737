"""The redaction engine: privacy layer 2 (DESIGN.md, "Privacy").

`Scrubber(rules).scrub_span(span)` returns a copy of a finished span with secrets replaced by the
`REDACTED` marker. It covers span attributes, event attributes (`exception.message` and
`exception.stacktrace` included), link attributes and the status description. It does not touch the
span name and event names (low-cardinality descriptions, never data), the resource, or the span
context (trace and span ids are context fields, never attributes).

What is redacted, in order, for every attribute whose key is not in `SAFE_KEYS`:

1. Content attributes (`gen_ai.tool.call.arguments`, `gen_ai.tool.call.result`,
   `gen_ai.prompt.variable.*`, `shinzo.event.input`, `shinzo.event.output`) are removed when the
   span's (or the event's own) `gen_ai.tool.name` is in `PrivacyRules.capture_tools_deny`, or when
   `PrivacyRules.capture_tools_allow` is set and does not contain it.
2. A key matching a key pattern (`DEFAULT_KEY_PATTERNS`, case-insensitive, searched anywhere in the
   key) has its whole value replaced, nested mappings and sequences included.
3. A string that starts with `{` or `[` (after leading whitespace) and parses as JSON is scrubbed
   recursively, keys and values alike, and re-serialized compactly; this reaches tool arguments and
   results, and JSON text nested inside them.
4. Any other string has each substring matching a value pattern (`DEFAULT_VALUE_PATTERNS`) replaced:
   `"failed for bob@example.com"` becomes `"failed for [REDACTED]"`. Integers are checked as their
   decimal text, so a card number sent as a JSON number is caught too.
5. Strings longer than `PrivacyRules.max_attribute_length` are cut, after scrubbing (so a cut never
   leaves the visible half of a secret), and end with `TRUNCATED_SUFFIX`.

Every redacted or removed value is recorded by its path (never its value) in the span attribute
`REDACTED_KEYS_ATTRIBUTE`. The design follows logfire's scrubber (pydantic/logfire,
`logfire/_internal/scrubbing.py`), with keys and values matched by separate pattern sets so that a
secret-looking word inside ordinary text does not wipe the whole text.

Fail closed: nothing here catches exceptions. JSON nested too deeply to parse, a callback that
raises, or a bug surfaces as an exception from `Scrubber.scrub_span`; the span processor catches it,
counts the span as dropped and never exports it raw (the OpenTelemetry Collector redaction
processor's rule, "designed to fail closed").
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypedDict

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_ESCAPED, EXCEPTION_TYPE
from opentelemetry.semconv.attributes.otel_attributes import OTEL_STATUS_DESCRIPTION
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import AnyValue, Attributes, AttributeValue

from shinzo_otel import _semconv as sc
from shinzo_otel._prefilter import Prefilter

if TYPE_CHECKING:
    from typing_extensions import Unpack

_logger = logging.getLogger(__name__)

REDACTED: Final = "[REDACTED]"
"""The one marker that replaces every redacted value (or the matching substring of a text value)."""

REDACTED_KEYS_ATTRIBUTE: Final = "shinzo.redacted_keys"
"""Span attribute, `tuple[str, ...]`: the paths redacted or removed on this span, never the values.

A path is an attribute key (`"db.password"`, `"exception.message"`), an attribute key followed by a
JSONPath into a JSON string (`"gen_ai.tool.call.arguments.$.user.password"`,
`"gen_ai.tool.call.result.$.content[0].text.$.token"` for JSON text inside JSON), a sequence index
(`"http.request.header.cookie[0]"`), or `"otel.status_description"` for the status description.
Event and link attributes are recorded by key alone. Paths are unique, in first-seen order, and at
most `_MAX_RECORDED_PATHS` per span.
"""

TRUNCATED_SUFFIX: Final = "...[TRUNCATED]"
"""Ends a string value cut to `PrivacyRules.max_attribute_length` characters (suffix included)."""

DEFAULT_MAX_ATTRIBUTE_LENGTH: Final = 4096
"""Default cap on the length of one string attribute value, in characters."""

SHINZO_REDACT_KEY_PATTERNS: Final = "SHINZO_REDACT_KEY_PATTERNS"
"""
.. envvar:: SHINZO_REDACT_KEY_PATTERNS

Comma-separated regular expressions added to `DEFAULT_KEY_PATTERNS`
(`PrivacyRules.extra_key_patterns`). A pattern that itself needs a comma cannot be given here; pass
it as an argument instead. Default: none.
"""

SHINZO_REDACT_VALUE_PATTERNS: Final = "SHINZO_REDACT_VALUE_PATTERNS"
"""
.. envvar:: SHINZO_REDACT_VALUE_PATTERNS

Comma-separated regular expressions added to `DEFAULT_VALUE_PATTERNS`
(`PrivacyRules.extra_value_patterns`). Default: none.
"""

SHINZO_MAX_ATTRIBUTE_LENGTH: Final = "SHINZO_MAX_ATTRIBUTE_LENGTH"
"""
.. envvar:: SHINZO_MAX_ATTRIBUTE_LENGTH

Cap on the length of one string attribute value, in characters (`PrivacyRules.max_attribute_length`).
Default: 4096.
"""

SHINZO_CAPTURE_TOOLS_ALLOW: Final = "SHINZO_CAPTURE_TOOLS_ALLOW"
"""
.. envvar:: SHINZO_CAPTURE_TOOLS_ALLOW

Comma-separated tool names whose content attributes may be exported
(`PrivacyRules.capture_tools_allow`). Unset or empty: no allow list.
"""

SHINZO_CAPTURE_TOOLS_DENY: Final = "SHINZO_CAPTURE_TOOLS_DENY"
"""
.. envvar:: SHINZO_CAPTURE_TOOLS_DENY

Comma-separated tool names whose content attributes are never exported
(`PrivacyRules.capture_tools_deny`). Default: none.
"""

DEFAULT_KEY_PATTERNS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "password": r"pass(?:word|wd|phrase|code)",
        "pwd": r"pwd",
        "secret": r"secret",
        # Only a key that ends in "token": "access_token", "x-auth-token", "refreshToken". Keys that merely
        # talk about tokens ("max_tokens", "gen_ai.usage.input_tokens", "token_count") are metrics,
        # not secrets; logfire reaches the same result with an exclusion list.
        "token": r"token$",
        "api_key": r"api[._ -]?key",
        "access_key": r"access[._ -]?key",
        "private_key": r"private[._ -]?key",
        # "auth" but not "author", "authors", "authority" (nor "authorization", matched below).
        "auth": r"auth(?:$|[^o])",
        "authorization": r"authori[sz]ation",
        "cookie": r"cookie",
        "credential": r"credential",
        "csrf": r"[cx]srf",
        "card": r"credit[._ -]?card|card[._ -]?num|cvv|cvc",
        # "ssn" only as a whole word: "classname" contains the letters.
        "ssn": r"(?:^|[^a-z0-9])ssn(?:$|[^a-z0-9])|social[._ -]?security",
        "connection_string": r"conn(?:ection)?[._ -]?str(?:ing)?|dsn$",
    }
)
"""Default key patterns, name -> regular expression, searched case-insensitively in attribute keys
and in the keys of JSON objects. A match redacts the key's whole value, except `None` and booleans
(a flag such as `auth_required` carries no secret).

Deliberately absent: `session` (logfire redacts it; here session ids are the identity every span is
grouped by) and `jwt` as a key (`token$` covers `jwt_token`, and the value pattern `jwt` catches the
token itself). The patterns are RE2-compatible (no lookaround, no backreferences) so that the
Collector configuration can repeat them; there, prefix each with `(?i)`.
"""

DEFAULT_VALUE_PATTERNS: Final[Mapping[str, str]] = MappingProxyType(
    {
        # RFC 7235 credentials after an Authorization header name, scheme included.
        "authorization_header": r"""(?i:authorization)['"]?\s*[=:]\s*['"]?(?:[A-Za-z]+\s+)?[^\s,;&'"]+""",
        # RFC 6750 b64token: 16 or more characters, or any length with a character other than a
        # lowercase letter, so that prose ("bearer authentication") survives while short tokens
        # ("Bearer 0a1b2c", "Bearer AbCdEf") do not.
        "bearer_token": (
            r"\b(?i:bearer)\s+(?:[A-Za-z0-9._~+/-]{16,}|[a-z]*[A-Z0-9._~+/-][A-Za-z0-9._~+/-]*)=*"
        ),
        # RFC 7519 JWS compact form: base64url('{"...') . base64url('{"...') . signature.
        "jwt": r"\beyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
        # key=value, key: value, 'key': 'value' in free text (exception messages, query strings, reprs).
        "secret_assignment": (
            r"""(?i:pass(?:word|wd|phrase)|secret|token|api[_-]?key|access[_-]?key)"""
            r"""['"]?\s*[=:]\s*['"]?[^\s,;&'"]+"""
        ),
        # RFC 3986 userinfo with a password: the scheme, user and password up to "@" are replaced.
        "url_credentials": r"\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s/?#@:]{1,256}:[^\s/?#@]{1,256}@",
        "private_key_block": (
            # PEM block (RFC 7468); a block cut before its END line is redacted to the end of the text.
            r"-----BEGIN[A-Z ]{0,32}PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z ]{0,32}PRIVATE KEY-----|[\s\S]*)"
        ),
        # AWS access key ids (IAM user guide, "Understanding unique ID prefixes").
        "aws_access_key_id": r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
        # An AWS secret access key (40 base64 characters) named in the text: "aws_secret_access_key
        # = ...", "secret_key='...'" (botocore's Credentials repr), "AWS secret access key ...". A
        # bare 40-character string cannot be told from a git SHA or a path, so the label is required;
        # every name AWS and boto use for it holds "secret" (a single literal keeps the scan fast).
        "aws_secret_access_key": (
            r"""(?i:secret)[A-Za-z_ .-]{0,24}(?i:key)['"]?[ \t]*[=:]?[ \t]*['"]?[A-Za-z0-9/+]{40}"""
        ),
        "gcp_api_key": r"\bAIza[0-9A-Za-z_-]{35}",
        # GitHub token formats: ghp_, gho_, ghu_, ghs_, ghr_ and fine-grained github_pat_.
        "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
        "slack_token": r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        # OpenAI (sk-, sk-proj-) and Anthropic (sk-ant-) API keys.
        "llm_api_key": r"\bsk-[A-Za-z0-9_-]{20,}",
        "stripe_key": r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
        # RFC 6265 Cookie / Set-Cookie header values, in header form ("Cookie: a=b; c=d" to the end
        # of the line) or in a repr ("'Set-Cookie': 'sid=...'", up to the closing quote). "Cookie" is
        # redacted with the value, as for authorization_header ("Set-" stays: one literal keeps the
        # scan fast).
        "cookie_header": (r"""(?i:cookie)['"]?[ \t]*[=:][ \t]*(?:"[^"\r\n]*"|'[^'\r\n]*'|[^\s'"][^\r\n]*)"""),
        # RFC 5321: a local part has at most 64 octets; the bound also keeps the scan linear.
        "email": r"\b[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,63}\b",
        # US Social Security numbers in their written form AAA-GG-SSSS, without the numbers the SSA
        # never issues (area 000, 666 and 900-999, group 00, serial 0000; SSA "Social Security Number
        # Randomization"). Nine digits without dashes are too common to be told apart.
        "us_ssn": (
            r"\b(?:00[1-9]|0[1-9][0-9]|[1-578][0-9]{2}|6[0-57-9][0-9]|66[0-57-9])"
            r"-(?:0[1-9]|[1-9][0-9])-(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})\b"
        ),
        # ISO 13616 IBAN: country code, check digits and a BBAN, in electronic form or printed in
        # groups of four. A match is redacted only if it has 15-34 characters and passes the ISO 7064
        # mod 97-10 check.
        "iban": r"\b[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b",
        # 13-19 digits, plain or in groups of 4 (4-6-5 for Amex), first digit 2-6 (the ISO/IEC 7812
        # ranges of the card networks; epoch timestamps start with 1). A match is redacted only if its
        # digits pass the Luhn check. Last, so that other patterns win where both could start.
        "card_number": (
            r"\b(?:[2-6][0-9]{12,18}|[2-6][0-9]{3}(?:[ -][0-9]{4}){3}(?:[ -][0-9]{1,3})?"
            r"|3[0-9]{3}[ -][0-9]{6}[ -][0-9]{4,5})\b"
        ),
    }
)
"""Default value patterns, name -> regular expression, searched case-sensitively (`(?i:...)` marks the
case-insensitive parts) in string values, ASCII semantics for `\\b` and `\\s` as in RE2. Only the
matching substring is replaced. Two patterns are checked beyond the regex, by name (also when a
custom `value_patterns` table reuses the name): a `card_number` match is redacted only when its
digits pass the Luhn check (ISO/IEC 7812-1 annex B), an `iban` match only when it passes the ISO
13616 check; the Collector cannot repeat these checks and redacts every candidate. RE2-compatible,
like `DEFAULT_KEY_PATTERNS`.
"""

SAFE_KEYS: Final[frozenset[str]] = frozenset(
    {
        sc.SESSION_ID,
        sc.MCP_SESSION_ID,
        sc.MCP_METHOD_NAME,
        sc.MCP_PROTOCOL_VERSION,
        sc.JSONRPC_REQUEST_ID,
        sc.RPC_RESPONSE_STATUS_CODE,
        sc.ERROR_TYPE,
        sc.GEN_AI_OPERATION_NAME,
        sc.GEN_AI_TOOL_NAME,
        sc.GEN_AI_PROMPT_NAME,
        sc.CLIENT_ADDRESS,
        sc.CLIENT_PORT,
        sc.SESSION_TYPE,
        sc.SESSION_ORIGIN,
        sc.SESSION_IDLE_TIMEOUT,
        sc.SESSION_END_REASON,
        sc.RESOURCE_UUID,
        sc.CLIENT_NAME,
        sc.CLIENT_VERSION,
        sc.EVENT_TYPE,
        sc.EVENT_DURATION_MS,
        sc.GEN_AI_TOOL_CALL_ID,
        sc.GEN_AI_CONVERSATION_ID,
        SERVER_ADDRESS,
        SERVER_PORT,
        SERVICE_NAME,
        EXCEPTION_TYPE,
        EXCEPTION_ESCAPED,
        REDACTED_KEYS_ATTRIBUTE,
    }
)
"""Identity and protocol attribute keys that are never scrubbed, whatever their value looks like (a
session id may look like a token). Only the size cap applies to them. `SAFE_KEY_PREFIXES` adds whole
namespaces. Resource attributes and span context ids are outside the scrubber's reach anyway."""

SAFE_KEY_PREFIXES: Final[tuple[str, ...]] = ("network.",)
"""Attribute key prefixes never scrubbed: the semconv `network.*` namespace (transport, protocol,
peer and local addresses)."""

_CONTENT_KEYS: Final = frozenset(
    {sc.GEN_AI_TOOL_CALL_ARGUMENTS, sc.GEN_AI_TOOL_CALL_RESULT, sc.EVENT_INPUT, sc.EVENT_OUTPUT}
)
_CONTENT_KEY_PREFIXES: Final = (sc.GEN_AI_PROMPT_VARIABLE_PREFIX,)
_MAX_RECORDED_PATHS: Final = 128
# Text beyond max_attribute_length never reaches the backend, but a secret can straddle the cut, so
# the value scan reads this much further; the bound keeps the regex cost of huge values (base64 images
# in tool results) proportional to the cap, not to the value.
_SCAN_MARGIN: Final = 4096
_KEY_CACHE_SIZE: Final = 4096
_UNCAPPED: Final = frozenset({bool, int, float})
"""Attribute value types the size cap leaves alone."""
_AttributeRule = tuple[bool, bool, str | None]
"""What applies to an attribute key: (a content key, a safe key, the name of its key pattern)."""
_KEY_FLAGS: Final = re.IGNORECASE | re.ASCII
_VALUE_FLAGS: Final = re.ASCII
_JSON_START: Final = re.compile(r"\s*[\[{]")
_JSON_STRING: Final = re.compile(r'"([^"]*)"(\s*:)?')
"""Every string of a JSON text without escapes, in order, and whether it is an object key."""
_Upcoming = tuple[int, int, "re.Match[str]"]
"""The next match of one value pattern: (start, pattern index, match)."""
_NOT_ASCII_DIGIT: Final = re.compile(r"[^0-9]")
_LUHN_DOUBLED: Final = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))
"""An ASCII digit -> the digit sum of its double, as a byte value (the Luhn step for every second digit)."""
_JSON_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class RedactionMatch:
    """What `PrivacyRules.callback` is given for each value about to be redacted."""

    path: str
    """Where the value is, in the `REDACTED_KEYS_ATTRIBUTE` notation, e.g. `"db.password"`."""
    value: Any
    """For a key match, the whole value (possibly a nested mapping or sequence); for a value
    pattern, only the matching substring."""
    pattern: str
    """The name of the pattern that matched (a default pattern's name, or an extra pattern's regex)."""


RedactionCallback = Callable[[RedactionMatch], str | None]
"""Returns the replacement text, or None to apply the default `REDACTED`."""


@dataclass(frozen=True, kw_only=True)
class PrivacyRules:
    """Validated redaction settings; build one with `PrivacyRules(...)` or `PrivacyRules.from_env(...)`.

    Args:
        key_patterns: name -> regex matched against keys; default `DEFAULT_KEY_PATTERNS`. Replaces the
            defaults; to add patterns use `extra_key_patterns`.
        value_patterns: name -> regex matched against string values; default `DEFAULT_VALUE_PATTERNS`.
        extra_key_patterns: regexes added to `key_patterns`; default none (`SHINZO_REDACT_KEY_PATTERNS`).
        extra_value_patterns: regexes added to `value_patterns`; default none
            (`SHINZO_REDACT_VALUE_PATTERNS`).
        max_attribute_length: cap on one string value, in characters, `TRUNCATED_SUFFIX` included;
            default 4096 (`SHINZO_MAX_ATTRIBUTE_LENGTH`); None for no cap. Must exceed
            `len(TRUNCATED_SUFFIX)`.
        capture_tools_allow: tool names whose content attributes may be exported; default None (no
            allow list). Spans and events without `gen_ai.tool.name` are not subject to it.
        capture_tools_deny: tool names whose content attributes are always removed; wins over the
            allow list. Default empty.
        callback: called for each value about to be redacted; its string result replaces the default
            marker, None keeps `REDACTED`. It runs on the export thread; if it raises, the span is
            dropped (fail closed).

    Patterns must be RE2-compatible for the Collector to repeat them (not checked here) and must not
    match the empty string. Sequences are stored as tuples, name collections as frozensets.

    Raises:
        ValueError: naming the field, for a regex that does not compile or matches the empty string,
            a value of the wrong type, or a `max_attribute_length` not above `len(TRUNCATED_SUFFIX)`.
    """

    key_patterns: Mapping[str, str] = field(default_factory=lambda: DEFAULT_KEY_PATTERNS)
    value_patterns: Mapping[str, str] = field(default_factory=lambda: DEFAULT_VALUE_PATTERNS)
    extra_key_patterns: Sequence[str] = ()
    extra_value_patterns: Sequence[str] = ()
    max_attribute_length: int | None = DEFAULT_MAX_ATTRIBUTE_LENGTH
    capture_tools_allow: Collection[str] | None = None
    capture_tools_deny: Collection[str] = frozenset()
    callback: RedactionCallback | None = None

    def __post_init__(self) -> None:
        for name, check in _FIELD_CHECKS.items():
            # A frozen dataclass may normalize its own fields (sequences to tuples) at construction.
            object.__setattr__(self, name, check(name, getattr(self, name)))

    @classmethod
    def from_env(cls, **explicit: Unpack[_RulesArgs]) -> PrivacyRules:
        """Rules from explicit arguments, then `SHINZO_*` environment variables, then defaults.

        Args:
            **explicit: any `PrivacyRules` field; a field given here ignores its environment variable
                (`SHINZO_REDACT_KEY_PATTERNS`, `SHINZO_REDACT_VALUE_PATTERNS`,
                `SHINZO_MAX_ATTRIBUTE_LENGTH`, `SHINZO_CAPTURE_TOOLS_ALLOW`, `SHINZO_CAPTURE_TOOLS_DENY`).

        An unset or blank variable means the default. A variable that does not parse or validate is
        logged as a warning and the default is used (the OpenTelemetry SDK's habit for `OTEL_*`).

        Raises:
            ValueError: naming the field, for a bad explicit argument (see the class docstring).
            TypeError: for an argument that is not a `PrivacyRules` field.
        """
        arguments: dict[str, Any] = dict(explicit)
        for name, variable, parse in _ENV_FIELDS:
            raw = os.environ.get(variable, "")
            if name in arguments or not raw.strip():
                continue
            try:
                arguments[name] = _FIELD_CHECKS[name](name, parse(raw))
            except ValueError as error:
                _logger.warning("Ignoring %s=%r (%s); using the default.", variable, raw, error)
        return cls(**arguments)


class _RulesArgs(TypedDict, total=False):
    key_patterns: Mapping[str, str]
    value_patterns: Mapping[str, str]
    extra_key_patterns: Sequence[str]
    extra_value_patterns: Sequence[str]
    max_attribute_length: int | None
    capture_tools_allow: Collection[str] | None
    capture_tools_deny: Collection[str]
    callback: RedactionCallback | None


def _check_regex(label: str, regex: object, flags: int) -> str:
    if not isinstance(regex, str):
        raise ValueError(f"{label} must be a regular expression string, got {type(regex).__name__}")
    try:
        # Compiled inside a group, as it will be in the combined pattern: inline global flags such as
        # "(?i)" fail here rather than later.
        compiled = re.compile(f"(?:{regex})", flags)
    except re.error as error:
        raise ValueError(f"{label} is not a valid regular expression {regex!r}: {error}") from None
    if compiled.search("") is not None:
        raise ValueError(f"{label} matches the empty string, so it would redact everything: {regex!r}")
    return regex


def _check_pattern_table(label: str, table: object, flags: int) -> Mapping[str, str]:
    if not isinstance(table, Mapping):
        raise ValueError(
            f"{label} must be a mapping of name to regular expression, got {type(table).__name__}"
        )
    checked: dict[str, str] = {}
    for name, regex in table.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{label} has a pattern name that is not a non-empty string: {name!r}")
        checked[name] = _check_regex(f"{label}[{name!r}]", regex, flags)
    return MappingProxyType(checked)


def _check_patterns(label: str, patterns: object, flags: int) -> tuple[str, ...]:
    if isinstance(patterns, str) or not isinstance(patterns, Iterable):
        raise ValueError(f"{label} must be a sequence of regular expressions, got {type(patterns).__name__}")
    return tuple(_check_regex(f"{label}[{index}]", regex, flags) for index, regex in enumerate(patterns))


def _check_max_length(label: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{label} must be an int or None, got {type(value).__name__}")
    if value <= len(TRUNCATED_SUFFIX):
        raise ValueError(f"{label} must be greater than {len(TRUNCATED_SUFFIX)}, got {value}")
    return value


def _check_names(label: str, names: object) -> frozenset[str]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise ValueError(f"{label} must be a collection of tool names, got {type(names).__name__}")
    checked = frozenset(names)
    for name in checked:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{label} has a tool name that is not a non-empty string: {name!r}")
    return checked


def _check_optional_names(label: str, names: object) -> frozenset[str] | None:
    return None if names is None else _check_names(label, names)


def _check_callback(label: str, callback: object) -> object:
    if callback is not None and not callable(callback):
        raise ValueError(f"{label} must be callable or None, got {type(callback).__name__}")
    return callback


_FIELD_CHECKS: Final[Mapping[str, Callable[[str, Any], object]]] = MappingProxyType(
    {
        "key_patterns": functools.partial(_check_pattern_table, flags=_KEY_FLAGS),
        "value_patterns": functools.partial(_check_pattern_table, flags=_VALUE_FLAGS),
        "extra_key_patterns": functools.partial(_check_patterns, flags=_KEY_FLAGS),
        "extra_value_patterns": functools.partial(_check_patterns, flags=_VALUE_FLAGS),
        "max_attribute_length": _check_max_length,
        "capture_tools_allow": _check_optional_names,
        "capture_tools_deny": _check_names,
        "callback": _check_callback,
    }
)


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("not an integer") from None


_ENV_FIELDS: Final[tuple[tuple[str, str, Callable[[str], object]], ...]] = (
    ("extra_key_patterns", SHINZO_REDACT_KEY_PATTERNS, _split),
    ("extra_value_patterns", SHINZO_REDACT_VALUE_PATTERNS, _split),
    ("max_attribute_length", SHINZO_MAX_ATTRIBUTE_LENGTH, _parse_int),
    ("capture_tools_allow", SHINZO_CAPTURE_TOOLS_ALLOW, _split),
    ("capture_tools_deny", SHINZO_CAPTURE_TOOLS_DENY, _split),
)


def _compile_table(patterns: Sequence[tuple[str, str]], flags: int) -> tuple[re.Pattern[str], dict[str, str]]:
    """One alternation of named groups; returns it and group name -> pattern name."""
    names = {f"_{index}": name for index, (name, _) in enumerate(patterns)}
    combined = "|".join(f"(?P<_{index}>{regex})" for index, (_, regex) in enumerate(patterns))
    return re.compile(combined or r"[^\s\S]", flags), names


def _passes_luhn(text: str) -> bool:
    """The Luhn check (ISO/IEC 7812-1 annex B) on the ASCII digits of `text`, other characters ignored."""
    digits = _NOT_ASCII_DIGIT.sub("", text).encode("ascii")
    kept = digits[-1::-2]
    return (sum(kept) - ord("0") * len(kept) + sum(digits[-2::-2].translate(_LUHN_DOUBLED))) % 10 == 0


def _passes_iban_check(text: str) -> bool:
    """ISO 13616: 15 to 34 characters once spaces are removed, and the ISO 7064 mod 97-10 check (the
    first four characters moved to the end, letters read as 10-35, the number modulo 97 is 1)."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_CHECKED_PATTERNS: Final[Mapping[str, Callable[[str], bool]]] = MappingProxyType(
    {"card_number": _passes_luhn, "iban": _passes_iban_check}
)
"""Value pattern name -> the check a match must also pass to be redacted."""


def _is_content_key(key: str) -> bool:
    """Whether `key` carries tool content (arguments, results, prompt variables, event payloads)."""
    return key in _CONTENT_KEYS or key.startswith(_CONTENT_KEY_PREFIXES)


def attribute_dict(attributes: Attributes) -> dict[str, AttributeValue]:
    """A plain-dict copy of span, event or link attributes (None gives `{}`).

    The SDK hands out a `mappingproxy` over `BoundedAttributes`, whose item-by-item reads run Python
    code for every key; both have a `copy()` that copies the underlying dict at C speed, used here
    when present.
    """
    if not attributes:
        return {}
    copy = getattr(attributes, "copy", None)
    copied = copy() if callable(copy) else None
    return copied if isinstance(copied, dict) else dict(attributes)


def _bounded(attributes: dict[str, AnyValue], dropped: int) -> Mapping[str, AnyValue]:
    """Read-only attributes for a scrubbed span, event or link, keeping the SDK's dropped count.

    The values came from SDK-validated attributes, so they are not validated again: a
    `BoundedAttributes` (which re-cleans every value) is built only to carry a non-zero dropped
    count, which exporters report as `dropped_attributes_count`.
    """
    if not dropped:
        return MappingProxyType(attributes)
    result = BoundedAttributes(attributes=attributes, immutable=True)
    result.dropped = dropped
    return result


@dataclass(slots=True)
class _Findings:
    """What one `Scrubber.scrub_span` (or `scrub_value`) pass collects as it goes."""

    paths: list[str] = field(default_factory=list)
    """The paths redacted or removed, in order, possibly repeated."""
    texts: dict[str, str | None] = field(default_factory=dict)
    """Plain text already value-scanned in this pass -> its scrubbed form, None if nothing matched.
    MCP results repeat their text (`content[].text` and `structuredContent`), and arguments often
    reappear in results: each distinct text is scanned once per span. Kept only without a callback,
    whose answer may depend on the path."""


class Scrubber:
    """Applies `PrivacyRules` to finished spans; compile once, share across threads.

    Args:
        rules: the rules to apply; default `PrivacyRules()` (defaults only, environment not read).
        capture_content: False (argument collection off) removes content attributes from every span,
            whatever its tool: the backstop for content that other instrumentations record.

    Raises:
        ValueError: if the key patterns cannot be combined into one regex (for example two of them
            define the same named group).
    """

    def __init__(self, rules: PrivacyRules | None = None, *, capture_content: bool = True) -> None:
        self._rules = rules if rules is not None else PrivacyRules()
        self._capture_content = capture_content
        keys = [
            *self._rules.key_patterns.items(),
            *((regex, regex) for regex in self._rules.extra_key_patterns),
        ]
        values = [
            *self._rules.value_patterns.items(),
            *((regex, regex) for regex in self._rules.extra_value_patterns),
        ]
        try:
            self._key_regex, self._key_names = _compile_table(keys, _KEY_FLAGS)
        except re.error as error:
            raise ValueError(f"key_patterns cannot be combined: {error}") from None
        # Values are searched pattern by pattern, not as one alternation: each pattern alone keeps
        # the regex engine's literal-prefix scan, which an alternation defeats. PrivacyRules has
        # compiled each one already.
        self._value_patterns = tuple(re.compile(regex, _VALUE_FLAGS) for _, regex in values)
        self._prefilter = Prefilter([regex for _, regex in values], [regex for _, regex in keys])
        self._value_names = tuple(name for name, _ in values)
        self._max_length = self._rules.max_attribute_length
        self._scan_limit = None if self._max_length is None else self._max_length + _SCAN_MARGIN
        self._allow = self._rules.capture_tools_allow
        self._deny = self._rules.capture_tools_deny
        self._callback = self._rules.callback
        # Keys repeat across spans (and across the objects of one JSON document): match each once.
        self._key_pattern: Callable[[str], str | None] = functools.lru_cache(maxsize=_KEY_CACHE_SIZE)(
            self._find_key_pattern
        )
        # Attribute keys are few and read for every span: a plain dict (filled up to the same bound)
        # costs a third of an lru_cache call.
        self._attribute_rules: dict[str, _AttributeRule] = {}

    @property
    def rules(self) -> PrivacyRules:
        """The rules this scrubber applies."""
        return self._rules

    def scrub_span(self, span: ReadableSpan) -> ReadableSpan:
        """A copy of `span` with the rules applied; `span` itself is never modified.

        Attributes, event attributes, link attributes and the status description are scrubbed,
        content attributes of denied tools removed, and `REDACTED_KEYS_ATTRIBUTE` added (merged with
        any earlier record) when anything was redacted or removed. When nothing changes, `span`
        itself is returned. Name, context, parent, kind, times, resource, scope and dropped counts
        are kept.

        Raises:
            Exception: whatever scrubbing raises (a failing callback, JSON nested too deeply for the
                interpreter's recursion limit) propagates. The caller must then drop the span and
                never export it unscrubbed: fail closed.
        """
        found = _Findings()
        attributes = attribute_dict(span.attributes)
        tool_name = attributes.get(sc.GEN_AI_TOOL_NAME)
        new_attributes = self._scrub_attributes(attributes, tool_name, found)

        events = span.events
        new_events: list[Event] | None = None
        for index, event in enumerate(events):
            event_attributes = attribute_dict(event.attributes)
            event_tool = event_attributes.get(sc.GEN_AI_TOOL_NAME, tool_name)
            scrubbed = self._scrub_attributes(event_attributes, event_tool, found)
            if scrubbed is not None:
                new_events = new_events if new_events is not None else list(events)
                new_events[index] = Event(
                    event.name, _bounded(scrubbed, event.dropped_attributes), event.timestamp
                )

        links = span.links
        new_links: list[Link] | None = None
        for index, link in enumerate(links):
            scrubbed = self._scrub_attributes(attribute_dict(link.attributes), None, found)
            if scrubbed is not None:
                new_links = new_links if new_links is not None else list(links)
                new_links[index] = Link(link.context, _bounded(scrubbed, link.dropped_attributes))

        status = span.status
        if status.description:
            description = self._truncate(self._scrub_node(OTEL_STATUS_DESCRIPTION, status.description, found))
            if description is not status.description:
                status = Status(status.status_code, str(description))

        if new_attributes is None and new_events is None and new_links is None and status is span.status:
            return span
        final_attributes = new_attributes if new_attributes is not None else attributes  # both our copies
        if found.paths:
            earlier = final_attributes.get(REDACTED_KEYS_ATTRIBUTE)
            recorded = [*earlier] if isinstance(earlier, tuple | list) else []
            paths = dict.fromkeys(path for path in [*recorded, *found.paths] if isinstance(path, str))
            final_attributes[REDACTED_KEYS_ATTRIBUTE] = tuple(paths)[:_MAX_RECORDED_PATHS]
        return ReadableSpan(
            name=span.name,
            context=span.get_span_context(),
            parent=span.parent,
            resource=span.resource,
            attributes=_bounded(final_attributes, span.dropped_attributes),
            events=self._bounded_list(events if new_events is None else new_events, span.dropped_events),
            links=self._bounded_list(links if new_links is None else new_links, span.dropped_links),
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def scrub_value(self, path: str, value: AnyValue) -> tuple[AnyValue, tuple[str, ...]]:
        """Scrub one value as if it were the attribute `path`: same rules as `scrub_span`.

        Args:
            path: the attribute key (checked against key patterns and `SAFE_KEYS`, and the prefix of
                the recorded paths).
            value: any attribute value; a JSON string is scrubbed inside.

        Returns:
            The scrubbed value (the same object when nothing changed) and the redacted paths.

        Raises:
            Exception: as `scrub_span`; the caller must not use the raw value then.
        """
        found = _Findings()
        result = self._scrub_attribute(path, value, found, self._attribute_rule(path))
        return result, tuple(dict.fromkeys(found.paths))

    @staticmethod
    def _bounded_list(items: Sequence[Any], dropped: int) -> BoundedList[Any]:
        result: BoundedList[Any] = BoundedList.from_seq(None, items)
        result.dropped = dropped
        return result

    def _find_key_pattern(self, key: str) -> str | None:
        match = self._key_regex.search(key)
        return None if match is None or match.lastgroup is None else self._key_names[match.lastgroup]

    def _content_blocked(self, tool_name: object) -> bool:
        if not self._capture_content:
            return True
        if not isinstance(tool_name, str):
            return False
        return tool_name in self._deny or (self._allow is not None and tool_name not in self._allow)

    def _scrub_attributes(
        self, attributes: Mapping[str, AnyValue], tool_name: object, found: _Findings
    ) -> dict[str, AnyValue] | None:
        """The scrubbed attributes, or None when nothing changed.

        Most attributes are a safe key's scalar within the size cap, kept as they are. When every
        other one is a text within the cap that only a value pattern (or, in JSON, a key pattern)
        could change, one prefilter pass over all of them, joined by a newline, decides first: when
        no pattern can match there, nothing changes. A pattern ruled out in the joined text matches
        in none of them, as each lies between non-word characters there (`Prefilter.candidates`).
        A JSON text with escapes, whose raw text hides the characters it holds, is never screened
        so: it is parsed, as in `_scrub_str`.
        """
        blocked = self._content_blocked(tool_name)
        rules = self._attribute_rules
        limit = self._max_length
        looked_at: list[tuple[str, AnyValue, _AttributeRule]] = []
        texts: list[str] | None = []
        for key, value in attributes.items():
            rule = rules.get(key) or self._attribute_rule(key)
            text = value if type(value) is str and (limit is None or len(value) <= limit) else None
            if rule[1] and (text is not None or type(value) in _UNCAPPED):
                continue  # a safe key's scalar within the size cap: most attributes of a span
            looked_at.append((key, value, rule))
            if texts is None:
                continue
            escaped_json = text is not None and "\\" in text and _JSON_START.match(text) is not None
            if text is not None and rule[2] is None and not (blocked and rule[0]) and not escaped_json:
                texts.append(text)
            else:
                texts = None
        if not looked_at:
            return None
        if texts is not None and not self._prefilter.may_match("\n".join(texts)):
            return None
        result = dict(attributes)
        changed = False
        for key, value, rule in looked_at:
            if blocked and rule[0]:
                found.paths.append(key)
                del result[key]
                changed = True
                continue
            new_value = self._scrub_attribute(key, value, found, rule)
            if new_value is not value:
                result[key] = new_value
                changed = True
        return result if changed else None

    def _scrub_attribute(self, key: str, value: AnyValue, found: _Findings, rule: _AttributeRule) -> Any:
        _, safe, pattern = rule
        if safe:
            return self._truncate(value)
        if pattern is not None:
            return self._truncate(self._redact_whole(key, value, pattern, found))
        return self._truncate(self._scrub_node(key, value, found))

    def _attribute_rule(self, key: str) -> _AttributeRule:
        safe = key in SAFE_KEYS or key.startswith(SAFE_KEY_PREFIXES)
        rule = (_is_content_key(key), safe, None if safe else self._key_pattern(key))
        if len(self._attribute_rules) < _KEY_CACHE_SIZE:
            self._attribute_rules[key] = rule
        return rule

    def _scrub_node(
        self, path: str, node: Any, found: _Findings, candidates: tuple[int, ...] | None = None
    ) -> Any:
        """`node` scrubbed by value and (in mappings) key patterns; the same object if unchanged.

        `candidates`: the value patterns that can match anywhere in `node` (from the JSON text it was
        parsed from), None when unknown."""
        if isinstance(node, str):
            return self._scrub_str(path, node, found, candidates)
        if node is None or isinstance(node, bool | float):
            return node
        if isinstance(node, int):
            text = str(node)
            scrubbed = self._scrub_text(path, text, found, candidates)
            return node if scrubbed is text else scrubbed
        if isinstance(node, Mapping):
            mapping: dict[Any, Any] = {}
            changed = False
            for key, value in node.items():
                child = f"{path}.{key}"
                pattern = self._key_pattern(str(key))
                if pattern is None:
                    new_value = self._scrub_node(child, value, found, candidates)
                else:
                    new_value = self._redact_whole(child, value, pattern, found)
                changed = changed or new_value is not value
                mapping[key] = new_value
            return mapping if changed else node
        if isinstance(node, list | tuple):
            items = [
                self._scrub_node(f"{path}[{index}]", item, found, candidates)
                for index, item in enumerate(node)
            ]
            if all(new is old for new, old in zip(items, node, strict=True)):
                return node
            return tuple(items) if isinstance(node, tuple) else items
        return node

    def _scrub_str(self, path: str, text: str, found: _Findings, candidates: tuple[int, ...] | None) -> str:
        if _JSON_START.match(text):
            inner = candidates
            if inner is None and "\\" not in text:
                # Without escapes, every string and number of the document is a part of its text
                # between non-word characters: what cannot match in the text cannot match in them.
                inner, keys = self._prefilter.screen(text)
                if not inner and not (keys and self._has_key_pattern(text)):
                    return text
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None  # "[INFO] ..." and other text that only looks like JSON
            if isinstance(parsed, dict | list):
                scrubbed = self._scrub_node(f"{path}.$", parsed, found, inner)
                if scrubbed is parsed:
                    return text
                return _JSON_ENCODER.encode(scrubbed)
        return self._scrub_text(path, text, found, candidates)

    def _has_key_pattern(self, json_text: str) -> bool:
        """Whether an object key of `json_text` (a JSON text without escapes) matches a key pattern."""
        return any(colon and self._key_pattern(key) for key, colon in _JSON_STRING.findall(json_text))

    def _scrub_text(self, path: str, text: str, found: _Findings, candidates: tuple[int, ...] | None) -> str:
        if self._callback is not None:
            result = self._scan_text(path, text, candidates)
        else:
            if text not in found.texts:
                found.texts[text] = self._scan_text(path, text, candidates)
            result = found.texts[text]
        if result is None:
            return text
        found.paths.append(path)
        return result

    def _scan_text(self, path: str, text: str, candidates: tuple[int, ...] | None) -> str | None:
        """`text` with value-pattern matches replaced, None if none was. Only the `candidates`
        patterns are searched (the others cannot match; None: ask the prefilter). The scan (and a
        changed result) stops at the scan limit: the size cap cuts what lies beyond."""
        if self._scan_limit is not None and len(text) > self._scan_limit:
            text = text[: self._scan_limit]
        if candidates is None:
            candidates = self._prefilter.candidates(text)
        patterns = self._value_patterns
        # The next match of each pattern, as (start, pattern index, match). Taking the leftmost
        # (on a tie the earlier pattern) and resuming every pattern it overlaps after its end gives
        # the matches of the alternation of all patterns, in order, without running it.
        upcoming: list[_Upcoming] = [
            (match.start(), index, match)
            for index in candidates
            if (match := patterns[index].search(text)) is not None
        ]
        pieces: list[str] = []
        last = 0
        while upcoming:
            start, index, match = min(upcoming)
            end = match.end()
            if end == start:  # an empty match redacts nothing; never stall on it
                upcoming = self._resume(text, upcoming, start + 1, only=index)
                continue
            upcoming = self._resume(text, upcoming, end)
            pattern = self._value_names[index]
            secret = match.group()
            check = _CHECKED_PATTERNS.get(pattern)
            if check is not None and not check(secret):
                continue
            replacement = self._replacement(path, secret, pattern)
            if replacement == secret:
                continue
            pieces += (text[last:start], replacement)
            last = end
        if not pieces:
            return None
        pieces.append(text[last:])
        return "".join(pieces)

    def _resume(
        self, text: str, upcoming: list[_Upcoming], position: int, only: int | None = None
    ) -> list[_Upcoming]:
        """`upcoming` with every pattern (or only pattern `only`) whose next match starts before
        `position` searched again from `position`; patterns with no match left are removed."""
        resumed: list[_Upcoming] = []
        for item in upcoming:
            start, index, _ = item
            if start < position and (only is None or index == only):
                # search() clamps a position past the end to the end: an empty match there repeats.
                again = self._value_patterns[index].search(text, position) if position <= len(text) else None
                if again is None:
                    continue
                item = (again.start(), index, again)
            resumed.append(item)
        return resumed

    def _redact_whole(self, path: str, value: Any, pattern: str, found: _Findings) -> Any:
        if value is None or isinstance(value, bool):
            return value
        replacement = self._replacement(path, value, pattern)
        if replacement == value:
            return value
        found.paths.append(path)
        return replacement

    def _replacement(self, path: str, value: Any, pattern: str) -> str:
        if self._callback is not None:
            chosen = self._callback(RedactionMatch(path=path, value=value, pattern=pattern))
            if chosen is not None:
                if not isinstance(chosen, str):
                    raise TypeError(
                        f"privacy callback returned {type(chosen).__name__}, expected str or None"
                    )
                return chosen
        return REDACTED

    def _truncate(self, value: Any) -> Any:
        limit = self._max_length
        if limit is None:
            return value
        if isinstance(value, str):
            if len(value) <= limit:
                return value
            return value[: limit - len(TRUNCATED_SUFFIX)] + TRUNCATED_SUFFIX
        if isinstance(value, list | tuple):
            items = [self._truncate(item) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, Mapping):
            mapping = {key: self._truncate(item) for key, item in value.items()}
            return value if all(mapping[key] is item for key, item in value.items()) else mapping
        return value


__all__ = [
    "DEFAULT_KEY_PATTERNS",
    "DEFAULT_MAX_ATTRIBUTE_LENGTH",
    "DEFAULT_VALUE_PATTERNS",
    "REDACTED",
    "REDACTED_KEYS_ATTRIBUTE",
    "SAFE_KEYS",
    "SAFE_KEY_PREFIXES",
    "SHINZO_CAPTURE_TOOLS_ALLOW",
    "SHINZO_CAPTURE_TOOLS_DENY",
    "SHINZO_MAX_ATTRIBUTE_LENGTH",
    "SHINZO_REDACT_KEY_PATTERNS",
    "SHINZO_REDACT_VALUE_PATTERNS",
    "TRUNCATED_SUFFIX",
    "PrivacyRules",
    "RedactionCallback",
    "RedactionMatch",
    "Scrubber",
]
