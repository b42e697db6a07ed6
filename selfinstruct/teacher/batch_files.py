"""Batch input and output files: one JSON line per request, matched by `custom_id` (the request's cache key).

The OpenAI Batch API and `vllm run-batch` read the same input lines and write the same output lines
(`{"custom_id", "response": {"status_code", "body"}, "error"}`). Pure: bytes in, records out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.config import Api
from ..core.errors import TeacherError
from ..core.teacher_records import TeacherReply
from .openai_compat import _read_reply
from .retry import CLIENT_ERROR, MALFORMED, OTHER, RATE_LIMITED, RETRYABLE_STATUS, SERVER_ERROR, TIMEOUT, BadReply

log = logging.getLogger(__name__)

# The Batch API's limits per input file (https://platform.openai.com/docs/guides/batch).
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
COMPLETION_WINDOW = "24h"
ENDPOINTS: dict[str, str] = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
# Per-line errors without an HTTP status: the batch ran out of time or was cancelled before the line ran.
_UNRUN_LINE_CODES = frozenset({"batch_expired", "batch_cancelled"})


@dataclass(frozen=True)
class InputLine:
    """One request of a batch input file."""

    custom_id: str
    data: bytes  # the JSON line, newline included


@dataclass(frozen=True)
class LineFailure:
    """A request the batch answered with an error (or not at all)."""

    error_class: str
    message: str
    retryable: bool


LineOutcome = TeacherReply | LineFailure


def input_line(custom_id: str, endpoint: str, body: dict[str, Any]) -> InputLine:
    line = {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}
    return InputLine(custom_id, json.dumps(line, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")


def split_input(lines: Sequence[InputLine], max_requests: int = MAX_REQUESTS,
                max_bytes: int = MAX_BYTES) -> list[list[InputLine]]:
    """The lines in order, cut into files of at most `max_requests` lines and `max_bytes` bytes each."""
    files: list[list[InputLine]] = []
    current: list[InputLine] = []
    size = 0
    for line in lines:
        if len(line.data) > max_bytes:
            raise TeacherError(f"request {line.custom_id[:12]} is {len(line.data):,} bytes as a batch line, over "
                               f"the {max_bytes:,} bytes a batch file may hold")
        if current and (len(current) >= max_requests or size + len(line.data) > max_bytes):
            files.append(current)
            current, size = [], 0
        current.append(line)
        size += len(line.data)
    if current:
        files.append(current)
    return files


def read_output(content: bytes, api: Api, seconds: float = 0.0) -> dict[str, LineOutcome]:
    """Outcome by custom_id from an output or error file. Unreadable lines are skipped (their requests
    count as unanswered); a line cut off by a crash while the file was written is one of them."""
    outcomes: dict[str, LineOutcome] = {}
    skipped = 0
    for raw in content.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            custom_id = line["custom_id"]
            if not isinstance(custom_id, str):
                raise TypeError(custom_id)
        except (ValueError, KeyError, TypeError):
            skipped += 1
            continue
        outcomes[custom_id] = _line_outcome(line, api, seconds)
    if skipped:
        log.warning("%d unreadable line(s) in a batch result file: their requests go into a later batch", skipped)
    return outcomes


def _line_outcome(line: dict[str, Any], api: Api, seconds: float) -> LineOutcome:
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    error = line.get("error")
    if response is not None and response.get("status_code") == 200 and isinstance(response.get("body"), dict):
        try:
            return _read_reply(json.dumps(response["body"]).encode(), api, seconds)
        except BadReply as err:
            return LineFailure(err.error_class, str(err), retryable=True)
    if response is not None and isinstance(response.get("status_code"), int):
        status = response["status_code"]
        return LineFailure(_status_class(status), f"HTTP {status}: {_message(response.get('body'))}",
                           retryable=status in RETRYABLE_STATUS or status >= 500)
    code = error.get("code") if isinstance(error, dict) else None
    if code in _UNRUN_LINE_CODES:
        return LineFailure(TIMEOUT if code == "batch_expired" else OTHER, str(code), retryable=True)
    return LineFailure(CLIENT_ERROR if error else MALFORMED, _message({"error": error}) or "no response",
                       retryable=not error)


def _status_class(status: int) -> str:
    if status == 429:
        return RATE_LIMITED
    if status == 408:
        return TIMEOUT
    return SERVER_ERROR if status >= 500 else CLIENT_ERROR


def _message(body: object) -> str:
    """The error message of a response body, short; never the request (it may hold the prompt)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):  # vLLM's ErrorResponse
        return body["message"][:200]
    return str(error or "")[:200]
