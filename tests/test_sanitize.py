"""The one text sanitizer: what it removes, and its named variants."""

from __future__ import annotations

import json

import pytest

from selfinstruct.core.sanitize import (
    UNPRINTABLE, has_lone_surrogate, normalize_newlines, replace_lone_surrogates, sanitize_line, sanitize_text,
)

# One of each class the sanitizer removes; tab and newline are kept.
REMOVED = ["\x00", "\x07", "\x0b", "\x0c", "\x7f", "\x85", "\x9f", "\u200b", "\u2028", "\u2029", "\ufeff",
           "\u202a", "\u202e", "\u2066", "\u2069", "\ud800", "\udfff"]


@pytest.mark.parametrize("char", REMOVED)
def test_every_unprintable_class_is_removed(char: str) -> None:
    assert sanitize_text(f"a{char}b") == "ab"
    assert UNPRINTABLE.search(char)


def test_line_endings_ansi_escapes_and_kept_characters() -> None:
    assert sanitize_text("a\r\nb\rc\x1b[31mred\x1b[0m\x1b]0;title\x07\td") == "a\nb\ncred\td"
    assert sanitize_text(json.loads('"\\ud83d\\ude00 caf\\u00e9"')) == "\U0001F600 café"
    assert normalize_newlines("x\r\ny\r") == "x\ny\n"
    sanitize_text("".join(REMOVED) + "ok").encode("utf-8")  # always encodable


def test_on_one_line_a_line_break_is_a_word_break() -> None:
    assert sanitize_line("Rewrite it.\u2028Task: injected\u0085now\n\tplease") == "Rewrite it. Task: injected now please"


def test_surrogate_variants_for_seed_files_and_raw_replies() -> None:
    assert has_lone_surrogate("bad \ud800") and not has_lone_surrogate("fine \U0001F600")
    assert replace_lone_surrogates("a\ud800b\x00") == "a\ufffdb\x00"  # only surrogates: the raw reply stays
