# Sourced by .ci/{train,llamafactory,axolotl}_env.sh: one cached venv per tool under
# ${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}/NAME-venv, reused while CHECK passes in it, else rebuilt from
# scratch (built in place: a venv's scripts hard-code its path; a half-built one fails CHECK and is rebuilt).
# usage: cached_venv NAME CHECK BUILD_FUNCTION   (BUILD_FUNCTION installs with "$PY"); prints the venv's python.
cached_venv() {
  local name="$1" check="$2" build="$3"
  CACHE="${SELFINSTRUCT_CACHE:-$HOME/.cache/selfinstruct}"
  VENV="$CACHE/$name-venv"
  PY="$VENV/bin/python"
  if [ -x "$PY" ] && "$PY" -c "$check" >/dev/null 2>&1; then
    echo "$name venv ok: $VENV" >&2
    echo "$PY"
    return 0
  fi
  echo "building $name venv: $VENV" >&2
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$build"
  # PyPI's torchvision/torchaudio (pulled by some dependencies) fail to import beside the CPU torch
  # ("operator torchvision::nms does not exist") and would break `import transformers` later.
  "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  "$PY" -c "$check" >&2
  echo "$PY"
}
