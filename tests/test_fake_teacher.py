"""The fake teacher, driven by the real openai client: replies parse, vary, and fail as configured."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import httpx
import numpy as np
import openai
import pydantic
import pytest
from rapidfuzz import process
from rapidfuzz.distance import LCSseq

from selfinstruct.core.config import FilterConfig
from selfinstruct.filters.heuristics import check_instruction, instruction_checks
from selfinstruct.generate.parse import parse_alpaca_tasks, parse_classification, parse_instances, parse_instructions
from selfinstruct.generate.prompts import (
    render_alpaca_prompt, render_classify_prompt, render_instance_prompt, render_instruction_prompt,
)
from selfinstruct.core.records import Instance, SeedTask
from fakes import FakeTeacher, FakeTeacherConfig

SEEDS = [
    SeedTask(id="s1", instruction="Give three tips for sleeping better.",
             instances=[Instance(output="Keep a regular bedtime.")]),
    SeedTask(id="s2", instruction="Is this movie review positive or negative?", is_classification=True,
             instances=[Instance(input="A dull, overlong film.", output="Negative")]),
    SeedTask(id="s3", instruction="Find the sum of the even numbers in the list.",
             instances=[Instance(input="3, 8, 10", output="18")]),
]


@pytest.fixture(scope="module")
def server():
    with FakeTeacher(FakeTeacherConfig(seed=7)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    # One client for the shared server: building one (its SSL context) costs more than a request.
    with client_for(server) as shared:
        yield shared


def client_for(server: FakeTeacher, **options) -> openai.OpenAI:
    options.setdefault("timeout", 10.0)
    return openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0, **options)


def complete(client: openai.OpenAI, prompt: str, api: str = "chat", **params):
    """(text, finish_reason, response) the way teacher/openai_compat.py asks."""
    params = {"model": "teacher-x", "temperature": 0.7, "top_p": 0.5, "max_tokens": 1024, **params}
    if api == "chat":
        response = client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **params)
        choice = response.choices[0]
        return choice.message.content, choice.finish_reason, response
    response = client.completions.create(prompt=prompt, **params)
    return response.choices[0].text, response.choices[0].finish_reason, response


# -- every kind of prompt gets a reply that parse reads --------------------------------------------

KIND_CASES = {
    "instructions": (
        render_instruction_prompt([seed.instruction for seed in SEEDS]),
        lambda text, finish: parse_instructions(text, finish).items,
    ),
    "instances": (
        render_instance_prompt("Write a short thank-you note to a neighbour.", is_classification=False),
        lambda text, finish: parse_instances(text, False, finish).items,
    ),
    "labels": (
        render_instance_prompt("Classify the email as spam or not spam.", is_classification=True),
        lambda text, finish: parse_instances(text, True, finish).items,
    ),
    "alpaca": (
        render_alpaca_prompt(SEEDS, count=5),
        lambda text, finish: parse_alpaca_tasks(text, finish).items,
    ),
}


@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("kind", list(KIND_CASES))
def test_reply_parses_into_items(server, client, kind, api):
    prompt, parse = KIND_CASES[kind]
    before = server.stats()["by_kind"][kind]

    text, finish, _ = complete(client, prompt, api)

    assert finish == "stop"
    assert len(parse(text, finish)) >= 1
    assert server.stats()["by_kind"][kind] == before + 1


def test_instruction_reply_continues_the_numbering(client):
    prompt = render_instruction_prompt([seed.instruction for seed in SEEDS])  # ends with "Task 4:"

    text, _, _ = complete(client, prompt)

    numbers = [int(n) for n in re.findall(r"^Task (\d+):", text, re.MULTILINE)]
    assert not re.match(r"\s*Task \d", text), "the first new task is task 4 and carries no number"
    assert numbers == list(range(5, 5 + len(numbers)))
    assert 5 <= len(parse_instructions(text, "stop").items) <= 10


def test_alpaca_reply_has_about_the_requested_count(client):
    text, finish, _ = complete(client, render_alpaca_prompt(SEEDS, count=6))

    assert len(parse_alpaca_tasks(text, finish).items) in (5, 6)


@pytest.mark.parametrize(("instruction", "expected"), [
    ("Classify the sentiment of the tweet as positive or negative.", True),
    ("Decide whether the email is spam.", True),
    ("Categorize each animal as mammal, bird or fish.", True),
    ("Is it a fact or an opinion?", True),
    ("Write a short poem about the autumn rain.", False),
    ("Plan a three-day trip to Lisbon on a budget.", False),
])
def test_classification_question_answers_yes_or_no(client, instruction, expected):
    text, _, _ = complete(client, render_classify_prompt(instruction), temperature=0.0, max_tokens=4)

    assert parse_classification(text) is expected


def test_unknown_prompt_gets_a_short_generic_answer(server, client):
    before = server.stats()["by_kind"]["unknown"]

    text, finish, _ = complete(client, "What is the capital of France?")

    assert finish == "stop" and 0 < len(text.split()) < 40
    assert server.stats()["by_kind"]["unknown"] == before + 1


# -- variety and determinism ---------------------------------------------------------------------------


def rouge_l_novel_share(texts: list[str], threshold: float = 0.7) -> float:
    """Share of texts whose ROUGE-L F1 to every earlier text is below `threshold` (rouge-score's tokens)."""
    vocabulary: dict[str, int] = {}

    def encode(text: str) -> str:
        tokens = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
        return "".join(chr(0x4E00 + vocabulary.setdefault(token, len(vocabulary))) for token in tokens)

    encoded = [encode(text) for text in texts]
    lengths = np.array([len(text) for text in encoded])
    lcs = process.cdist(encoded, encoded, scorer=LCSseq.similarity, dtype=np.int32, workers=1)
    f1 = 2 * lcs / (lengths[:, None] + lengths[None, :])
    earlier = np.tril(f1, k=-1)
    return float(np.mean(earlier.max(axis=1) < threshold))


def test_instruction_requests_are_varied_with_some_junk(server):
    prompts = [render_instruction_prompt([SEEDS[i % 3].instruction, SEEDS[(i + 1) % 3].instruction]) for i in range(200)]

    async def ask_all() -> list[str]:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0)
        limit = asyncio.Semaphore(16)

        async def ask(prompt: str) -> str:
            async with limit:
                reply = await client.chat.completions.create(
                    model="teacher-x", messages=[{"role": "user", "content": prompt}], temperature=0.7, max_tokens=1024
                )
            return reply.choices[0].message.content

        try:
            return await asyncio.gather(*(ask(prompt) for prompt in prompts))
        finally:
            await client.close()

    instructions = [item for text in asyncio.run(ask_all()) for item in parse_instructions(text, "stop").items]

    assert len(set(instructions)) > 1000
    checks = instruction_checks(FilterConfig())
    kept = [text for text in instructions if check_instruction(text, checks).keep]
    assert 0.05 < 1 - len(kept) / len(instructions) < 0.3, "about one in seven is junk on purpose"
    assert rouge_l_novel_share(kept) > 0.75


