"""The run's single source of truth: one SQLite file (WAL) per run directory.

Only this module contains SQL. Each round commits in one transaction, so a crash
loses at most the round in flight; teacher replies commit as they arrive, so a
resumed run never pays twice for the same answer.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError
from .records import AlpacaExample, Candidate, ExampleRow, Instance, Judgement, JudgeTarget, Rejection, SeedTask
from .teacher_records import TeacherReply

STORE_NAME = "selfinstruct.sqlite"
ROUTE_KEY = "route"  # meta: "convert" or "mix" for run directories of converted rows; absent for a grow run
_ERROR_CLASS = re.compile(r"\(([a-z_]+)\)$")


def _execute_script(db: sqlite3.Connection, script: str) -> None:
    # Statement by statement: executescript() would commit and break the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            origin TEXT NOT NULL CHECK (origin IN ('seed', 'generated')),
            seed_id TEXT,
            instruction TEXT NOT NULL UNIQUE,
            is_classification INTEGER NOT NULL,
            round INTEGER NOT NULL,
            provenance TEXT NOT NULL DEFAULT '{}',
            created REAL NOT NULL
        );
        CREATE TABLE instances (
            task_id INTEGER NOT NULL REFERENCES tasks(id),
            position INTEGER NOT NULL,
            input TEXT NOT NULL,
            output TEXT NOT NULL,
            PRIMARY KEY (task_id, position)
        );
        CREATE TABLE rejections (
            id INTEGER PRIMARY KEY,
            round INTEGER NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            instruction TEXT NOT NULL,
            instances TEXT NOT NULL,
            created REAL NOT NULL
        );
        CREATE INDEX rejections_reason ON rejections(reason);
        CREATE TABLE replies (
            key TEXT PRIMARY KEY,
            stage TEXT NOT NULL,
            prompt TEXT NOT NULL,
            text TEXT NOT NULL,
            finish_reason TEXT,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            seconds REAL NOT NULL,
            created REAL NOT NULL
        );
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            stage TEXT NOT NULL,
            prompt TEXT NOT NULL,
            error TEXT NOT NULL,
            created REAL NOT NULL
        );
        CREATE TABLE rounds (
            round INTEGER PRIMARY KEY,
            stats TEXT NOT NULL,
            created REAL NOT NULL
        );
        """
    )


def _v2(db: sqlite3.Connection) -> None:
    # Rows made from labelled data (convert) or taken into a mix. Not `tasks`: its instructions are UNIQUE,
    # and templated rows share their instructions by design.
    _execute_script(
        db,
        """
        CREATE TABLE converted (
            id INTEGER PRIMARY KEY,
            grp TEXT NOT NULL,
            split TEXT,
            instruction TEXT NOT NULL,
            input TEXT NOT NULL,
            output TEXT NOT NULL,
            provenance TEXT NOT NULL
        );
        CREATE TABLE skipped (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            row INTEGER NOT NULL,
            reason TEXT NOT NULL,
            field TEXT,
            detail TEXT NOT NULL
        );
        CREATE INDEX skipped_reason ON skipped(reason);
        """
    )


def _v3_batches(db: sqlite3.Connection) -> None:
    # Batch mode: a batch is paid for once submitted, so its id and its requests are recorded before
    # it is, and a resumed run polls and collects it instead of sending its requests again.
    _execute_script(
        db,
        """
        CREATE TABLE batches (
            id TEXT PRIMARY KEY,
            runner TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('prepared', 'submitted', 'collected')),
            input_file_id TEXT,
            remote_id TEXT,
            outcome TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE TABLE batch_requests (
            batch_id TEXT NOT NULL REFERENCES batches(id),
            key TEXT NOT NULL,
            stage TEXT NOT NULL,
            prompt TEXT NOT NULL,
            PRIMARY KEY (batch_id, key)
        );
        CREATE INDEX batch_requests_key ON batch_requests(key);
        """
    )


