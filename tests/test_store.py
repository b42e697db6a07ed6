import json
import sqlite3
from pathlib import Path

from selfinstruct.core.config import stored_settings
from selfinstruct.core.records import Candidate, Instance, Rejection, SeedTask
from selfinstruct.core.store import STORE_NAME, RoundRecord, Store
from selfinstruct.core.teacher_records import TeacherReply

SEEDS = [SeedTask(id="s0", instruction="Name three fruits.", instances=[Instance(output="Apple, pear, plum")])]


def _candidate(text: str) -> Candidate:
    return Candidate(instruction=text, instances=(Instance(input="in", output="out"),), round=1)


def test_round_commit_is_all_or_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.add_seeds(SEEDS, "hash")
        record = RoundRecord(1, [_candidate("Explain tides to a child.")],
                             [Rejection(candidate=_candidate("Draw a cat."), reason="blacklist")], {"kept": 1})
        store.commit_round(record, lambda cand: {"round": cand.round})
        # A second round that repeats an accepted instruction violates UNIQUE: nothing of it lands.
        bad = RoundRecord(2, [_candidate("Sort the list backwards."), _candidate("Explain tides to a child.")], [], {})
        try:
            store.commit_round(bad, lambda cand: {})
        except Exception as err:
            assert "UNIQUE" in str(err)
        assert store.instructions("generated") == ["Explain tides to a child."]
        assert store.next_round() == 2
        assert store.drop_counts() == {"blacklist": 1}


def test_reopened_store_keeps_pool_and_replies(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.add_seeds(SEEDS, "hash")
        store.save_replies([("k1", "instructions", "prompt", TeacherReply(text="hi", finish_reason="stop",
                                                                            prompt_tokens=3, completion_tokens=1))])
        store.save_replies([(f"k{i}", "classify", "p", TeacherReply(text=f"t{i}")) for i in (2, 3)])
        store.commit_round(RoundRecord(1, [_candidate("Explain tides to a child.")]), lambda cand: {})
    with Store.open(tmp_path) as store:
        assert store.get_meta("seeds_hash") == "hash"
        assert store.seed_tasks() == SEEDS
        assert store.accepted_examples()[0].instruction == "Explain tides to a child."
        cached = store.cached_reply("k1")
        assert cached is not None and cached.cached and cached.text == "hi"
        assert store.cached_reply("absent") is None
        assert [store.cached_reply(k).text for k in ("k2", "k3")] == ["t2", "t3"]  # a batch, in one transaction


def test_store_uses_wal_and_records_migrations(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / STORE_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [row[0] for row in db.execute("SELECT name FROM migrations")] == [
        "v1_initial", "v2_converted_rows", "v3_batches", "v4_config_history", "v5_judgements"]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_v1_store_gains_the_converted_rows_table_on_open(tmp_path: Path) -> None:
    # A run directory made before the migration existed: opening it applies v2 once, keeping its tasks.
    from selfinstruct.core.records import ExampleRow
    from selfinstruct.core.store import MIGRATIONS, SkippedRow

    db = sqlite3.connect(tmp_path / STORE_NAME)
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    MIGRATIONS[0][1](db)
    db.execute("INSERT INTO migrations VALUES ('v1_initial', 0)")
    db.commit()
    db.close()
    with Store.open(tmp_path) as store:
        store.add_converted([ExampleRow(instruction="Say hi.", output="Hi.", group="g:1", split="test")],
                            [SkippedRow("data.csv", 2, "empty_text", "text", "expected a non-empty text")], {})
        assert [(row.group, row.split) for row in store.example_rows()] == [("g:1", "test")]
        assert store.skipped_counts() == {"empty_text": 1}


def test_a_store_from_before_the_config_history_keeps_its_config(tmp_path: Path) -> None:
    # A store made by an older version: no config history, its config in meta.config, rounds committed.
    Store.open(tmp_path).close()
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        db.execute("DROP TABLE configs")
        db.execute("DELETE FROM migrations WHERE name = 'v4_config_history'")
        db.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps({"target": 40, "max_tokens": 9}),))
        db.execute("INSERT INTO rounds VALUES (1, '{}', 0.0)")
    db.close()
    with Store.open(tmp_path) as store:
        [entry] = store.config_history()
    assert (entry.config["target"], entry.first_round) == (40, 1)
    assert stored_settings(entry.config)["max_total_tokens"] == 9  # an old name, read under the new one
