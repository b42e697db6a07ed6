"""The Prefect flow (flows/grow.py) against a temporary Prefect server, and the artifact renderers it uses.

The flow runs in this process under `prefect_test_harness` (one temporary server for the whole session) with the
fake OpenAI-compatible teacher as its teacher; artifacts are read back through the Prefect client.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest

from selfinstruct.flows.artifacts import (
    artifact_key, drop_reasons, drops_text, progress_percent, rounds_table, sum_drops, summary_markdown, throughput,
)

ROOT = Path(__file__).resolve().parent.parent
FLOW_FILE = ROOT / "flows" / "grow.py"

ROUND_1 = {
    "round": 1, "generated": 10, "kept": 3, "dropped": {"rouge_near_duplicate": 5, "heuristic_too_short": 2},
    "accepted_total": 3, "requests": 8, "cached": 0, "failed": 0, "prompt_tokens": 1000, "completion_tokens": 500,
    "seconds": 2.0,
}
ROUND_2 = {
    "round": 2, "generated": 5, "kept": 2, "dropped": {"rouge_near_duplicate": 3}, "accepted_total": 5,
    "requests": 8, "cached": 1, "failed": 1, "prompt_tokens": 900, "completion_tokens": 400, "seconds": 3.0,
}


# -- artifacts.py: pure renderers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("run_dir", "kind", "key"), [
    ("outputs/nightly", "progress", "selfinstruct-nightly-progress"),
    ("outputs/Nightly Run_2", "rounds", "selfinstruct-nightly-run-2-rounds"),
    (Path("/tmp/x/run.v1"), "summary", "selfinstruct-run-v1-summary"),
    ("/", "summary", "selfinstruct-run-summary"),        # no usable name: still a valid key
    ("outputs/é", "progress", "selfinstruct-run-progress"),  # non-ASCII only: Prefect keys are [a-z0-9-]
    ("outputs/" + "a" * 80, "rounds", "selfinstruct-" + "a" * 40 + "-rounds"),
])
def test_artifact_key(run_dir: str | Path, kind: str, key: str) -> None:
    assert artifact_key(run_dir, kind) == key


@pytest.mark.parametrize(("accepted", "target", "percent"), [
    (0, 25, 0.0),
    (5, 20, 25.0),
    (20, 20, 100.0),
    (30, 20, 100.0),  # the target was lowered below the pool: still a full bar
    (3, 0, 100.0),
])
def test_progress_percent(accepted: int, target: int, percent: float) -> None:
    assert progress_percent(accepted, target) == percent


def test_rounds_table_has_one_column_per_drop_reason_in_every_row() -> None:
    rows = rounds_table([ROUND_1, ROUND_2])
    assert list(rows[0]) == list(rows[1]) == [
        "round", "generated", "kept", "dropped_heuristic_too_short", "dropped_rouge_near_duplicate",
        "accepted_total", "requests", "cached", "failed", "prompt_tokens", "completion_tokens", "seconds",
    ]
    assert rows[1]["dropped_heuristic_too_short"] == 0
    assert rows[0]["dropped_rouge_near_duplicate"] == 5
    assert rows[1]["seconds"] == 3.0


def test_rounds_table_of_no_rounds_is_empty() -> None:
    assert rounds_table([]) == []


def test_drop_totals_and_reasons() -> None:
    assert drop_reasons([ROUND_1, ROUND_2]) == ["heuristic_too_short", "rouge_near_duplicate"]
    assert sum_drops([ROUND_1, ROUND_2]) == {"rouge_near_duplicate": 8, "heuristic_too_short": 2}


@pytest.mark.parametrize(("dropped", "text"), [
    ({}, "none"),
    ({"rouge": 2, "blacklist": 5, "empty_output": 2}, "blacklist 5, empty_output 2, rouge 2"),
])
def test_drops_text(dropped: dict[str, int], text: str) -> None:
    assert drops_text(dropped) == text


def test_throughput() -> None:
    assert throughput([ROUND_1, ROUND_2]) == {
        "seconds": 5.0, "kept_per_minute": 60.0, "tokens_per_second": 560.0, "seconds_per_round": 2.5,
    }
    # A run that did no round (the target was already reached) has no rates, not a division by zero.
    assert throughput([])["kept_per_minute"] == 0.0


def test_summary_markdown() -> None:
    text = summary_markdown(
        accepted=5, target=8, run_rounds=[ROUND_1, ROUND_2], total_rounds=4,
        total_drops={"rouge_near_duplicate": 11, "heuristic_too_short": 2, "empty_output": 1},
        outputs={"Alpaca data": Path("outputs/x/alpaca_data.json")},
    )
    assert "**5 / 8** accepted examples (62%): target not reached yet" in text
    assert "| 2 | 15 | 5 | 16 | 1 | 1 | 1900 | 900 | 5.0 |" in text
    assert "60.0 kept/min, 560 tokens/s, 2.5 s/round. Rounds in the store: 4." in text
    # Reasons by all-time count; a reason not seen in this run shows 0 for it.
    assert text.index("`rouge_near_duplicate` | 8 | 11") < text.index("`heuristic_too_short` | 2 | 2")
    assert "| `empty_output` | 0 | 1 |" in text
    assert "- Alpaca data: `outputs/x/alpaca_data.json`" in text


def test_summary_markdown_without_drops_or_rounds() -> None:
    text = summary_markdown(accepted=3, target=3, run_rounds=[], total_rounds=2, total_drops={}, outputs={})
    assert "target reached" in text
    assert "No candidate was dropped." in text


# -- the flow under a temporary Prefect server -----------------------------------------------------------------------

@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temporary Prefect server and database for the session, with no call home."""
    from prefect.settings import PREFECT_HOME, PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings

    try:
        from prefect.testing.utilities import prefect_test_harness
    except TypeError as err:  # the harness would only report a start-up timeout
        pytest.fail(f"Prefect's server cannot start here ({err}): Prefect 3.8.8 needs fastapi<0.150")

    with pytest.MonkeyPatch.context() as env:
        env.setenv("DO_NOT_TRACK", "1")  # the server subprocess inherits the environment
        env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        home = tmp_path_factory.mktemp("prefect-home")
        with temporary_settings(updates={PREFECT_HOME: home, PREFECT_SERVER_ANALYTICS_ENABLED: False}):
            with prefect_test_harness(server_startup_timeout=120):
                yield


