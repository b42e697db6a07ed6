"""Record replies of a running OpenAI-compatible server (the bundled model under llama.cpp) to our real prompts.

    python -m llama_cpp.server --model <SmolLM2 gguf> --host 127.0.0.1 --port 8765 --n_ctx 4096 &
    python tests/replies/record_bundled.py http://127.0.0.1:8765/v1 chat out.jsonl
    python tests/replies/record_bundled.py http://127.0.0.1:8765/v1 completions out.jsonl
    python tests/replies/record_bundled.py http://127.0.0.1:8765/v1 chat out.jsonl labels   # output-first only

Each record has its reply text and finish_reason, and `expected: null`: the expected parse is written by a
person reading the reply, never copied from the parser.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import httpx

from selfinstruct.core.config import GrowConfig, Decoding
from selfinstruct.generate.prompts import (
    alpaca_stop, instance_stops, render_alpaca_prompt, render_classify_prompt, render_instance_prompt,
    render_instruction_prompt,
)
from selfinstruct.core.seeds import DEFAULT_SEEDS, load_seeds

MODEL = "smollm2-135m llama.cpp"
ALPACA_MAX_TOKENS = 700  # the configured 3,072 runs for minutes on a CPU; a cut reply is a shape we want too


def _prompts(rng: random.Random, only: str | None) -> list[tuple[str, str, bool | None, str, str]]:
    """(stage, method, is_classification, prompt, decoding name) for every reply to record."""
    seeds = load_seeds(DEFAULT_SEEDS)
    plain = [seed for seed in seeds if not seed.is_classification]
    labelled = [seed for seed in seeds if seed.is_classification]
    jobs: list[tuple[str, str, bool | None, str, str]] = []
    for _ in range(6):
        demos = [seed.instruction for seed in rng.sample(seeds, 8)]
        jobs.append(("instructions", "self-instruct", None, render_instruction_prompt(demos), "instruction"))
    for seed in rng.sample(seeds, 5):
        jobs.append(("classify", "self-instruct", None, render_classify_prompt(seed.instruction), "classify"))
    for seed in rng.sample(plain, 5):
        jobs.append(("instances", "self-instruct", False, render_instance_prompt(seed.instruction, False), "instance"))
    for seed in rng.sample(labelled, 4):
        jobs.append(("instances", "self-instruct", True, render_instance_prompt(seed.instruction, True), "instance"))
    for _ in range(5):
        jobs.append(("alpaca", "alpaca", None, render_alpaca_prompt(rng.sample(seeds, 3), 20), "alpaca"))
    if only == "labels":
        return [job for job in jobs if job[2] is True]
    return jobs


def _decoding(config: GrowConfig, name: str, is_classification: bool | None) -> Decoding:
    """The stage's decoding with the stops `methods` adds to its requests."""
    decoding: Decoding = getattr(config, f"{name}_decoding")
    if name == "alpaca":
        decoding = decoding.model_copy(update={"max_tokens": min(decoding.max_tokens, ALPACA_MAX_TOKENS),
                                               "stop": (*decoding.stop, alpaca_stop(3, 20))})
    if name == "instance":
        stops = instance_stops(bool(is_classification), config.instances_per_task)
        decoding = decoding.model_copy(update={"stop": tuple(dict.fromkeys((*decoding.stop, *stops)))})
    if name == "instruction":
        decoding = decoding.model_copy(update={"stop": (*decoding.stop, "Task 17:")})
    return decoding


def _send(client: httpx.Client, mode: str, prompt: str, decoding: Decoding) -> tuple[str, str | None]:
    params = {"model": "smollm2-135m-instruct", "temperature": decoding.temperature, "top_p": decoding.top_p,
              "presence_penalty": decoding.presence_penalty, "frequency_penalty": decoding.frequency_penalty,
              "max_tokens": decoding.max_tokens, "seed": 1}
    if decoding.stop:
        params["stop"] = list(decoding.stop)
    if mode == "chat":
        body = client.post("/chat/completions", json={**params, "messages": [{"role": "user", "content": prompt}]})
        choice = body.raise_for_status().json()["choices"][0]
        return choice["message"]["content"] or "", choice.get("finish_reason")
    choice = client.post("/completions", json={**params, "prompt": prompt}).raise_for_status().json()["choices"][0]
    return choice["text"], choice.get("finish_reason")


def main(base_url: str, mode: str, out: Path, only: str | None = None) -> None:
    config = GrowConfig(backend="cpu")
    records = []
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for stage, method, is_classification, prompt, name in _prompts(random.Random(f"record:{mode}:{only}"), only):
            text, finish = _send(client, mode, prompt, _decoding(config, name, is_classification))
            record = {"stage": stage, "method": method, "shape": f"recorded_{mode}", "finish_reason": finish,
                      "recorded": f"{MODEL} {mode}", "text": text, "expected": None}
            if is_classification is not None:
                record["is_classification"] = is_classification
            records.append(record)
            print(stage, finish, repr(text[:80]), flush=True)
    out.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
