"""The judge without a model: its reply reader on the shapes models write, its store table (from an older store
file), the `--min-score` export, the card, the report and the mean-score gate, and how its teacher is chosen.

The judge against the real bundled model (≥30 rows, kill and resume) is tests/test_judge_cpu.py (slow).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import app
from selfinstruct.core.config import GrowConfig, build_config
from selfinstruct.core.errors import InputError
from selfinstruct.core.records import Candidate, Instance, Judgement, SeedTask
from selfinstruct.core.store import MIGRATIONS, STORE_NAME, RoundRecord, Store
from selfinstruct.core.teacher_records import TeacherReply
from selfinstruct.export.formats import ALPACA_FILE, CARD_FILE, PROVENANCE_FILE, export_alpaca
from selfinstruct.judge.read import JudgeReplyInvalid, Verdict, read_verdict
from selfinstruct.judge.rubric import CATEGORIES, JudgementReply, judge_prompt, schema_of_reply
from selfinstruct.judge.run import judge_teacher_config
from selfinstruct.judge.scores import judge_summary
from selfinstruct.publish import export_run
from selfinstruct.report.gates import GateConfig, collect_stats, evaluate_gates
from selfinstruct.report.html import build_report
from selfinstruct.report.verify import verify_run

runner = CliRunner()


# -- the reader -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # What a structured request gets back (llama.cpp's grammar keeps to the schema; key order as we ask).
    ('{"reason":"Correct, but it lists two items, not three.", "score": 4, "category":"brainstorming", '
     '"difficulty":"easy"}', Verdict(4, "Correct, but it lists two items, not three.", "brainstorming", "easy")),
    # The bundled SmolLM2-135M with structured outputs on (recorded 2026-12-02): one word as its reason.
    ('{"score": 1, "reason":"notable", "category":"brainstorming","difficulty":"hard"}',
     Verdict(1, "notable", "brainstorming", "hard")),
    # A chat model without structured outputs: a preamble and a fenced object, keys in another case.
    ("Here is my evaluation:\n\n```json\n{\n  \"Score\": 2,\n  \"Reason\": \"The poem does not rhyme.\",\n"
     "  \"Category\": \"Creative Writing\",\n  \"Difficulty\": \"Medium\"\n}\n```\nLet me know if you need more.",
     Verdict(2, "The poem does not rhyme.", "creative_writing", "medium")),
    # The four lines the text prompt asks for.
    ("Score: 4\nReason: The summary is accurate but leaves out the date.\nCategory: summarization\nDifficulty: easy",
     Verdict(4, "The summary is accurate but leaves out the date.", "summarization", "easy")),
    # Markdown emphasis, a score out of 5, tags in words we map onto ours.
    ("**Score:** 5/5\n**Reason:** The code is correct and handles the empty list.\n**Category:** Programming\n"
     "**Difficulty:** Hard", Verdict(5, "The code is correct and handles the empty list.", "coding", "hard")),
    # The reason on the score's line.
    ("Score: 3 - the answer is right but the explanation is missing.", Verdict(3, "the answer is right but the "
                                                                               "explanation is missing.", None, None)),
    # A sentence.
    ("I would rate this response a 2 out of 5 because it answers a different question.",
     Verdict(2, "it answers a different question.", None, None)),
    ("Rating (1-5): 1\nExplanation: The output is empty text.\nTask type: question answering",
     Verdict(1, "The output is empty text.", "open_qa", None)),
    # A bare score on the first line, the reason after it.
    ("5\n\nThe translation is faithful.", Verdict(5, "The translation is faithful.", None, None)),
    # A completions reply continues the prompt's "Reason:" (read with that prefix).
    (" The sum is right.\nScore: 5\nCategory: math\nDifficulty: easy", Verdict(5, "The sum is right.", "math", "easy")),
    # ... or a prompt that ended in "Score:".
    (" 4\nReason: Mostly right.\nCategory: math\nDifficulty: easy", Verdict(4, "Mostly right.", "math", "easy")),
    # A JSON reply cut by the length limit: the score arrived before the cut, the reason in part.
    ('{"score": 3, "reason": "The list repeats the same item three ti',
     Verdict(3, "The list repeats the same item three ti", None, None)),
    # A half score goes down; an unknown category is "other"; an unknown difficulty is no tag.
    ('{"rating": "4.5", "explanation": "Good.", "category": "poetry", "difficulty": "tricky"}',
     Verdict(4, "Good.", "other", None)),
])
def test_the_reader_takes_the_shapes_models_write(text: str, expected: Verdict) -> None:
    prefix = "Score:" if text.startswith(" 4\nReason") else "Reason:" if text.startswith(" The sum") else ""
    assert read_verdict(text, prefix) == expected


@pytest.mark.parametrize(("text", "detail"), [
    ("Score: 7\nReason: very good", "score 7 outside 1-5"),
    ("Score: 8/10", "a score out of 10, not out of 5"),
    ("The response is helpful and clear.", "no score in the reply"),
    ("", "no score in the reply"),
    ('{"reason": "fine", "category": "math"}', "no score in the reply"),
    ("Score: excellent\nReason: well done", "no number after 'Score'"),
    ('{"score": "high", "reason": "x"}', "the score is not a number"),
    # The bundled model on chat without structured outputs: it writes about the task, no verdict (recorded).
    ("The task is to create a quiz with five questions on volcanoes for Hana, a barista from the Amalfi Coast, "
     "with one concrete example.", "no score in the reply"),
    # The bundled model on the completions API copying the prompt's example verdict word for word (recorded).
    (" The answer is correct but leaves out one of the three items asked for.\nScore: 4\nCategory: classification\n"
     "Difficulty: medium", "copies the prompt's example verdict"),
    # The bundled model on the completions API, copying the template's range (recorded 2026-12-02).
    (" 1-5\nReason: 2.0\nDifficulty: 3.0\nCategory: <one category>", "no number after 'Score'"),
])
def test_a_reply_without_a_usable_score_is_refused_with_the_reason(text: str, detail: str) -> None:
    with pytest.raises(JudgeReplyInvalid) as caught:
        read_verdict(text, "Reason:" if text.startswith(" The answer") else "Score:" if text.startswith(" ") else "")
    assert detail in caught.value.detail


def test_a_long_reason_is_cut_to_one_line() -> None:
    verdict = read_verdict('{"score": 2, "reason": "' + "word " * 100 + '\\nsecond line", "category": "math", '
                           '"difficulty": "easy"}')
    assert len(verdict.reason) <= 200 and "\n" not in verdict.reason and verdict.reason.endswith("…")


def test_template_words_copied_back_are_no_tags() -> None:
    assert read_verdict("Score: 3\nReason: fine\nCategory: <one category>\nDifficulty: <easy, medium or hard>") == \
        Verdict(3, "fine", None, None)


def test_the_schema_is_strict_and_the_prompt_names_the_rubric_version() -> None:
    schema = schema_of_reply()
    assert schema["required"] == ["reason", "score", "category", "difficulty"]  # the reason first
    assert schema["additionalProperties"] is False
    assert schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert schema["properties"]["category"]["enum"] == list(CATEGORIES)
    JudgementReply.model_validate_json('{"score": 5, "reason": "ok", "category": "math", "difficulty": "hard"}')
    from selfinstruct.core.records import JudgeTarget

    target = JudgeTarget(task_id=1, instance=0, instruction="Add the numbers.", input="2, 3", output="5")
    prompt = judge_prompt(target, "rubric-9", structured=False, completions=True)
    assert "rubric rubric-9" in prompt and "INPUT:\n2, 3" in prompt and prompt.endswith("\nReason:")
    assert "INPUT:\n" not in judge_prompt(target.model_copy(update={"input": ""}), "r", structured=True)


# -- the store --------------------------------------------------------------------------------------------------------

SEEDS = [SeedTask(id=f"s{i}", instruction=f"Seed task number {i} here.", instances=[Instance(output="ok")])
         for i in range(3)]


def _provenance(cand: Candidate) -> dict[str, object]:
    return {"teacher": "teacher-model", "backend": "openai", "method": "self-instruct", "round": cand.round,
            "demo_ids": [], "prompt_hash": "p", "is_classification": False, "nearest": None, "nearest_rouge_l": 0.0}


# Distinct enough that no two are near-duplicates by ROUGE-L (verify checks the pool).
INSTRUCTIONS = ["Explain why the sky looks blue at noon.", "List three uses for a paper clip.",
                "Translate good morning into Spanish.", "Sort these numbers from small to large.",
                "Write a haiku about autumn leaves.", "Summarize the plot of Hamlet briefly.",
                "Classify the review as positive or negative.", "Extract every email address from the text.",
                "Compute the area of a circle with radius two.", "Suggest a name for a bakery."]


def _grown(run_dir: Path, tasks: int = 10, instances: int = 2) -> Path:
    """A run directory filled through the store's API: `tasks` accepted tasks of `instances` rows each."""
    accepted = [Candidate(instruction=INSTRUCTIONS[i], round=1,
                          instances=tuple(Instance(input=f"in {i}.{j}" if j else "", output=f"Sentence {i}.{j}.")
                                          for j in range(instances))) for i in range(tasks)]
    config = GrowConfig(backend="openai", base_url=["http://127.0.0.1:9/v1"], out=run_dir).model_dump_json()
    with Store.open(run_dir) as store:
        store.add_seeds(SEEDS, "ab" * 32)
        stats = {"round": 1, "generated": tasks, "kept": tasks, "accepted_total": tasks, "requests": 1, "seconds": 1.0}
        store.commit_round(RoundRecord(1, accepted, [], stats, config), _provenance)
    return run_dir