def test_replies_are_reproducible_per_server_seed(client):
    prompt = render_instruction_prompt([seed.instruction for seed in SEEDS])

    def replies(seed: int) -> list[str]:
        with FakeTeacher(FakeTeacherConfig(seed=seed)) as teacher:
            own_client = client_for(teacher)
            return [complete(own_client, prompt, temperature=0.7)[0] for _ in range(3)]

    sampled = replies(seed=1)
    assert len(set(sampled)) == 3, "each repeat at T > 0 is a new sample"
    assert replies(seed=1) == sampled, "the same server seed replays the same run"
    assert replies(seed=2) != sampled
    greedy = {complete(client, prompt, temperature=0.0)[0] for _ in range(3)}
    assert len(greedy) == 1, "T = 0 is greedy"


def test_request_seed_picks_the_sample(client):
    prompt = render_instruction_prompt([SEEDS[0].instruction])

    first = complete(client, prompt, seed=42)[0]

    assert complete(client, prompt, seed=42)[0] == first
    assert complete(client, prompt, seed=43)[0] != first


# -- protocol details ----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_max_tokens_cuts_the_reply_with_finish_reason_length(client, api):
    text, finish, response = complete(client, render_alpaca_prompt(SEEDS, count=5), api, max_tokens=12)

    assert finish == "length"
    assert len(text.split()) == 12
    assert response.usage.completion_tokens == 12


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_response_envelope_echoes_model_and_counts_words(client, api):
    prompt = render_instruction_prompt([seed.instruction for seed in SEEDS])

    text, _, response = complete(client, prompt, api, model="my-teacher")

    assert response.model == "my-teacher"
    assert response.id and response.created > 0
    assert response.object == ("chat.completion" if api == "chat" else "text_completion")
    usage = response.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (len(prompt.split()), len(text.split()))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stop_sequence_ends_the_reply(client):
    prompt = render_instruction_prompt([seed.instruction for seed in SEEDS])

    text, finish, _ = complete(client, prompt, stop=["Task 6:"])

    assert finish == "stop" and "Task 6:" not in text and "Task 5:" in text


