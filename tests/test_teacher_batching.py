"""Prompts batched into completions requests: the fake server serves a list as separate sequences, the teacher
sends what is ready together, each prompt gets its own choice and its share of the tokens, and a grow on
batched requests survives the same faults as one on single ones."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest

from selfinstruct.core.config import SELF_INSTRUCT_CLASSIFY, SELF_INSTRUCT_INSTANCES, build_config
from selfinstruct.core.errors import ConfigError
from selfinstruct.grow import grow
from selfinstruct.generate.prompts import render_classify_prompt, render_instance_prompt
from selfinstruct.core.store import Store
from selfinstruct.core.teacher_records import TeacherReply, TeacherRequest
from selfinstruct.teacher.batching import PromptBatcher
from selfinstruct.teacher.openai_compat import OpenAITeacher, _read_batch
from selfinstruct.teacher.retry import EMPTY_CHOICES, MALFORMED, BadReply
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

INSTRUCTIONS = [f"Tell whether review number {i} of the list below is positive or negative." for i in range(20)]


def classify(instruction: str) -> TeacherRequest:
    return TeacherRequest(stage="classify", prompt=render_classify_prompt(instruction), decoding=SELF_INSTRUCT_CLASSIFY)


def teacher_for(server: FakeTeacher, **options: object) -> OpenAITeacher:
    return OpenAITeacher(base_urls=[server.base_url], model="fake-teacher", api="completions", **options)


async def ask_all(teacher: OpenAITeacher, requests: list[TeacherRequest]) -> list[TeacherReply]:
    try:
        return list(await asyncio.gather(*(teacher.complete(r) for r in requests)))
    finally:
        await teacher.close()


# --- the fake server ----------------------------------------------------------------------------------------


def test_the_fake_server_serves_each_prompt_of_a_list_as_its_own_sequence() -> None:
    with FakeTeacher(FakeTeacherConfig(latency=0.05, capacity=2)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        prompts = [render_classify_prompt(text) for text in INSTRUCTIONS[:5]]
        response = client.completions.create(model="fake-teacher", prompt=prompts, max_tokens=4, temperature=0)
        alone = client.completions.create(model="fake-teacher", prompt=prompts[3], max_tokens=4, temperature=0)
        stats = server.stats()
    assert [choice.index for choice in response.choices] == [0, 1, 2, 3, 4]
    assert response.choices[3].text == alone.choices[0].text  # the same answer as asked alone
    assert (stats["requests"], stats["prompts"]) == (2, 6)
    assert stats["max_concurrent"] == 2 and stats["max_waiting"] >= 3  # a list takes one slot per prompt
    assert response.usage.prompt_tokens == sum(len(p.split()) for p in prompts)


# --- the teacher ---------------------------------------------------------------------------------------------


def test_prompts_ready_together_share_requests_and_get_the_replies_they_would_get_alone() -> None:
    requests = [classify(text) for text in INSTRUCTIONS]
    with FakeTeacher(FakeTeacherConfig(latency=0.05)) as server:
        batched = asyncio.run(ask_all(teacher_for(server, batch_prompts=8, concurrency=64), requests))
        stats = server.stats()
        single = asyncio.run(ask_all(teacher_for(server, concurrency=64), requests))
    assert (stats["requests"], stats["prompts"]) == (3, 20)  # 8 + 8 + 4
    assert [r.text for r in batched] == [r.text for r in single]
    # Each reply's token share: the batch totals are split, never duplicated or lost.
    assert sum(r.completion_tokens for r in batched) == stats["completion_tokens"]
    assert sum(r.prompt_tokens for r in batched) == sum(len(r.prompt.split()) for r in requests)


def test_different_decodings_never_share_a_request_and_concurrency_counts_prompts() -> None:
    instance = TeacherRequest(stage="instances", prompt=render_instance_prompt(INSTRUCTIONS[0], True),
                              decoding=SELF_INSTRUCT_INSTANCES)
    requests = [classify(text) for text in INSTRUCTIONS[:6]] + [instance]
    with FakeTeacher(FakeTeacherConfig(latency=0.05)) as server:
        replies = asyncio.run(ask_all(teacher_for(server, batch_prompts=32, concurrency=4), requests))
        stats = server.stats()
    assert len(replies) == 7 and stats["prompts"] == 7
    assert stats["max_concurrent"] <= 4  # at most `concurrency` prompts in flight, batched or not
    assert stats["requests"] >= 3  # 6 classify prompts through 4 slots, and the instance prompt alone


def test_batching_needs_the_completions_api() -> None:
    with pytest.raises(ConfigError, match="batch_prompts above 1 needs api = completions"):
        build_config({"backend": "openai", "api": "chat", "batch_prompts": 4})
    assert build_config({"backend": "openai"}).batch_prompts == 1  # chat: one conversation per request
    assert build_config({"backend": "openai", "api": "completions"}).batch_prompts == 32
    vllm = build_config({"backend": "vllm", "base_url": ["http://x/v1"]})
    assert (vllm.api, vllm.batch_prompts) == ("completions", 32)
    cpu = build_config({"backend": "cpu"})
    assert (cpu.api, cpu.batch_prompts) == ("completions", 1)  # llama.cpp serves one prompt at a time
    with pytest.raises(ConfigError, match="llama_cpp.server answers one prompt per request"):
        build_config({"backend": "cpu", "batch_prompts": 2})


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        ([{"index": 1, "text": "b"}, {"index": 0, "text": "a"}], ["a", "b"]),  # by index, not position
        ([{"index": 0, "text": "a"}], ["a", EMPTY_CHOICES]),  # no choice for prompt 1
        ([{"index": 0, "text": "a"}, {"index": 1, "message": "?"}], ["a", MALFORMED]),  # wrong shape
    ],
)
def test_each_prompt_of_a_batch_gets_its_own_outcome(choices: list[dict], expected: list[str]) -> None:
    body = json.dumps({"choices": choices, "usage": {"prompt_tokens": 10, "completion_tokens": 7}}).encode()
    outcomes = _read_batch(body, [30, 10], 0.5)
    got = [o.text if isinstance(o, TeacherReply) else o.error_class for o in outcomes]
    assert got == expected
    replies = [o for o in outcomes if isinstance(o, TeacherReply)]
    assert sum(r.prompt_tokens for r in replies) == 10 and sum(r.completion_tokens for r in replies) == 7


@pytest.mark.parametrize("body", [b'{"choices": [', b'{"choices": []}', b'{"choices": {"0": 1}}'])
def test_a_body_without_usable_choices_fails_the_whole_batch(body: bytes) -> None:
    with pytest.raises(BadReply):
        _read_batch(body, [10, 10], 0.1)


def test_an_asker_that_gives_up_leaves_the_others_their_replies() -> None:
    sent: list[list[int]] = []

    async def send(requests: list[TeacherRequest]) -> list[TeacherReply | Exception]:
        sent.append([r.sample for r in requests])
        await asyncio.sleep(0.01)
        return [TeacherReply(text=f"reply {r.sample}") for r in requests]

    async def scenario() -> list[object]:
        batcher = PromptBatcher(send, size=8)
        asks = [asyncio.ensure_future(batcher.submit(classify("x").model_copy(update={"sample": i}))) for i in range(3)]
        await asyncio.sleep(0)  # all three are queued; their batch leaves at the loop's next turn
        asks[1].cancel()
        results = await asyncio.gather(*asks, return_exceptions=True)
        await batcher.close()
        return results

    first, second, third = asyncio.run(scenario())
    assert isinstance(second, asyncio.CancelledError)
    assert (first.text, third.text) == ("reply 0", "reply 2")
    assert sent == [[0, 2]]  # one request, without the prompt nobody waits for


def test_a_failed_batch_fails_each_of_its_prompts() -> None:
    async def send(requests: list[TeacherRequest]) -> list[TeacherReply | Exception]:
        raise BadReply("the server answered with malformed JSON")

    async def scenario() -> list[object]:
        batcher = PromptBatcher(send, size=8)
        return await asyncio.gather(*(batcher.submit(classify(t)) for t in INSTRUCTIONS[:3]), return_exceptions=True)

    assert [type(outcome) for outcome in asyncio.run(scenario())] == [BadReply] * 3


# --- a whole grow --------------------------------------------------------------------------------------------

CLASS_OF_FAULT = {"429": "rate_limited", "500": "server_error", "503": "server_error", "drop": "connection",
                  "malformed": "malformed", "empty_choices": "empty_choices"}
FAULTY = FakeTeacherConfig(seed=8, rate_429=0.06, rate_500=0.06, rate_503=0.05, rate_drop=0.05,
                           rate_malformed=0.04, rate_empty_choices=0.04, retry_after=0.05)


def test_a_batched_grow_under_30_percent_faults_reaches_its_target_and_counts_every_prompt(tmp_path: Path) -> None:
    with FakeTeacher(FAULTY) as teacher:
        config = build_config({"backend": "openai", "api": "completions", "batch_prompts": 8,
                               "base_url": [teacher.base_url], "out": tmp_path, "target": 30, "max_attempts": 8,
                               "pipeline_rounds": 1, "concurrency": 16})
        result = grow(config)
        stats = teacher.stats()
    assert result.accepted == 30 and result.stopped == "target reached"
    assert stats["prompts"] > stats["requests"]  # prompts did travel together
    injected = {CLASS_OF_FAULT[fault] for fault, count in stats["faults"].items() if count and fault in CLASS_OF_FAULT}
    assert len(injected) >= 4 and set(result.usage.errors) == injected  # every kind injected was seen
    # A failed request fails each prompt it carried: every prompt attempt the server saw is accounted for.
    answered = result.usage.requests + result.usage.failed
    assert stats["prompts"] == answered + result.usage.retried
    with Store.open(tmp_path) as store:
        assert store.count("replies") == result.usage.requests


# --- per-prompt timeouts inside a batch ---------------------------------------------------------------------


class SlowSequenceServer:
    """A completions server whose prompts containing "SLOW" take `slow_seconds`; the rest answer at once.
    A list waits for its slowest prompt, as a batching server's request does. Records every list it got."""

    def __init__(self, slow_seconds: float) -> None:
        self.slow_seconds = slow_seconds
        self.received: list[list[str]] = []

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        from starlette.requests import Request
        from starlette.responses import JSONResponse

        request = Request(scope, receive)  # type: ignore[arg-type]
        if scope["path"].endswith("/models"):
            await JSONResponse({"object": "list", "data": [{"id": "m", "object": "model"}]})(scope, receive, send)
            return
        body = await request.json()
        prompts = [body["prompt"]] if isinstance(body["prompt"], str) else body["prompt"]
        self.received.append(prompts)
        if any("SLOW" in prompt for prompt in prompts):
            await asyncio.sleep(self.slow_seconds)
        choices = [{"index": i, "text": f"answer to {p}", "finish_reason": "stop"} for i, p in enumerate(prompts)]
        usage = {"prompt_tokens": 10 * len(prompts), "completion_tokens": 3 * len(prompts)}
        await JSONResponse({"object": "text_completion", "choices": choices, "usage": usage})(scope, receive, send)


