"""Under fire: with 30% of requests failing in every way the fake teacher injects, a grow reaches its target and
every failed attempt is counted by its cause, in the result and in the CLI summary. When nearly every request
fails, the run stops with one clear TeacherError instead of spinning."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import app
from selfinstruct.core.config import build_config
from selfinstruct.core.errors import TeacherError
from selfinstruct.grow import grow
from selfinstruct.core.store import Store
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

# Server fault → the class our client counts it as. `length` is no failure: a cut reply is parsed as such.
CLASS_OF_FAULT = {"429": "rate_limited", "500": "server_error", "503": "server_error", "hang": "timeout",
                  "drop": "connection", "malformed": "malformed", "empty_choices": "empty_choices"}
FAULTY = FakeTeacherConfig(
    seed=5, rate_429=0.05, rate_500=0.05, rate_503=0.04, rate_hang=0.04, rate_drop=0.04, rate_malformed=0.03,
    rate_empty_choices=0.03, rate_length=0.02, retry_after=0.05,
    hang_seconds=4.0,  # longer than the client's timeout below, so every hang is a timeout
)
# pipeline_rounds=1: no round is in flight when the target is reached, so the client has seen the outcome
# of every request the server counted.
OPTIONS = {"request_timeout": 1.5, "max_attempts": 8, "pipeline_rounds": 1, "concurrency": 16}


def _expected_errors(faults: dict[str, int]) -> dict[str, int]:
    expected: dict[str, int] = {}
    for fault, count in faults.items():
        if fault in CLASS_OF_FAULT and count:
            expected[CLASS_OF_FAULT[fault]] = expected.get(CLASS_OF_FAULT[fault], 0) + count
    return expected


def test_a_grow_under_30_percent_faults_reaches_its_target_and_counts_every_failure(tmp_path: Path) -> None:
    with FakeTeacher(FAULTY) as teacher:
        config = build_config({"backend": "openai", "base_url": [teacher.base_url], "out": tmp_path,
                               "target": 30, **OPTIONS})
        result = grow(config)
        stats = teacher.stats()
    assert result.accepted == 30 and result.stopped == "target reached"
    assert result.usage.errors == _expected_errors(stats["faults"])
    assert set(result.usage.errors) == set(CLASS_OF_FAULT.values())  # every kind of fault happened and was seen
    answered = result.usage.requests + result.usage.failed
    assert stats["requests"] == answered + result.usage.retried  # each request the server saw is accounted for
    with Store.open(tmp_path) as store:
        assert store.count("replies") == result.usage.requests
        assert store.count("dead_letters") == result.usage.failed == sum(result.dead_letters.values())


def test_the_cli_summary_names_every_failure_cause(tmp_path: Path) -> None:
    with FakeTeacher(FAULTY) as teacher:
        args = ["grow", "--out", str(tmp_path), "--target", "12", "--backend", "openai", "--base-url",
                teacher.base_url, "--request-timeout", "1.5", "--max-attempts", "8", "--pipeline-rounds", "1"]
        result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": ""}, terminal_width=400)
        faults = teacher.stats()["faults"]
    assert result.exit_code == 0, result.output
    assert "12/12 accepted" in result.output
    text = " ".join(result.output.split())  # rich wraps long lines at the console's width
    failures = text[text.index("failed attempts:"):text.index("run directory total:")]
    for error_class, count in _expected_errors(faults).items():
        assert f"{error_class} {count}" in failures


def test_a_teacher_that_keeps_failing_stops_the_run_with_one_clear_error(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=1, rate_500=1.0)) as teacher:
        config = build_config({"backend": "openai", "base_url": [teacher.base_url], "out": tmp_path, "target": 10,
                               "max_attempts": 2, "retry_budget": 1, "failure_window": 20,
                               "prompts_per_round": 40})
        with pytest.raises(TeacherError, match=r"stopping: 20 of the last 20 teacher requests failed .*"
                                               r"server_error 20.*failure threshold of 50%"):
            grow(config)
    with Store.open(tmp_path) as store:
        assert store.count("dead_letters") >= 20
        assert store.dead_letter_counts() == {"server_error": store.count("dead_letters")}


def test_the_cli_maps_a_failing_teacher_to_exit_code_3(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(seed=1, rate_503=1.0)) as teacher:
        args = ["grow", "--out", str(tmp_path), "--target", "5", "--backend", "openai", "--base-url",
                teacher.base_url, "--max-attempts", "1", "--retry-budget", "0", "--prompts-per-round", "30"]
        result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": ""}, terminal_width=400)
    assert result.exit_code == 3
    assert "failure threshold" in result.output and "Traceback" not in result.output
