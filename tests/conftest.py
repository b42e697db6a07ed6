"""Shared fixtures and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PEER_SEEDS = SHARED / "peer" / "self_instruct_seed_tasks.jsonl"


@pytest.fixture
def peer_seeds() -> Path:
    if not PEER_SEEDS.is_file():
        pytest.skip(f"{PEER_SEEDS} is not beside the checkout")
    return PEER_SEEDS
