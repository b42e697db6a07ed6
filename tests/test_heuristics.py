import pytest

from selfinstruct.core.config import FilterConfig
from selfinstruct.filters.heuristics import check_instruction, instruction_checks, usable_instances
from selfinstruct.core.records import Instance

CHECKS = instruction_checks(FilterConfig())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Explain the water cycle briefly.", None),
        ("Explain gravity.", "too_short"),
        ("Three words only", "too_short"),
        ("word " * 151, "too_long"),
        ("Describe the image of a sunset.", "blacklist"),
        ("Create a flowchart of the checkout process.", "blacklist"),
        ("Tell me how to Go To the station.", "blacklist"),
        ("Explain what a mapping in mathematics is.", None),  # 'map' only as a whole word
        ("Summarise the profile of the company.", None),  # 'file' inside a word is fine
        ("Write a program that sorts numbers quickly.", "program_prefix"),
        ("- Sort these numbers in order.", "leading_punctuation"),
        ("«Translate this sentence into French.»", "non_ascii_start"),
    ],
)
def test_instruction_checks(text: str, reason: str | None) -> None:
    verdict = check_instruction(text, CHECKS)
    assert verdict.reason == reason
    assert verdict.keep is (reason is None)


def test_non_ascii_start_can_be_allowed() -> None:
    checks = instruction_checks(FilterConfig(allow_non_ascii_start=True))
    assert check_instruction("Écris un poème sur la mer.", checks).keep


def test_usable_instances_drop_empty_outputs_and_repeats() -> None:
    kept = usable_instances([Instance(input="a", output=" "), Instance(input="a", output="x"),
                             Instance(input="a", output="x")])
    assert kept == [Instance(input="a", output="x")]
