import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["grow"]])
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_bad_seed_file_exits_2_with_one_message_and_no_traceback(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"id": "a", "instruction": "", "instances": [{"output": "x"}]}\n')
    result = runner.invoke(app, ["grow", "--out", str(tmp_path / "run"), "--seeds", str(seeds)])
    assert result.exit_code == 2
    assert "seeds.jsonl:1: field 'instruction': expected a non-empty string" in result.output
    assert "Traceback" not in result.output


def test_bad_flag_value_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["grow", "--out", str(tmp_path), "--backend", "gpu"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    # The choices come from GrowConfig's Literal: the flag names them.
    assert "--backend" in result.output and "'gpu' is not one of" in result.output


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "grow.json"
    config.write_text(json.dumps({"target": "many"}))
    result = runner.invoke(app, ["grow", "--config", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "grow.json:1: field 'target'" in result.output


def test_dedup_command_writes_one_decision_per_candidate(tmp_path: Path) -> None:
    candidates = tmp_path / "candidates.jsonl"
    lines = ["Write a poem about the sea at night.", "Write a poem about the sea at night!", "Explain tides."]
    candidates.write_text("".join(json.dumps({"instruction": text}) + "\n" for text in lines))
    out = tmp_path / "decisions.jsonl"
    result = runner.invoke(app, ["dedup", "--input", str(candidates), "--output", str(out), "--stages", "rouge"])
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["keep"] for d in decisions] == [True, False, True]
    assert decisions[1] == {"keep": False, "reason": "rouge", "rouge_l_max": 1.0, "nearest": lines[0]}


def test_dedup_bad_line_exits_2_with_its_line_number(tmp_path: Path) -> None:
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text('{"instruction": "Fine one here."}\n{"input": "no instruction"}\n')
    result = runner.invoke(app, ["dedup", "--input", str(candidates), "--output", str(tmp_path / "d.jsonl")])
    assert result.exit_code == 2
    assert "candidates.jsonl:2: field 'instruction'" in result.output
    assert not (tmp_path / "d.jsonl").exists()
