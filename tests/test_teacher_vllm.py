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
from selfinstruct.core.config import VllmOptions, build_config
from selfinstruct.grow import grow
from selfinstruct.core.errors import TeacherUnavailable
from selfinstruct.teacher.vllm import entry_point, serve_command, server_env

FAKE_VLLM = """#!{python}
import json, os, sys
argv = sys.argv[1:]
if argv == ["--version"]:  # the launcher checks that the script runs before it serves
    sys.exit(print("0.0.0-fake"))
with open(os.environ["FAKE_VLLM_ARGV"], "w") as record:
    json.dump(argv, record)
port = argv[argv.index("--port") + 1]
os.execv(sys.executable, [sys.executable, "-m", "fakes.fake_teacher", "--port", port,
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
    argv = serve_command(["/usr/bin/vllm", "serve"], "Qwen/Qwen2.5-7B-Instruct", 8123, options)
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


def test_cpu_mode_adds_eager_and_the_cpu_environment_only_when_asked(tmp_path: Path) -> None:
    entry = ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model"]
    cpu = VllmOptions(cpu=True, cpu_kvcache_gb=3)
    argv = serve_command(entry, str(tmp_path), 8123, cpu)
    assert argv[:5] == [*entry, str(tmp_path)] and "--enforce-eager" in argv
    assert server_env(str(tmp_path), cpu) == {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "3",
                                              "VLLM_HOST_IP": "127.0.0.1", "VLLM_NO_USAGE_STATS": "1"}
    # The GPU user's command line and environment are as before.
    assert "--enforce-eager" not in serve_command(["vllm", "serve"], "org/m", 8123, VllmOptions())
    assert server_env("org/m", VllmOptions()) == {}


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(0o755)
    return path


def test_entry_point_prefers_a_console_script_that_runs(tmp_path: Path) -> None:
    python = _script(tmp_path / "venv" / "bin" / "python", "")
    script = _script(tmp_path / "venv" / "bin" / "vllm", "print('0.32.0+cpu')")
    assert entry_point(str(python)) == [str(script), "serve"]


def test_entry_point_falls_back_to_the_module_when_the_script_cannot_find_its_distribution(tmp_path: Path) -> None:
    # As vllm-cpu's own script does: its distribution is not named `vllm`.
    _script(tmp_path / "venv" / "bin" / "vllm",
            "import sys; sys.exit('importlib.metadata.PackageNotFoundError: No package metadata was found for vllm')")
    python = tmp_path / "venv" / "bin" / "python"
    python.symlink_to(sys.executable)  # a Python that has no vllm: the probe says so
    with pytest.raises(TeacherUnavailable) as raised:
        entry_point(str(python))
    message = str(raised.value)
    assert "PackageNotFoundError" in message and "has no vllm package" in message and ".ci/vllm_env.sh" in message
    fake_pkg = tmp_path / "site" / "vllm"
    fake_pkg.mkdir(parents=True)
    (fake_pkg / "__init__.py").write_text("")
    with_vllm = _script(tmp_path / "venv2" / "bin" / "python",
                        f"import os, sys; os.execve({sys.executable!r}, [{sys.executable!r}, *sys.argv[1:]], "
                        f"{{**os.environ, 'PYTHONPATH': {str(tmp_path / 'site')!r}}})")
    assert entry_point(str(with_vllm)) == [str(with_vllm), "-m", "vllm.entrypoints.openai.api_server", "--model"]


def test_a_missing_vllm_names_both_install_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    config = build_config({"backend": "vllm", "model": "org/m", "out": tmp_path / "run", "target": 1})
    with pytest.raises(TeacherUnavailable, match=r"selfinstruct\[vllm\].*\.ci/vllm_env\.sh"):
        grow(config)
