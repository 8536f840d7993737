"""The RE2 prefilter never changes what the scrubber redacts (shinzo_otel/_prefilter.py).

The reference is the same scrubber with every pattern followed by an empty lookahead `(?=)`: the
same language for `re`, but RE2 rejects lookarounds, so no pattern is screened and every text is
searched (and every JSON text parsed) as before the prefilter existed. Generated texts and JSON
documents mix the secrets of the privacy tests, secret-looking keys, JSON escapes, vertical tabs,
non-ASCII characters and lone surrogates, which are the edges the prefilter treats specially.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan

from shinzo_otel._prefilter import Prefilter
from shinzo_otel.privacy import DEFAULT_KEY_PATTERNS, DEFAULT_VALUE_PATTERNS, REDACTED, PrivacyRules, Scrubber
from tests.test_privacy import KEY_EXAMPLES, MORE_VALUE_EXAMPLES, VALUE_EXAMPLES

ARGUMENTS = "gen_ai.tool.call.arguments"
PIECES = [
    *VALUE_EXAMPLES.values(),
    *(text for _, text, _ in MORE_VALUE_EXAMPLES),
    *KEY_EXAMPLES.values(),
    " ",
    "note",
    "4111",
    "Bearer",
    "=",
    ":",
    '"',
    "\\",
    "\n",
    "\x0b",
    "é",
    "\ud800",
    "{",
    "[",
]
KEYS = [*KEY_EXAMPLES.values(), "text", "type", "content", "author", "max_tokens", ":password", "a b"]

texts = st.lists(st.sampled_from(PIECES), max_size=6).map("".join)
documents = st.recursive(
    st.one_of(texts, st.integers(min_value=-(10**20), max_value=10**20), st.booleans(), st.none()),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | texts, children, max_size=4)
    ),
    max_leaves=12,
)


def _unscreenable(table: dict[str, str]) -> dict[str, str]:
    return {name: f"(?:{regex})(?=)" for name, regex in table.items()}


SCRUBBER = Scrubber()
REFERENCE = Scrubber(
    PrivacyRules(
        key_patterns=_unscreenable(dict(DEFAULT_KEY_PATTERNS)),
        value_patterns=_unscreenable(dict(DEFAULT_VALUE_PATTERNS)),
    )
)
_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(texts)
def test_text_is_scrubbed_as_without_the_prefilter(text: str) -> None:
    assert SCRUBBER.scrub_value("message", text) == REFERENCE.scrub_value("message", text)


@_SETTINGS
@given(documents, st.sampled_from([(",", ":"), (", ", ": ")]), st.booleans())
def test_json_is_scrubbed_as_without_the_prefilter(
    document: Any, separators: tuple[str, str], ensure_ascii: bool
) -> None:
    text = json.dumps(document, separators=separators, ensure_ascii=ensure_ascii)
    assert SCRUBBER.scrub_value(ARGUMENTS, text) == REFERENCE.scrub_value(ARGUMENTS, text)


@_SETTINGS
@given(
    st.dictionaries(
        st.sampled_from([ARGUMENTS, "gen_ai.tool.call.result", "message", "note", "mcp.method.name"]),
        st.one_of(texts, documents.map(json.dumps), st.integers(), st.booleans()),
        max_size=5,
    )
)
@example({ARGUMENTS: json.dumps({"note": "Bearer\x0babcdef0123456789abcdef"}), "message": "fine"})
def test_a_span_is_scrubbed_as_without_the_prefilter(attributes: dict[str, Any]) -> None:
    # The scrubber screens all the texts of a span in one pass; the reference searches each one.
    span = ReadableSpan("tools/call note", attributes={"gen_ai.tool.name": "note", **attributes})
    scrubbed, reference = SCRUBBER.scrub_span(span), REFERENCE.scrub_span(span)
    assert dict(scrubbed.attributes or {}) == dict(reference.attributes or {})
    assert (scrubbed is span) == (reference is span)


@_SETTINGS
@given(texts)
def test_every_value_pattern_that_matches_is_a_candidate(text: str) -> None:
    prefilter = Prefilter(list(DEFAULT_VALUE_PATTERNS.values()), [])
    candidates = prefilter.candidates(text)
    for index, regex in enumerate(DEFAULT_VALUE_PATTERNS.values()):
        if re.search(regex, text, re.ASCII):
            assert index in candidates, (list(DEFAULT_VALUE_PATTERNS)[index], text)


def test_a_text_without_secrets_has_no_candidates_and_no_key() -> None:
    prefilter = Prefilter(list(DEFAULT_VALUE_PATTERNS.values()), list(DEFAULT_KEY_PATTERNS.values()))
    weather = '{"content":[{"type":"text","text":"sunny, 21 C"}],"isError":false}'
    assert prefilter.screen(weather) == ((), False)


@pytest.mark.parametrize("key", KEY_EXAMPLES.values())
def test_a_secret_key_is_reported_wherever_its_anchors_were(key: str) -> None:
    prefilter = Prefilter(list(DEFAULT_VALUE_PATTERNS.values()), list(DEFAULT_KEY_PATTERNS.values()))
    assert prefilter.screen(json.dumps({key: None, "other": 1}))[1]


@pytest.mark.parametrize(
    "regex",
    [r"secret$", r"^secret", r"\Asecret", r"secret(?=x)", r"se{,2}cret", r"[:x]secret"],
    ids=["dollar", "caret", "A", "lookahead", "open repeat", "posix class"],
)
def test_patterns_re2_reads_differently_are_always_searched(regex: str) -> None:
    rules = PrivacyRules(value_patterns={"custom": regex})
    prefilter = Prefilter([regex], [])
    assert prefilter.candidates("nothing to see") == (0,)
    # and the scrubber still applies them (`re` semantics: "$" also before a final newline)
    if regex == r"secret$":
        assert Scrubber(rules).scrub_value("message", "my secret\n")[0] == f"my {REDACTED}\n"


def test_vertical_tab_and_lone_surrogate_texts_are_searched_with_every_pattern() -> None:
    prefilter = Prefilter(list(DEFAULT_VALUE_PATTERNS.values()), [])
    every = tuple(range(len(DEFAULT_VALUE_PATTERNS)))
    assert prefilter.candidates("Bearer\x0babcdef0123456789abcdef") == every
    assert prefilter.candidates("bob@example.com \ud800") == every
    assert SCRUBBER.scrub_value("message", "Bearer\x0babcdef0123456789abcdef")[0] == REDACTED
