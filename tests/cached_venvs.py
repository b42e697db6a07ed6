"""Where the venvs of the real-part tests and the converted SmolLM2 live, the marks that skip without them, and
the one way a test runs a script in such a venv.

`.ci/run` builds them (`.ci/train_env.sh`, `.ci/build_smollm2_hf.py`, `.ci/vllm_env.sh`, `.ci/llamafactory_env.sh`,
`.ci/axolotl_env.sh`) under ${SELFINSTRUCT_CACHE:-~/.cache/selfinstruct}.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

CACHE = Path(os.environ.get("SELFINSTRUCT_CACHE") or Path.home() / ".cache" / "selfinstruct")
MODEL_DIR = CACHE / "models" / "SmolLM2-135M-Instruct"
BUILDERS = {"train": ".ci/train_env.sh", "vllm": ".ci/vllm_env.sh", "llamafactory": ".ci/llamafactory_env.sh",
            "axolotl": ".ci/axolotl_env.sh"}


def venv_python(name: str) -> Path:
    return CACHE / f"{name}-venv" / "bin" / "python"


def needs_venv(name: str) -> pytest.MarkDecorator:
    python = venv_python(name)
    return pytest.mark.skipif(not python.exists(), reason=f"no {name} venv at {python.parent.parent}: run "
                              f"{BUILDERS[name]}")


def model_missing() -> str | None:
    """Why the SmolLM2 safetensors directory cannot serve a test, or None."""
    if not all((MODEL_DIR / name).is_file() for name in ("config.json", "tokenizer.json", "model.safetensors")):
        return f"no SmolLM2 safetensors directory at {MODEL_DIR}: run .ci/build_smollm2_hf.py with the training venv"
    return None


NEEDS_MODEL = pytest.mark.skipif(model_missing() is not None, reason=model_missing() or "")


def run_json(command: list[str], out: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 1200) -> Any:
    """Run a script that writes JSON to `out` (in a venv of its own); its stderr tail on failure."""
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8"))
