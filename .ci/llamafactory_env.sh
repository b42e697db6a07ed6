#!/usr/bin/env bash
# Builds (or reuses) a venv with LLaMA-Factory, whose own dataset loader reads our exports in
# tests/test_trainer_llamafactory.py: ${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}/llamafactory-venv
# Measured here: about 4 minutes. It pulls PyPI's torchvision, which fails to import beside the CPU torch
# ("operator torchvision::nms does not exist"), so that is uninstalled; torchaudio is absent for the same reason
# (tests/llamafactory_load.py explains the one import it stands in for).
set -euo pipefail
CACHE="${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}"
VENV="$CACHE/llamafactory-venv"
PY="$VENV/bin/python"
CHECK='import importlib.util as u, torch; assert u.find_spec("llamafactory") and not u.find_spec("torchvision")'
if [ -x "$PY" ] && "$PY" -c "$CHECK" 2>/dev/null; then
  echo "llamafactory venv ok: $VENV" >&2
  echo "$PY"
  exit 0
fi
echo "building llamafactory venv: $VENV" >&2
mkdir -p "$CACHE"
rm -rf "$VENV"
python3 -m venv "$VENV"
# A time limit on the install itself (not on this script) so no pip outlives it.
timeout 900 "$PY" -m pip install -q torch==2.13.0 llamafactory >&2
"$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
"$PY" -c "$CHECK"
echo "$PY"