def _v4_config_history(db: sqlite3.Connection) -> None:
    # One row per grow configuration that committed rounds: meta.config held only the last opener's, so a
    # nightly run with a small target that found its run done overwrote the config that made the data.
    db.execute(
        """CREATE TABLE configs (
            id INTEGER PRIMARY KEY,
            config TEXT NOT NULL,
            first_round INTEGER NOT NULL,
            created REAL NOT NULL
        )"""
    )
    legacy = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    first = db.execute("SELECT min(round) FROM rounds").fetchone()[0]
    if legacy is not None and first is not None:
        db.execute("INSERT INTO configs (config, first_round, created) VALUES (?, ?, ?)",
                   (legacy[0], first, time.time()))


def _v5_judgements(db: sqlite3.Connection) -> None:
    # The judge's verdicts, one per row (a task's instance), judge model and rubric version: another judge or
    # rubric adds rows beside the old ones. score NULL: the row is unjudged, reason says why.
    _execute_script(
        db,
        """
        CREATE TABLE judgements (
            id INTEGER PRIMARY KEY,
            task_id INTEGER NOT NULL REFERENCES tasks(id),
            instance INTEGER NOT NULL,
            judge_model TEXT NOT NULL,
            rubric_version TEXT NOT NULL,
            score INTEGER CHECK (score BETWEEN 1 AND 5),
            reason TEXT NOT NULL,
            category TEXT,
            difficulty TEXT,
            request_key TEXT,
            created REAL NOT NULL,
            UNIQUE (task_id, instance, judge_model, rubric_version)
        );
        CREATE INDEX judgements_judge ON judgements(judge_model, rubric_version)
        """
    )


# Ordered, named migrations; the applied ones are recorded in `migrations`.
MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("v1_initial", _v1), ("v2_converted_rows", _v2), ("v3_batches", _v3_batches),
    ("v4_config_history", _v4_config_history), ("v5_judgements", _v5_judgements),
]
JUDGE_STAGE = "judge"  # the replies' and dead letters' stage of the judge's requests (teacher_records.Stage)


TASK_GROUP = "task:"  # the group of a grown task's rows: "task:<id>"


def task_row_key(row: ExampleRow) -> tuple[int, int] | None:
    """(task id, instance position) of a grown task's row (`Store.example_rows`); None for a converted row."""
    if not row.group.startswith(TASK_GROUP) or not isinstance(row.provenance.get("instance"), int):
        return None
    return int(row.group[len(TASK_GROUP):]), row.provenance["instance"]


@dataclass(frozen=True)
class SkippedRow:
    """A source row a conversion left out (with --skip-bad, or by design: unanswerable, unlabelled)."""

    source: str
    row: int
    reason: str
    field: str | None
    detail: str


@dataclass(frozen=True)
class BatchRecord:
    """A batch of teacher requests handed to a batch runner (the Batch API, vllm run-batch)."""

    id: str
    runner: str
    endpoint: str
    status: str  # prepared (recorded, not yet handed over), submitted, collected
    input_file_id: str | None = None
    remote_id: str | None = None
    outcome: str | None = None
    created: float = 0.0


_INSERT_REPLY = "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _reply_values(rows: list[tuple[str, str, str, TeacherReply]], now: float) -> list[tuple[object, ...]]:
    return [(key, stage, prompt, reply.text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens,
             reply.seconds, now) for key, stage, prompt, reply in rows]


@dataclass(frozen=True)
class ConfigEntry:
    """A grow configuration that committed rounds, from round `first_round` on."""

    config: dict[str, object]
    first_round: int
    created: float


@dataclass
class RoundRecord:
    """Everything one round adds to the store, committed together."""

    round: int
    accepted: list[Candidate] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    stats: dict[str, object] = field(default_factory=dict)
    config: str | None = None  # the grow config's JSON: recorded with the round when it differs from the last


