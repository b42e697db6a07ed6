"""Completion response bodies read into replies: the first choice of one, or one outcome per prompt of a
batched completions request. Pure; a body we cannot use raises BadReply (retried like an HTTP error)."""

from __future__ import annotations

import json
from typing import Any

from ..core.config import Api
from ..core.sanitize import replace_lone_surrogates
from ..core.teacher_records import TeacherReply
from .retry import EMPTY_CHOICES, MALFORMED, BadReply

def read_reply(content: bytes, api: Api, seconds: float) -> TeacherReply:
    """The first choice of a completion body; BadReply when the body is not one."""
    data, choices = _parse_body(content)
    text, finish = _choice_text(choices[0], api)
    usage = data.get("usage") or {}
    return TeacherReply(text=text, finish_reason=finish, prompt_tokens=usage.get("prompt_tokens") or 0,
                        completion_tokens=usage.get("completion_tokens") or 0, seconds=seconds)


def read_batch(content: bytes, prompt_chars: list[int], seconds: float) -> list[TeacherReply | Exception]:
    """One outcome per prompt of a completions batch, from the choice with that prompt's index.

    The body's token counts cover the batch: each prompt gets a share in proportion to its
    prompt's and its reply's length, and the shares add up to the totals, so budgets stay exact.
    """
    data, choices = _parse_body(content)
    by_index: dict[int, object] = {}
    for position, choice in enumerate(choices):
        index = choice.get("index", position) if isinstance(choice, dict) else position
        by_index.setdefault(index if isinstance(index, int) else position, choice)
    read: list[tuple[str, str | None] | BadReply] = []
    for index in range(len(prompt_chars)):
        if index not in by_index:
            read.append(BadReply(f"the server answered no choice for prompt {index} of the batch", EMPTY_CHOICES))
            continue
        try:
            read.append(_choice_text(by_index[index], "completions"))
        except BadReply as err:
            read.append(err)
    usage = data.get("usage") or {}
    answered = [(chars, item) for chars, item in zip(prompt_chars, read) if not isinstance(item, BadReply)]
    prompt_shares = iter(_shares(usage.get("prompt_tokens"), [chars for chars, _ in answered]))
    completion_shares = iter(_shares(usage.get("completion_tokens"), [len(text) + 1 for _, (text, _) in answered]))
    outcomes: list[TeacherReply | Exception] = []
    for item in read:
        if isinstance(item, BadReply):
            outcomes.append(item)
        else:
            outcomes.append(TeacherReply(text=item[0], finish_reason=item[1], prompt_tokens=next(prompt_shares),
                                         completion_tokens=next(completion_shares), seconds=seconds))
    return outcomes


def _parse_body(content: bytes) -> tuple[dict[str, Any], list[Any]]:
    try:
        data = json.loads(content)
        choices = data.get("choices")
    except (ValueError, AttributeError):
        raise BadReply("the server answered with malformed JSON", MALFORMED) from None
    if not choices:
        raise BadReply("the server answered with no choices", EMPTY_CHOICES)
    if not isinstance(choices, list):
        raise BadReply("the server answered with a choice of the wrong shape", MALFORMED)
    return data, choices


def _choice_text(choice: Any, api: Api) -> tuple[str, str | None]:
    """(text, finish_reason) of one choice; BadReply when it has the wrong shape."""
    try:
        # JSON escapes can carry lone surrogates ("\ud800"), which no UTF-8 writer (SQLite, files) accepts.
        text = replace_lone_surrogates((choice["message"]["content"] if api == "chat" else choice["text"]) or "")
        finish = choice.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            raise TypeError(finish)
        return text, replace_lone_surrogates(finish) if finish else finish
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        raise BadReply("the server answered with a choice of the wrong shape", MALFORMED) from None


def _shares(total: Any, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainders), summing to `total` exactly."""
    total = total if isinstance(total, int) and total > 0 else 0
    if not any(weights):
        weights = [1] * len(weights)
    exact = [total * weight / sum(weights) for weight in weights]
    shares = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: shares[i] - exact[i])[: total - sum(shares)]:
        shares[i] += 1
    return shares