@pytest.fixture(scope="session")
def grow_flow() -> ModuleType:
    spec = importlib.util.spec_from_file_location("selfinstruct_grow_flow", FLOW_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def teacher_url() -> Iterator[str]:
    from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

    with FakeTeacher(FakeTeacherConfig()) as server:
        yield server.base_url


def run_flow(grow_flow: ModuleType, teacher_url: str, out: Path, target: int, **params: Any) -> tuple[Any, UUID]:
    state = grow_flow.grow(target=target, out=out, backend="openai", base_url=[teacher_url], return_state=True,
                           **params)
    return state, state.state_details.flow_run_id


def flow_run_artifacts(flow_run_id: UUID) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    # Keyed by kind: "progress", "rounds", "summary", "report" (the part of the key after the run's name).
    return {artifact.key.rsplit("-", 1)[-1]: artifact for artifact in artifacts}


def alpaca_records(out: Path) -> list[dict[str, str]]:
    return json.loads((out / "alpaca_data.json").read_text(encoding="utf-8"))


def test_flow_grows_to_target_and_publishes_artifacts(
    prefect_api: None, grow_flow: ModuleType, teacher_url: str, tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    state, flow_run_id = run_flow(grow_flow, teacher_url, out, target=5)

    assert state.is_completed(), state
    result = state.result()
    assert result.accepted == 5 and result.target == 5 and result.rounds >= 1
    assert result.alpaca_path == out / "alpaca_data.json"
    records = alpaca_records(out)
    assert len({record["instruction"] for record in records}) == 5  # tasks; each instance is a row
    assert all(set(record) == {"instruction", "input", "output"} for record in records)

    artifacts = flow_run_artifacts(flow_run_id)
    assert set(artifacts) == {"progress", "rounds", "summary", "report"}
    assert artifacts["progress"].key == "selfinstruct-run-progress"
    assert artifacts["progress"].data == 100.0  # updated after the last round
    rows = json.loads(artifacts["rounds"].data)
    assert [row["round"] for row in rows] == list(range(1, result.rounds + 1))
    assert rows[-1]["accepted_total"] == 5
    assert "**5 / 5** accepted examples" in artifacts["summary"].data
    assert str(out / "alpaca_data.json") in artifacts["summary"].data
    assert artifacts["report"].type == "markdown" and "gate" in artifacts["report"].data.lower()
    assert (out / "report" / "report.html").is_file()


def test_flow_resumes_the_run_directory_and_grows_a_bigger_target(
    prefect_api: None, grow_flow: ModuleType, teacher_url: str, tmp_path: Path,
) -> None:
    out = tmp_path / "nightly"
    first, _ = run_flow(grow_flow, teacher_url, out, target=3)
    assert first.is_completed(), first
    before = alpaca_records(out)

    second, flow_run_id = run_flow(grow_flow, teacher_url, out, target=7)
    assert second.is_completed(), second
    after = alpaca_records(out)
    assert len({record["instruction"] for record in before}) == 3
    assert after[:len(before)] == before  # the pool continued, it did not start over
    assert len({record["instruction"] for record in after}) == 7
    rows = json.loads(flow_run_artifacts(flow_run_id)["rounds"].data)
    # The table shows every round in the store: the first run's rounds, then this run's.
    rounds = first.result().rounds + second.result().rounds
    assert [row["round"] for row in rows] == list(range(1, rounds + 1))

    # The target is reached: a third run (tomorrow night's) does no round and still reports.
    third, flow_run_id = run_flow(grow_flow, teacher_url, out, target=7)
    assert third.is_completed(), third
    assert third.result().rounds == 0 and alpaca_records(out) == after
    assert flow_run_artifacts(flow_run_id)["progress"].data == 100.0


def test_max_rounds_stops_the_run_early(
    prefect_api: None, grow_flow: ModuleType, teacher_url: str, tmp_path: Path,
) -> None:
    state, _ = run_flow(grow_flow, teacher_url, tmp_path / "run", target=500, max_rounds=1)
    assert state.is_completed(), state
    assert state.result().rounds == 1 and state.result().accepted < 500


def test_invalid_configuration_fails_the_run_with_the_config_message(
    prefect_api: None, grow_flow: ModuleType, teacher_url: str, tmp_path: Path,
) -> None:
    from selfinstruct.core.errors import ConfigError

    state, _ = run_flow(grow_flow, teacher_url, tmp_path / "run", target=0)
    assert state.is_failed()
    with pytest.raises(ConfigError, match="target"):
        state.result()
    assert not (tmp_path / "run").exists()  # nothing was opened
