"""Batch input files (the Batch API's 50,000-request and 200 MB limits) and result lines, as the Batch API and
vllm run-batch write them."""

from __future__ import annotations

import json

import pytest

from selfinstruct.core.config import SELF_INSTRUCT_INSTANCES
from selfinstruct.core.errors import TeacherError
from selfinstruct.core.prices import BATCH_DISCOUNT, ModelPrice, price_for
from selfinstruct.core.teacher_records import TeacherReply, TeacherRequest
from selfinstruct.teacher.batch_files import (
    ENDPOINTS, MAX_BYTES, MAX_REQUESTS, InputLine, LineFailure, input_line, read_output, split_input,
)
from selfinstruct.teacher.openai_compat import request_body


def _lines(count: int, prompt: str = "Name a fruit.") -> list[InputLine]:
    request = TeacherRequest(stage="instances", prompt=prompt, decoding=SELF_INSTRUCT_INSTANCES)
    body = request_body(request, "chat", "gpt-4o-mini")
    return [input_line(f"key-{number}", ENDPOINTS["chat"], body) for number in range(count)]


def test_the_limits_are_the_batch_apis() -> None:
    assert MAX_REQUESTS == 50_000
    assert MAX_BYTES == 200 * 1024 * 1024


def test_an_input_line_is_a_post_to_the_endpoint_with_the_request_body() -> None:
    [line] = _lines(1)
    decoded = json.loads(line.data)
    assert line.data.endswith(b"\n") and line.data.count(b"\n") == 1
    assert decoded["custom_id"] == "key-0" and decoded["method"] == "POST"
    assert decoded["url"] == "/v1/chat/completions"
    assert decoded["body"]["messages"] == [{"role": "user", "content": "Name a fruit."}]
    assert decoded["body"]["model"] == "gpt-4o-mini" and decoded["body"]["stop"] == list(SELF_INSTRUCT_INSTANCES.stop)


def test_fifty_thousand_and_one_requests_make_two_files() -> None:
    files = split_input(_lines(MAX_REQUESTS + 1))
    assert [len(lines) for lines in files] == [MAX_REQUESTS, 1]
    assert files[1][0].custom_id == f"key-{MAX_REQUESTS}"


def test_files_stay_under_200_mb() -> None:
    # 60 lines of about 3.5 MB (prompts of 3.5 million characters): 58 fit in 200 MB, not 60.
    lines = _lines(60, prompt="x" * 3_500_000)
    files = split_input(lines)
    sizes = [sum(len(line.data) for line in chunk) for chunk in files]
    assert len(files) == 2 and all(size <= MAX_BYTES for size in sizes)
    assert sizes[0] + len(files[1][0].data) > MAX_BYTES, "the first file is as full as it can be"
    assert [line.custom_id for chunk in files for line in chunk] == [line.custom_id for line in lines]


@pytest.mark.parametrize(("count", "max_requests", "max_bytes", "expected"), [
    (0, 10, 10_000, []),
    (5, 2, 10_000, [2, 2, 1]),
    (5, 10, 10_000, [5]),
])
def test_split_by_count(count: int, max_requests: int, max_bytes: int, expected: list[int]) -> None:
    assert [len(chunk) for chunk in split_input(_lines(count), max_requests, max_bytes)] == expected


def test_a_line_larger_than_a_file_is_an_error() -> None:
    [line] = _lines(1)
    with pytest.raises(TeacherError, match="over the 100 bytes"):
        split_input([line], max_bytes=100)


def _completion(text: str, finish: str = "stop") -> dict[str, object]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


def test_result_lines_of_the_batch_api_and_of_vllm_run_batch() -> None:
    lines = [
        # The Batch API's output line.
        {"id": "batch_req_1", "custom_id": "a", "response": {"status_code": 200, "request_id": "r1",
                                                             "body": _completion("Apple")}, "error": None},
        # vllm run-batch's (its request ids are vllm-...).
        {"id": "vllm-2", "custom_id": "b", "response": {"status_code": 200, "request_id": "vllm-batch-2",
                                                        "body": _completion("Pear", "length")}, "error": None},
        # The Batch API's error file: a request that failed with a server error, one that never ran.
        {"id": "batch_req_3", "custom_id": "c", "response": {"status_code": 500, "request_id": "r3",
                                                             "body": {"error": {"message": "boom"}}}, "error": None},
        {"id": "batch_req_4", "custom_id": "d", "response": None,
         "error": {"code": "batch_expired", "message": "This request could not be executed before the window"}},
        # vllm run-batch's answer to a request it cannot serve (a 400 with vLLM's ErrorResponse body).
        {"id": "vllm-5", "custom_id": "e", "response": {"status_code": 400, "request_id": "vllm-batch-5",
                                                        "body": {"object": "error", "message": "bad request",
                                                                 "type": "BadRequestError", "code": 400}},
         "error": None},
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    outcomes = read_output(content + b'{"id": "cut", "custom_id": "f", "respo', "chat", seconds=0.5)
    assert outcomes["a"] == TeacherReply(text="Apple", finish_reason="stop", prompt_tokens=7, completion_tokens=3,
                                         seconds=0.5)
    assert isinstance(outcomes["b"], TeacherReply) and outcomes["b"].finish_reason == "length"
    assert outcomes["c"] == LineFailure("server_error", "HTTP 500: boom", retryable=True)
    assert outcomes["d"] == LineFailure("timeout", "batch_expired", retryable=True)
    assert outcomes["e"] == LineFailure("client_error", "HTTP 400: bad request", retryable=False)
    assert "f" not in outcomes, "a line cut off while the file was written counts as unanswered"


def test_a_200_line_without_a_usable_choice_is_malformed_and_retried() -> None:
    line = {"custom_id": "a", "response": {"status_code": 200, "body": {"choices": []}}, "error": None}
    outcome = read_output(json.dumps(line).encode(), "chat")["a"]
    assert isinstance(outcome, LineFailure) and outcome.retryable and outcome.error_class == "empty_choices"


def test_batch_price_is_half_the_list_price() -> None:
    table = {"m": ModelPrice(input=2.0, output=8.0)}
    assert BATCH_DISCOUNT == 0.5
    assert price_for("m", "openai", table, batch=True) == ModelPrice(input=1.0, output=4.0)
    assert price_for("m-2025-01-01", "openai", table, batch=True) == ModelPrice(input=1.0, output=4.0)
    assert price_for("m", "openai", table) == ModelPrice(input=2.0, output=8.0)
    assert price_for("unknown", "openai", table, batch=True) is None
    assert price_for("m", "vllm", table, batch=True) == ModelPrice(input=0.0, output=0.0)
