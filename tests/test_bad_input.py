"""Malformed seed files, config files and flags, each through the real CLI against an existing run directory.

Every case must give exit code 2, one `error:` message naming where (file:line or the flag), the field and
what was expected, no traceback, and leave the run directory byte-identical (every file, SQLite included).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from selfinstruct.cli import app
from selfinstruct.core.config import build_config
from selfinstruct.grow import grow
from selfinstruct.core.seeds import MAX_RECORD_CHARS, load_seeds
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

runner = CliRunner()
GOOD = {"id": "t1", "name": "n", "instruction": "Say hi politely.", "instances": [{"input": "", "output": "Hi"}],
        "is_classification": False}
ALPACA = {"instruction": "Add two and three.", "input": "", "output": "5"}
MB10 = 10 * 1024 * 1024


def line(record: object) -> bytes:
    return json.dumps(record).encode() + b"\n"


def good(index: int) -> dict[str, object]:
    return {**GOOD, "id": f"t{index}", "instruction": f"Say hi politely to person number {index}."}


@pytest.fixture(scope="module")
def teacher() -> Iterator[FakeTeacher]:
    with FakeTeacher(FakeTeacherConfig(seed=4)) as server:
        yield server


@pytest.fixture(scope="module")
def finished_run(teacher: FakeTeacher, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": out, "target": 3}))
    return out


@pytest.fixture
def run(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def invoke(args: list[str]) -> Result:
    return runner.invoke(app, args, env={"COLUMNS": "400", "OPENAI_API_KEY": ""})


def assert_one_input_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [text for text in result.output.splitlines() if text.startswith("error:")]
    assert len(errors) == 1, result.output
    assert len(result.output) < 2000, "a message must not echo the input"
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


# -- seed files ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SeedCase:
    name: str
    filename: str
    content: bytes
    where: str  # "file:line" after the directory
    fragments: tuple[str, ...]


SEED_CASES = [
    SeedCase("invalid JSON", "seeds.jsonl", line(good(1)) + b'{"id": "t2", "instruction": }\n',
             "seeds.jsonl:2", ("expected a JSON object, got invalid JSON",)),
    SeedCase("missing field", "seeds.jsonl", line({k: v for k, v in GOOD.items() if k != "instruction"}),
             "seeds.jsonl:1", ("field 'instruction': expected this field to be present",)),
    SeedCase("mistyped field", "seeds.jsonl", line(good(1)) + line({**good(2), "instances": "Hi"}),
             "seeds.jsonl:2", ("field 'instances': expected a non-empty list of {input, output} objects",)),
    SeedCase("mistyped nested field", "seeds.jsonl", line({**GOOD, "instances": [{"input": 3, "output": "x"}]}),
             "seeds.jsonl:1", ("field 'instances.0.input': expected a string, got 3",)),
    SeedCase("mistyped flag", "seeds.jsonl", line({**GOOD, "is_classification": "maybe"}),
             "seeds.jsonl:1", ("field 'is_classification': expected true or false",)),
    # Bug (e): pydantic's lax mode read "yes" as true and the run went on; seed records validate strictly.
    SeedCase("a string where a flag belongs", "seeds.jsonl", line(good(1)) + line({**good(2), "is_classification": "yes"}),
             "seeds.jsonl:2", ("field 'is_classification': expected true or false, got \"yes\"",)),
    SeedCase("a number where a flag belongs", "seeds.jsonl", line({**GOOD, "is_classification": 1}),
             "seeds.jsonl:1", ("field 'is_classification': expected true or false, got 1",)),
    # Bug (c): two rows with one instruction failed later as "UNIQUE constraint failed", exit 4.
    SeedCase("duplicate instructions", "seeds.jsonl",
             line(good(1)) + line({**good(2), "instruction": good(1)["instruction"]}),
             "seeds.jsonl:2", ("field 'instruction': expected a unique instruction (line 1 has the same one",)),
    SeedCase("unknown field", "seeds.jsonl", line({**GOOD, "colour": "red"}),
             "seeds.jsonl:1", ("field 'colour': expected no such field",)),
    SeedCase("empty file", "seeds.jsonl", b"", "seeds.jsonl:1",
             ("expected at least one seed task, got an empty file",)),
    SeedCase("blank lines only", "seeds.jsonl", b"\n  \n\r\n", "seeds.jsonl:1", ("expected at least one seed task",)),
    SeedCase("duplicate ids", "seeds.jsonl", line(good(1)) + line(good(2)) + line({**good(3), "id": "t1"}),
             "seeds.jsonl:3", ("field 'id': expected a unique id ('t1' is already used on line 1)",)),
    SeedCase("empty instruction", "seeds.jsonl", line({**GOOD, "instruction": "   "}),
             "seeds.jsonl:1", ("field 'instruction': expected a non-empty string",)),
    SeedCase("non-UTF-8 bytes", "seeds.jsonl", line(good(1)) + line(good(2)) + b'{"id": "\xff\xfe"}\n',
             "seeds.jsonl:3", ("expected UTF-8 text, got byte 0xff",)),
    # Sized before parsed: a 10 MB line is refused the same way whether or not it is valid JSON.
    SeedCase("10 MB line of broken JSON", "seeds.jsonl", line(good(1)) + b'{"id": "t2", "instruction": "'
             + b"a" * MB10 + b"\n", "seeds.jsonl:2", (f"expected a seed task of at most {MAX_RECORD_CHARS:,} "
                                                       "characters, got 10,485,789 characters",)),
    SeedCase("10 MB valid record", "seeds.jsonl", line({**GOOD, "instances": [{"output": "x" * MB10}]}),
             "seeds.jsonl:1", (f"expected a seed task of at most {MAX_RECORD_CHARS:,} characters",)),
    SeedCase("10 MB item of an Alpaca list", "data.json", b"[\n" + json.dumps(ALPACA).encode() + b",\n"
             + json.dumps({**ALPACA, "output": "x" * MB10}).encode() + b"]", "data.json:3",
             (f"expected a seed task of at most {MAX_RECORD_CHARS:,} characters",)),
    SeedCase("JSON array in .jsonl", "seeds.jsonl", json.dumps([GOOD]).encode(),
             "seeds.jsonl:1", ("expected one JSON object per line (JSON Lines), got a JSON array",)),
    SeedCase("scalar line", "seeds.jsonl", line(good(1)) + b'"just a string"\n',
             "seeds.jsonl:2", ("expected a JSON object, got str",)),
    SeedCase("two objects on a line", "seeds.jsonl", json.dumps(GOOD).encode() + b" {}\n",
             "seeds.jsonl:1", ("expected one JSON object per line",)),
    SeedCase("lone surrogate", "seeds.jsonl", line({**GOOD, "instruction": "Say hi"}).replace(b"hi", b"hi \\ud800"),
             "seeds.jsonl:1", ("field 'instruction': expected valid Unicode text",)),
    SeedCase("nested too deeply", "seeds.jsonl", b'{"id": ' * 100_000, "seeds.jsonl:1", ("JSON nested too deeply",)),
    SeedCase("Alpaca list item not an object", "data.json",
             b"[\n" + json.dumps(ALPACA).encode() + b",\n" + json.dumps(ALPACA).encode() + b",\n  42\n]\n",
             "data.json:4", ("expected a JSON object, got int",)),
    SeedCase("Alpaca list item without output", "data.json",
             b"[\n  " + json.dumps(ALPACA).encode() + b",\n  " + json.dumps({"instruction": "Name a colour."}).encode()
             + b"\n]", "data.json:3", ("field 'output': expected this field to be present",)),
    SeedCase("Alpaca list with a trailing comma", "data.json", b"[\n" + json.dumps(ALPACA).encode() + b",\n]",
             "data.json:3", ("expected another object after ','",)),
    SeedCase("Alpaca list never closed", "data.json", b"[\n" + json.dumps(ALPACA).encode() + b"\n",
             "data.json:3", ("expected ',' or ']' after an object, got the end of the file",)),
]


@pytest.mark.parametrize("case", SEED_CASES, ids=[case.name for case in SEED_CASES])
def test_malformed_seed_file(case: SeedCase, run: Path, tmp_path: Path) -> None:
    seeds = tmp_path / case.filename
    seeds.write_bytes(case.content)
    before = snapshot(run)
    result = invoke(["grow", "--out", str(run), "--seeds", str(seeds), "--backend", "openai",
                     "--base-url", "http://127.0.0.1:9/v1", "--target", "5"])
    assert_one_input_error(result, f"{tmp_path}/{case.where}: ", *case.fragments)
    assert snapshot(run) == before


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda tmp: tmp / "absent.jsonl", "expected an existing seed file, got no such file"),
    (lambda tmp: tmp, "expected a seed file, got a directory"),
])
def test_seed_path_that_is_not_a_file(make: Callable[[Path], Path], fragment: str, run: Path, tmp_path: Path) -> None:
    before = snapshot(run)
    result = invoke(["grow", "--out", str(run), "--seeds", str(make(tmp_path))])
    assert_one_input_error(result, fragment)
    assert snapshot(run) == before


def test_other_seeds_for_an_existing_run(run: Path, tmp_path: Path) -> None:
    seeds = tmp_path / "other.json"
    seeds.write_text(json.dumps([ALPACA]))
    before = snapshot(run)
    result = invoke(["grow", "--out", str(run), "--seeds", str(seeds), "--backend", "openai",
                     "--base-url", "http://127.0.0.1:9/v1", "--target", "5"])
    assert_one_input_error(result, f"{seeds}: field 'seeds': expected the seed file this run started from")
    assert snapshot(run) == before


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_bom_and_crlf_are_harmless(suffix: str, teacher: FakeTeacher, tmp_path: Path) -> None:
    records = [good(n) for n in range(1, 4)]
    body = "\r\n".join(json.dumps(r) for r in records) if suffix == ".jsonl" else json.dumps(records, indent=2)
    seeds = tmp_path / f"seeds{suffix}"
    seeds.write_bytes(b"\xef\xbb\xbf" + body.replace("\n", "\r\n").replace("\r\r", "\r").encode() + b"\r\n")
    assert [task.id for task in load_seeds(seeds)] == ["t1", "t2", "t3"]
    result = invoke(["grow", "--out", str(tmp_path / "run"), "--seeds", str(seeds), "--backend", "openai",
                     "--base-url", teacher.base_url, "--target", "1"])
    assert result.exit_code == 0, result.output


# -- config files -------------------------------------------------------------------------------------------------

CONFIG_CASES = [
    ("bad TOML", "grow.toml", b"target = 10\nmethod = \n", ("grow.toml: expected valid TOML", "line 2")),
    ("unknown key", "grow.toml", b"target = 10\ncolour = \"red\"\n", ("grow.toml:2: field 'colour': expected",)),
    ("wrong type", "grow.toml", b'target = "many"\n', ("grow.toml:1: field 'target': expected", 'got "many"')),
    ("negative target", "grow.toml", b"target = -5\n",
     ("grow.toml:1: field 'target': expected input should be greater than or equal to 1", "got -5")),
    ("nested wrong type", "grow.toml", b'[filters]\nrouge_threshold = "high"\n',
     ("grow.toml:2: field 'filters.rouge_threshold': expected",)),
    ("unknown nested key", "grow.toml", b"[filters]\nrouge = 0.5\n", ("grow.toml:2: field 'filters.rouge': expected",)),
    ("not UTF-8", "grow.toml", b"target = 10\nmodel = \"\xff\"\n", ("grow.toml: expected UTF-8 text",)),
    ("JSON list", "grow.json", b"[1, 2]", ("grow.json: expected a table of settings, got list",)),
    ("bad JSON", "grow.json", b'{"target": 10,\n "method": }', ("grow.json:2: expected valid JSON",)),
    ("missing file", "absent.toml", None, ("absent.toml: expected an existing config file",)),
]


@pytest.mark.parametrize(("name", "filename", "content", "fragments"), CONFIG_CASES,
                         ids=[case[0] for case in CONFIG_CASES])
def test_malformed_config_file(name: str, filename: str, content: bytes | None, fragments: tuple[str, ...],
                               run: Path, tmp_path: Path) -> None:
    config = tmp_path / filename
    if content is not None:
        config.write_bytes(content)
    before = snapshot(run)
    assert_one_input_error(invoke(["grow", "--config", str(config), "--out", str(run)]), *fragments)
    assert snapshot(run) == before


def test_config_path_that_is_a_directory(run: Path, tmp_path: Path) -> None:
    before = snapshot(run)
    assert_one_input_error(invoke(["grow", "--config", str(tmp_path), "--out", str(run)]), "expected a config file")
    assert snapshot(run) == before


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("toml", b'method = "alpaca"\n\ntarget = -5\n', "grow.toml:3: field 'target'"),
        ("toml table", b'target = 5\n[filters]\nmin_words = 3\nmax_words = 0\n', "grow.toml:4: field 'filters.max_words'"),
        ("toml dotted", b'target = 5\nfilters.min_words = "many"\n', "grow.toml:2: field 'filters.min_words'"),
        ("json", b'{\n  "target": 5,\n  "filters": {\n    "max_words": -1\n  }\n}\n', "grow.json:4: field 'filters.max_words'"),
    ],
)
def test_config_value_errors_name_the_line(name: str, text: bytes, expected: str, run: Path, tmp_path: Path) -> None:
    config = tmp_path / expected.split(":")[0]
    config.write_bytes(text)
    assert_one_input_error(invoke(["grow", "--config", str(config), "--out", str(run)]), expected)


def test_a_flag_that_overrides_the_config_file_is_named_as_the_culprit(run: Path, tmp_path: Path) -> None:
    config = tmp_path / "grow.toml"
    config.write_bytes(b"target = 5\n")
    assert_one_input_error(invoke(["grow", "--config", str(config), "--out", str(run), "--target", "-1"]),
                           "--target: field 'target'")


# -- flags --------------------------------------------------------------------------------------------------------

FLAG_CASES = [
    ("zero target", ["--target", "0"],
     ("--target: field 'target': expected input should be greater than or equal to 1",)),
    ("negative target", ["--target", "-3"], ("--target: field 'target': expected",)),
    ("zero prompts per round", ["--prompts-per-round", "0"], ("--prompts-per-round: field 'prompts_per_round': expected",)),
    ("negative concurrency", ["--concurrency", "-1"], ("--concurrency: field 'concurrency': expected",)),
    ("vllm without model or URL", ["--backend", "vllm"], ("expected the vllm backend needs --model",)),
    ("a nested setting out of range", ["--set", "filters.rouge_threshold=1.5"],
     ("--set filters.rouge_threshold: field 'filters.rouge_threshold': expected",)),
    ("an unknown nested setting", ["--set", "filters.min_wrods=3"],
     ("--set filters.min_wrods: field 'filters.min_wrods': expected extra inputs are not permitted",)),
    ("a --set without a value", ["--set", "filters.min_words"], ("--set: expected a dotted.name=value",)),
    ("a renamed setting through --set", ["--set", "max_tokens=5"],
     ("--set max_tokens: field 'max_tokens': expected max_total_tokens instead (max_tokens was renamed)",)),
]


@pytest.mark.parametrize(("name", "flags", "fragments"), FLAG_CASES, ids=[case[0] for case in FLAG_CASES])
def test_bad_flag(name: str, flags: list[str], fragments: tuple[str, ...], run: Path) -> None:
    before = snapshot(run)
    assert_one_input_error(invoke(["grow", "--out", str(run), *flags]), *fragments)
    assert snapshot(run) == before


@pytest.mark.parametrize(("flags", "choices"), [
    (["--backend", "gpu"], "'cpu', 'openai', 'vllm'"),
    (["--method", "evolve"], "'self-instruct', 'alpaca'"),
    (["--api", "grpc"], "'chat', 'completions'"),
])
def test_a_value_outside_the_choices_is_a_usage_error(flags: list[str], choices: str, run: Path) -> None:
    before = snapshot(run)
    result = invoke(["grow", "--out", str(run), *flags])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flags[0]}'" in result.output and choices in result.output
    assert snapshot(run) == before


@pytest.mark.parametrize(("flag", "hint"), [
    ("--max-tokens", "--max-total-tokens"), ("--max-requests", "--max-prompts"),
    ("--dtype", "--set vllm.dtype=VALUE"), ("--vllm-arg", "--set vllm.extra_args="),
])
def test_an_old_flag_fails_with_a_hint_to_its_new_spelling(flag: str, hint: str, run: Path) -> None:
    result = invoke(["grow", "--out", str(run), f"{flag}=5"])
    assert result.exit_code == 2, result.output
    assert f"{flag} was renamed: use {hint}" in result.output


def test_a_renamed_key_in_a_config_file_names_its_line(run: Path, tmp_path: Path) -> None:
    config = tmp_path / "grow.toml"
    config.write_text("target = 5\nmax_tokens = 100\n")
    assert_one_input_error(invoke(["grow", "--config", str(config), "--out", str(run)]),
                           "grow.toml:2: field 'max_tokens': expected max_total_tokens instead (max_tokens was renamed)")


@pytest.mark.parametrize("flags", [["--target", "abc"], ["--target", "2.5"], ["--concurrency", "many"]])
def test_non_numeric_flag_is_a_usage_error(flags: list[str], run: Path) -> None:
    before = snapshot(run)
    result = invoke(["grow", "--out", str(run), *flags])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flags[0]}'" in result.output and "valid integer" in result.output
    assert "Traceback" not in result.output
    assert snapshot(run) == before


def _real_grow(run: Path, seeds: Path) -> subprocess.CompletedProcess[str]:
    # CliRunner catches what escapes; a real interpreter shows what a user would see on the terminal.
    return subprocess.run([sys.executable, "-m", "selfinstruct", "grow", "--out", str(run), "--seeds", str(seeds)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "400", "OPENAI_API_KEY": ""})


def test_real_process_prints_no_traceback(run: Path, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_bytes(line(good(1)) + b'{"id": "t2", "instruction": "' + b"a" * MB10 + b"\n")
    before = snapshot(run)
    done = _real_grow(run, seeds)
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    errors = [text for text in done.stderr.splitlines() if text.startswith("error:")]
    assert errors == [f"error: {seeds}:2: expected a seed task of at most {MAX_RECORD_CHARS:,} characters, "
                      "got 10,485,789 characters"]
    assert snapshot(run) == before


def test_bad_input_prints_only_the_error(run: Path, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_bytes(b'{"id": }\n')
    done = _real_grow(run, seeds)
    assert done.returncode == 2
    assert done.stderr == f"error: {seeds}:1: expected a JSON object, got invalid JSON (Expecting value)\n"
