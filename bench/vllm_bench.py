"""P7: our request path against vLLM's own benchmark client, on the same CPU vLLM server and model.

    .venv/bin/python bench/vllm_bench.py                     # starts vLLM: the CPU venv and SmolLM2 directory of CI
    .venv/bin/python bench/vllm_bench.py --base-url URL      # a running server (its model read from /v1/models)
    options: --prompts 64 --max-tokens 64 --concurrency 64 --repeats 2

Both clients send the same prompts (self-instruct generation prompts rendered from the seed tasks, as grow's
first rounds render them) to /v1/completions, greedy, with the same max_tokens and no stop strings, at most
`--concurrency` sequences in flight. Greedy decoding makes the server generate the same tokens for both (the
token counts are printed to show it), so output tokens per second compares how well each client keeps one
server busy:
- ours: `OpenAITeacher`, the grow request path (prompts batched 32 per completions request);
- vLLM's: `vllm bench serve --backend openai --dataset-name custom --skip-chat-template` (one streamed request
  per prompt), from the same venv as the server.
An untimed pass first fills the server's prefix cache, so no timed run pays more prefill than another; the
timed runs alternate (vLLM's, ours, vLLM's, ...) so load drift on a shared machine falls on both, and the best
run of each is compared. Ratio = ours / vLLM's; the target is at least 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selfinstruct.core.config import Decoding, build_config
from selfinstruct.generate.methods import plan_self_instruct
from selfinstruct.core.seeds import load_seeds
from selfinstruct.core.teacher_records import TeacherRequest
from selfinstruct.teacher.openai_compat import OpenAITeacher
from selfinstruct.teacher.backend import Endpoints
from selfinstruct.teacher.registry import open_teacher

CACHE = Path(os.environ.get("SELFINSTRUCT_CACHE") or Path.home() / ".cache" / "selfinstruct")
VLLM_PYTHON = CACHE / "vllm-venv" / "bin" / "python"
MODEL_DIR = CACHE / "models" / "SmolLM2-135M-Instruct"
BATCH_PROMPTS = 32  # grow's default on the completions API


@dataclass(frozen=True)
class Run:
    client: str
    seconds: float
    prompts: int
    output_tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.seconds


def bench_prompts(count: int) -> list[str]:
    """`count` distinct generation prompts, as grow's rounds 0, 1, ... render them (8 per round)."""
    config = build_config({"backend": "vllm", "base_url": ["http://unused/v1"], "model": "m", "prompts_per_round": 8})
    seeds = load_seeds(config.seeds)
    prompts: list[str] = []
    for round_no in range((count + 7) // 8):
        prompts += [plan.request.prompt for plan in plan_self_instruct(config, seeds, [], round_no)]
    return prompts[:count]


async def run_ours(endpoints: Endpoints, prompts: list[str], max_tokens: int, concurrency: int) -> Run:
    teacher = OpenAITeacher(base_urls=endpoints.base_urls, model=endpoints.model, api="completions",
                            timeout=1800, max_attempts=1, concurrency=concurrency, batch_prompts=BATCH_PROMPTS)
    decoding = Decoding(temperature=0.0, top_p=1.0, max_tokens=max_tokens, stop=())
    requests = [TeacherRequest(stage="instructions", prompt=prompt, decoding=decoding) for prompt in prompts]
    try:
        started = time.perf_counter()
        replies = await asyncio.gather(*(teacher.complete(request) for request in requests))
        seconds = time.perf_counter() - started
    finally:
        await teacher.close()
    return Run("ours", seconds, len(replies), sum(reply.completion_tokens for reply in replies))


def run_vllm_bench(url: str, model: str, dataset: Path, prompts: int, max_tokens: int, concurrency: int,
                   python: Path, result_dir: Path) -> Run:
    result = result_dir / f"vllm-bench-{time.monotonic_ns()}.json"
    argv = [str(python), "-m", "vllm.entrypoints.cli.main", "bench", "serve", "--backend", "openai",
            "--base-url", url.removesuffix("/v1"), "--endpoint", "/v1/completions", "--model", model,
            "--dataset-name", "custom", "--dataset-path", str(dataset), "--skip-chat-template",
            "--disable-shuffle", "--num-prompts", str(prompts), "--custom-output-len", str(max_tokens),
            "--temperature", "0", "--max-concurrency", str(concurrency), "--disable-tqdm",
            "--save-result", "--result-dir", str(result_dir), "--result-filename", result.name]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"vllm bench serve failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    figures = json.loads(result.read_text())
    return Run("vllm bench serve", figures["duration"], figures["completed"], figures["total_output_tokens"])


@contextlib.contextmanager
def teacher_endpoints(base_url: str | None, work: Path) -> Iterator[Endpoints]:
    if base_url:
        config = build_config({"backend": "vllm", "base_url": [base_url], "out": work})
    else:
        for needed in (VLLM_PYTHON, MODEL_DIR / "config.json"):
            if not needed.exists():
                raise SystemExit(f"{needed} is missing: run .ci/vllm_env.sh and .ci/build_smollm2_hf.py")
        config = build_config({"backend": "vllm", "model": str(MODEL_DIR), "out": work,
                               "vllm": {"python": str(VLLM_PYTHON), "cpu": True, "dtype": "bfloat16"}})
    with open_teacher(config, work) as endpoints:
        yield endpoints


def report(runs: list[Run]) -> None:
    for run in runs:
        print(f"  {run.client:17s} {run.seconds:7.1f} s  {run.prompts:4d} prompts  {run.output_tokens:6d} output tokens"
              f"  {run.tokens_per_second:7.1f} tok/s")
    best = {client: max((r for r in runs if r.client == client), key=lambda r: r.tokens_per_second)
            for client in ("vllm bench serve", "ours")}
    ratio = best["ours"].tokens_per_second / best["vllm bench serve"].tokens_per_second
    print(f"P7: ours {best['ours'].tokens_per_second:.1f} tok/s, vllm bench serve "
          f"{best['vllm bench serve'].tokens_per_second:.1f} tok/s (best of each): ratio {ratio:.2f} (target >= 0.9)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running vLLM server; default: start one (CPU venv, SmolLM2)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    prompts = bench_prompts(args.prompts)
    with tempfile.TemporaryDirectory() as tmp, teacher_endpoints(args.base_url, Path(tmp)) as endpoints:
        dataset = Path(tmp) / "prompts.jsonl"
        dataset.write_text("".join(json.dumps({"prompt": prompt}) + "\n" for prompt in prompts))
        url = endpoints.base_urls[0]
        print(f"server {url}, model {endpoints.model}: {len(prompts)} prompts, max_tokens {args.max_tokens}, "
              f"{args.concurrency} in flight", flush=True)
        asyncio.run(run_ours(endpoints, prompts, 1, args.concurrency))  # untimed: fills the prefix cache
        runs: list[Run] = []
        for _ in range(args.repeats):
            runs.append(run_vllm_bench(url, endpoints.model, dataset, len(prompts), args.max_tokens,
                                       args.concurrency, VLLM_PYTHON, Path(tmp)))
            runs.append(asyncio.run(run_ours(endpoints, prompts, args.max_tokens, args.concurrency)))
            print(f"  repeat {len(runs) // 2}: {runs[-2].tokens_per_second:.1f} vs {runs[-1].tokens_per_second:.1f} tok/s",
                  flush=True)
        report(runs)


if __name__ == "__main__":
    main()