def _batch_of_32(slow: bool) -> list[TeacherRequest]:
    prompts = [f"prompt {i}" + (" SLOW" if slow and i == 7 else "") for i in range(32)]
    return [TeacherRequest(stage="classify", prompt=p, decoding=SELF_INSTRUCT_CLASSIFY) for p in prompts]


async def _ask_each(teacher: OpenAITeacher, requests: list[TeacherRequest]) -> list[object]:
    try:
        return list(await asyncio.gather(*(teacher.complete(r) for r in requests), return_exceptions=True))
    finally:
        await teacher.close()


def _teacher(url: str, **options: object) -> OpenAITeacher:
    return OpenAITeacher(base_urls=[url], model="m", api="completions", batch_prompts=32, concurrency=32,
                         adaptive=False, timeout=1.0, **options)


def test_a_batch_gets_more_time_than_one_prompt_so_one_slow_sequence_resends_nothing() -> None:
    from fakes.serve import serve_asgi

    # 32 prompts may take 1 + 31/16 ~ 2.9 timeouts: a sequence of 2 s fits, though one prompt's timeout is 1 s.
    server = SlowSequenceServer(slow_seconds=2.0)
    with serve_asgi(server) as url:
        replies = asyncio.run(_ask_each(_teacher(url), _batch_of_32(slow=True)))
    assert all(isinstance(reply, TeacherReply) for reply in replies)
    assert [len(prompts) for prompts in server.received] == [32]  # one request, nothing sent again


def test_a_timed_out_batch_is_retried_prompt_by_prompt_so_the_slow_one_fails_alone() -> None:
    from selfinstruct.teacher.openai_compat import TeacherRequestFailed
    from fakes.serve import serve_asgi

    server = SlowSequenceServer(slow_seconds=6.0)  # longer than the batch's ~2.9 s: the batch times out
    with serve_asgi(server, timeout_graceful_shutdown=1) as url:
        replies = asyncio.run(_ask_each(_teacher(url, retry_budget=4.0), _batch_of_32(slow=True)))
    failed = [i for i, reply in enumerate(replies) if not isinstance(reply, TeacherReply)]
    assert failed == [7] and isinstance(replies[7], TeacherRequestFailed)
    assert replies[7].error_class == "timeout"
    batches = [prompts for prompts in server.received if len(prompts) > 1]
    assert len(batches) == 1  # the timed-out batch was not sent again as a batch
    alone = [prompts[0] for prompts in server.received if len(prompts) == 1]
    assert sorted(set(alone)) == sorted(f"prompt {i}" + (" SLOW" if i == 7 else "") for i in range(32))
    assert all(alone.count(f"prompt {i}") == 1 for i in range(32) if i != 7)  # each fast prompt once more, alone
