"""The `selfinstruct/mix` deployment as users run it: a real Prefect server, `python flows/mix.py` serving it
beside `selfinstruct/grow`, and `prefect deployment run selfinstruct/mix ... --watch` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import SHARED
from selfinstruct.convert import ConvertConfig, convert_dataset
from test_flow_server import PREFECT, ROOT, flow_run_id, prefect_env, prefect_server, process, read_run, wait_for

__all__ = ["prefect_env", "prefect_server"]  # module fixtures, shared with the grow deployment's test
DATA = SHARED / "datasets"


def read_deployments(api_url: str) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        found = {}
        for name in ("selfinstruct/mix", "selfinstruct/grow"):
            found[name] = client.read_deployment_by_name(name)
        return found


def test_the_mix_deployment_runs_beside_grow(prefect_server: str, prefect_env: dict[str, str], tmp_path: Path) -> None:
    if not DATA.is_dir():
        import pytest

        pytest.skip(f"{DATA} is not beside the checkout")
    convert_dataset(ConvertConfig(data=str(DATA / "scitldr_a" / "dev.jsonl"), task="summarization",
                                  out=tmp_path / "scitldr"))
    convert_dataset(ConvertConfig(data=str(DATA / "banking77" / "test.csv"), task="classification", limit=500,
                                  out=tmp_path / "banking77"))
    config = tmp_path / "mix.toml"
    config.write_text('target = 800\ncap = 500\ntemperature = 2.0\n[[source]]\npath = "scitldr"\n'
                      '[[source]]\npath = "banking77"\n', encoding="utf-8")
    out = tmp_path / "mixed"
    log = tmp_path / "serve.log"
    with process([sys.executable, "flows/mix.py", "--config", str(config), "--out", str(tmp_path / "default")],
                 prefect_env, log) as server:
        deployments = wait_for(lambda: read_deployments(prefect_env["PREFECT_API_URL"]), "both deployments served",
                               log, proc=server)
        assert deployments["selfinstruct/mix"].parameters == {"config": str(config), "out": str(tmp_path / "default")}
        assert [s.schedule.cron for s in deployments["selfinstruct/mix"].schedules] == ["0 3 * * *"]
        assert [s.schedule.cron for s in deployments["selfinstruct/grow"].schedules] == ["0 1 * * *"]
        run = subprocess.run([*PREFECT, "deployment", "run", "selfinstruct/mix", "--param", f"out={out}",
                              "--watch", "--watch-interval", "1", "--watch-timeout", "240"],
                             cwd=ROOT, env=prefect_env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr + log.read_text(errors="replace")[-4000:]

    flow_run, artifacts = read_run(prefect_server, flow_run_id(run))
    assert flow_run.state.is_completed()
    assert set(artifacts) >= {"mixture", "card"}
    rows = json.loads((out / "alpaca_data.json").read_text(encoding="utf-8"))
    assert len(rows) == 800
    data = artifacts["mixture"].data
    table = json.loads(data) if isinstance(data, str) else data
    assert {row["source"] for row in table} == {"scitldr", "banking77"} and sum(row["taken"] for row in table) == 800
    assert "| scitldr |" in (out / "README.md").read_text(encoding="utf-8")
