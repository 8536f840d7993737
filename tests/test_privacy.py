"""The redaction engine (privacy layer 2), on spans made by a real SDK TracerProvider.

Expected values are written by hand from the rules in `shinzo_otel/privacy.py`'s docstrings; the
example tables hold one example per default pattern and a test keeps them complete.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AnyValue

from shinzo_otel.privacy import (
    DEFAULT_KEY_PATTERNS,
    DEFAULT_MAX_ATTRIBUTE_LENGTH,
    DEFAULT_VALUE_PATTERNS,
    REDACTED,
    REDACTED_KEYS_ATTRIBUTE,
    SHINZO_CAPTURE_TOOLS_ALLOW,
    SHINZO_CAPTURE_TOOLS_DENY,
    SHINZO_MAX_ATTRIBUTE_LENGTH,
    SHINZO_REDACT_KEY_PATTERNS,
    SHINZO_REDACT_VALUE_PATTERNS,
    TRUNCATED_SUFFIX,
    PrivacyRules,
    RedactionMatch,
    Scrubber,
    attribute_dict,
)

ARGUMENTS = "gen_ai.tool.call.arguments"
RESULT = "gen_ai.tool.call.result"
TOOL_NAME = "gen_ai.tool.name"

# Built by concatenation so that secret scanners do not flag this file.
GITHUB_TOKEN = "ghp_" + "A1b2" * 9
AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"  # AWS's documented example
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

KEY_EXAMPLES: dict[str, str] = {
    "password": "db_password",
    "pwd": "mysql_pwd",
    "secret": "client_secret",
    "token": "refreshToken",
    "api_key": "x-api-key",
    "access_key": "aws_access_key_id",
    "private_key": "ssh_private_key",
    "auth": "basic_auth",
    "authorization": "http.request.header.authorization",
    "cookie": "http.request.header.cookie",
    "credential": "aws_credentials",
    "csrf": "x-xsrf-header",
    "card": "card_number",
    "ssn": "user_ssn",
    "connection_string": "db_connection_string",
}
"""Default key pattern name -> a key that this pattern (and no earlier-matching one) redacts."""

VALUE_EXAMPLES: dict[str, str] = {
    "authorization_header": "Authorization: Basic dXNlcjpwYXNz",
    "bearer_token": "Bearer abcdef0123456789abcdef",
    "jwt": JWT,
    "secret_assignment": "password=hunter2",
    "url_credentials": "postgresql://admin:s3cr3t@",
    "private_key_block": (
        "-----BEGIN "
        + "RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
        "-----END RSA PRIVATE KEY-----"
    ),
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",  # AWS's documented example key id
    # AWS's documented example secret access key, named in free text.
    "aws_secret_access_key": "secret access key: " + AWS_SECRET_ACCESS_KEY,
    "gcp_api_key": "AIza" + "SyD" + "x1" * 16,
    "github_token": GITHUB_TOKEN,
    "slack_token": "xoxb-" + "1234567890-abcdefghij",
    "llm_api_key": "sk-proj-" + "a1B2c3D4" * 3,
    "stripe_key": "sk_" + "test_" + "0123456789abcdefXYZ",
    "cookie_header": 'Cookie: "sessionid=38afes7a8; csrftoken=u32t4o3tb3gg43"',
    "email": "bob@example.com",
    "us_ssn": "078-05-1120",  # the SSA's voided "Woolworth wallet" number
    "iban": "DE89 3704 0044 0532 0130 00",  # the ISO 13616 example, printed form
    "card_number": "4111 1111 1111 1111",  # the Visa test number; passes Luhn
}
"""Default value pattern name -> a text that this pattern matches entirely."""

MORE_VALUE_EXAMPLES: list[tuple[str, str, str]] = [
    # (pattern, text, the text once redacted): other forms of the same secrets (issue 13 item 7).
    (
        "aws_secret_access_key",
        f"Credentials(secret_key='{AWS_SECRET_ACCESS_KEY}', region='eu-west-1')",
        f"Credentials({REDACTED}', region='eu-west-1')",
    ),
    (
        "aws_secret_access_key",
        f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET_ACCESS_KEY}",
        f"export AWS_{REDACTED}",
    ),
    (
        "cookie_header",
        "GET / HTTP/1.1\r\nCookie: sessionid=38afes7a8; csrftoken=u32t4o3tb3gg43\r\nAccept: */*",
        f"GET / HTTP/1.1\r\n{REDACTED}\r\nAccept: */*",
    ),
    (
        "cookie_header",
        "HTTP/1.1 200 OK\r\nSet-Cookie: sid=31d4d96e407aad42; Path=/; Secure\r\nVary: Accept",
        f"HTTP/1.1 200 OK\r\nSet-{REDACTED}\r\nVary: Accept",
    ),
    (
        "cookie_header",
        "headers {'Cookie': 'sid=31d4d96e407aad42', 'Accept': '*/*'}",
        f"headers {{'{REDACTED}, 'Accept': '*/*'}}",
    ),
    ("us_ssn", "ssn on file: 123-45-6789.", f"ssn on file: {REDACTED}."),
    ("iban", "pay to GB82WEST12345698765432 today", f"pay to {REDACTED} today"),
    ("iban", "konto NO93 8601 1117 947", f"konto {REDACTED}"),  # the shortest IBAN, 15 characters
]


@dataclass
class Recorder:
    tracer: Tracer
    exporter: InMemorySpanExporter

    def span(
        self,
        attributes: Mapping[str, AnyValue] | None = None,
        *,
        events: Sequence[tuple[str, Mapping[str, AnyValue]]] = (),
        links: Sequence[Link] = (),
        status: Status | None = None,
        exception: BaseException | None = None,
    ) -> ReadableSpan:
        """One finished span, as an exporter receives it."""
        with self.tracer.start_as_current_span(
            "tools/call test",
            kind=SpanKind.SERVER,
            attributes=attributes,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            for name, event_attributes in events:
                span.add_event(name, event_attributes)
            if exception is not None:
                span.record_exception(exception)
            if status is not None:
                span.set_status(status)
        (finished,) = self.exporter.get_finished_spans()
        self.exporter.clear()
        return finished


@contextmanager
def _recorder(limits: SpanLimits | None = None) -> Iterator[Recorder]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield Recorder(provider.get_tracer("tests.privacy"), exporter)
    finally:
        provider.shutdown()


@pytest.fixture
def record() -> Iterator[Recorder]:
    with _recorder() as recorder:
        yield recorder


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber()


@pytest.fixture(autouse=True)
def _no_shinzo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        SHINZO_REDACT_KEY_PATTERNS,
        SHINZO_REDACT_VALUE_PATTERNS,
        SHINZO_MAX_ATTRIBUTE_LENGTH,
        SHINZO_CAPTURE_TOOLS_ALLOW,
        SHINZO_CAPTURE_TOOLS_DENY,
    ):
        monkeypatch.delenv(variable, raising=False)


def _recording_scrubber(rules: PrivacyRules | None = None) -> tuple[Scrubber, list[RedactionMatch]]:
    """A scrubber whose callback records every match and keeps the default redaction."""
    seen: list[RedactionMatch] = []

    def callback(match: RedactionMatch) -> None:
        seen.append(match)

    return Scrubber(replace(rules if rules is not None else PrivacyRules(), callback=callback)), seen


# --- Default pattern tables -----------------------------------------------------------------------


def test_key_examples_cover_every_default_key_pattern() -> None:
    assert KEY_EXAMPLES.keys() == DEFAULT_KEY_PATTERNS.keys()


def test_value_examples_cover_every_default_value_pattern() -> None:
    assert VALUE_EXAMPLES.keys() == DEFAULT_VALUE_PATTERNS.keys()


@pytest.mark.parametrize("pattern", sorted({**DEFAULT_KEY_PATTERNS, **DEFAULT_VALUE_PATTERNS}.items()))
def test_default_patterns_use_only_re2_syntax(pattern: tuple[str, str]) -> None:
    # The Collector (Go regexp, RE2 syntax) repeats these patterns: no lookaround, atomic groups,
    # possessive quantifiers or backreferences.
    _, regex = pattern
    for construct in ("(?=", "(?!", "(?<=", "(?<!", "(?>", "*+", "++", "?+", "}+"):
        assert construct not in regex
    assert not any(f"\\{digit}" in regex for digit in "123456789")


@pytest.mark.parametrize(("pattern", "key"), KEY_EXAMPLES.items(), ids=KEY_EXAMPLES.keys())
def test_default_key_pattern_redacts_its_example(pattern: str, key: str) -> None:
    scrubber, seen = _recording_scrubber()
    assert scrubber.scrub_value(key, "some value") == (REDACTED, (key,))
    assert seen == [RedactionMatch(path=key, value="some value", pattern=pattern)]


@pytest.mark.parametrize(("pattern", "secret"), VALUE_EXAMPLES.items(), ids=VALUE_EXAMPLES.keys())
def test_default_value_pattern_redacts_its_example(pattern: str, secret: str) -> None:
    scrubber, seen = _recording_scrubber()
    scrubbed, paths = scrubber.scrub_value("message", f"before {secret} after")
    assert scrubbed == f"before {REDACTED} after"
    assert paths == ("message",)
    assert seen == [RedactionMatch(path="message", value=secret, pattern=pattern)]


@pytest.mark.parametrize(
    ("pattern", "text", "expected"), MORE_VALUE_EXAMPLES, ids=[row[0] for row in MORE_VALUE_EXAMPLES]
)
def test_more_forms_of_value_secrets_are_redacted(pattern: str, text: str, expected: str) -> None:
    scrubber, seen = _recording_scrubber()
    assert scrubber.scrub_value("message", text) == (expected, ("message",))
    assert [match.pattern for match in seen] == [pattern]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("gen_ai.usage.input_tokens", 42, id="token usage is a metric, not a token"),
        pytest.param("gen_ai.request.max_tokens", 1024, id="max_tokens is a limit, not a token"),
        pytest.param("llm.token_count.prompt", 10, id="token_count does not end in token"),
        pytest.param("author", "Ada Lovelace", id="author is not auth"),
        pytest.param("authority", "example.com", id="authority is not auth"),
        pytest.param("classname", "Foo", id="classname contains the letters ssn but not the word"),
        pytest.param("password_required", True, id="a boolean under a secret key carries no secret"),
        pytest.param("api_key", None, id="nothing to hide in None"),
        pytest.param(
            "session.id", GITHUB_TOKEN, id="session.id is never scrubbed even if it looks like a token"
        ),
        pytest.param(
            "mcp.session.id", "Bearer abcdef0123456789abcdef", id="mcp.session.id is never scrubbed"
        ),
        pytest.param("network.peer.address", "bob@example.com", id="network.* is a safe namespace"),
        pytest.param("gen_ai.tool.name", "reset_password", id="the tool name is identity"),
    ],
)
def test_keys_left_alone(scrubber: Scrubber, key: str, value: AnyValue) -> None:
    result, paths = scrubber.scrub_value(key, value)
    assert result is value
    assert paths == ()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("id 550e8400-e29b-41d4-a716-446655440000", id="a UUID is not a card number"),
        pytest.param(
            "id 12345678-1234-1234-1234-123456789012", id="an all-digit UUID is not grouped like a card"
        ),
        pytest.param("card 4111 1111 1111 1112", id="16 grouped digits failing Luhn"),
        pytest.param("card 4111111111111112", id="16 digits failing Luhn"),
        pytest.param("at 1700000000000", id="epoch milliseconds start with 1, outside the card ranges"),
        pytest.param("commit 9fceb02d0ae598e95dc970b74767f19372d61af8", id="a git sha is not a secret"),
        pytest.param(
            "Bearer authentication is required", id="prose: a lowercase word under 16 characters after Bearer"
        ),
        pytest.param("max_tokens=100", id="tokens= is not token="),
        pytest.param("the password must have 8 characters", id="a secret word without an assigned value"),
        pytest.param("see https://example.com/docs?page=2", id="a URL without userinfo"),
        pytest.param(REDACTED, id="the marker is not redacted again"),
        pytest.param(
            "the secret key rotation is described in /home/john/projects/mahavishnu/docs/keys.md",
            id="a secret key label followed by a path, not by 40 key characters",
        ),
        pytest.param("3 cookies: chocolate, oat", id="cookies is not a Cookie header"),
        pytest.param("cookie policy accepted", id="the word cookie without a value"),
        pytest.param("serial 000-12-3456", id="area 000 is never issued"),
        pytest.param("serial 666-12-3456", id="area 666 is never issued"),
        pytest.param("serial 912-34-5678", id="areas 900-999 are never issued"),
        pytest.param("serial 123-00-4567", id="group 00 is never issued"),
        pytest.param("call 555-123-4567", id="a phone number is not an SSN"),
        pytest.param("IBAN DE89 3704 0044 0532 0130 01", id="an IBAN failing the mod 97 check"),
        pytest.param("patent US20230001234567", id="an IBAN-shaped id failing the check"),
    ],
)
def test_values_left_alone(scrubber: Scrubber, text: str) -> None:
    result, paths = scrubber.scrub_value("message", text)
    assert result is text
    assert paths == ()


# --- Luhn, JSON recursion, size cap -----------------------------------------------------------------


@pytest.mark.parametrize("token", ["000000000000", "AAAAAAAAAAAA", "aB3", "abc.def"])
def test_short_bearer_tokens_are_redacted(scrubber: Scrubber, token: str) -> None:
    # Found by the end-to-end property test: short tokens have no 16 characters to match; any
    # character other than a lowercase letter tells them from prose.
    assert scrubber.scrub_value("message", f"refused Bearer {token} today") == (
        "refused [REDACTED] today",
        ("message",),
    )


def test_luhn_valid_card_is_redacted_and_invalid_one_is_not(scrubber: Scrubber) -> None:
    text = "paid with 4111111111111111, refused 4111111111111112"
    assert scrubber.scrub_value("message", text) == (
        "paid with [REDACTED], refused 4111111111111112",
        ("message",),
    )


def test_card_number_sent_as_a_json_number_is_redacted(scrubber: Scrubber) -> None:
    arguments = json.dumps({"amount": 12, "pan": 4111111111111111, "order": 4111111111111112})
    assert scrubber.scrub_value(ARGUMENTS, arguments) == (
        '{"amount":12,"pan":"[REDACTED]","order":4111111111111112}',
        (f"{ARGUMENTS}.$.pan",),
    )


def test_json_arguments_are_scrubbed_by_key_and_value_at_depth(scrubber: Scrubber) -> None:
    arguments = json.dumps(
        {
            "user": {"name": "bob", "password": "hunter2", "contact": "mail bob@example.com"},
            "items": [{"api_key": "k-123"}, {"note": "fine"}],
            "deep": {"a": {"b": {"c": {"d": {"refresh_token": "xyz"}}}}},
            "credentials": {"user": "u", "pass": "p"},
            "max_tokens": 10,
        },
        indent=2,
    )
    expected = (
        '{"user":{"name":"bob","password":"[REDACTED]","contact":"mail [REDACTED]"},'
        '"items":[{"api_key":"[REDACTED]"},{"note":"fine"}],'
        '"deep":{"a":{"b":{"c":{"d":{"refresh_token":"[REDACTED]"}}}}},'
        '"credentials":"[REDACTED]","max_tokens":10}'
    )
    assert scrubber.scrub_value(ARGUMENTS, arguments) == (
        expected,
        (
            f"{ARGUMENTS}.$.user.password",
            f"{ARGUMENTS}.$.user.contact",
            f"{ARGUMENTS}.$.items[0].api_key",
            f"{ARGUMENTS}.$.deep.a.b.c.d.refresh_token",
            f"{ARGUMENTS}.$.credentials",
        ),
    )


def test_json_text_inside_a_json_result_is_scrubbed(scrubber: Scrubber) -> None:
    inner = json.dumps({"secret": "s3", "ok": 1})
    result = json.dumps({"content": [{"type": "text", "text": inner}], "isError": False})
    expected_inner = '{"secret":"[REDACTED]","ok":1}'
    assert scrubber.scrub_value(RESULT, result) == (
        json.dumps(
            {"content": [{"type": "text", "text": expected_inner}], "isError": False}, separators=(",", ":")
        ),
        (f"{RESULT}.$.content[0].text.$.secret",),
    )


def test_deeply_nested_json_is_scrubbed_at_the_bottom(scrubber: Scrubber) -> None:
    value: Any = {"password": "hunter2"}
    for _ in range(50):
        value = {"level": value}
    scrubbed, paths = scrubber.scrub_value(ARGUMENTS, json.dumps(value))
    assert isinstance(scrubbed, str)
    assert "hunter2" not in scrubbed
    assert paths == (f"{ARGUMENTS}.$" + ".level" * 50 + ".password",)


def test_json_too_deep_to_parse_raises_so_the_span_is_dropped(record: Recorder, scrubber: Scrubber) -> None:
    span = record.span({ARGUMENTS: "[" * 100_000 + '{"password": "hunter2"}' + "]" * 100_000})
    with pytest.raises(RecursionError):
        scrubber.scrub_span(span)


def test_json_with_nothing_to_redact_is_kept_without_parsing_it(record: Recorder) -> None:
    # Too deep to parse, but no key or value pattern occurs anywhere in its text: nothing to redact.
    deep = "[" * 100_000 + '{"note": "all clear"}' + "]" * 100_000
    uncapped = Scrubber(PrivacyRules(max_attribute_length=None))
    assert uncapped.scrub_span(record.span({ARGUMENTS: deep})).attributes[ARGUMENTS] == deep


def test_text_that_only_looks_like_json_is_scanned_as_text(scrubber: Scrubber) -> None:
    assert scrubber.scrub_value("log", "[INFO] sent to bob@example.com") == (
        "[INFO] sent to [REDACTED]",
        ("log",),
    )


def test_unchanged_json_keeps_its_original_formatting(scrubber: Scrubber) -> None:
    arguments = json.dumps({"query": "weather", "days": 3}, indent=2)
    assert scrubber.scrub_value(ARGUMENTS, arguments)[0] is arguments


def test_size_cap_truncates_strings_and_sequence_elements() -> None:
    scrubber = Scrubber(PrivacyRules(max_attribute_length=32))
    kept = 32 - len(TRUNCATED_SUFFIX)
    assert scrubber.scrub_value("note", "x" * 100) == ("x" * kept + TRUNCATED_SUFFIX, ())
    assert scrubber.scrub_value("notes", ("y" * 100, "short")) == (
        ("y" * kept + TRUNCATED_SUFFIX, "short"),
        (),
    )
    assert scrubber.scrub_value("session.id", "s" * 40) == ("s" * kept + TRUNCATED_SUFFIX, ())
    exact = "z" * 32
    assert scrubber.scrub_value("note", exact)[0] is exact


def test_secret_across_the_cut_is_redacted_before_truncating() -> None:
    scrubber = Scrubber(PrivacyRules(max_attribute_length=64))
    # 64 - 14 = 50 characters are kept: the 44 x's, the space and 5 characters after them. Cutting first
    # would show "AKIAI"; scrubbing first shows the start of the marker.
    text = "x" * 44 + " AKIAIOSFODNN7EXAMPLE " + "y" * 100_000
    assert scrubber.scrub_value("log", text) == ("x" * 44 + " [REDA" + TRUNCATED_SUFFIX, ("log",))


def test_no_cap_when_max_attribute_length_is_none() -> None:
    text = "x" * (DEFAULT_MAX_ATTRIBUTE_LENGTH * 3)
    assert Scrubber(PrivacyRules(max_attribute_length=None)).scrub_value("note", text)[0] is text


# --- Spans ------------------------------------------------------------------------------------------


def test_span_with_nothing_to_redact_is_returned_as_is(record: Recorder, scrubber: Scrubber) -> None:
    span = record.span(
        {
            "mcp.method.name": "tools/call",
            TOOL_NAME: "get_weather",
            "session.id": "3f2c",
            ARGUMENTS: '{"city":"Paris"}',
            "gen_ai.usage.input_tokens": 12,
        },
        events=[("session.start", {"shinzo.session.type": "stdio"})],
    )
    assert scrubber.scrub_span(span) is span


def test_span_attributes_events_links_and_status_are_scrubbed(record: Recorder, scrubber: Scrubber) -> None:
    linked_context = record.span().get_span_context()
    assert linked_context is not None
    link = Link(linked_context, {"api_key": "k-1", "peer": "svc"})
    span = record.span(
        {TOOL_NAME: "login", "db.password": "hunter2", ARGUMENTS: '{"user":"bob","token":"abc"}'},
        events=[("audit", {"cookie": "sid=1", "outcome": "ok"})],
        links=[link],
        status=Status(StatusCode.ERROR, "rejected Bearer abcdef0123456789abcdef for bob@example.com"),
    )
    scrubbed = scrubber.scrub_span(span)

    assert dict(scrubbed.attributes or {}) == {
        TOOL_NAME: "login",
        "db.password": REDACTED,
        ARGUMENTS: '{"user":"bob","token":"[REDACTED]"}',
        REDACTED_KEYS_ATTRIBUTE: (
            "db.password",
            f"{ARGUMENTS}.$.token",
            "cookie",
            "api_key",
            "otel.status_description",
        ),
    }
    assert [dict(event.attributes or {}) for event in scrubbed.events] == [
        {"cookie": REDACTED, "outcome": "ok"}
    ]
    assert [dict(link.attributes or {}) for link in scrubbed.links] == [{"api_key": REDACTED, "peer": "svc"}]
    assert scrubbed.status.status_code is StatusCode.ERROR
    assert scrubbed.status.description == "rejected [REDACTED] for [REDACTED]"


def test_exception_message_and_stacktrace_are_scrubbed(record: Recorder, scrubber: Scrubber) -> None:
    try:
        raise ValueError("login failed for bob@example.com with password=hunter2")
    except ValueError as error:
        span = record.span(exception=error)
    scrubbed = scrubber.scrub_span(span)
    (event,) = scrubbed.events
    attributes = event.attributes or {}
    assert attributes["exception.type"] == "ValueError"
    assert attributes["exception.message"] == "login failed for [REDACTED] with [REDACTED]"
    stacktrace = str(attributes["exception.stacktrace"])
    assert "ValueError: login failed for [REDACTED] with [REDACTED]" in stacktrace
    assert "bob@example.com" not in stacktrace
    assert "hunter2" not in stacktrace
    assert (scrubbed.attributes or {})[REDACTED_KEYS_ATTRIBUTE] == (
        "exception.message",
        "exception.stacktrace",
    )


def test_input_span_is_not_mutated(record: Recorder, scrubber: Scrubber) -> None:
    span = record.span(
        {"api_key": "k-1", ARGUMENTS: '{"password":"hunter2"}'},
        events=[("audit", {"secret": "s"})],
        status=Status(StatusCode.ERROR, "for bob@example.com"),
    )
    attributes = dict(span.attributes or {})
    events = [(event.name, dict(event.attributes or {}), event.timestamp) for event in span.events]

    scrubbed = scrubber.scrub_span(span)

    assert scrubbed is not span
    assert (
        dict(span.attributes or {}) == attributes == {"api_key": "k-1", ARGUMENTS: '{"password":"hunter2"}'}
    )
    assert [(event.name, dict(event.attributes or {}), event.timestamp) for event in span.events] == events
    assert span.status.description == "for bob@example.com"


def test_copy_keeps_identity_times_and_scope(record: Recorder, scrubber: Scrubber) -> None:
    span = record.span({"secret": "s"})
    scrubbed = scrubber.scrub_span(span)
    assert scrubbed.name == span.name
    assert scrubbed.get_span_context() == span.get_span_context()
    assert scrubbed.parent == span.parent
    assert scrubbed.kind is SpanKind.SERVER
    assert (scrubbed.start_time, scrubbed.end_time) == (span.start_time, span.end_time)
    assert scrubbed.resource is span.resource
    assert scrubbed.instrumentation_scope == span.instrumentation_scope


def test_dropped_counts_survive_the_copy(scrubber: Scrubber) -> None:
    with _recorder(SpanLimits(max_attributes=2, max_events=1)) as record:
        span = record.span({"a": 1, "b": 2, "password": "p"}, events=[("one", {}), ("two", {"token": "t"})])
    scrubbed = scrubber.scrub_span(span)
    assert (span.dropped_attributes, span.dropped_events) == (1, 1)
    assert (scrubbed.dropped_attributes, scrubbed.dropped_events) == (1, 1)
    assert dict(scrubbed.attributes or {})["password"] == REDACTED


def test_attribute_dict_copies_any_attribute_mapping(record: Recorder) -> None:
    class Plain(Mapping[str, AnyValue]):  # a Mapping without copy(), as other instrumentations may hand in
        def __init__(self, items: dict[str, AnyValue]) -> None:
            self._items = items

        def __getitem__(self, key: str) -> AnyValue:
            return self._items[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._items)

        def __len__(self) -> int:
            return len(self._items)

    span = record.span({"a": 1, "b": ("x", "y")})
    for attributes in (span.attributes, Plain({"a": 1, "b": ("x", "y")})):
        copied = attribute_dict(attributes)
        assert type(copied) is dict and copied == {"a": 1, "b": ("x", "y")}
    assert attribute_dict(None) == {}


def test_redacted_keys_attribute_lists_paths_never_values(record: Recorder, scrubber: Scrubber) -> None:
    secrets = ["hunter2", "bob@example.com", GITHUB_TOKEN, "s3cr3t"]
    span = record.span(
        {
            "db.password": secrets[0],
            "note": f"mail {secrets[1]}",
            ARGUMENTS: json.dumps(
                {"auth": {"github": secrets[2]}, "list": [f"dsn postgresql://u:{secrets[3]}@h"]}
            ),
        }
    )
    recorded = (scrubber.scrub_span(span).attributes or {})[REDACTED_KEYS_ATTRIBUTE]
    assert recorded == ("db.password", "note", f"{ARGUMENTS}.$.auth", f"{ARGUMENTS}.$.list[0]")
    assert isinstance(recorded, tuple)
    assert not any(secret in path for secret in secrets for path in recorded)


def test_text_repeated_in_a_span_is_redacted_and_recorded_everywhere(
    record: Recorder, scrubber: Scrubber
) -> None:
    # An MCP result repeats its text in content[] and structuredContent, and the arguments often hold
    # it too: every occurrence is redacted and recorded, and clean repeats stay as they were.
    text = "mail bob@example.com"
    span = record.span(
        {
            ARGUMENTS: json.dumps({"text": text, "other": "clean", "again": "clean"}),
            RESULT: json.dumps({"content": [{"text": text}], "structuredContent": {"result": text}}),
            "note": text,
        }
    )
    attributes = dict(scrubber.scrub_span(span).attributes or {})
    assert json.loads(str(attributes[ARGUMENTS])) == {
        "text": "mail [REDACTED]",
        "other": "clean",
        "again": "clean",
    }
    assert json.loads(str(attributes[RESULT])) == {
        "content": [{"text": "mail [REDACTED]"}],
        "structuredContent": {"result": "mail [REDACTED]"},
    }
    assert attributes["note"] == "mail [REDACTED]"
    assert attributes[REDACTED_KEYS_ATTRIBUTE] == (
        f"{ARGUMENTS}.$.text",
        f"{RESULT}.$.content[0].text",
        f"{RESULT}.$.structuredContent.result",
        "note",
    )


def test_callback_sees_every_occurrence_of_a_repeated_text() -> None:
    scrubber, seen = _recording_scrubber()
    scrubber.scrub_value(RESULT, '{"a":"to bob@example.com","b":"to bob@example.com"}')
    assert [match.path for match in seen] == [f"{RESULT}.$.a", f"{RESULT}.$.b"]


def test_scrubbing_twice_changes_nothing_more(record: Recorder, scrubber: Scrubber) -> None:
    span = record.span({"db.password": "p", "note": "mail bob@example.com", ARGUMENTS: '{"token": "t"}'})
    once = scrubber.scrub_span(span)
    assert scrubber.scrub_span(once) is once


# --- Per-tool allow and deny lists ------------------------------------------------------------------

CONTENT = {ARGUMENTS: '{"amount":12}', RESULT: '{"ok":true}', "gen_ai.prompt.variable.amount": "12"}


def test_deny_list_removes_content_of_that_tool_only(record: Recorder) -> None:
    scrubber = Scrubber(PrivacyRules(capture_tools_deny={"charge_card"}))
    denied = scrubber.scrub_span(
        record.span({TOOL_NAME: "charge_card", **CONTENT, "mcp.method.name": "tools/call"})
    )
    assert dict(denied.attributes or {}) == {
        TOOL_NAME: "charge_card",
        "mcp.method.name": "tools/call",
        REDACTED_KEYS_ATTRIBUTE: (ARGUMENTS, RESULT, "gen_ai.prompt.variable.amount"),
    }
    # Removed from between the others, which keep their order.
    assert list(denied.attributes or {}) == [TOOL_NAME, "mcp.method.name", REDACTED_KEYS_ATTRIBUTE]
    other = record.span({TOOL_NAME: "search", **CONTENT})
    assert scrubber.scrub_span(other) is other


def test_allow_list_keeps_content_of_listed_tools_only(record: Recorder) -> None:
    scrubber = Scrubber(PrivacyRules(capture_tools_allow={"search"}))
    allowed = record.span({TOOL_NAME: "search", **CONTENT})
    assert scrubber.scrub_span(allowed) is allowed
    unlisted = scrubber.scrub_span(record.span({TOOL_NAME: "charge_card", **CONTENT}))
    assert set(unlisted.attributes or {}) == {TOOL_NAME, REDACTED_KEYS_ATTRIBUTE}
    # The lists are per tool: a span without gen_ai.tool.name is not subject to them.
    no_tool = record.span({"mcp.method.name": "prompts/get", **CONTENT})
    assert scrubber.scrub_span(no_tool) is no_tool


def test_deny_wins_over_allow(record: Recorder) -> None:
    scrubber = Scrubber(PrivacyRules(capture_tools_allow={"search"}, capture_tools_deny={"search"}))
    scrubbed = scrubber.scrub_span(record.span({TOOL_NAME: "search", ARGUMENTS: "{}"}))
    assert ARGUMENTS not in (scrubbed.attributes or {})


def test_deny_list_applies_to_event_content_by_the_event_tool_name(record: Recorder) -> None:
    scrubber = Scrubber(PrivacyRules(capture_tools_deny={"charge_card"}))
    session_span = record.span(
        {"session.id": "s-1"},
        events=[
            ("tool_call", {TOOL_NAME: "charge_card", "shinzo.event.input": '{"amount":12}'}),
            ("tool_call", {TOOL_NAME: "search", "shinzo.event.input": '{"q":"x"}'}),
        ],
    )
    events = scrubber.scrub_span(session_span).events
    assert [dict(event.attributes or {}) for event in events] == [
        {TOOL_NAME: "charge_card"},
        {TOOL_NAME: "search", "shinzo.event.input": '{"q":"x"}'},
    ]


# --- Callback ---------------------------------------------------------------------------------------


def test_callback_overrides_or_keeps_the_default() -> None:
    def callback(match: RedactionMatch) -> str | None:
        if match.pattern == "password":
            return f"<{len(match.value)} chars>"
        if match.pattern == "email":
            return str(match.value)  # an e-mail address this deployment may export
        return None

    scrubber = Scrubber(PrivacyRules(callback=callback))
    assert scrubber.scrub_value("db.password", "hunter2") == ("<7 chars>", ("db.password",))
    assert scrubber.scrub_value("note", "mail bob@example.com") == ("mail bob@example.com", ())
    assert scrubber.scrub_value("note", "key AKIAIOSFODNN7EXAMPLE") == ("key [REDACTED]", ("note",))


def test_callback_receives_whole_value_for_keys_and_substring_for_values() -> None:
    scrubber, seen = _recording_scrubber()
    scrubber.scrub_value(ARGUMENTS, '{"credentials":{"user":"u"},"note":"to bob@example.com"}')
    assert seen == [
        RedactionMatch(path=f"{ARGUMENTS}.$.credentials", value={"user": "u"}, pattern="credential"),
        RedactionMatch(path=f"{ARGUMENTS}.$.note", value="bob@example.com", pattern="email"),
    ]


def test_callback_that_raises_fails_closed(record: Recorder) -> None:
    def callback(match: RedactionMatch) -> str | None:
        raise RuntimeError("callback bug")

    span = record.span({"api_key": "k"})
    with pytest.raises(RuntimeError, match="callback bug"):
        Scrubber(PrivacyRules(callback=callback)).scrub_span(span)


def test_callback_returning_a_non_string_fails_closed() -> None:
    scrubber = Scrubber(PrivacyRules(callback=lambda match: 42))  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="int"):
        scrubber.scrub_value("api_key", "k")


# --- Rules: extension, replacement, validation, environment -----------------------------------------


def test_extra_patterns_extend_the_defaults() -> None:
    rules = PrivacyRules(extra_key_patterns=["^internal_"], extra_value_patterns=[r"ACME-[0-9]{6}"])
    scrubber, seen = _recording_scrubber(rules)
    assert scrubber.scrub_value("internal_id", "7")[0] == REDACTED
    assert scrubber.scrub_value("db.password", "p")[0] == REDACTED
    assert (
        scrubber.scrub_value("note", "order ACME-123456 for bob@example.com")[0]
        == "order [REDACTED] for [REDACTED]"
    )
    assert [match.pattern for match in seen] == ["^internal_", "password", r"ACME-[0-9]{6}", "email"]
    assert rules.extra_key_patterns == ("^internal_",)


def test_value_patterns_resume_after_an_overlapping_match() -> None:
    # "AB" wins at 0; "B1" overlapped it, so that pattern is searched again after it: "B2" is found.
    # On a tie the earlier pattern wins ("AB" over "A."), as in one alternation of all patterns.
    scrubber, seen = _recording_scrubber(
        PrivacyRules(value_patterns={"ab": "AB", "a_any": "A.", "b_digit": "B[0-9]"})
    )
    assert scrubber.scrub_value("note", "AB1 B2 AC") == ("[REDACTED]1 [REDACTED] [REDACTED]", ("note",))
    assert [(match.pattern, match.value) for match in seen] == [
        ("ab", "AB"),
        ("b_digit", "B2"),
        ("a_any", "AC"),
    ]


def test_a_pattern_that_can_match_empty_text_does_not_stall_the_scan() -> None:
    # r"\b" passes the empty-string check ("" has no word boundary) but matches empty text inside words.
    scrubber = Scrubber(PrivacyRules(extra_value_patterns=[r"\b"]))
    assert scrubber.scrub_value("note", "mail bob@example.com") == ("mail [REDACTED]", ("note",))


def test_key_patterns_that_cannot_be_combined_raise_at_construction() -> None:
    # Each compiles alone, but the scrubber matches keys with one alternation of all key patterns.
    rules = PrivacyRules(extra_key_patterns=["(?P<part>a)", "(?P<part>b)"])
    with pytest.raises(ValueError, match="key_patterns cannot be combined"):
        Scrubber(rules)


def test_pattern_tables_replace_the_defaults() -> None:
    scrubber = Scrubber(PrivacyRules(key_patterns={"pin": "pin"}, value_patterns={}))
    assert scrubber.scrub_value("card_pin", "1234")[0] == REDACTED
    assert scrubber.scrub_value("password", "p")[0] == "p"
    assert scrubber.scrub_value("note", "bob@example.com")[0] == "bob@example.com"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"extra_key_patterns": ["(unclosed"]}, "extra_key_patterns"),
        ({"extra_value_patterns": "ACME"}, "extra_value_patterns"),
        ({"extra_value_patterns": ["(?i)acme"]}, "extra_value_patterns"),
        ({"key_patterns": {"everything": "a*"}}, "key_patterns"),
        ({"value_patterns": ["email"]}, "value_patterns"),
        ({"max_attribute_length": "100"}, "max_attribute_length"),
        ({"max_attribute_length": True}, "max_attribute_length"),
        ({"max_attribute_length": 10}, "max_attribute_length"),
        ({"capture_tools_deny": "charge_card"}, "capture_tools_deny"),
        ({"capture_tools_allow": [""]}, "capture_tools_allow"),
        ({"callback": 42}, "callback"),
    ],
)
def test_bad_explicit_value_raises_naming_the_field(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PrivacyRules(**arguments)
    with pytest.raises(ValueError, match=field):
        PrivacyRules.from_env(**arguments)


def test_from_env_defaults() -> None:
    rules = PrivacyRules.from_env()
    assert rules == PrivacyRules()
    assert rules.max_attribute_length == DEFAULT_MAX_ATTRIBUTE_LENGTH == 4096
    assert rules.key_patterns == DEFAULT_KEY_PATTERNS
    assert (rules.extra_key_patterns, rules.capture_tools_allow, rules.capture_tools_deny) == (
        (),
        None,
        frozenset(),
    )


def test_from_env_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHINZO_REDACT_KEY_PATTERNS, "^internal_, tenant ,")
    monkeypatch.setenv(SHINZO_REDACT_VALUE_PATTERNS, "ACME-[0-9]{6}")
    monkeypatch.setenv(SHINZO_MAX_ATTRIBUTE_LENGTH, "100")
    monkeypatch.setenv(SHINZO_CAPTURE_TOOLS_ALLOW, "search")
    monkeypatch.setenv(SHINZO_CAPTURE_TOOLS_DENY, "charge_card, refund")
    rules = PrivacyRules.from_env()
    assert rules.extra_key_patterns == ("^internal_", "tenant")
    assert rules.extra_value_patterns == ("ACME-[0-9]{6}",)
    assert rules.max_attribute_length == 100
    assert rules.capture_tools_allow == frozenset({"search"})
    assert rules.capture_tools_deny == frozenset({"charge_card", "refund"})


def test_explicit_argument_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHINZO_MAX_ATTRIBUTE_LENGTH, "100")
    monkeypatch.setenv(SHINZO_CAPTURE_TOOLS_DENY, "charge_card")
    rules = PrivacyRules.from_env(max_attribute_length=200, capture_tools_deny=())
    assert (rules.max_attribute_length, rules.capture_tools_deny) == (200, frozenset())
    assert PrivacyRules.from_env(max_attribute_length=None).max_attribute_length is None


@pytest.mark.parametrize(
    ("variable", "raw", "field", "default"),
    [
        (SHINZO_MAX_ATTRIBUTE_LENGTH, "lots", "max_attribute_length", DEFAULT_MAX_ATTRIBUTE_LENGTH),
        (SHINZO_MAX_ATTRIBUTE_LENGTH, "5", "max_attribute_length", DEFAULT_MAX_ATTRIBUTE_LENGTH),
        (SHINZO_REDACT_KEY_PATTERNS, "ok,(unclosed", "extra_key_patterns", ()),
        (SHINZO_REDACT_VALUE_PATTERNS, "x*", "extra_value_patterns", ()),
    ],
)
def test_bad_environment_value_warns_and_falls_back(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    raw: str,
    field: str,
    default: object,
) -> None:
    monkeypatch.setenv(variable, raw)
    with caplog.at_level(logging.WARNING, logger="shinzo_otel.privacy"):
        rules = PrivacyRules.from_env()
    assert getattr(rules, field) == default
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert variable in caplog.records[0].getMessage()


def test_from_env_rejects_unknown_arguments() -> None:
    with pytest.raises(TypeError):
        PrivacyRules.from_env(max_attribute_lenght=10)  # type: ignore[call-arg]
