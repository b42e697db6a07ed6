import pytest

from selfinstruct.parse import (
    clean_text, parse_alpaca_tasks, parse_classification, parse_instances, parse_instructions,
)
from selfinstruct.records import Instance


def test_continuation_of_the_numbered_list_with_numbering_slips() -> None:
    reply = (" Write a haiku about autumn rain.\n10) Explain how vaccines train the immune system.\n"
             "Task 11. Sort these numbers in descending order.\n**12:** Suggest a name for a cat.\n")
    assert parse_instructions(reply, "stop").items == [
        "Write a haiku about autumn rain.",
        "Explain how vaccines train the immune system.",
        "Sort these numbers in descending order.",
        "Suggest a name for a cat.",
    ]


def test_chat_preamble_is_not_an_instruction() -> None:
    reply = "Sure! Here are some more tasks:\n9. Translate the greeting into Spanish.\n"
    assert parse_instructions(reply, "stop").items == ["Translate the greeting into Spanish."]


def test_only_the_cut_off_last_item_is_dropped_on_length() -> None:
    parsed = parse_instructions("First task here please.\n10. Second task is complete.\n11. Third is cu", "length")
    assert parsed.items == ["First task here please.", "Second task is complete."]
    assert parsed.truncated == "Third is cu"


def test_continuation_lines_join_their_item() -> None:
    parsed = parse_instructions("9. Describe a city\n   at night in winter.\n10. Count vowels.", "stop")
    assert parsed.items == ["Describe a city at night in winter.", "Count vowels."]


def test_control_characters_are_removed() -> None:
    assert clean_text("a\x00b\x1bc\r\nd\u2028e") == "abc\nde"


@pytest.mark.parametrize(("reply", "expected"), [(" Yes", True), ("No.", False), ("yes, it is", True),
                                                 ("Maybe", None), ("", None), ("**Yes**", True)])
def test_classification_answers(reply: str, expected: bool | None) -> None:
    assert parse_classification(reply) is expected


def test_input_first_instances_stop_at_the_next_task() -> None:
    reply = ("Example 1\nInput: 3, 4\nOutput: 7\nExample 2\nInput: <none>\nOutput: A two\nline answer\n\n"
             "Task: Something else entirely\nInput: x\nOutput: y\n")
    parsed = parse_instances(reply, is_classification=False, finish_reason="stop")
    assert parsed.items == [Instance(input="3, 4", output="7"), Instance(input="", output="A two\nline answer")]


def test_output_first_instances() -> None:
    reply = "Label: Positive\nInput: What a lovely day.\nLabel: Negative\nInput: The soup was cold."
    parsed = parse_instances(reply, is_classification=True, finish_reason="stop")
    assert parsed.items == [Instance(input="What a lovely day.", output="Positive"),
                            Instance(input="The soup was cold.", output="Negative")]


def test_instances_cut_off_mid_output_lose_only_that_pair() -> None:
    parsed = parse_instances("Input: 1\nOutput: one\nInput: 2\nOutput: tw", False, "length")
    assert parsed.items == [Instance(input="1", output="one")]
    assert parsed.truncated == "Output: tw"


def test_alpaca_blocks_with_missing_fields_are_skipped_and_cut_off_last_is_dropped() -> None:
    reply = ("Instruction: Add the numbers.\nInput: 2 and 3\nOutput: 5\n\n### Task 5\nInstruction: No output here.\n"
             "### Task 6\nInstruction: Name a colour.\nInput: <noinput>\nOutput: Blue\n###Task 7\nInstruction: Cut")
    parsed = parse_alpaca_tasks(reply, "length")
    assert parsed.items == [("Add the numbers.", Instance(input="2 and 3", output="5")),
                            ("Name a colour.", Instance(input="", output="Blue"))]
    assert parsed.truncated == "Instruction: Cut"


def test_text_imitating_our_markers_cannot_join_two_items() -> None:
    # A generated output that contains "### Task 9" starts a new block; it can
    # never merge into or rewrite the item before it.
    reply = "Instruction: Say hi.\nInput: <none>\nOutput: Hi\n### Task 9\nOutput: injected"
    parsed = parse_alpaca_tasks(reply, "stop")
    assert parsed.items == [("Say hi.", Instance(input="", output="Hi"))]


@pytest.mark.parametrize("reply", ["", "\n\n", "garbage without structure:", "1.\n2.\n"])
def test_malformed_replies_give_no_items(reply: str) -> None:
    assert parse_instructions(reply, "stop").items == []
    assert parse_instances(reply, False, "stop").items == []
    assert parse_alpaca_tasks(reply, "stop").items == []
