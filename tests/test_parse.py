import pytest

from selfinstruct.generate.parse import (
    clean_text, parse_alpaca_tasks, parse_classification, parse_instances, parse_instructions,
)
from selfinstruct.core.records import Instance


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


# -- the shapes issue 11 names ---------------------------------------------------------------------------------------

def test_a_chat_preamble_without_colon_and_a_sign_off_are_no_instructions() -> None:
    reply = ("Sure! Here are eight new tasks.\n\nTask 9: Write a haiku about the sea.\n"
             "Task 10: Explain how tides work.\n\nI hope these help!")
    assert parse_instructions(reply, "stop").items == ["Write a haiku about the sea.", "Explain how tides work."]


def test_a_real_first_task_that_starts_like_a_preamble_stays() -> None:
    reply = " Here is a list of words: pear, fig, lime. Sort them alphabetically.\nTask 10: Name a river."
    assert parse_instructions(reply, "stop").items[0].startswith("Here is a list of words")


def test_an_output_assignment_in_code_does_not_start_a_field() -> None:
    reply = ("Example 1\nInput: Sort the list.\nOutput:\ndef sort_list(items):\n"
             "    output = sorted(items)  # note: stable\n    return output\n")
    assert parse_instances(reply, False, "stop").items == [
        Instance(input="Sort the list.", output="def sort_list(items):\n    output = sorted(items)  # note: stable\n"
                                                "    return output")]


def test_labels_inside_a_fence_stay_in_the_output() -> None:
    reply = "Input: <none>\nOutput:\n```text\nInput: 3\nOutput: 9\n```\nExample 2\nInput: 2\nOutput: 4"
    assert parse_instances(reply, False, "stop").items == [
        Instance(input="", output="```text\nInput: 3\nOutput: 9\n```"), Instance(input="2", output="4")]


@pytest.mark.parametrize(("reply", "expected"), [
    ("Label 1: Heads\nInput: <none>\nLabel 2: Tails\nInput: <none>", [("", "Heads"), ("", "Tails")]),
    ("Label: Rock\nLabel: Paper", [("", "Rock"), ("", "Paper")]),
    # Beside labelled inputs, a label with no input is unfinished, not a label-only instance.
    ("Label: Spam\nInput: Win a cruise!\nOutput: Not spam", [("Win a cruise!", "Spam")]),
    # The list of labels is not a label.
    ("Label: Metal, Nonmetal, Metalloid", []),
])
def test_label_only_classification_instances(reply: str, expected: list[tuple[str, str]]) -> None:
    items = parse_instances(reply, is_classification=True, finish_reason="stop").items
    assert [(item.input, item.output) for item in items] == expected


def test_a_cut_label_only_reply_drops_only_the_cut_label() -> None:
    parsed = parse_instances("Label: Heads\nLabel: Tai", True, "length")
    assert parsed.items == [Instance(input="", output="Heads")] and parsed.truncated == "Label: Tai"


def test_json_answers_are_read_in_every_stage() -> None:
    assert parse_instructions('Here are the tasks:\n```json\n["Name a bird.", "Add 2 and 3."]\n```', "stop").items == [
        "Name a bird.", "Add 2 and 3."]
    assert parse_classification('{"classification": "Yes"}') is True
    assert parse_instances('[{"input": "<none>", "output": "Hi"}]', False, "stop").items == [Instance(output="Hi")]
    assert parse_alpaca_tasks('{"tasks": [{"instruction": "Say hi.", "input": "", "output": "Hi"}]}',
                              "stop").items == [("Say hi.", Instance(output="Hi"))]


def test_brackets_in_a_text_answer_are_not_json() -> None:
    reply = "Example 1\nInput: [3, 1]\nOutput: output = []\nExample 2\nInput: [2]\nOutput: [2]"
    assert len(parse_instances(reply, False, "stop").items) == 2


def test_structured_items_lose_their_own_numbering_and_json_debris() -> None:
    from selfinstruct.generate.reply_models import read_structured_instances, read_structured_instructions

    listed = read_structured_instructions(
        '{"instructions": ["1. Name three red fruits.", "2) Give a synonym for happy.", "3D-print a cube."]}', "stop")
    assert listed.items == ["Name three red fruits.", "Give a synonym for happy.", "3D-print a cube."]
    labelled = read_structured_instances(
        '{"instances": [{"label": "Prime", "input": "21 }, {"}, {"label": "Composite", "input": "21"}]}', True, "stop")
    assert [(i.input, i.output) for i in labelled.items] == [("21", "Composite")]
    code = read_structured_instances('{"instances": [{"input": "", "output": "def f():\\n    return {}"}]}',
                                     False, "stop")
    assert code.items[0].output.endswith("return {}")  # braces in an output are content, not debris
