"""The deployment end to end, as users run it: a real Prefect server, `selfinstruct serve` serving the
deployments, and `prefect deployment run selfinstruct/grow ... --watch` from the command line.

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
    """`selfinstruct serve ...` until the grow deployment is registered; yields (deployment, log)."""
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "selfinstruct", "serve", "--param", "grow.backend=openai", *options]
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
    from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

    out = tmp_path / "nightly"
    with FakeTeacher(FakeTeacherConfig()) as teacher, served(
        prefect_env, tmp_path, "--timezone", "Europe/Paris", "--param", "grow.target=4",
        "--param", f"grow.out={json.dumps(str(tmp_path / 'default'))}",
    ) as (deployment, serve_log):
        assert deployment.parameters == {"target": 4, "out": str(tmp_path / "default"), "backend": "openai"}
        assert deployment.entrypoint == "selfinstruct.flows.grow.grow"  # by module: no checkout needed
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
    from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

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



def test_a_nightly_run_stops_at_its_cost_cap(prefect_server: str, prefect_env: dict[str, str], tmp_path: Path) -> None:
    """A paid-API nightly: the deployment's run has a cost budget and a price through `settings`."""
    from selfinstruct.core.prices import ModelPrice, cost
    from selfinstruct.core.store import Store
    from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

    out, cap, in_flight = tmp_path / "paid", 0.05, 2
    price = {"input": 1.0, "output": 3.0}  # USD per million tokens; the fake teacher counts words as tokens
    settings = {"max_cost": cap, "prices": {"fake-teacher": price}, "instruction_decoding.temperature": 0.9}
    with FakeTeacher(FakeTeacherConfig(seed=5)) as teacher, served(prefect_env, tmp_path) as (_, serve_log):
        run = deployment_run(
            prefect_env, "--param", "target=5000", "--param", f"out={out}", "--param", "prompts_per_round=2",
            "--param", "model=fake-teacher",  # priced by `settings.prices` (the default model has a built-in price)
            "--param", f"pipeline_rounds={in_flight}", "--param", f"base_url={json.dumps([teacher.base_url])}",
            "--param", f"settings={json.dumps(settings)}",
            "--watch", "--watch-interval", "1", "--watch-timeout", "240",
        )
        assert run.returncode == 0, run.stdout + run.stderr + serve_log.read_text(errors="replace")[-4000:]
        log = serve_log.read_text(errors="replace")

    flow_run, artifacts = read_run(prefect_server, flow_run_id(run))
    assert flow_run.state.is_completed()
    assert "budget spent (max_cost: $" in log
    with Store.open(out) as store:
        prompts, prompt_tokens, completion_tokens = store.teacher_totals()
        accepted, rounds = store.accepted_count(), store.round_stats()
        [config] = store.config_history()
    spent = cost(ModelPrice(**price), prompt_tokens, completion_tokens)
    assert spent is not None and spent >= cap and 0 < accepted < 5000
    # No round starts once the cap is reached: after the round that crossed it, only rounds already in flight.
    running = [cost(ModelPrice(**price), *(sum(int(r[k]) for r in rounds[:n + 1])
                                           for k in ("prompt_tokens", "completion_tokens"))) for n in range(len(rounds))]
    crossed = next((n for n, total in enumerate(running) if total >= cap), len(rounds) - 1)
    assert len(rounds) - 1 - crossed <= in_flight - 1
    assert config.config["max_cost"] == cap and config.config["instruction_decoding"]["temperature"] == 0.9
    assert config.config["instruction_decoding"]["presence_penalty"] == 2.0  # the other keys keep their defaults
    assert f"**{accepted} / 5000** accepted examples" in artifacts["summary"].data
    print(f"cost cap ${cap}: spent ${spent:.5f} on {prompts} prompts ({prompt_tokens} + {completion_tokens} tokens) "
          f"in {len(rounds)} rounds, {accepted} accepted of target 5000; the cap was reached at round {crossed + 1}")


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv outside the checkout with our wheel installed (dependencies from the test's environment)."""
    import sysconfig

    base = tmp_path_factory.mktemp("wheel")
    # With build isolation: pip fetches the build backend the way a user's `pip wheel .` does.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    [wheel] = (base / "dist").glob("selfinstruct-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # The dependencies are this environment's; the package itself only comes from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: the shared site-packages holds an editable install of the checkout under the same name.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--ignore-installed", "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv


def test_selfinstruct_serve_runs_from_an_installed_wheel_outside_the_checkout(
    prefect_server: str, prefect_env: dict[str, str], installed_wheel: Path, tmp_path: Path,
) -> None:
    from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in prefect_env.items() if key != "PYTHONPATH"}
    python = str(installed_wheel / "bin" / "python")
    probe = subprocess.run([python, "-c", "import selfinstruct.flows.grow as m; print(m.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    where = probe.stdout.strip()
    assert where.startswith(str(installed_wheel)), where  # the wheel's copy, not the checkout's

    log, out = tmp_path / "serve.log", tmp_path / "from-wheel"
    with FakeTeacher(FakeTeacherConfig(seed=9)) as teacher, log.open("wb") as stream:
        server = subprocess.Popen([str(installed_wheel / "bin" / "selfinstruct"), "serve", "--param",
                                   "grow.backend=openai"], cwd=elsewhere, env=env, stdout=stream,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deployment = wait_for(lambda: read_deployment(prefect_server), "the deployment is served", log,
                                  proc=server)
            assert deployment.entrypoint == "selfinstruct.flows.grow.grow"
            run = subprocess.run(
                [*PREFECT, "deployment", "run", "selfinstruct/grow", "--param", "target=3", "--param", f"out={out}",
                 "--param", f"base_url={json.dumps([teacher.base_url])}", "--watch", "--watch-interval", "1",
                 "--watch-timeout", "240"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        finally:
            stop_group(server)
    assert run.returncode == 0, run.stdout + run.stderr + log.read_text(errors="replace")[-4000:]
    assert len({record["instruction"] for record in alpaca_records(out)}) == 3  # seeds from the wheel's share/
    print(f"served from {where}; {log.read_text(errors='replace').count('Completed')} completed line(s)")