def test_models_and_stats_endpoints(server, client):
    assert [model.id for model in client.models.list().data] == ["fake-teacher"]

    stats = httpx.get(server.base_url.removesuffix("/v1") + "/stats").json()

    assert set(stats) == set(server.stats())
    assert stats["requests"] == sum(stats["by_kind"].values())


def test_fault_rates_above_one_are_rejected():
    with pytest.raises(pydantic.ValidationError, match="add up to more than 1"):
        FakeTeacherConfig(rate_500=0.6, rate_503=0.6)


# -- faults: what the openai client raises for each --------------------------------------------------

FAULT_ERRORS = {
    "429": openai.RateLimitError,
    "500": openai.InternalServerError,
    "503": openai.InternalServerError,
    "hang": openai.APITimeoutError,
    "drop": openai.APIConnectionError,
    # Not an openai error: the SDK decodes a JSON content-type body with json.loads and lets it raise.
    "malformed": json.JSONDecodeError,
}


@pytest.mark.parametrize("fault", list(FAULT_ERRORS))
def test_fault_raises_the_client_error(fault):
    config = FakeTeacherConfig(**{f"rate_{fault}": 1.0}, retry_after=0.25)
    with FakeTeacher(config) as teacher:
        for api in ("chat", "completions"):
            with pytest.raises(FAULT_ERRORS[fault]) as caught:
                complete(client_for(teacher, timeout=0.5), "hello", api)
        assert teacher.stats()["faults"][fault] == 2

    if fault == "429":
        assert caught.value.response.headers["retry-after"] == "0.25"
    if fault in ("500", "503"):
        assert caught.value.status_code == int(fault)
    if fault == "drop":
        assert not isinstance(caught.value, openai.APITimeoutError)


def test_empty_choices_fault_returns_no_choices():
    with FakeTeacher(FakeTeacherConfig(rate_empty_choices=1.0)) as teacher:
        response = client_for(teacher).chat.completions.create(
            model="teacher-x", messages=[{"role": "user", "content": "hello"}]
        )

    assert response.choices == []


def test_length_fault_cuts_the_reply_short():
    prompt = render_instruction_prompt([seed.instruction for seed in SEEDS])
    with FakeTeacher(FakeTeacherConfig(rate_length=1.0)) as teacher:
        text, finish, _ = complete(client_for(teacher), prompt)

    assert finish == "length"
    assert parse_instructions(text, finish).truncated is not None


def test_faults_follow_their_rates_with_a_seeded_rng():
    config = FakeTeacherConfig(seed=3, rate_500=0.2, rate_429=0.1, retry_after=0.0)

    def outcomes() -> list[str]:
        with FakeTeacher(config) as teacher:
            client = client_for(teacher)
            results = []
            for _ in range(100):
                try:
                    complete(client, "hello")
                    results.append("ok")
                except openai.APIStatusError as err:
                    results.append(str(err.status_code))
            return results

    first = outcomes()
    assert outcomes() == first
    assert 10 <= first.count("500") <= 32 and 3 <= first.count("429") <= 20


# -- capacity -------------------------------------------------------------------------------------------


def test_capacity_bounds_concurrent_requests():
    with FakeTeacher(FakeTeacherConfig(capacity=4, latency=0.2)) as teacher:

        async def flood() -> None:
            client = openai.AsyncOpenAI(base_url=teacher.base_url, api_key="not-needed", max_retries=0)
            try:
                await asyncio.gather(*(
                    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
                    for _ in range(12)
                ))
            finally:
                await client.close()

        asyncio.run(flood())
        stats = teacher.stats()

    assert stats["requests"] == 12
    assert stats["max_concurrent"] <= 4
    assert stats["max_waiting"] > 0
    assert stats["in_flight"] == 0


# -- command line ---------------------------------------------------------------------------------------


def test_command_line_serves_in_the_foreground():
    argv = [sys.executable, "-m", "fakes.fake_teacher", "--port", "0", "--rate-503", "1"]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().split()[-1]
        client = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0, timeout=10)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.status_code == 503
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert "Traceback" not in server.stderr.read()
