import json
from pathlib import Path

import pytest

from selfinstruct.core.errors import SeedError
from selfinstruct.core.seeds import DEFAULT_SEEDS, iter_examples, load_seeds


def test_the_original_self_instruct_seed_file_loads(peer_seeds: Path) -> None:
    tasks = load_seeds(peer_seeds)
    assert len(tasks) == 175
    assert sum(task.is_classification for task in tasks) > 0
    assert all(task.instances and task.instruction for task in tasks)


def test_our_seed_file_loads() -> None:
    tasks = load_seeds(DEFAULT_SEEDS)
    assert len(tasks) == 175


def test_alpaca_json_list(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"instruction": "Add two and three.", "input": "", "output": "5"},
                                {"instruction": "Name a colour.", "output": "Blue"}]))
    tasks = load_seeds(path)
    assert [t.instruction for t in tasks] == ["Add two and three.", "Name a colour."]
    assert list(iter_examples(tasks))[1].input == ""


def test_alpaca_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"instruction": "Add two and three.", "input": "", "output": "5"}\n\n')
    assert load_seeds(path)[0].instances[0].output == "5"


def test_bom_and_crlf_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    line = json.dumps({"id": "a", "instruction": "Say hi politely.", "instances": [{"input": "", "output": "Hi"}]})
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\r\n")
    assert load_seeds(path)[0].id == "a"


GOOD = {"id": "t1", "name": "n", "instruction": "Say hi politely.", "instances": [{"input": "", "output": "Hi"}],
        "is_classification": False}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "seeds.jsonl:1: expected at least one seed task, got an empty file"),
        (b"{not json\n", "seeds.jsonl:1: expected a JSON object, got invalid JSON"),
        (json.dumps(GOOD).encode() + b"\n[1, 2]\n", "seeds.jsonl:2: expected a JSON object, got list"),
        (json.dumps({**GOOD, "instruction": "  "}).encode(), "seeds.jsonl:1: field 'instruction': expected a non-empty string"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "instruction"}).encode(),
         "seeds.jsonl:1: field 'instruction': expected this field to be present"),
        (json.dumps({**GOOD, "instances": []}).encode(), "seeds.jsonl:1: field 'instances': expected a non-empty list"),
        (json.dumps({**GOOD, "instances": [{"input": 3, "output": "x"}]}).encode(),
         "seeds.jsonl:1: field 'instances.0.input': expected a string, got 3"),
        (json.dumps({**GOOD, "is_classification": "maybe"}).encode(),
         "seeds.jsonl:1: field 'is_classification': expected true or false"),
        (json.dumps({**GOOD, "colour": "red"}).encode(), "seeds.jsonl:1: field 'colour': expected no such field"),
        ((json.dumps(GOOD) + "\n" + json.dumps(GOOD)).encode(),
         "seeds.jsonl:2: field 'id': expected a unique id ('t1' is already used on line 1)"),
        (json.dumps(GOOD).encode() + b"\n\xff\xfe\n", "seeds.jsonl:2: expected UTF-8 text, got byte 0xff"),
        (b"[" + json.dumps(GOOD).encode() + b"]", "seeds.jsonl:1: expected one JSON object per line"),
    ],
)
def test_bad_seed_files_name_line_field_and_expectation(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_bytes(content)
    with pytest.raises(SeedError) as caught:
        load_seeds(path)
    assert str(caught.value).startswith(f"{tmp_path}/{expected}")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="no such file"):
        load_seeds(tmp_path / "absent.jsonl")
