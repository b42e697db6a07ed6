#!/usr/bin/env bash
# Builds (or reuses) a venv with axolotl's dataset loading, whose own loader and prompt strategies read our
# exports in tests/test_trainer_axolotl.py: ${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}/axolotl-venv
# `pip install axolotl` did not finish resolving its dependencies within ten minutes here, so axolotl is installed
# without them, plus the packages its data path (schemas, dataset loading, prompt strategies) imports.
set -euo pipefail
source "$(dirname "$0")/venv_lib.sh"
CHECK='from axolotl.utils.data.wrappers import get_dataset_wrapper; from axolotl.utils.schemas.datasets import SFTDataset'
build() {
  timeout 900 "$PY" -m pip install -q torch==2.13.0 "pydantic==2.12.5" accelerate transformers datasets peft trl \
    colorama posthog numba pyyaml addict >&2
  timeout 300 "$PY" -m pip install -q --no-deps "axolotl==0.19.0" >&2
}
cached_venv axolotl "$CHECK" build
