"""The grow loop end to end against a real HTTP teacher (the fake OpenAI-compatible server)."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from rouge_score import rouge_scorer

from selfinstruct.core.config import build_config
from selfinstruct.grow import grow
from selfinstruct.core.store import STORE_NAME, Store
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig


@pytest.fixture(scope="module")
def teacher() -> Iterator[FakeTeacher]:
    with FakeTeacher(FakeTeacherConfig(seed=7)) as server:
        yield server


def _config(teacher: FakeTeacher, out: Path, **values: object):
    return build_config({"backend": "openai", "base_url": [teacher.base_url], "out": out, **values})


def _alpaca(out: Path) -> list[dict[str, str]]:
    return json.loads((out / "alpaca_data.json").read_text())


@pytest.mark.parametrize("method", ["self-instruct", "alpaca"])
def test_grow_reaches_the_target_exactly(teacher: FakeTeacher, tmp_path: Path, method: str) -> None:
    result = grow(_config(teacher, tmp_path, target=15, method=method))
    examples = _alpaca(tmp_path)
    assert result.accepted == len({example["instruction"] for example in examples}) == 15  # tasks
    assert len(examples) >= 15  # rows: every instance of every task
    assert all(set(example) == {"instruction", "input", "output"} for example in examples)
    assert all(example["instruction"].strip() and example["output"].strip() for example in examples)
    with Store.open(tmp_path) as store:
        assert store.accepted_examples() == [type(e)(**d) for e, d in zip(store.accepted_examples(), examples)]
        assert sum(store.drop_counts().values()) == sum(result.drops.values())
        assert store.round_stats()[-1]["accepted_total"] == 15


def test_no_accepted_pair_is_a_rouge_duplicate(teacher: FakeTeacher, tmp_path: Path) -> None:
    grow(_config(teacher, tmp_path, target=20))
    with Store.open(tmp_path) as store:
        pool = store.instructions()
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    worst = max(scorer.score(a, b)["rougeL"].fmeasure for a, b in itertools.combinations(pool, 2))
    assert worst <= 0.7


def test_every_drop_is_stored_with_a_known_reason(teacher: FakeTeacher, tmp_path: Path) -> None:
    from selfinstruct.filters.base import ALL_REASONS

    result = grow(_config(teacher, tmp_path, target=20))
    assert result.drops, "the fake teacher plants junk, so something must be dropped"
    assert set(result.drops) <= set(ALL_REASONS)


def test_a_second_run_continues_the_pool_and_resends_nothing(teacher: FakeTeacher, tmp_path: Path) -> None:
    grow(_config(teacher, tmp_path, target=8))
    first = _alpaca(tmp_path)
    before = teacher.stats()["requests"]
    again = grow(_config(teacher, tmp_path, target=8))
    assert again.rounds == 0 and teacher.stats()["requests"] == before
    grow(_config(teacher, tmp_path, target=16))
    grown = _alpaca(tmp_path)
    assert grown[: len(first)] == first  # rows, every instance of a task one
    assert len({example["instruction"] for example in first}) == 8
    assert len({example["instruction"] for example in grown}) == 16


def test_other_seeds_for_an_existing_run_are_refused_and_change_nothing(teacher: FakeTeacher, tmp_path: Path) -> None:
    from selfinstruct.core.errors import ConfigError

    grow(_config(teacher, tmp_path / "run", target=3))
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"instruction": "Name a prime number below ten.", "output": "7"}]))
    with pytest.raises(ConfigError, match="use a new --out"):
        grow(_config(teacher, tmp_path / "run", target=5, seeds=other))
    after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert after == before


def test_round_seconds_add_up_to_at_most_the_run(tmp_path: Path) -> None:
    # Bug (b): with rounds in flight together, each round counted from its own start to its commit, so the
    # rounds' seconds added the overlap up (about pipeline_rounds times the run) and throughput looked that
    # much lower. Now each round adds the wall time since the previous commit.
    with FakeTeacher(FakeTeacherConfig(seed=3, latency=0.05)) as slow:
        started = time.perf_counter()
        grow(_config(slow, tmp_path, target=40, pipeline_rounds=8, prompts_per_round=1))
        elapsed = time.perf_counter() - started
    with Store.open(tmp_path) as store:
        seconds = [float(stats["seconds"]) for stats in store.round_stats()]
    assert len(seconds) >= 8
    assert sum(seconds) <= elapsed


def test_a_session_that_fails_while_opening_releases_the_run(teacher: FakeTeacher, tmp_path: Path) -> None:
    # Bug (d): an error while the session rebuilt its indexes left the run lock and the connection open, so the
    # same process could not open the run again. A blank accepted instruction (written by hand) makes the
    # rebuild fail: the pool's examples refuse it.
    from selfinstruct.core.lock import RunLock
    from selfinstruct.generate.pipeline import GrowSession

    grow(_config(teacher, tmp_path, target=3))
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        db.execute("UPDATE tasks SET instruction = ' ' WHERE id = (SELECT max(id) FROM tasks)")
    db.close()
    with pytest.raises(ValidationError):
        GrowSession(_config(teacher, tmp_path, target=5))
    with RunLock(tmp_path):  # before the fix: StoreLocked, the failed session still held it
        pass
