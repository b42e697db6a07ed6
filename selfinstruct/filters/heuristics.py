"""Cheap checks on an instruction's text, in the spirit of Self-Instruct's filters."""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from ..core.config import FilterConfig
from ..core.records import Instance
from .base import (
    BLACKLIST, KEEP, LEADING_PUNCTUATION, NON_ASCII_START, PROGRAM_PREFIX, TOO_LONG, TOO_SHORT, Verdict, drop,
)

_PROGRAM_PREFIX = re.compile(r"^\s*write\s+a\s+program\b", re.IGNORECASE)


def blacklist_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of any blacklisted word or phrase."""
    alternatives = "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def instruction_checks(config: FilterConfig) -> list[Callable[[str], Verdict]]:
    """The text checks in the order they run; the first drop wins."""
    blacklist = blacklist_pattern(config.blacklist) if config.blacklist else None

    def length(text: str) -> Verdict:
        words = len(text.split())
        if words < config.min_words:
            return drop(TOO_SHORT, f"{words} words")
        if words > config.max_words:
            return drop(TOO_LONG, f"{words} words")
        return KEEP

    def blacklisted(text: str) -> Verdict:
        match = blacklist.search(text) if blacklist else None
        return drop(BLACKLIST, match.group(0).lower()) if match else KEEP

    def program_prefix(text: str) -> Verdict:
        return drop(PROGRAM_PREFIX) if _PROGRAM_PREFIX.match(text) else KEEP

    def first_character(text: str) -> Verdict:
        first = text.lstrip()[:1]
        if first in string.punctuation:
            return drop(LEADING_PUNCTUATION, first)
        if first and not first.isascii() and not config.allow_non_ascii_start:
            return drop(NON_ASCII_START, first)
        return KEEP

    return [length, blacklisted, program_prefix, first_character]


def check_instruction(text: str, checks: list[Callable[[str], Verdict]]) -> Verdict:
    for check in checks:
        verdict = check(text)
        if not verdict.keep:
            return verdict
    return KEEP


def usable_instances(instances: tuple[Instance, ...] | list[Instance]) -> list[Instance]:
    """Instances with a non-blank output, without exact repeats."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for instance in instances:
        key = (instance.input.strip(), instance.output.strip())
        if instance.output.strip() and key not in seen:
            seen.add(key)
            kept.append(instance)
    return kept
