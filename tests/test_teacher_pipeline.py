"""Pipelined rounds: bounded concurrency, stages and rounds overlapping, and decisions that do not depend on timing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from selfinstruct.core.config import build_config
from selfinstruct.generate.methods import plan_self_instruct
from selfinstruct.generate.pipeline import GrowSession
from selfinstruct.grow import grow
from selfinstruct.teacher.backend import Endpoints
from selfinstruct.core.store import STORE_NAME, Store
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig


def _config(teacher: FakeTeacher, out: Path, **values: object):
    return build_config({"backend": "openai", "base_url": [teacher.base_url], "out": out, **values})


def test_defaults_depend_on_the_backend() -> None:
    cpu, vllm = build_config({"backend": "cpu"}), build_config({"backend": "vllm", "base_url": ["http://x/v1"]})
    assert (cpu.concurrency, cpu.pipeline_rounds) == (4, 1)  # llama.cpp serves one request at a time
    assert (vllm.concurrency, vllm.pipeline_rounds) == (128, 16)
    assert build_config({"backend": "openai", "concurrency": 7}).concurrency == 7


def test_requests_in_flight_stay_within_the_limit_and_stages_overlap(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=4, latency=0.05, capacity=64)) as teacher:
        result = grow(_config(teacher, tmp_path, target=40, concurrency=8, prompts_per_round=2, pipeline_rounds=3))
        seen = teacher.stats()["max_concurrent"]
    assert result.accepted == 40
    # More than the round's 2 generation requests at once: classify and instance requests do not wait for
    # a whole stage; never more than the limit.
    assert 2 < seen <= 8


def test_the_next_round_is_asked_before_the_current_one_commits(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=4, latency=0.05)) as teacher:
        config = _config(teacher, tmp_path, target=60, prompts_per_round=2, pipeline_rounds=3)
        grow(config)
    with Store.open(tmp_path) as store:
        seeds = store.seed_tasks()
    # Round 2 shows machine demos of rounds <= 2 - 3: none, so its prompts are these.
    round_two = [plan.request.prompt for plan in plan_self_instruct(config, seeds, [], 2)]
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        first_commit = db.execute("SELECT created FROM rounds WHERE round = 1").fetchone()[0]
        asked = [db.execute("SELECT created FROM replies WHERE prompt = ?", (prompt,)).fetchone()[0]
                 for prompt in round_two]
    assert min(asked) < first_commit


def test_decisions_do_not_depend_on_how_many_requests_are_in_flight(tmp_path: Path) -> None:
    outputs = []
    for concurrency in (1, 32):
        # A fresh teacher each time: the fake samples a repeated prompt anew, as a real one would.
        with FakeTeacher(FakeTeacherConfig(seed=9, latency=0.01)) as teacher:
            out = tmp_path / f"c{concurrency}"
            grow(_config(teacher, out, target=90, concurrency=concurrency, pipeline_rounds=2))
        outputs.append((out / "alpaca_data.json").read_text())
    assert outputs[0] == outputs[1]


def test_round_n_shows_only_demos_committed_by_round_n_minus_pipeline_rounds(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=6)) as teacher:
        config = _config(teacher, tmp_path, target=80, prompts_per_round=2, pipeline_rounds=2)
        grow(config)
    with Store.open(tmp_path) as store:
        pool = store.generated_rounds()
        seeds = store.seed_tasks()
        with sqlite3.connect(tmp_path / STORE_NAME) as db:
            stored = {row[0] for row in db.execute("SELECT prompt FROM replies WHERE stage = 'instructions'")}
    last = max(number for number, _ in pool)
    for round_no in range(1, last + 1):
        visible = [text for number, text in pool if number <= round_no - 2]
        prompts = {plan.request.prompt for plan in plan_self_instruct(config, seeds, visible, round_no)}
        assert prompts <= stored  # each committed round asked exactly the prompts the rule renders


def test_a_later_call_of_the_same_session_starts_at_the_limit_the_last_one_found(tmp_path: Path) -> None:
    # The Prefect flow runs rounds a few minutes per task, each with a new client: each used to ramp up from 2
    # again (three latencies and more per task on a wide server). The session keeps each endpoint's limit.
    with FakeTeacher(FakeTeacherConfig(seed=3, latency=0.2, capacity=128)) as teacher:
        config = _config(teacher, tmp_path, target=100_000, api="chat", max_rounds=1_000)
        endpoints = Endpoints(base_urls=[teacher.base_url], model="fake-teacher")
        with GrowSession(config) as session:
            session.run_rounds(endpoints, until=time.monotonic() + 3.0)
            learned = session._limits[teacher.base_url]
            assert learned.allowed > 16 and learned.parallel
            peak, stop = [0], threading.Event()

            served = teacher.stats()["prompts"]

            def sample() -> None:  # prompts the server holds during the second call's first latency
                while teacher.stats()["prompts"] == served and not stop.is_set():
                    time.sleep(0.002)
                deadline = time.monotonic() + 0.2
                while time.monotonic() < deadline and not stop.is_set():
                    peak[0] = max(peak[0], int(teacher.stats()["in_flight"]))
                    time.sleep(0.005)

            sampler = threading.Thread(target=sample)
            sampler.start()
            # Four more rounds (bounded by count, not time: on a loaded machine a short deadline can pass
            # before the call starts its first round), their 32 generation prompts ready at once.
            session.run_rounds(endpoints, rounds_before=1_000 - 4)
            stop.set()
            sampler.join()
            assert session._limits[teacher.base_url] is learned
    # A fresh limit sends 2 in its first latency (then 16): this call's first burst went out at what the last found.
    assert peak[0] > 16
