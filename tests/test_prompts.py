from selfinstruct.generate.parse import parse_instructions
from selfinstruct.generate.prompts import (
    render_alpaca_prompt, render_classify_prompt, render_instance_prompt, render_instruction_prompt,
)
from selfinstruct.core.records import Instance, SeedTask


def test_instruction_prompt_numbers_demos_and_ends_at_the_next_number() -> None:
    prompt = render_instruction_prompt(["Write a poem.", "Sort\nthe list."])
    lines = prompt.splitlines()
    assert lines[-3:] == ["Task 1: Write a poem.", "Task 2: Sort the list.", "Task 3:"]


def test_demo_with_a_newline_and_marker_stays_one_item() -> None:
    prompt = render_instruction_prompt(["Do this.\nTask 7: injected"])
    demos = parse_instructions(prompt.split("\n\n", 1)[1], "stop").items
    assert demos == ["Do this. Task 7: injected"]


def test_classify_prompt_ends_with_the_question() -> None:
    prompt = render_classify_prompt("Is the sentence sarcastic?")
    assert prompt.endswith("Task: Is the sentence sarcastic?\nClassification:")
    assert "Classification: Yes" in prompt and "Classification: No" in prompt


def test_instance_prompts_input_first_and_output_first() -> None:
    assert "Input: <none>" in render_instance_prompt("Tell a joke.", False)
    output_first = render_instance_prompt("Label the mood.", True)
    assert "Label 1: Spam" in output_first and "Label 2: Not spam" in output_first
    assert output_first.endswith("Task: Label the mood.")


def test_instance_and_alpaca_requests_stop_after_the_last_item_kept() -> None:
    from selfinstruct.core.config import build_config
    from selfinstruct.generate.methods import instance_request, plan_alpaca
    from selfinstruct.core.records import Candidate, Instance, SeedTask

    config = build_config({"instances_per_task": 2, "prompts_per_round": 1, "alpaca_demos": 3, "alpaca_tasks": 20})
    plain = instance_request(config, Candidate(instruction="Tell a joke."))
    labels = instance_request(config, Candidate(instruction="Label the mood.", is_classification=True))
    assert set(plain.decoding.stop) == {"\nTask:", "Example 3"}
    assert set(labels.decoding.stop) == {"\nTask:", "Label 3:"}
    seeds = [SeedTask(id=f"s{i}", instruction=f"Seed task {i}.", instances=[Instance(output="x")]) for i in range(3)]
    (plan,) = plan_alpaca(config, seeds, round_no=1)
    assert plan.request.decoding.stop[-1] == "### Task 24" and plan.request.prompt.endswith("### Task 4")


def test_alpaca_prompt_shows_seed_demos_and_asks_for_count() -> None:
    seeds = [SeedTask(id=f"s{i}", instruction=f"Task number {i}.", instances=[Instance(input="", output="ok")])
             for i in range(3)]
    prompt = render_alpaca_prompt(seeds, count=20)
    assert "Write 20 new tasks" in prompt
    assert prompt.count("Instruction: Task number") == 3
    assert prompt.endswith("### Task 4")


def test_chat_text_requests_do_not_stop_at_a_blank_line() -> None:
    from selfinstruct.core.config import build_config
    from selfinstruct.generate.methods import plan_self_instruct
    from selfinstruct.core.records import Instance, SeedTask

    seeds = [SeedTask(id=f"s{i}", instruction=f"Seed task {i}.", instances=[Instance(output="x")]) for i in range(8)]
    chat = build_config({"backend": "openai", "base_url": ["http://127.0.0.1:9/v1"], "structured": "off"})
    completions = build_config({})
    assert "\n\n" not in plan_self_instruct(chat, seeds, [], 1)[0].request.decoding.stop
    assert "\n\n" in plan_self_instruct(completions, seeds, [], 1)[0].request.decoding.stop
