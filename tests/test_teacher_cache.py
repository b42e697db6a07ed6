"""The request cache: what its key covers, and that a resumed run re-sends only what has no stored answer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from selfinstruct.core.config import SELF_INSTRUCT_CLASSIFY, SELF_INSTRUCT_INSTANCES, build_config
from selfinstruct.core.errors import TeacherError
from selfinstruct.grow import grow
from selfinstruct.core.store import Store
from selfinstruct.core.teacher_records import TeacherRequest
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

BASE = TeacherRequest(stage="classify", prompt="Is this a question?", decoding=SELF_INSTRUCT_CLASSIFY)


@pytest.mark.parametrize(
    ("api", "model", "request_"),
    [
        ("completions", "m", BASE),  # chat and completions answer differently: never share an answer
        ("chat", "other-model", BASE),
        ("chat", "m", BASE.model_copy(update={"prompt": "Is this a question? "})),
        ("chat", "m", BASE.model_copy(update={"decoding": SELF_INSTRUCT_INSTANCES})),
        ("chat", "m", BASE.model_copy(update={"decoding": SELF_INSTRUCT_CLASSIFY.model_copy(update={"top_p": 0.9})})),
        ("chat", "m", BASE.model_copy(update={"sample": 1})),
    ],
)
def test_the_cache_key_changes_with_everything_that_changes_the_answer(api, model, request_) -> None:
    assert request_.cache_key(api, model) != BASE.cache_key("chat", "m")


def test_the_cache_key_ignores_the_stage_label_and_is_stable() -> None:
    relabelled = BASE.model_copy(update={"stage": "instances"})
    assert relabelled.cache_key("chat", "m") == BASE.cache_key("chat", "m") == BASE.cache_key("chat", "m")


def test_a_crashed_round_is_resumed_from_its_stored_answers(tmp_path: Path) -> None:
    values = {"backend": "openai", "out": tmp_path, "target": 20, "prompts_per_round": 8, "pipeline_rounds": 1}
    # The crash: a teacher failing 60% of requests (one attempt each) trips the failure window mid-round,
    # after some replies were stored and before the round could commit.
    with FakeTeacher(FakeTeacherConfig(seed=3, rate_500=0.6)) as failing:
        crashing = build_config({**values, "base_url": [failing.base_url], "max_attempts": 1, "retry_budget": 0,
                                 "failure_window": 20})
        with pytest.raises(TeacherError, match="failure threshold"):
            grow(crashing)
    with Store.open(tmp_path) as store:
        stored, committed = store.count("replies"), store.count("rounds")
    with sqlite3.connect(tmp_path / "selfinstruct.sqlite") as db:
        stored_generations = db.execute("SELECT count(*) FROM replies WHERE stage = 'instructions'").fetchone()[0]
    assert stored_generations > 0 and committed == 0
    with FakeTeacher(FakeTeacherConfig(seed=3)) as healthy:
        result = grow(build_config({**values, "base_url": [healthy.base_url]}))
        sent = healthy.stats()["requests"]
    assert result.accepted == 20
    # The re-run round rendered the same generation prompts and found every stored answer. (A few other
    # stored answers may go unasked: an instance prompt sent after its classify request failed differs from
    # the one sent once the classify request succeeds.)
    assert result.usage.by_stage["instructions"].cached == stored_generations
    assert 0 < result.usage.cached <= stored
    assert result.usage.requests == sent
    with Store.open(tmp_path) as store:
        assert store.count("replies") == stored + sent  # and sent none of them to the teacher
