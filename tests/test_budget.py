"""Budgets over the run directory (requests, tokens, estimated cost) and the price table."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfinstruct.core.config import build_config
from selfinstruct.core.errors import ConfigError
from selfinstruct.grow import grow
from selfinstruct.core.prices import FREE, ModelPrice, cost, price_for
from selfinstruct.core.store import Store
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig


@pytest.mark.parametrize(
    ("model", "backend", "table", "price"),
    [
        ("gpt-4o-mini", "openai", {}, ModelPrice(input=0.15, output=0.60)),
        ("gpt-4o-mini-2024-07-18", "openai", {}, ModelPrice(input=0.15, output=0.60)),  # dated name: its prefix
        ("gpt-4o-2024-08-06", "openai", {}, ModelPrice(input=2.50, output=10.00)),  # the longest prefix wins
        ("my-model", "openai", {}, None),
        ("my-model", "openai", {"my-model": ModelPrice(input=1, output=2)}, ModelPrice(input=1, output=2)),
        ("gpt-4o-mini", "openai", {"gpt-4o-mini": None}, None),  # the config can declare a price unknown
        ("anything", "vllm", {}, FREE),
        ("anything", "cpu", {}, FREE),
    ],
)
def test_price_for(model: str, backend: str, table: dict, price: ModelPrice | None) -> None:
    assert price_for(model, backend, table) == price


def test_cost_is_per_million_tokens_and_unknown_without_a_price() -> None:
    assert cost(ModelPrice(input=0.15, output=0.60), 2_000_000, 1_000_000) == pytest.approx(0.90)
    assert cost(None, 10, 10) is None


def test_prices_come_from_the_config_file_shape() -> None:
    config = build_config({"prices": {"my-model": {"input": 1.0, "output": 3.0}, "other": None}})
    assert config.prices == {"my-model": ModelPrice(input=1.0, output=3.0), "other": None}


def _values(teacher: FakeTeacher, out: Path, **values: object) -> dict[str, object]:
    return {"backend": "openai", "base_url": [teacher.base_url], "out": out, "target": 500, "prompts_per_round": 2,
            "pipeline_rounds": 1, **values}


def test_a_request_budget_stops_the_run_and_a_higher_one_continues_it(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=8)) as teacher:
        first = grow(build_config(_values(teacher, tmp_path, max_prompts=40)))
        assert first.stopped.startswith("budget spent (max_prompts:")
        assert 40 <= first.spent.prompts < first.target  # stops between rounds: a round in flight finishes
        assert 0 < first.accepted < 500
        again = grow(build_config(_values(teacher, tmp_path, max_prompts=40)))
        assert again.rounds == 0 and again.accepted == first.accepted  # the budget counts the whole directory
        more = grow(build_config(_values(teacher, tmp_path, max_prompts=120)))
        assert more.accepted > first.accepted and more.spent.prompts >= 120
    with Store.open(tmp_path) as store:
        assert store.teacher_totals()[0] == more.spent.prompts


def test_token_and_cost_budgets(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=8)) as teacher:
        by_tokens = grow(build_config(_values(teacher, tmp_path / "tokens", max_total_tokens=5000)))
        # The fake teacher counts words as tokens; gpt-4o-mini has a price in the default table.
        by_cost = grow(build_config(_values(teacher, tmp_path / "cost", model="gpt-4o-mini", max_cost=0.0005)))
    assert by_tokens.stopped.startswith("budget spent (max_total_tokens:") and by_tokens.spent.tokens >= 5000
    assert by_cost.stopped.startswith("budget spent (max_cost:") and by_cost.spent.cost >= 0.0005


def test_a_cost_budget_needs_a_price_for_the_model(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=8)) as teacher:
        with pytest.raises(ConfigError, match="a price for model 'fake-teacher'"):
            grow(build_config(_values(teacher, tmp_path, model="fake-teacher", max_cost=1.0)))
        assert teacher.stats()["requests"] == 0
