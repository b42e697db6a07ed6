from selfinstruct.parse import parse_instructions
from selfinstruct.prompts import (
    render_alpaca_prompt, render_classify_prompt, render_instance_prompt, render_instruction_prompt,
)
from selfinstruct.records import Instance, SeedTask


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
    assert "Label: Spam" in output_first
    assert output_first.endswith("Task: Label the mood.")


def test_alpaca_prompt_shows_seed_demos_and_asks_for_count() -> None:
    seeds = [SeedTask(id=f"s{i}", instruction=f"Task number {i}.", instances=[Instance(input="", output="ok")])
             for i in range(3)]
    prompt = render_alpaca_prompt(seeds, count=20)
    assert "Write 20 new tasks" in prompt
    assert prompt.count("Instruction: Task number") == 3
    assert prompt.endswith("### Task 4")
