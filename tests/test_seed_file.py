"""Checks on the hand-written seed tasks in seeds/seed_tasks.jsonl.

Each test corresponds to one requirement of the seed file (format, size,
classification tasks, input share, diversity, text-only wording, length,
pairwise ROUGE-L novelty). Only json and rouge_score are needed.
"""

from __future__ import annotations

import collections
import itertools
import json
import re
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

SEED_PATH = Path(__file__).parent.parent / "seeds" / "seed_tasks.jsonl"

N_TASKS = 175
MIN_CLASSIFICATION = 25
MIN_INPUT_SHARE = 0.40
MIN_DISTINCT_FIRST_WORDS = 60
MAX_FIRST_WORD_SHARE = 0.08
MIN_INSTRUCTION_WORDS, MAX_INSTRUCTION_WORDS = 4, 150
MAX_LABEL_WORDS = 4
MAX_LABEL_SET = 6
MAX_ROUGE_L = 0.7
LONG_OUTPUT_WORDS = 120
MIN_SHORT_OUTPUT_SHARE = 0.75

KEYS = {"id", "name", "instruction", "instances", "is_classification"}

# Words that point at non-text modalities or actions a text-only model cannot
# perform. Whole words, case-insensitive, plural forms included.
BLACKLIST = re.compile(
    r"\b(images?|graphs?|pictures?|files?|maps?|draw|drawing|drawings|plot|plots|plotting"
    r"|go\s+to|videos?|audio|music|musical|flowcharts?|diagrams?)\b",
    re.IGNORECASE,
)

# Classification tasks whose label set is open-ended but obvious (a sport, a
# language); every other classification task must spell out its labels.
OPEN_LABEL_TASKS = {"sport_from_description", "language_identification"}

# One probe per domain the seed set is meant to cover; each must match at
# least one instruction or input.
DOMAIN_PROBES = {
    "cooking": r"\brecipe|cook",
    "law": r"\blaw\b|legal|lease|contract",
    "finance": r"interest|budget|IRA|loan|inflation",
    "health": r"\bBMI\b|symptom|sleep|immune",
    "travel": r"itinerary|tourist|hiking",
    "python": r"\bPython\b",
    "javascript": r"\bJavaScript\b",
    "other_languages": r"\bGo\b|\bRust\b|\bJava\b|\bC\b|Haskell|TypeScript",
    "sql": r"\bSQL\b",
    "regex": r"regular expression",
    "shell": r"\bshell\b|\bbash\b",
    "math": r"equation|probability|derivative|Differentiate|Prove",
    "physics": r"resistor|air resistance|sky",
    "chemistry": r"chemical|molar|acidic",
    "biology": r"DNA|mitosis|photosynthesis|vaccine",
    "history": r"World War|historical|Lovelace",
    "geography": r"border|capital|latitude",
    "literature": r"Shakespeare|Orwell|verse|literary",
    "harmony": r"\bchord\b|\bscale\b|interval|relative minor",
    "sports": r"soccer|baseball|sport",
    "parenting": r"year-old",
    "workplace_email": r"email|manager|meeting",
    "customer_support": r"customer|support",
    "grammar": r"grammar|passive voice|past tense",
    "translation": r"Translate|Spanish|French|German|Italian",
    "poetry": r"haiku|limerick|poem",
    "jokes": r"\bjoke",
    "puzzles": r"puzzle|riddle|analogy",
    "ethics": r"ethic",
    "json_csv": r"\bJSON\b|\bCSV\b",
    "unit_conversion": r"Fahrenheit|Celsius|US equivalents",
    "summarization": r"Summarize|Sum up|Condense",
    "tone_rewriting": r"professional|Soften",
    "brainstorming": r"Brainstorm",
    "planning": r"\bPlan\b|routine|workout",
    "critique": r"Critique|counterargument",
}


def _load():
    raw = SEED_PATH.read_bytes()
    text = raw.decode("utf-8")  # strict: raises on invalid UTF-8
    lines = text.split("\n")
    assert lines[-1] == "", "file must end with a newline"
    return text, [json.loads(line) for line in lines[:-1]]


TEXT, TASKS = _load()
INSTRUCTIONS = [t["instruction"] for t in TASKS]


def _first_word(instruction: str) -> str:
    return re.findall(r"[A-Za-z']+", instruction)[0].lower()


def _has_input(task) -> bool:
    return any(inst["input"].strip() for inst in task["instances"])


