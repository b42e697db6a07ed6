#!/usr/bin/env bash
# Builds (or reuses) a venv with LLaMA-Factory, whose own dataset loader reads our exports in
# tests/test_trainer_llamafactory.py: ${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}/llamafactory-venv
# Measured here: about 4 minutes. torchaudio is absent (tests/llamafactory_load.py explains the one import it
# stands in for).
set -euo pipefail
source "$(dirname "$0")/venv_lib.sh"
CHECK='import importlib.util as u, torch; assert u.find_spec("llamafactory") and not u.find_spec("torchvision")'
build() {
  # A time limit on the install itself (not on this script) so no pip outlives it.
  timeout 900 "$PY" -m pip install -q torch==2.13.0 llamafactory >&2
}
cached_venv llamafactory "$CHECK" build