class Store:
    """A run directory's SQLite store."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the store {path}: {err}") from err

    @classmethod
    def open(cls, run_dir: Path) -> "Store":
        return cls(run_dir / STORE_NAME)

    @classmethod
    def open_readonly(cls, run_dir: Path) -> "Store":
        """A copy of `run_dir`'s store in memory, migrated to today's schema: the file itself is only read.

        A store made by an earlier version lacks today's tables (a rebuild reads last month's runs), so the
        copy, not the file, gets the migrations.
        """
        store = cls.__new__(cls)
        store.path = run_dir / STORE_NAME
        try:
            source = sqlite3.connect(f"{store.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            try:
                source.execute("SELECT count(*) FROM migrations").fetchone()
                store._db = sqlite3.connect(":memory:", isolation_level=None)
                source.backup(store._db)
            finally:
                source.close()
            store._db.execute("PRAGMA foreign_keys=ON")
            store._migrate()
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the store {store.path} for reading: {err}") from err
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The connection, with any SQLite error raised as a StoreError naming the file."""
        try:
            yield self._db
        except sqlite3.Error as err:
            raise StoreError(f"writing {self.path} failed: {err}") from err

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._writing() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
        done = {row[0] for row in self._db.execute("SELECT name FROM migrations")}
        for name, migration in MIGRATIONS:
            if name not in done:
                with self._transaction() as db:
                    migration(db)
                    db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))

    # -- run metadata ---------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- the pool -----------------------------------------------------------------------
    def add_seeds(self, seeds: list[SeedTask], seeds_hash: str) -> None:
        """Store the seed tasks once, when the run starts."""
        with self._transaction() as db:
            for seed in seeds:
                self._insert_task(db, "seed", seed.id, seed.instruction, seed.is_classification, 0, {}, seed.instances)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('seeds_hash', ?)", (seeds_hash,))

    def seed_tasks(self) -> list[SeedTask]:
        rows = self._db.execute(
            "SELECT id, seed_id, instruction, is_classification FROM tasks WHERE origin = 'seed' ORDER BY id"
        ).fetchall()
        return [
            SeedTask(id=seed_id, instruction=text, is_classification=bool(cls), instances=self._instances(task_id))
            for task_id, seed_id, text, cls in rows
        ]

    def instructions(self, origin: str | None = None) -> list[str]:
        """Pool instructions in the order they joined (seeds first)."""
        if origin:
            rows = self._db.execute("SELECT instruction FROM tasks WHERE origin = ? ORDER BY id", (origin,))
        else:
            rows = self._db.execute("SELECT instruction FROM tasks ORDER BY id")
        return [row[0] for row in rows]

    def accepted_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM tasks WHERE origin = 'generated'").fetchone()[0]

    def example_rows(self, instances: int | None = None) -> list[ExampleRow]:
        """Every instance of every accepted task as one row (the first `instances` of each task when given),
        in acceptance order; a task's rows share the group `task:<id>`, so they never straddle the split.
        Then the converted rows (convert and mix runs), so export, report, verify and mix read both routes."""
        limit = -1 if instances is None else instances  # SQLite reads LIMIT -1 as no limit
        rows = self._db.execute(
            """SELECT t.id, t.instruction, t.is_classification, t.round, t.provenance, t.created,
                      i.position, i.input, i.output
               FROM tasks t JOIN instances i ON i.task_id = t.id
               WHERE t.origin = 'generated' AND i.position < (CASE WHEN ? < 0 THEN 1e9 ELSE ? END)
               ORDER BY t.id, i.position""", (limit, limit)
        )
        out = []
        for task_id, text, is_classification, round_, provenance, created, position, input_, output in rows:
            details = json.loads(provenance) | {"is_classification": bool(is_classification), "round": round_,
                                                "instance": position, "created": created}
            out.append(ExampleRow(instruction=text, input=input_, output=output, group=f"{TASK_GROUP}{task_id}",
                                  provenance=details))
        return out + self.converted_rows()  # a conversion's or a mix's rows (no instance limit applies)

    def accepted_examples(self, instances: int | None = None) -> list[AlpacaExample]:
        """The Alpaca rows of `example_rows`: every instance of every accepted task by default."""
        return [row.alpaca() for row in self.example_rows(instances)]

    def pool_examples(self) -> list[AlpacaExample]:
        """Every instance of every pool task (seeds and accepted), for MinHash on whole examples."""
        rows = self._db.execute(
            """SELECT t.instruction, i.input, i.output FROM tasks t
               JOIN instances i ON i.task_id = t.id ORDER BY t.id, i.position"""
        )
        return [AlpacaExample(instruction=a, input=b, output=c) for a, b, c in rows]

    def _instances(self, task_id: int) -> list[Instance]:
        rows = self._db.execute("SELECT input, output FROM instances WHERE task_id = ? ORDER BY position", (task_id,))
        return [Instance(input=a, output=b) for a, b in rows]

    @staticmethod
    def _insert_task(db: sqlite3.Connection, origin: str, seed_id: str | None, instruction: str,
                     is_classification: bool, round_: int, provenance: dict[str, object],
                     instances: list[Instance] | tuple[Instance, ...]) -> None:
        cursor = db.execute(
            "INSERT INTO tasks (origin, seed_id, instruction, is_classification, round, provenance, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (origin, seed_id, instruction, int(is_classification), round_, json.dumps(provenance), time.time()),
        )
        db.executemany(
            "INSERT INTO instances VALUES (?, ?, ?, ?)",
            [(cursor.lastrowid, n, inst.input, inst.output) for n, inst in enumerate(instances)],
        )

    # -- rounds -------------------------------------------------------------------------
    def next_round(self) -> int:
        row = self._db.execute("SELECT max(round) FROM rounds").fetchone()
        return (row[0] or 0) + 1

    def commit_round(self, record: RoundRecord, provenance: Callable[[Candidate], dict[str, object]]) -> None:
        """Accepted tasks, rejections and the round's stats, all or nothing."""
        now = time.time()
        with self._transaction() as db:
            for cand in record.accepted:
                self._insert_task(db, "generated", None, cand.instruction, cand.is_classification,
                                  record.round, provenance(cand), cand.instances)
            db.executemany(
                "INSERT INTO rejections (round, reason, detail, instruction, instances, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (record.round, rej.reason, rej.detail, rej.candidate.instruction,
                     json.dumps([i.model_dump() for i in rej.candidate.instances], ensure_ascii=False), now)
                    for rej in record.rejections
                ],
            )
            db.execute("INSERT INTO rounds VALUES (?, ?, ?)", (record.round, json.dumps(record.stats), now))
            if record.config is not None:
                last = db.execute("SELECT config FROM configs ORDER BY id DESC LIMIT 1").fetchone()
                if last is None or json.loads(last[0]) != json.loads(record.config):
                    db.execute("INSERT INTO configs (config, first_round, created) VALUES (?, ?, ?)",
                               (record.config, record.round, now))

    def config_history(self) -> list[ConfigEntry]:
        """Every configuration that committed rounds, oldest first; a store from before the history holds
        at most the legacy meta.config."""
        rows = self._db.execute("SELECT config, first_round, created FROM configs ORDER BY id").fetchall()
        if not rows and (legacy := self.get_meta("config")) is not None:
            return [ConfigEntry(json.loads(legacy), 1, 0.0)]
        return [ConfigEntry(json.loads(text), first, created) for text, first, created in rows]

    def round_stats(self) -> list[dict[str, object]]:
        return [json.loads(row[0]) for row in self._db.execute("SELECT stats FROM rounds ORDER BY round")]

    def drop_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT reason, count(*) FROM rejections GROUP BY reason ORDER BY 2 DESC")
        return dict(rows.fetchall())

    # -- the request cache ----------------------------------------------------------------
    def cached_reply(self, key: str) -> TeacherReply | None:
        row = self._db.execute(
            "SELECT text, finish_reason, prompt_tokens, completion_tokens, seconds FROM replies WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        text, finish, prompt_tokens, completion_tokens, seconds = row
        return TeacherReply(text=text, finish_reason=finish, prompt_tokens=prompt_tokens,
                            completion_tokens=completion_tokens, seconds=seconds, cached=True)

    def save_replies(self, rows: list[tuple[str, str, str, TeacherReply]]) -> None:
        """Store (key, stage, prompt, reply) rows at once: all or none."""
        values = _reply_values(rows, time.time())
        # One statement is its own transaction in autocommit mode: a single row needs no BEGIN/COMMIT.
        with self._writing() if len(values) == 1 else self._transaction() as db:
            db.executemany(_INSERT_REPLY, values)

    def stored_replies(self) -> list[tuple[str, str, TeacherReply]]:
        """(stage, prompt, reply) of every stored reply, in the order they were first answered."""
        rows = self._db.execute(
            "SELECT stage, prompt, text, finish_reason, prompt_tokens, completion_tokens, seconds FROM replies"
            " ORDER BY created, rowid")
        return [(stage, prompt, TeacherReply(text=text, finish_reason=finish, prompt_tokens=pt, completion_tokens=ct,
                                             seconds=seconds, cached=True))
                for stage, prompt, text, finish, pt, ct, seconds in rows]

    def save_dead_letter(self, key: str, stage: str, prompt: str, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO dead_letters (key, stage, prompt, error, created) VALUES (?, ?, ?, ?, ?)",
                (key, stage, prompt, error, time.time()),
            )

    def dead_letter_counts(self, stage: str | None = None) -> dict[str, int]:
        """Dead letters (of one stage when given) by error class: the teacher ends each message with it,
        '... (timeout)'."""
        counts: Counter[str] = Counter()
        query, params = "SELECT error FROM dead_letters", ()
        if stage is not None:
            query, params = query + " WHERE stage = ?", (stage,)
        for (error,) in self._db.execute(query, params):
            found = _ERROR_CLASS.search(error)
            counts[found.group(1) if found else "unknown"] += 1
        return dict(counts.most_common())

    # -- batches ---------------------------------------------------------------------------
    def add_batch(self, batch: BatchRecord, requests: list[tuple[str, str, str]]) -> None:
        """Record a batch and its (key, stage, prompt) requests before it is handed to its runner."""
        now = time.time()
        with self._transaction() as db:
            db.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (batch.id, batch.runner, batch.endpoint, batch.status, batch.input_file_id,
                        batch.remote_id, batch.outcome, now, now))
            db.executemany("INSERT INTO batch_requests VALUES (?, ?, ?, ?)",
                           [(batch.id, key, stage, prompt) for key, stage, prompt in requests])

    def update_batch(self, batch_id: str, **fields: str | None) -> None:
        """Set some of status, input_file_id, remote_id, outcome."""
        unknown = set(fields) - {"status", "input_file_id", "remote_id", "outcome"}
        if unknown:
            raise ValueError(sorted(unknown))
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._writing() as db:
            db.execute(f"UPDATE batches SET {assignments}, updated = ? WHERE id = ?",
                       (*fields.values(), time.time(), batch_id))

    def collect_batch(self, batch_id: str, outcome: str, rows: list[tuple[str, str, str, TeacherReply]]) -> None:
        """A batch's replies and its collected status, together: a crash leaves it either to poll or done."""
        now = time.time()
        with self._transaction() as db:
            db.executemany(_INSERT_REPLY, _reply_values(rows, now))
            db.execute("UPDATE batches SET status = 'collected', outcome = ?, updated = ? WHERE id = ?",
                       (outcome, now, batch_id))

    def forget_batch(self, batch_id: str) -> None:
        """Drop a batch that was recorded but never handed over (nothing was paid for it)."""
        with self._transaction() as db:
            db.execute("DELETE FROM batch_requests WHERE batch_id = ?", (batch_id,))
            db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))

    def open_batches(self) -> list[BatchRecord]:
        """Batches not yet collected, oldest first."""
        rows = self._db.execute(
            "SELECT id, runner, endpoint, status, input_file_id, remote_id, outcome, created FROM batches"
            " WHERE status != 'collected' ORDER BY created, id")
        return [BatchRecord(*row) for row in rows]

    def batches(self) -> list[BatchRecord]:
        rows = self._db.execute(
            "SELECT id, runner, endpoint, status, input_file_id, remote_id, outcome, created FROM batches"
            " ORDER BY created, id")
        return [BatchRecord(*row) for row in rows]

    def batch_requests(self, batch_id: str) -> list[tuple[str, str, str]]:
        """(key, stage, prompt) of a batch's requests, in the order they were recorded."""
        rows = self._db.execute("SELECT key, stage, prompt FROM batch_requests WHERE batch_id = ? ORDER BY rowid",
                                (batch_id,))
        return [tuple(row) for row in rows]  # type: ignore[misc]

    def teacher_totals(self, judge: bool = False) -> tuple[int, int, int]:
        """(requests, prompt tokens, completion tokens) over the replies and dead letters stored: the grow's
        (every stage but the judge's), or with `judge` the judge's alone; each has its own budget."""
        where = "stage = ?" if judge else "stage != ?"
        requests, prompt, completion = self._db.execute(
            f"SELECT count(*), sum(prompt_tokens), sum(completion_tokens) FROM replies WHERE {where}",
            (JUDGE_STAGE,)).fetchone()
        failed = self._db.execute(f"SELECT count(*) FROM dead_letters WHERE {where}", (JUDGE_STAGE,)).fetchone()[0]
        return requests + failed, prompt or 0, completion or 0

    def generated_rounds(self) -> list[tuple[int, str]]:
        """(round, instruction) of every accepted task, in the order they joined the pool."""
        return list(self._db.execute("SELECT round, instruction FROM tasks WHERE origin = 'generated' ORDER BY id"))

    def generated_records(self) -> list[dict[str, object]]:
        """Every accepted task with all its instances and provenance, in acceptance order."""
        records = []
        rows = self._db.execute(
            "SELECT id, instruction, is_classification, round, provenance, created FROM tasks"
            " WHERE origin = 'generated' ORDER BY id"
        ).fetchall()
        for task_id, text, is_classification, round_, provenance, created in rows:
            records.append({
                "instruction": text, "instances": [i.model_dump() for i in self._instances(task_id)],
                "is_classification": bool(is_classification), "round": round_,
                "provenance": json.loads(provenance), "created": created,
            })
        return records

    def rejections(self, reason: str | None = None, limit: int | None = None) -> list[dict[str, object]]:
        """Dropped candidates (newest last), optionally of one reason."""
        query = "SELECT round, reason, detail, instruction, instances, created FROM rejections"
        params: tuple[object, ...] = ()
        if reason is not None:
            query += " WHERE reason = ?"
            params = (reason,)
        query += " ORDER BY id" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [
            {"round": r, "reason": why, "detail": detail, "instruction": text,
             "instances": json.loads(instances), "created": created}
            for r, why, detail, text, instances, created in self._db.execute(query, params)
        ]

    def integrity_problems(self) -> list[str]:
        rows = [row[0] for row in self._db.execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    def generated_tasks(self) -> list[tuple[str, int, dict[str, object]]]:
        """(instruction, number of instances, provenance) of every accepted task."""
        rows = self._db.execute(
            """SELECT t.instruction, count(i.position), t.provenance FROM tasks t
               LEFT JOIN instances i ON i.task_id = t.id WHERE t.origin = 'generated'
               GROUP BY t.id ORDER BY t.id"""
        )
        return [(text, count, json.loads(provenance)) for text, count, provenance in rows]

    # -- the judge's verdicts ---------------------------------------------------------------------
    def judge_targets(self) -> list[JudgeTarget]:
        """Every instance of every accepted task, in export order: the rows a judge scores."""
        rows = self._db.execute(
            """SELECT t.id, i.position, t.instruction, i.input, i.output FROM tasks t
               JOIN instances i ON i.task_id = t.id WHERE t.origin = 'generated' ORDER BY t.id, i.position""")
        return [JudgeTarget(task_id=task_id, instance=position, instruction=text, input=input_, output=output)
                for task_id, position, text, input_, output in rows]

    def save_judgement(self, judgement: Judgement) -> None:
        """One row's verdict for its judge model and rubric version; replaces that judge's earlier one (an
        unjudged row judged on a later run), never another judge's."""
        with self._writing() as db:  # one statement: its own transaction
            db.execute(
                """INSERT INTO judgements (task_id, instance, judge_model, rubric_version, score, reason, category,
                       difficulty, request_key, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (task_id, instance, judge_model, rubric_version) DO UPDATE SET
                       score = excluded.score, reason = excluded.reason, category = excluded.category,
                       difficulty = excluded.difficulty, request_key = excluded.request_key,
                       created = excluded.created""",
                (judgement.task_id, judgement.instance, judgement.judge_model, judgement.rubric_version,
                 judgement.score, judgement.reason, judgement.category, judgement.difficulty, judgement.request_key,
                 judgement.created or time.time()))

    def judgements(self, judge_model: str | None = None, rubric_version: str | None = None) -> list[Judgement]:
        """Stored verdicts (of one judge model and/or rubric version when given), in row order."""
        query = ("SELECT task_id, instance, judge_model, rubric_version, score, reason, category, difficulty, "
                 "request_key, created FROM judgements")
        conditions = [(column, value) for column, value in (("judge_model", judge_model),
                                                             ("rubric_version", rubric_version)) if value is not None]
        if conditions:
            query += " WHERE " + " AND ".join(f"{column} = ?" for column, _ in conditions)
        query += " ORDER BY task_id, instance, id"
        return [Judgement(task_id=task_id, instance=instance, judge_model=model, rubric_version=version, score=score,
                          reason=reason, category=category, difficulty=difficulty, request_key=key, created=created)
                for task_id, instance, model, version, score, reason, category, difficulty, key, created
                in self._db.execute(query, tuple(value for _, value in conditions))]

    def latest_judge(self) -> tuple[str, str] | None:
        """(judge model, rubric version) of the judge that judged last, the one exports and reports read."""
        row = self._db.execute(
            "SELECT judge_model, rubric_version FROM judgements ORDER BY created DESC, id DESC LIMIT 1").fetchone()
        return None if row is None else (row[0], row[1])

    # -- converted rows (dataset conversion and mixes) ----------------------------------------
    def add_converted(self, rows: list[ExampleRow], skipped: list[SkippedRow], meta: dict[str, str]) -> None:
        """A conversion's rows, its skipped rows and its metadata, all or nothing."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO converted (grp, split, instruction, input, output, provenance) VALUES (?, ?, ?, ?, ?, ?)",
                [(row.group, row.split, row.instruction, row.input, row.output,
                  json.dumps(row.provenance, ensure_ascii=False)) for row in rows],
            )
            db.executemany(
                "INSERT INTO skipped (source, row, reason, field, detail) VALUES (?, ?, ?, ?, ?)",
                [(s.source, s.row, s.reason, s.field, s.detail) for s in skipped],
            )
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(meta.items()))

    def converted_rows(self) -> list[ExampleRow]:
        rows = self._db.execute(
            "SELECT grp, split, instruction, input, output, provenance FROM converted ORDER BY id")
        return [ExampleRow(group=group, split=split, instruction=a, input=b, output=c, provenance=json.loads(p))
                for group, split, a, b, c, p in rows]

    def skipped_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT reason, count(*) FROM skipped GROUP BY reason ORDER BY 2 DESC, 1")
        return dict(rows.fetchall())

    def count(self, table: str) -> int:
        if table not in {"replies", "dead_letters", "rejections", "tasks", "rounds", "converted", "skipped",
                         "batches", "batch_requests", "judgements"}:
            raise ValueError(table)
        return self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
