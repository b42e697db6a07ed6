"""Shared fixtures and paths."""

from __future__ import annotations

import os
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