def test_exactly_175_lines_ending_with_newline():
    assert TEXT.endswith("\n")
    assert TEXT.count("\n") == N_TASKS
    assert len(TASKS) == N_TASKS
    assert all(line.strip() for line in TEXT.split("\n")[:-1]), "no blank lines"


def test_no_control_characters():
    # In the raw file the only control character allowed is the line break.
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", TEXT)
    # Inside decoded strings, newlines are fine (code, lists) but nothing else.
    bad = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
    for task in TASKS:
        strings = [task["id"], task["name"], task["instruction"]]
        for inst in task["instances"]:
            strings += [inst["input"], inst["output"]]
        for s in strings:
            assert not bad.search(s), (task["id"], s[:60])


def test_schema_keys_and_types():
    for task in TASKS:
        assert set(task) == KEYS, task.get("id")
        assert isinstance(task["instruction"], str)
        assert isinstance(task["is_classification"], bool)
        assert isinstance(task["instances"], list) and task["instances"], task["id"]
        for inst in task["instances"]:
            assert set(inst) == {"input", "output"}, task["id"]
            assert isinstance(inst["input"], str)
            assert isinstance(inst["output"], str)
            assert inst["output"].strip(), f"{task['id']}: empty output"


def test_ids_are_sequential():
    assert [t["id"] for t in TASKS] == [f"seed_task_{i}" for i in range(N_TASKS)]


def test_names_unique_snake_case():
    names = [t["name"] for t in TASKS]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name), name


def test_classification_tasks_have_label_outputs():
    cls = [t for t in TASKS if t["is_classification"]]
    assert len(cls) >= MIN_CLASSIFICATION
    for task in cls:
        labels = [inst["output"].strip() for inst in task["instances"]]
        for label in labels:
            assert len(label.split()) <= MAX_LABEL_WORDS, (task["id"], label)
            assert "\n" not in label, (task["id"], label)
        if len(labels) > 1:
            assert len(set(labels)) <= MAX_LABEL_SET, task["id"]
        if task["name"] not in OPEN_LABEL_TASKS:
            lowered = task["instruction"].lower()
            for label in labels:
                assert label.lower() in lowered, (
                    f"{task['id']}: label {label!r} not named in the instruction"
                )


def test_input_usage_share_and_consistency():
    with_input = [t for t in TASKS if _has_input(t)]
    assert len(with_input) / len(TASKS) >= MIN_INPUT_SHARE
    for task in TASKS:
        # A task either always takes an input or never does.
        flags = {bool(inst["input"].strip()) for inst in task["instances"]}
        assert len(flags) == 1, task["id"]


def test_first_word_diversity():
    counts = collections.Counter(_first_word(i) for i in INSTRUCTIONS)
    assert len(counts) >= MIN_DISTINCT_FIRST_WORDS, len(counts)
    word, n = counts.most_common(1)[0]
    assert n <= MAX_FIRST_WORD_SHARE * len(TASKS), (word, n)


def test_no_write_a_program_opening():
    for ins in INSTRUCTIONS:
        assert not ins.lower().startswith("write a program"), ins


def test_blacklisted_words_absent():
    for task in TASKS:
        texts = [task["instruction"]] + [inst["input"] for inst in task["instances"]]
        for text in texts:
            match = BLACKLIST.search(text)
            assert match is None, (task["id"], match and match.group(0))


def test_instruction_word_counts():
    for task in TASKS:
        n = len(task["instruction"].split())
        assert MIN_INSTRUCTION_WORDS <= n <= MAX_INSTRUCTION_WORDS, (task["id"], n)


def test_outputs_mostly_short():
    outputs = [inst["output"] for t in TASKS for inst in t["instances"]]
    short = sum(len(o.split()) < LONG_OUTPUT_WORDS for o in outputs)
    assert short / len(outputs) >= MIN_SHORT_OUTPUT_SHARE


@pytest.mark.parametrize("domain", sorted(DOMAIN_PROBES))
def test_domain_coverage(domain):
    probe = re.compile(DOMAIN_PROBES[domain])
    corpus = [t["instruction"] + "\n" + t["instances"][0]["input"] for t in TASKS]
    assert any(probe.search(text) for text in corpus), domain


def test_pairwise_rouge_l_below_threshold():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    worst = (0.0, None, None)
    for i, j in itertools.combinations(range(len(INSTRUCTIONS)), 2):
        f = scorer.score(INSTRUCTIONS[i], INSTRUCTIONS[j])["rougeL"].fmeasure
        if f > worst[0]:
            worst = (f, TASKS[i]["id"], TASKS[j]["id"])
    assert worst[0] <= MAX_ROUGE_L, worst
