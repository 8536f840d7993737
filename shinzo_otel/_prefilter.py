"""Which privacy patterns can match a text at all: one linear-time pass with RE2 before Python's `re`.

The scrubber searches every string with every value pattern, in Python's backtracking engine. For
patterns without a literal prefix (an email, a card number) that costs a few hundred nanoseconds
per character and pattern: a 4 KiB tool result took milliseconds. `RE2::Set` (google-re2, the
engine the Collector's redaction processor uses too) answers "which of these patterns occur
anywhere in this text" in one pass over it; `re` then searches only those, and a text where none
occurs is not searched at all. The same pass tells whether a key pattern can match an object key of
a JSON text, so that JSON with nothing to redact is neither parsed nor walked.

Exactness: the prefilter may report a pattern that `re` then does not match (RE2 folds case over
Unicode where `re.ASCII` does not), never the reverse. A pattern is left to `re` alone, searched in
every text, when RE2 rejects it (lookarounds, backreferences), when it uses one of the constructs
whose meaning differs between the engines and where RE2 would match less: `$` (`re` also matches
before a final newline), `{,n}` (`re` reads a repetition, RE2 a literal) and `[:` (RE2 reads a POSIX
class, `re` literal characters), or when it is anchored (`^`, `\\A`), so that the answer for a
text also holds for the strings inside it (see `Prefilter.candidates`). Key patterns are screened
with their anchors removed (`^`, `$`, `\\A`, `\\Z` outside character classes): a superset of what
they match in a key, found wherever the key lies in the text. A text holding a vertical tab (in
`re`'s `\\s`, not in RE2's) or a lone surrogate (not encodable as UTF-8) is searched with every
pattern.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import re2

_UNSCREENED_VALUE: Final = re.compile(r"\$|\{,|\[:|(?<!\[)\^|\\A")
"""Constructs that RE2 reads more narrowly than `re`, and anchors (see the module doc)."""
_UNSCREENED_KEY: Final = re.compile(r"\{,|\[:")
_REGEX_TOKEN: Final = re.compile(r"\\.|\[\^?\]?(?:\\.|[^\]])*\]|[\^$]|.", re.DOTALL)
"""One token of a regex: an escape, a character class, an anchor or any other character."""
_ANCHORS: Final = frozenset({"^", "$", "\\A", "\\Z"})
_UNSCREENED_TEXT: Final = "\x0b"


def _without_anchors(regex: str) -> str:
    """`regex` with its anchors outside character classes removed: it matches wherever `regex` does."""
    return "".join(token for token in _REGEX_TOKEN.findall(regex) if token not in _ANCHORS)


class Prefilter:
    """The value patterns that may match a text, by index, and whether a key pattern may.

    Args:
        value_patterns: regular expressions in `re` syntax, searched by the caller with `re.ASCII`.
        key_patterns: regular expressions in `re` syntax, matched by the caller case-insensitively
            against object keys.

    Compiled once; thread-safe (an RE2 set is immutable once compiled).
    """

    def __init__(self, value_patterns: Sequence[str], key_patterns: Sequence[str]) -> None:
        self._all = tuple(range(len(value_patterns)))
        options = re2.Options()
        options.log_errors = False  # a pattern RE2 rejects is simply left to `re`
        regex_set = re2.Set.SearchSet(options)
        screened: list[int] = []  # set index -> value pattern index
        for index, pattern in enumerate(value_patterns):
            if not _UNSCREENED_VALUE.search(pattern) and _add(regex_set, pattern):
                screened.append(index)
        first_key = len(screened)
        keys_screened = True
        for pattern in key_patterns:
            if _UNSCREENED_KEY.search(pattern) or not _add(regex_set, f"(?i:{_without_anchors(pattern)})"):
                keys_screened = (
                    False  # one key pattern left to `re` means every JSON text needs its keys read
                )
                break
        self._unscreened = tuple(index for index in self._all if index not in screened)
        self._screened = tuple(screened)
        self._first_key = first_key
        self._keys_screened = keys_screened
        self._set: re2.Set | None = None
        try:
            regex_set.Compile()
        except re2.error:  # beyond RE2's memory budget: everything goes to `re`
            self._unscreened, self._keys_screened = self._all, False
        else:
            self._set = regex_set

    def candidates(self, text: str) -> tuple[int, ...]:
        """The indices of the value patterns `re` must search in `text` (ascending); `()` when none
        can match.

        A pattern left out cannot match anywhere in `text`, nor in any part of it that lies between
        two non-word characters (or an end of `text`): screened patterns hold no anchor, so a match
        there is a match in `text` too; `\\b` reads the same at such edges. The strings of a JSON
        text without escapes are such parts (between their quotes), and so are its numbers.
        """
        return self.screen(text)[0]

    def screen(self, text: str) -> tuple[tuple[int, ...], bool]:
        """`candidates(text)`, and whether a key pattern may match a part of `text` (for a JSON
        text without escapes: one of its object keys); False only when none can."""
        found = self._match(text)
        if found is None:
            return self._all, True
        keys = not self._keys_screened or (bool(found) and found[-1] >= self._first_key)
        values = [self._screened[position] for position in found if position < self._first_key]
        if not self._unscreened:
            return tuple(values), keys
        return tuple(sorted({*self._unscreened, *values})), keys

    def may_match(self, text: str) -> bool:
        """Whether a value or key pattern may match anywhere in `text`, or in a part of it between
        two non-word characters (as `candidates`); False only when none can."""
        if self._unscreened or not self._keys_screened:
            return True
        found = self._match(text)
        return found is None or bool(found)

    def _match(self, text: str) -> list[int] | None:
        """The set's matching indices, ascending; None when `text` cannot be screened."""
        if self._set is None or _UNSCREENED_TEXT in text:
            return None
        try:
            found = self._set.Match(text)
        except UnicodeEncodeError:
            return None
        return sorted(found) if found else []


def _add(regex_set: re2.Set, pattern: str) -> bool:
    try:
        regex_set.Add(pattern)
    except re2.error:
        return False
    return True
