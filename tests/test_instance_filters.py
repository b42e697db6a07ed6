"""Self-Instruct's instance filters, the task-level outcome, the drop reasons, and real human-written data."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfinstruct.core.config import FilterConfig, InstanceFilterConfig, build_config, key_line, read_config_file
from selfinstruct.filters import base
from selfinstruct.filters.instances import check_task, conflicting_outputs, ends_with_colon, task_checker
from selfinstruct.core.records import Instance

DEFAULT = FilterConfig()
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
I = Instance  # noqa: E741 - short rows read better in the tables


@pytest.mark.parametrize(
    ("instruction", "instance", "reason"),
    [
        pytest.param("Correct the spelling mistakes.", I(input="The cat sat.", output="the  cat SAT."),
                     "instance_input_is_output", id="input-is-output-case-and-space"),
        pytest.param("Repeat the sentence exactly.", I(input="Hello there.", output="Hello there."), None,
                     id="copy-task-keeps-input-is-output"),
        pytest.param("Make the sentence shorter.", I(input="We met at noon.", output="We met at noon, then left."),
                     None, id="output-extends-input"),
        pytest.param("Give three steps to brew tea.", I(output="Here are the steps:"), "instance_ends_with_colon",
                     id="output-ends-with-colon"),
        pytest.param("Find the largest number.", I(input="Consider the list:", output="9"), "instance_ends_with_colon",
                     id="input-ends-with-colon"),
        pytest.param("Complete the analogy.", I(input="Instability : Turmoil :: Change :", output="Revolution"), None,
                     id="colons-are-content-on-the-line"),
        pytest.param("Write one adjective for each religion.", I(input="Atheism:\nChristianity:\nIslam:",
                                                                 output="Atheism: secular\nChristianity: devout\nIslam: "
                                                                        "faithful"),
                     None, id="headings-to-fill"),
        pytest.param("What time is it in 24-hour format?", I(input="2:30 pm", output="14:30"), None, id="time"),
        pytest.param("Give a tip for sleeping well.", I(output="Go to bed at the same time."), None, id="no-input"),
        pytest.param("Is a tomato a fruit or a vegetable?", I(output="Fruit"), None, id="label-only-classification"),
        pytest.param("Name a colour.", I(output="   "), "empty_output", id="blank-output"),
    ],
)
def test_instance_filters(instruction: str, instance: Instance, reason: str | None) -> None:
    result = check_task(instruction, [instance], is_classification="fruit" in instruction, config=DEFAULT)
    verdict = result.dropped[0][1] if result.dropped else base.KEEP
    assert verdict.reason == reason, verdict.detail
    assert result.kept == ([] if reason else [instance])


def test_conflicting_outputs_drop_the_whole_task() -> None:
    instances = [I(input="3, 1, 2", output="1, 2, 3"), I(input="5, 4", output="4, 5"), I(input="3, 1,  2", output="1, 3, 2")]
    result = check_task("Sort the numbers in ascending order.", instances, False, DEFAULT)
    assert result.kept == []
    assert result.task_verdict.reason == "conflicting_outputs"
    assert "'3, 1, 2'" in result.task_verdict.detail
    assert {verdict.reason for _, verdict in result.dropped} == {"conflicting_outputs"}
    assert [inst for inst, _ in result.dropped] == instances


@pytest.mark.parametrize(
    ("instances", "conflict"),
    [
        pytest.param([I(input="a b", output="X"), I(input="A  b", output="x")], False, id="same-output-other-case"),
        pytest.param([I(input="a", output="X"), I(input="b", output="Y")], False, id="different-inputs"),
        pytest.param([I(output="Sleep early."), I(output="Avoid coffee.")], False, id="no-input-instances-differ"),
        pytest.param([I(input="I love it", output="Positive"), I(input="I love it", output="Negative")], True,
                     id="one-input-two-labels"),
    ],
)
def test_conflict_rule(instances: list[Instance], conflict: bool) -> None:
    assert conflicting_outputs(instances).keep is not conflict


def test_repeated_instance_is_dropped_once_and_order_kept() -> None:
    instances = [I(input="2, 3", output="5"), I(input="1, 1", output="2"), I(input="2, 3", output="5"),
                 I(input="4, 4", output="8")]
    result = check_task("Add the two numbers.", instances, False, DEFAULT)
    assert result.kept == [instances[0], instances[1], instances[3]]
    assert [(inst, verdict.reason) for inst, verdict in result.dropped] == [(instances[2], "instance_repeated")]
    assert result.task_verdict.keep


def test_cut_off_last_instance_does_not_count_as_a_conflict() -> None:
    instances = [I(input="3, 1, 2", output="1, 2, 3"), I(input="3, 1, 2", output="1, 2")]
    result = check_task("Sort the numbers in ascending order.", instances, False, DEFAULT, cut_off=True)
    assert result.kept == instances[:1]
    assert result.dropped[0][1].reason == "answer_cut_off"


def test_nothing_left_gives_the_commonest_reason() -> None:
    instances = [I(output="Here are the steps:"), I(output="First:"), I(output="<none>")]
    result = check_task("Explain how to tie a tie.", instances, False, DEFAULT)
    assert result.kept == []
    assert result.task_verdict.reason == "instance_ends_with_colon"
    assert "2 instance_ends_with_colon, 1 answer_no_input_marker" in result.task_verdict.detail
    empty = check_task("Explain how to tie a tie.", [], False, DEFAULT)
    assert empty.task_verdict.reason == "empty_output"


@pytest.mark.parametrize(
    ("switch", "instances"),
    [
        ("input_is_output", [I(input="Hello.", output="hello.")]),
        ("ends_with_colon", [I(input="x", output="The answer is:")]),
        ("conflicting_outputs", [I(input="I love it", output="Positive"), I(input="I love it", output="Negative")]),
    ],
)
def test_instance_switches(switch: str, instances: list[Instance]) -> None:
    assert not check_task("Fix the text.", instances, False, DEFAULT).task_verdict.keep
    off = FilterConfig(instances=InstanceFilterConfig(**{switch: False}))
    assert check_task("Fix the text.", instances, False, off).kept == instances


def test_ends_with_colon_reads_the_last_line() -> None:
    assert ends_with_colon("Ingredients:\n- flour\n- water\nMethod:")
    assert ends_with_colon("Note:  \n")
    assert not ends_with_colon("Ingredients: flour, water.")


def test_every_reason_is_listed_once_and_snake_case() -> None:
    constants = {name: value for name, value in vars(base).items() if name.isupper() and isinstance(value, str)}
    assert set(constants.values()) == set(base.ALL_REASONS)
    assert len(base.ALL_REASONS) == len(set(base.ALL_REASONS))
    assert all(re.fullmatch(r"[a-z]+(?:_[a-z]+)*", reason) for reason in base.ALL_REASONS)
    for reason in ("instance_input_is_output", "instance_ends_with_colon", "conflicting_outputs", "answer_refusal",
                   "answer_placeholder", "answer_no_input_marker", "answer_missing_input", "answer_cut_off",
                   "answer_repetition", "answer_restates_instruction", "answer_prompt_leak", "answer_wrong_script"):
        assert reason in base.ALL_REASONS


def test_checker_is_compiled_once_per_config() -> None:
    assert task_checker(FilterConfig()) is task_checker(FilterConfig())
    assert task_checker(FilterConfig(min_words=5)) is not task_checker(FilterConfig())


def test_settings_come_from_the_filters_tables_of_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "grow.toml"
    path.write_text("target = 5\n\n[filters.answers]\nrepetition = false\nrepetition_max_share = 0.3\n\n"
                    "[filters.instances]\nconflicting_outputs = false\n", encoding="utf-8")
    config = build_config(read_config_file(path))
    assert config.filters.answers.repetition is False
    assert config.filters.answers.repetition_max_share == 0.3
    assert config.filters.instances.conflicting_outputs is False
    assert key_line(path, ("filters", "answers", "repetition_max_share")) == 5
    with pytest.raises(Exception, match="filters.answers.repetition_max_share"):
        build_config({"filters": {"answers": {"repetition_max_share": 2}}})


def test_every_setting_is_described() -> None:
    for model in (type(DEFAULT.answers), type(DEFAULT.instances)):
        for name, field in model.model_fields.items():
            assert field.description, name


# --- Human-written data: the filters must leave it (nearly) whole -------------------------------------

def human_tasks(shared: Path) -> Iterator[tuple[str, str, list[Instance], bool]]:
    """Seed tasks and labelled public datasets read as tasks: (source, instruction, instances, classification)."""
    for source, path in (("self-instruct", shared / "peer/self_instruct_seed_tasks.jsonl"),
                         ("ours", Path(__file__).parents[1] / "seeds/seed_tasks.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            task = json.loads(line)
            yield source, task["instruction"], [I(**inst) for inst in task["instances"]], task["is_classification"]
    with (shared / "datasets/banking77/test.csv").open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            yield "banking77", "Which banking intent does the message express?", [I(input=row["text"],
                                                                                    output=row["category"])], True
    for line in (shared / "datasets/scitldr_a/dev.jsonl").read_text(encoding="utf-8").splitlines():
        paper = json.loads(line)
        yield "scitldr", "Summarize the abstract in one sentence.", [I(input=" ".join(paper["source"]),
                                                                        output=paper["target"][0])], False
    squad = json.loads((shared / "datasets/xquad_en/xquad.en.json").read_text(encoding="utf-8"))
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield "xquad", "Answer the question from the passage.", [
                    I(input=f"{paragraph['context']}\nQuestion: {qa['question']}", output=qa["answers"][0]["text"])
                ], False


def test_human_written_data_passes() -> None:
    if not (SHARED / "datasets").is_dir():
        pytest.skip(f"{SHARED} is not beside the checkout")
    drops: Counter[tuple[str, str | None]] = Counter()
    total = 0
    for source, instruction, instances, classification in human_tasks(SHARED):
        result = check_task(instruction, instances, classification, DEFAULT)
        total += len(instances)
        drops.update((source, verdict.reason) for _, verdict in result.dropped)
    assert total > 5000
    # Known and deliberate: two Self-Instruct seed emails signed "[Name]"/"[Your Name]" and one SciTLDR summary
    # with the dataset's own anonymised "{DEVICENAME}": placeholders a trainer should not learn to write.
    assert drops == Counter({("self-instruct", "answer_placeholder"): 2, ("scitldr", "answer_placeholder"): 1})
