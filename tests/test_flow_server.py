"""The deployment end to end, as users run it: a real Prefect server, `python flows/grow.py` serving the
deployment, and `prefect deployment run selfinstruct/grow ... --watch` from the command line.

Every process is started in its own process group and stopped (SIGTERM, then SIGKILL) even when a check fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PREFECT = [sys.executable, "-m", "prefect"]
T = TypeVar("T")
STARTUP_SECONDS = 180  # a shared 2-core machine can take a while to start the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in its own process group, stopped with its children on the way out."""
    with log.open("wb") as stream:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            yield proc
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    # The group may outlive its leader (a flow-run subprocess of the runner): make sure nothing is left.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(check: Callable[[], T | None], what: str, log: Path, timeout: float = STARTUP_SECONDS,
             proc: subprocess.Popen[bytes] | None = None) -> T:
    """Poll `check` until it returns a value (exceptions count as not yet); fail with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if (value := check()) is not None:
                return value
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private Prefect home and API on a free port, with no call home."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")),
        "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # the runner picks a run up within a second, not ten
    }
    return env


@pytest.fixture(scope="module")
def prefect_server(prefect_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    api_url = prefect_env["PREFECT_API_URL"]
    port = api_url.rsplit(":", 1)[1].split("/")[0]
    log = tmp_path_factory.mktemp("server") / "server.log"
    with process([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port], prefect_env, log) as server:
        wait_for(lambda: httpx.get(f"{api_url}/health", timeout=5).json() or None, "the server answers", log,
                 proc=server)
        yield api_url


@contextmanager
def served(prefect_env: dict[str, str], tmp_path: Path, *options: str) -> Iterator[tuple[Any, Path]]:
    """`python flows/grow.py ...` until the deployment is registered; yields (deployment, log)."""
    log = tmp_path / "serve.log"
    command = [sys.executable, "flows/grow.py", "--params", json.dumps({"backend": "openai"}), *options]
    with process(command, prefect_env, log) as server:
        yield wait_for(lambda: read_deployment(prefect_env["PREFECT_API_URL"]), "the deployment is served", log,
                       proc=server), log


def deployment_run(prefect_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PREFECT, "deployment", "run", "selfinstruct/grow", *args], cwd=ROOT, env=prefect_env,
                          capture_output=True, text=True, timeout=300)


def flow_run_id(run: subprocess.CompletedProcess[str]) -> UUID:
    found = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)
    assert found, run.stdout + run.stderr
    return UUID(found[1])


def read_deployment(api_url: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return client.read_deployment_by_name("selfinstruct/grow")


def read_run(api_url: str, run_id: UUID) -> tuple[Any, dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return flow_run, {artifact.key.rsplit("-", 1)[-1]: artifact for artifact in artifacts}


def alpaca_records(out: Path) -> list[dict[str, str]]:
    return json.loads((out / "alpaca_data.json").read_text(encoding="utf-8"))


def test_served_deployment_runs_from_the_cli(prefect_server: str, prefect_env: dict[str, str], tmp_path: Path) -> None:
    from selfinstruct.testing.fake_teacher import FakeTeacher, FakeTeacherConfig

    out = tmp_path / "nightly"
    with FakeTeacher(FakeTeacherConfig()) as teacher, served(
        prefect_env, tmp_path, "--timezone", "Europe/Paris", "--target", "4", "--out", str(tmp_path / "default"),
    ) as (deployment, serve_log):
        assert deployment.parameters == {"target": 4, "out": str(tmp_path / "default"), "backend": "openai"}
        [schedule] = deployment.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
            "0 1 * * *", "Europe/Paris", True)

        run = deployment_run(
            prefect_env, "--param", "target=3", "--param", f"out={out}",
            "--param", f"base_url={json.dumps([teacher.base_url])}",
            "--watch", "--watch-interval", "1", "--watch-timeout", "240",
        )
        assert run.returncode == 0, run.stdout + run.stderr + serve_log.read_text(errors="replace")[-4000:]
        assert "Completed" in run.stdout + run.stderr

    flow_run, artifacts = read_run(prefect_server, flow_run_id(run))
    assert flow_run.state.is_completed()
    assert flow_run.parameters["out"] == str(out) and flow_run.parameters["backend"] == "openai"
    assert set(artifacts) == {"progress", "rounds", "summary", "report"}
    assert artifacts["progress"].data == 100.0
    assert "**3 / 3** accepted examples" in artifacts["summary"].data
    assert len({record["instruction"] for record in alpaca_records(out)}) == 3
    assert (out / "selfinstruct.sqlite").is_file()

    # pause_on_shutdown=False: stopping the serving process leaves the nightly schedule on.
    deployment = read_deployment(prefect_server)
    assert not deployment.paused and [schedule.active for schedule in deployment.schedules] == [True]


def test_a_cancelled_run_is_continued_by_the_next_one(
    prefect_server: str, prefect_env: dict[str, str], tmp_path: Path,
) -> None:
    from selfinstruct.testing.fake_teacher import FakeTeacher, FakeTeacherConfig

    out = tmp_path / "run"
    # A slow teacher, one prompt per round and one in flight: the run is cancelled well before its target.
    with FakeTeacher(FakeTeacherConfig(latency=0.3)) as teacher, served(prefect_env, tmp_path) as (_, serve_log):
        common = ["--param", f"out={out}", "--param", f"base_url={json.dumps([teacher.base_url])}",
                  "--param", "prompts_per_round=1", "--param", "concurrency=1"]
        first = flow_run_id(deployment_run(prefect_env, "--param", "target=500", *common))
        wait_for(lambda: alpaca_records(out) or None, "a first round is committed", serve_log, timeout=120)
        cancel = subprocess.run([*PREFECT, "flow-run", "cancel", str(first)], cwd=ROOT, env=prefect_env,
                                capture_output=True, text=True, timeout=60)
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        wait_for(lambda: read_run(prefect_server, first)[0].state.is_cancelled() or None, "the run is cancelled",
                 serve_log, timeout=120)
        kept = alpaca_records(out)
        tasks = len({record["instruction"] for record in kept})  # each instance is a row
        assert 0 < tasks < 500

        second = deployment_run(prefect_env, "--param", f"target={tasks + 3}", *common,
                                "--watch", "--watch-interval", "1", "--watch-timeout", "240")
        assert second.returncode == 0, second.stdout + second.stderr + serve_log.read_text(errors="replace")[-4000:]

    records = alpaca_records(out)
    assert len({record["instruction"] for record in records}) == tasks + 3 and records[:len(kept)] == kept

