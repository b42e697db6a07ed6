"""Structured vs text replies, chat vs completions, on a real teacher (the bundled model by default).

For each mode it grows a fresh run directory to `--target` tasks (or until `--max-rounds`), then re-reads every
stored reply with the reader that mode uses and reports:
- parse failures: replies a reader could not use (a structured reply that does not validate; a text reply in
  which the parser found no item, or a classification answer that is neither Yes nor No), by stage;
- accepted tasks and rows per 1,000 completion tokens, and the drop reasons.

    .venv/bin/python bench/structured_bench.py --target 40
    .venv/bin/python bench/structured_bench.py --backend openai --base-url http://127.0.0.1:8000/v1 --target 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selfinstruct.core.config import build_config
from selfinstruct.generate.parse import parse_alpaca_tasks, parse_classification, parse_instances, parse_instructions
from selfinstruct.grow import grow
from selfinstruct.generate.prompts import is_output_first
from selfinstruct.generate.reply_models import (
    StructuredReplyInvalid, read_structured_alpaca, read_structured_classification, read_structured_instances,
    read_structured_instructions,
)
from selfinstruct.core.store import Store

MODES = {  # name: (api, structured)
    "chat+structured": ("chat", "on"),
    "chat+text": ("chat", "off"),
    "completions+text": ("completions", "off"),
}


def usable(stage: str, prompt: str, text: str, finish: str | None, structured: bool) -> bool:
    """Whether the mode's reader got something out of one stored reply."""
    labels = is_output_first(prompt)
    try:
        if stage == "instructions":
            read = read_structured_instructions if structured else parse_instructions
            return bool(read(text, finish).items)
        if stage == "alpaca":
            read_tasks = read_structured_alpaca if structured else parse_alpaca_tasks
            return bool(read_tasks(text, finish).items)
        if stage == "classify":
            if structured:
                read_structured_classification(text, finish)
                return True
            return parse_classification(text) is not None
        read_pairs = read_structured_instances if structured else parse_instances
        return bool(read_pairs(text, labels, finish).items)
    except StructuredReplyInvalid:
        return False


def measure(mode: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    api, structured = MODES[mode]
    out = work / mode.replace("+", "_")
    values: dict[str, object] = {"backend": args.backend, "api": api, "structured": structured, "out": out,
                                 "target": args.target, "max_rounds": args.max_rounds, "method": args.method}
    if args.base_url:
        values["base_url"] = args.base_url
    if args.model:
        values["model"] = args.model
    started = time.perf_counter()
    result = grow(build_config(values))
    seconds = time.perf_counter() - started
    with Store.open(out) as store:
        replies = store.stored_replies()
        rows = len(store.example_rows())
    failed: Counter[str] = Counter()
    asked: Counter[str] = Counter()
    for stage, prompt, reply in replies:
        asked[stage] += 1
        if not usable(stage, prompt, reply.text, reply.finish_reason, structured == "on"):
            failed[stage] += 1
    completion = sum(reply.completion_tokens for _, _, reply in replies)
    return {
        "mode": mode, "seconds": round(seconds, 1), "tasks": result.accepted, "rows": rows,
        "replies": sum(asked.values()), "parse_failures": sum(failed.values()),
        "parse_failure_share": round(sum(failed.values()) / max(sum(asked.values()), 1), 3),
        "failures_by_stage": {stage: f"{failed[stage]}/{asked[stage]}" for stage in asked},
        "completion_tokens": completion,
        "tasks_per_1k_completion_tokens": round(1000 * result.accepted / max(completion, 1), 2),
        "rows_per_1k_completion_tokens": round(1000 * rows / max(completion, 1), 2),
        "drops": result.drops, "run_dir": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--base-url", action="append")
    parser.add_argument("--model")
    parser.add_argument("--method", default="self-instruct")
    parser.add_argument("--target", type=int, default=40)
    parser.add_argument("--max-rounds", type=int, default=30)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--keep", type=Path, help="keep the run directories here (default: a temporary directory)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="structured-bench-"))
    for mode in args.modes.split(","):
        print(json.dumps(measure(mode.strip(), args, work)), flush=True)


if __name__ == "__main__":
    main()
