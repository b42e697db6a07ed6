"""The one definition of the characters no stored text may hold, and the few ways of removing them.

Everything the project stores or shows the teacher goes through here: teacher replies (`parse`), demo text in
prompts (`prompts`), seed files (`seeds`, which reject rather than strip) and the raw reply bodies the teacher
client caches (`teacher.openai_compat`).
"""

from __future__ import annotations

import re

# C0/C1 controls (not tab or newline), DEL, zero-width space, line/paragraph separators, BOM, bidi embeddings,
# overrides and isolates (they can make a stored text read differently from what it is), and lone
# surrogates: JSON may carry "\ud800", which no UTF-8 writer (SQLite, our JSON files) can encode.
# CR is in the set too: callers turn CRLF and lone CR into "\n" first, so only a stray CR inside a line is lost.
UNPRINTABLE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# ANSI escape sequences go whole: removing only ESC would leave "[31m" in the text.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
# Characters that break a line for a reader: on one line they are a word break, not nothing.
_LINE_BREAKS = re.compile(r"[\u0085\u2028\u2029]")


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sanitize_text(text: str) -> str:
    """Text without ANSI escapes or unprintable characters, newlines as "\\n", tabs kept.

    The result always encodes as UTF-8, so whatever a teacher sends can be stored and exported.
    """
    return UNPRINTABLE.sub("", _ANSI.sub("", normalize_newlines(text)))


def sanitize_line(text: str) -> str:
    """`sanitize_text` on one line: every run of whitespace, line breaks included, becomes one space."""
    return " ".join(sanitize_text(_LINE_BREAKS.sub(" ", text)).split())


def has_lone_surrogate(text: str) -> bool:
    """True when the text cannot be encoded as UTF-8 (a seed file must then be refused, naming the field)."""
    return LONE_SURROGATE.search(text) is not None


def replace_lone_surrogates(text: str) -> str:
    """Lone surrogates as U+FFFD, all else as it came.

    For raw replies: the cache keeps what the server sent (a later parser re-reads it) but must store it as
    UTF-8; U+FFFD shows where a character was lost.
    """
    return LONE_SURROGATE.sub("\ufffd", text)
