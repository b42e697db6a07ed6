"""`selfinstruct rebuild`: a run's stored replies re-read into a new run directory, with no request sent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import app
from selfinstruct.core.config import build_config
from selfinstruct.grow import grow
from selfinstruct.rebuild import rebuild
from selfinstruct.core.store import Store
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig


@pytest.fixture(scope="module")
def teacher() -> Iterator[FakeTeacher]:
    with FakeTeacher(FakeTeacherConfig(seed=11)) as server:
        yield server


def _digests(run: Path) -> dict[str, str]:
    # SQLite makes -wal and -shm files beside a WAL database even for a read-only connection: not the data.
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(run.iterdir())
            if path.is_file() and not path.name.endswith(("-wal", "-shm"))}


@pytest.mark.parametrize("method", ["self-instruct", "alpaca"])
def test_rebuild_sends_nothing_and_reproduces_the_pool(teacher: FakeTeacher, tmp_path: Path, method: str) -> None:
    source = tmp_path / "night"
    grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": source, "target": 30,
                       "method": method}))
    before, requests = _digests(source), teacher.stats()["requests"]
    result = rebuild(source, tmp_path / "again")
    assert teacher.stats()["requests"] == requests and result.usage.requests == 0
    assert _digests(source) == before  # the source is read, never written
    assert result.dead_letters == {}
    # Same parser, same filters, same replies in the same order: the same pool.
    with Store.open(source) as old, Store.open(tmp_path / "again") as new:
        assert [row.model_dump(exclude={"group", "provenance"}) for row in new.example_rows()] == \
            [row.model_dump(exclude={"group", "provenance"}) for row in old.example_rows()]
    assert (result.tasks, result.rows) == (result.source_tasks, result.source_rows)


def test_a_stricter_filter_applies_to_last_nights_replies(teacher: FakeTeacher, tmp_path: Path) -> None:
    source = tmp_path / "night"
    grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": source, "target": 30}))
    with Store.open(source) as store:
        lengths = sorted(len(text.split()) for text in store.instructions("generated"))
    limit = lengths[len(lengths) // 2]  # the median: about half of last night's tasks are now too long
    result = rebuild(source, tmp_path / "strict", {"filters": {"max_words": limit}})
    assert 0 < result.tasks < result.source_tasks and result.drops.get("too_long", 0) > 0
    rows = json.loads((tmp_path / "strict" / "alpaca_data.json").read_text(encoding="utf-8"))
    assert rows and all(len(row["instruction"].split()) <= limit for row in rows)


def test_rebuild_refuses_a_directory_with_files_and_a_missing_source(teacher: FakeTeacher, tmp_path: Path) -> None:
    source = tmp_path / "night"
    grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": source, "target": 5}))
    runner = CliRunner()
    taken = runner.invoke(app, ["rebuild", "--from", str(source), "--out", str(source)])
    assert taken.exit_code == 2 and "a new or empty run directory" in taken.output
    missing = runner.invoke(app, ["rebuild", "--from", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "no store there" in missing.output
    done = runner.invoke(app, ["rebuild", "--from", str(source), "--out", str(tmp_path / "x")])
    assert done.exit_code == 0, done.output
    assert "0 requests sent" in done.output


def test_a_store_of_an_earlier_schema_is_rebuilt_and_left_as_it_was(teacher: FakeTeacher, tmp_path: Path) -> None:
    import sqlite3

    source = tmp_path / "old"
    grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": source, "target": 10}))
    # What last month's version left: only its first migration, none of today's tables.
    with sqlite3.connect(source / "selfinstruct.sqlite") as db:
        config = db.execute("SELECT config FROM configs ORDER BY id DESC LIMIT 1").fetchone()[0]
        db.execute("INSERT OR REPLACE INTO meta VALUES ('config', ?)", (config,))
        for table in ("converted", "skipped", "batch_requests", "batches", "configs", "judgements"):
            db.execute(f"DROP TABLE {table}")
        db.execute("DELETE FROM migrations WHERE name != 'v1_initial'")
    before = _digests(source)
    result = rebuild(source, tmp_path / "new")
    assert result.usage.requests == 0 and (result.tasks, result.rows) == (result.source_tasks, result.source_rows)
    assert _digests(source) == before
    with sqlite3.connect(source / "selfinstruct.sqlite") as db:
        assert [row[0] for row in db.execute("SELECT name FROM migrations")] == ["v1_initial"]
