"""vLLM without a GPU: the `vllm serve` command line, and the whole backend path against a stand-in `vllm`
executable that records its arguments and serves the fake OpenAI-compatible teacher on the given port."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import app
from selfinstruct.config import VllmOptions, build_config
from selfinstruct.pipeline import grow
from selfinstruct.teacher.vllm import serve_command

FAKE_VLLM = """#!{python}
import json, os, sys
argv = sys.argv[1:]
with open(os.environ["FAKE_VLLM_ARGV"], "w") as record:
    json.dump(argv, record)
port = argv[argv.index("--port") + 1]
os.execv(sys.executable, [sys.executable, "-m", "selfinstruct.testing.fake_teacher", "--port", port,
                          "--model", argv[1]])
"""


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (VllmOptions(), ["--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9", "--dtype", "auto",
                         "--enable-prefix-caching"]),
        (VllmOptions(tensor_parallel_size=4, gpu_memory_utilization=0.8, max_model_len=8192, dtype="bfloat16",
                     prefix_caching=False, extra_args=("--enforce-eager", "--seed", "1")),
         ["--tensor-parallel-size", "4", "--gpu-memory-utilization", "0.8", "--dtype", "bfloat16",
          "--max-model-len", "8192", "--no-enable-prefix-caching", "--enforce-eager", "--seed", "1"]),
    ],
)
def test_serve_command(options: VllmOptions, expected: list[str]) -> None:
    argv = serve_command("/usr/bin/vllm", "Qwen/Qwen2.5-7B-Instruct", 8123, options)
    assert argv[:3] == ["/usr/bin/vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"]
    assert argv[3:-4] == expected
    # Loopback only, and last: vLLM keeps the last value, so extra_args cannot open the server to other machines.
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "8123"]


@pytest.fixture
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "vllm"
    script.write_text(FAKE_VLLM.format(python=sys.executable))
    script.chmod(0o755)
    record = tmp_path / "argv.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_VLLM_ARGV", str(record))
    return record


def test_the_vllm_backend_starts_its_server_with_the_options_and_grows(tmp_path: Path, fake_vllm: Path) -> None:
    config = build_config({"backend": "vllm", "model": "org/model-7b", "out": tmp_path / "run", "target": 10,
                           "vllm": {"tensor_parallel_size": 2, "max_model_len": 4096, "extra_args": ["--enforce-eager"]}})
    result = grow(config)
    assert result.accepted == 10
    argv = json.loads(fake_vllm.read_text())
    assert argv[:2] == ["serve", "org/model-7b"]
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert argv[argv.index("--max-model-len") + 1] == "4096"
    assert argv[-5:-2] == ["--enforce-eager", "--host", "127.0.0.1"]
    assert (tmp_path / "run" / "logs" / "vllm_server.log").exists()


def test_vllm_settings_reach_vllm_serve(tmp_path: Path, fake_vllm: Path) -> None:
    args = ["grow", "--out", str(tmp_path / "run"), "--target", "5", "--backend", "vllm", "--model", "org/m",
            "--set", "vllm.tensor_parallel_size=2", "--set", "vllm.gpu_memory_utilization=0.75",
            "--set", "vllm.dtype=float16", "--set", "vllm.prefix_caching=false",
            "--set", 'vllm.extra_args=["--enforce-eager"]', "--concurrency", "16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    argv = json.loads(fake_vllm.read_text())
    assert ["--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.75", "--dtype", "float16"] == argv[2:8]
    assert "--no-enable-prefix-caching" in argv and argv[-5] == "--enforce-eager"


def test_a_bad_vllm_flag_names_its_field(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["grow", "--out", str(tmp_path), "--backend", "vllm", "--model", "m",
                                      "--set", "vllm.gpu_memory_utilization=1.5"])
    assert result.exit_code == 2
    assert "--set vllm.gpu_memory_utilization: field 'vllm.gpu_memory_utilization'" in result.output