def _judge(store: Store, scores: dict[tuple[int, int], int | None], model: str = "judge-m",
           version: str = "rubric-1") -> None:
    for (task, instance), score in scores.items():
        store.save_judgement(Judgement(
            task_id=task, instance=instance, judge_model=model, rubric_version=version, score=score,
            reason=f"reason {task}.{instance}" if score else "unjudged: no score in the reply (asked twice)",
            category=CATEGORIES[task % len(CATEGORIES)] if score else None, difficulty="easy" if score else None))


def _rows(store: Store) -> list[tuple[int, int]]:
    return [(target.task_id, target.instance) for target in store.judge_targets()]


def test_a_store_from_before_the_judge_gains_its_table_and_keeps_its_rows(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Written by the store as it was before v5 (its four migrations), through its own API: a real older file.
    import selfinstruct.core.store as store_module

    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:4])
    _grown(tmp_path, tasks=3)
    with Store.open(tmp_path) as old:
        old.save_replies([("k1", "instances", "a prompt", TeacherReply(text="x", prompt_tokens=5, completion_tokens=2))])
    monkeypatch.undo()
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'judgements'").fetchall()
    with Store.open(tmp_path) as store:
        assert len(store.example_rows()) == 6 and store.teacher_totals() == (1, 5, 2)
        assert store.latest_judge() is None and judge_summary(store) is None
        first = _rows(store)[0]
        _judge(store, {first: None})  # unjudged, then judged on a later run: the same judge's row is replaced
        _judge(store, {first: 4})
        _judge(store, {first: 2}, model="other-judge")  # another judge: kept beside it
        _judge(store, {first: 5}, version="rubric-2")  # another rubric version: kept too
        assert [(j.judge_model, j.rubric_version, j.score) for j in store.judgements()] == [
            ("judge-m", "rubric-1", 4), ("other-judge", "rubric-1", 2), ("judge-m", "rubric-2", 5)]
        assert store.latest_judge() == ("judge-m", "rubric-2")
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        names = [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY rowid")]
        assert names[-1] == "v5_judgements" and db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with pytest.raises(sqlite3.IntegrityError):  # the table refuses a score off the rubric's scale
            db.execute("INSERT INTO judgements (task_id, instance, judge_model, rubric_version, score, reason, "
                       "created) VALUES (?, 0, 'm', 'v', 6, '', 0)", (first[0],))


def test_the_judges_requests_are_counted_apart_from_the_grows(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.save_replies([("g", "instructions", "p", TeacherReply(text="x", prompt_tokens=10, completion_tokens=5)),
                            ("j", "judge", "q", TeacherReply(text="y", prompt_tokens=7, completion_tokens=3))])
        store.save_dead_letter("j2", "judge", "q2", "failed (timeout)")
        assert store.teacher_totals() == (1, 10, 5)
        assert store.teacher_totals(judge=True) == (2, 7, 3)
        assert store.dead_letter_counts("judge") == {"timeout": 1} and store.dead_letter_counts("instances") == {}


# -- exports -----------------------------------------------------------------------------------------------------------

def _scored_run(tmp_path: Path) -> tuple[Path, dict[tuple[int, int], int | None]]:
    """10 tasks × 2 rows: scores 1-5 in turn over 18 rows, one row unjudged, one not judged at all."""
    run = _grown(tmp_path / "run")
    with Store.open(run) as store:
        rows = _rows(store)
        scores: dict[tuple[int, int], int | None] = {row: index % 5 + 1 for index, row in enumerate(rows[:18])}
        scores[rows[18]] = None
        _judge(store, scores)
    return run, scores


def test_every_row_carries_its_verdict_in_provenance(tmp_path: Path) -> None:
    run, scores = _scored_run(tmp_path)
    export_run(run, ["alpaca"])
    lines = [json.loads(line) for line in (run / PROVENANCE_FILE).read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 20
    first = lines[0]
    assert (first["score"], first["judge_reason"], first["judge_model"], first["rubric_version"]) == (
        1, f"reason {first['group'][5:]}.0", "judge-m", "rubric-1")
    assert first["category"] in CATEGORIES and first["difficulty"] == "easy"
    assert [line["score"] for line in lines] == [*(index % 5 + 1 for index in range(18)), None, None]
    assert lines[18]["judge_reason"].startswith("unjudged:") and lines[19]["judge_reason"] == "not judged by this " \
                                                                                              "judge yet"


@pytest.mark.parametrize(("min_score", "keep_unjudged", "kept"), [
    (1, False, 18), (3, False, 10), (4, False, 6), (5, False, 3), (5, True, 5),
])
def test_min_score_keeps_rows_at_or_above_it(tmp_path: Path, min_score: int, keep_unjudged: bool, kept: int) -> None:
    run, _ = _scored_run(tmp_path)
    told = []
    export_run(run, ["alpaca"], min_score=min_score, keep_unjudged=keep_unjudged, on_selection=told.append)
    rows = json.loads((run / ALPACA_FILE).read_text(encoding="utf-8"))
    assert len(rows) == kept == told[0].kept
    assert told[0].unjudged == 2 and told[0].below == 18 - sum(1 for i in range(18) if i % 5 + 1 >= min_score)
    provenance = [json.loads(line) for line in (run / PROVENANCE_FILE).read_text(encoding="utf-8").splitlines()]
    assert all(line["score"] is None or line["score"] >= min_score for line in provenance)
    assert len(provenance) == kept


def test_a_score_filter_sticks_to_the_run_until_an_export_without_it(tmp_path: Path) -> None:
    run, _ = _scored_run(tmp_path)
    export_run(run, ["alpaca"], min_score=4)
    assert verify_run(run) == []  # verify reads the recorded filter
    with Store.open(run) as store:
        export_alpaca(store, run)  # a grow's rewrite keeps to it
        assert len(json.loads((run / ALPACA_FILE).read_text())) == 6
        _judge(store, {_rows(store)[19]: 5})  # a new score changes what the filter keeps
        export_alpaca(store, run)
    assert len(json.loads((run / ALPACA_FILE).read_text())) == 7 and verify_run(run) == []
    card = (run / CARD_FILE).read_text(encoding="utf-8")
    assert "keep only rows scored ≥ 4" in card
    export_run(run, ["alpaca"])
    assert len(json.loads((run / ALPACA_FILE).read_text())) == 20 and verify_run(run) == []


def test_min_score_without_judgements_names_the_judge_command(tmp_path: Path) -> None:
    run = _grown(tmp_path / "run")
    export_run(run, ["alpaca"])
    before = (run / ALPACA_FILE).read_bytes()
    result = runner.invoke(app, ["export", "--out", str(run), "--format", "alpaca", "--min-score", "3"],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "run `selfinstruct judge --out DIR` first, got no judgements in the store" in result.output
    assert (run / ALPACA_FILE).read_bytes() == before  # nothing written
    with Store.open(run) as store:
        assert store.get_meta("export_filter") is None
    with pytest.raises(InputError):
        export_run(run, ["alpaca"], min_score=3)


@pytest.mark.parametrize(("args", "message"), [
    (["--min-score", "6"], "expected a score from 1 to 5, got 6"),
    (["--keep-unjudged"], "expected --min-score N beside it"),
])
def test_bad_score_filter_flags(tmp_path: Path, args: list[str], message: str) -> None:
    run, _ = _scored_run(tmp_path)
    result = runner.invoke(app, ["export", "--out", str(run), "--format", "alpaca", *args], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and message in result.output, result.output


def test_the_export_command_says_what_the_filter_left_out(tmp_path: Path) -> None:
    run, _ = _scored_run(tmp_path)
    result = runner.invoke(app, ["export", "--out", str(run), "--format", "alpaca", "--min-score", "4"],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "kept 6 of 20 rows scored ≥ 4 by judge-m (rubric-1); 12 below 4; 2 unjudged left out" in result.output


# -- card, report, gate -------------------------------------------------------------------------------------------------

def test_the_card_and_the_report_show_the_judge(tmp_path: Path) -> None:
    run, _ = _scored_run(tmp_path)
    with Store.open(run) as store:
        _judge(store, {_rows(store)[0]: 2}, model="older-judge")
        _judge(store, {row: score for row, score in [(_rows(store)[0], 1)]})  # judge-m judged last
    export_run(run, ["alpaca"])
    card = (run / CARD_FILE).read_text(encoding="utf-8")
    assert "## Judge" in card and "**judge-m**" in card and "`rubric-1`" in card
    assert "18 of 20 rows scored, 1 unjudged" in card and "1 not judged yet" in card and "Mean score **2.83**" in card
    assert "| 5 | 3 |" in card and "| 1 | 4 |" in card  # the distribution, high to low
    assert "Also in the store: older-judge (`rubric-1`) scored 1 rows" in card
    result = build_report(run)
    html = result.path.read_text(encoding="utf-8")
    assert "scores.png" in html and "categories.png" in html and "Lowest-scored rows" in html
    assert (result.path.parent / "scores.png").read_bytes()[:4] == b"\x89PNG"
    lowest = html.split("Lowest-scored rows", 1)[1]
    assert lowest.count("<tr><td>1</td>") == 4  # the four rows scored 1 lead the table
    assert [g.name for g in result.gates][-1] == "min_mean_judge_score"


@pytest.mark.parametrize(("limit", "min_examples", "passed", "value"), [
    (51 / 18, 10, True, 51 / 18),  # the mean (51 points over 18 rows) is exactly at the limit
    (3.0, 10, False, 51 / 18),
    (3.0, 19, True, None),  # 18 scored rows: too few to judge the judge
])
def test_the_mean_score_gate(tmp_path: Path, limit: float, min_examples: int, passed: bool,
                             value: float | None) -> None:
    run, _ = _scored_run(tmp_path)
    only = {name: None for name in GateConfig.model_fields if name != "min_examples"}
    config = GateConfig(**(only | {"min_mean_judge_score": limit, "min_examples": min_examples}))
    [gate] = evaluate_gates(collect_stats(run), config)
    assert (gate.name, gate.passed, gate.value) == ("min_mean_judge_score", passed, value)


def test_no_judge_no_judge_gate(tmp_path: Path) -> None:
    run = _grown(tmp_path / "run")
    assert "min_mean_judge_score" not in [gate.name for gate in evaluate_gates(collect_stats(run))]


# -- which teacher judges -----------------------------------------------------------------------------------------------

def test_the_judge_is_the_grows_teacher_unless_told_otherwise() -> None:
    grow = {"backend": "openai", "base_url": ["http://127.0.0.1:9/v1"], "model": "teacher", "max_prompts": 5,
            "api": "completions"}
    same = judge_teacher_config(build_config(grow))
    assert (same.backend, same.base_url, same.model, same.api, same.max_prompts) == (
        "openai", ["http://127.0.0.1:9/v1"], "teacher", "chat", None)  # the grow's budget is not the judge's
    other = judge_teacher_config(build_config(grow | {"judge": {"backend": "cpu", "max_prompts": 40,
                                                                "concurrency": 2}}))
    assert (other.backend, other.base_url, other.model, other.max_prompts, other.concurrency) == (
        "cpu", [], None, 40, 2)
    model_only = judge_teacher_config(build_config(grow | {"judge": {"model": "bigger"}}))
    assert (model_only.backend, model_only.model, model_only.base_url) == ("openai", "bigger", grow["base_url"])


def test_the_judge_command_starts_from_the_runs_stored_settings(tmp_path: Path) -> None:
    run = _grown(tmp_path / "run")
    result = runner.invoke(app, ["judge", "--out", str(run), "--show-config"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["backend"], shown["base_url"], shown["judge"]["backend"]) == ("openai", ["http://127.0.0.1:9/v1"],
                                                                                 None)
    result = runner.invoke(app, ["judge", "--out", str(run), "--backend", "cpu", "--max-prompts", "12",
                                 "--set", "judge.rubric_version=mine", "--set", "judge.decoding.max_tokens=99",
                                 "--show-config"])
    judge = json.loads(result.stdout)["judge"]
    assert (judge["backend"], judge["max_prompts"], judge["rubric_version"], judge["decoding"]["max_tokens"]) == (
        "cpu", 12, "mine", 99)
    assert judge["decoding"]["temperature"] == 0.0  # the other decoding settings keep the judge's defaults


@pytest.mark.parametrize(("args", "message"), [
    (["--max-prompts", "0"], "--max-prompts: field 'judge.max_prompts'"),
    (["--structured", "on", "--api", "completions"], "judge.structured = on needs judge.api = chat"),
])
def test_the_judge_command_names_a_bad_setting(tmp_path: Path, args: list[str], message: str) -> None:
    run = _grown(tmp_path / "run")
    result = runner.invoke(app, ["judge", "--out", str(run), *args], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and message in result.output, result.output


def test_judging_a_directory_without_a_store_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["judge", "--out", str(tmp_path / "nothing")], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "expected a run directory holding selfinstruct.sqlite" in result.output
    assert not (tmp_path / "nothing").exists()
