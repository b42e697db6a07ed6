"""`selfinstruct verify --out DIR`: "sound" and exit 0 for a real run; a readable list and exit 1 for each damage.

One sound run is grown once against the fake teacher; every test damages its own copy, the way a person
or a crash would (editing files, writing SQL by hand, truncating the store), then runs the real command.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from selfinstruct.report.card import render_card
from selfinstruct.cli import app
from selfinstruct.core.config import build_config
from selfinstruct.report.gates import collect_stats
from selfinstruct.core.lock import RunLock
from selfinstruct.grow import grow
from selfinstruct.report.html import report_markdown
from selfinstruct.core.store import STORE_NAME
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

TARGET = 12
runner = CliRunner()


@pytest.fixture(scope="module")
def sound_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("sound") / "run"
    with FakeTeacher(FakeTeacherConfig(seed=11)) as teacher:
        grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": out, "target": TARGET}))
    yield out


@pytest.fixture
def run(sound_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(sound_run, copy)
    return copy


def verify(out: Path) -> Result:
    # A wide console: rich would otherwise wrap (and fold long paths in) each problem line at 80 columns.
    return runner.invoke(app, ["verify", "--out", str(out)], env={"COLUMNS": "400"})


def assert_readable_failure(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "problem(s) in" in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def sql(run: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(run / STORE_NAME) as db:
        db.execute(statement, params)
    db.close()


def first_generated(run: Path) -> tuple[int, str]:
    with sqlite3.connect(run / STORE_NAME) as db:
        row = db.execute("SELECT id, instruction FROM tasks WHERE origin = 'generated' ORDER BY id").fetchone()
    db.close()
    return row


def test_a_sound_run_is_sound_and_verify_changes_nothing(run: Path) -> None:
    before = snapshot(run)
    result = verify(run)
    assert result.exit_code == 0, result.output
    assert "sound" in result.output
    assert snapshot(run) == before


def test_edited_export(run: Path) -> None:
    path = run / "alpaca_data.json"
    examples = json.loads(path.read_text())
    examples[3]["output"] = "edited by hand"
    path.write_text(json.dumps(examples))
    assert_readable_failure(verify(run), "alpaca_data.json does not match the store: example 3 differs")


def test_export_that_is_not_a_list_of_examples(run: Path) -> None:
    (run / "alpaca_data.json").write_bytes(b'{"instruction": "x"}')
    assert_readable_failure(verify(run), "is not a valid Alpaca JSON list")
    (run / "alpaca_data.json").write_bytes(b"[\xff\xfe]")
    assert_readable_failure(verify(run), "is not a valid Alpaca JSON list")


def test_stale_export_is_named_as_such(run: Path) -> None:
    # What a kill between a round's commit and its export leaves: a prefix of the store.
    path = run / "alpaca_data.json"
    rows = json.loads(path.read_text())
    path.write_text(json.dumps(rows[:-2]))
    assert_readable_failure(verify(run), f"holds only the first {len(rows) - 2} of the store's {len(rows)} examples")


def test_near_duplicate_inserted_by_hand(run: Path) -> None:
    task_id, text = first_generated(run)
    twin = text.rstrip(".") + " today."
    provenance = json.dumps({"teacher": "t", "method": "self-instruct", "round": 1, "demo_ids": [],
                             "prompt_hash": "x", "is_classification": False})
    with sqlite3.connect(run / STORE_NAME) as db:
        cursor = db.execute(
            "INSERT INTO tasks (origin, seed_id, instruction, is_classification, round, provenance, created)"
            " VALUES ('generated', NULL, ?, 0, 1, ?, 0)", (twin, provenance))
        db.execute("INSERT INTO instances VALUES (?, 0, '', 'out')", (cursor.lastrowid,))
    db.close()
    assert_readable_failure(verify(run), "ROUGE-L", "> 0.7 between", repr(text[:30]).rstrip("'"))


def test_task_without_instances(run: Path) -> None:
    task_id, text = first_generated(run)
    sql(run, "DELETE FROM instances WHERE task_id = ?", task_id)
    assert_readable_failure(verify(run), "accepted task without instances", repr(text[:30]).rstrip("'"))


def test_provenance_missing_keys(run: Path) -> None:
    task_id, text = first_generated(run)
    sql(run, "UPDATE tasks SET provenance = ? WHERE id = ?", json.dumps({"teacher": "t"}), task_id)
    assert_readable_failure(verify(run), "lacks backend, method, round, demo_ids, prompt_hash, is_classification, "
                                         "nearest, nearest_rouge_l")


def test_provenance_that_is_not_json(run: Path) -> None:
    task_id, _ = first_generated(run)
    sql(run, "UPDATE tasks SET provenance = '{not json' WHERE id = ?", task_id)
    assert_readable_failure(verify(run), "cannot check the accepted tasks")


def test_task_from_a_round_never_committed(run: Path) -> None:
    task_id, _ = first_generated(run)
    sql(run, "UPDATE tasks SET round = 99 WHERE id = ?", task_id)
    assert_readable_failure(verify(run), "from a round that was never committed")


def test_more_examples_than_the_target(run: Path) -> None:
    [config] = _configs(run)
    sql(run, "UPDATE configs SET config = ?", json.dumps({**config, "target": TARGET - 1}))
    assert_readable_failure(verify(run), f"{TARGET} accepted examples, more than the largest target {TARGET - 1}")


def test_a_later_grow_with_a_smaller_target_keeps_the_run_sound(run: Path) -> None:
    # Bug (a): a nightly deployment with target 3 opening this run (grown to 12) overwrote the stored config,
    # so verify reported "more than the target" and the card showed the nightly's config.
    with FakeTeacher(FakeTeacherConfig(seed=11)) as teacher:
        result = grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": run, "target": 3}))
    assert result.rounds == 0 and result.accepted == TARGET
    checked = verify(run)
    assert checked.exit_code == 0, checked.output
    assert collect_stats(run).config["target"] == TARGET
    assert [config["target"] for config in _configs(run)] == [TARGET]  # a grow that changed nothing: no entry


def test_each_grow_that_commits_rounds_records_its_config(run: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=11)) as teacher:
        grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": run,
                           "target": TARGET + 3, "seed": 7}))
    assert [(config["target"], config["seed"]) for config in _configs(run)] == [(TARGET, 0), (TARGET + 3, 7)]
    stats = collect_stats(run)
    assert stats.config["target"] == TARGET + 3 and len(stats.config_history) == 2
    second = stats.config_history[1].first_round
    assert stats.config_summaries()[0].startswith(f"rounds 1–{second - 1}: target {TARGET}, backend openai")
    assert stats.config_summaries()[1].startswith(f"rounds {second} on: target {TARGET + 3}")
    assert f"- Grown by 2 configurations:\n  - rounds 1–{second - 1}: target {TARGET}" in render_card(stats, [], [])
    assert f"- rounds {second} on: target {TARGET + 3}" in report_markdown(run)
    assert verify(run).exit_code == 0


def _configs(run: Path) -> list[dict[str, object]]:
    with sqlite3.connect(run / STORE_NAME) as db:
        rows = db.execute("SELECT config FROM configs ORDER BY id").fetchall()
    db.close()
    return [json.loads(text) for (text,) in rows]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 64)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _zeroed_pages(path: Path) -> None:
    # Keep the header, wipe everything after the first page: the schema points at pages of zeros.
    data = path.read_bytes()
    path.write_bytes(data[:4096] + bytes(len(data) - 4096))


@pytest.mark.parametrize(("damage", "fragment"), [
    (_truncate, "selfinstruct.sqlite: database disk image is malformed"),
    (_garbage, "cannot open the store: not an SQLite database"),
    (_empty, "cannot open the store: an empty file"),
    (_zeroed_pages, "selfinstruct.sqlite: database disk image is malformed"),
])
def test_damaged_sqlite_file_is_a_finding_not_a_traceback(run: Path, damage: Callable[[Path], None],
                                                          fragment: str) -> None:
    damage(run / STORE_NAME)
    assert_readable_failure(verify(run), fragment)


def test_directory_without_a_store(tmp_path: Path) -> None:
    (tmp_path / "alpaca_data.json").write_text("[]")
    assert_readable_failure(verify(tmp_path), "no selfinstruct.sqlite: not a run directory")
    assert_readable_failure(verify(tmp_path / "absent"), "not a run directory")
    assert not (tmp_path / "absent").exists() and not (tmp_path / ".lock").exists()


def test_a_run_in_use_by_a_grow_is_not_verified(run: Path) -> None:
    # The export lags the store for a moment after each commit, so comparing them mid-grow would cry wolf.
    with RunLock(run):
        result = verify(run)
    assert result.exit_code == 4, result.output
    assert "in use by process" in result.output and "Traceback" not in result.output
    assert verify(run).exit_code == 0
