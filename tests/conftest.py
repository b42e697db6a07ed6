"""Shared fixtures and paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
# The test fakes (tests/fakes, not shipped in the wheel) also run as processes (`python -m fakes.fake_teacher`).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
SHARED = ROOT.parent / "shared"
PEER_SEEDS = SHARED / "peer" / "self_instruct_seed_tasks.jsonl"


@pytest.fixture
def peer_seeds() -> Path:
    if not PEER_SEEDS.is_file():
        pytest.skip(f"{PEER_SEEDS} is not beside the checkout")
    return PEER_SEEDS


@pytest.fixture(scope="module")
def bundled_llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's `llama_cpp.server` with the bundled SmolLM2 model, for the module; yields its base URL."""
    import subprocess
    import time

    import httpx

    from selfinstruct.teacher.llamacpp import bundled_model_path, server_command
    from selfinstruct.teacher.server import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(server_command(bundled_model_path(), port), stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"llama_cpp.server did not answer; see {log}")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
