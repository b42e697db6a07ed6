"""The adaptive concurrency limit against a real single-slot server, traced reply by reply.

    .venv/bin/python bench/single_slot_bench.py --target 6                 # adaptive, ceiling 128 (the default)
    .venv/bin/python bench/single_slot_bench.py --target 6 --concurrency 1 --trace /tmp/fixed1.csv

llama.cpp's `llama_cpp.server` with the bundled SmolLM2-135M answers one request at a time and queues the
rest, so a reply's latency is its own service time plus that of every prompt ahead of it. The grow runs
in-process on the completions API, one prompt per request (as tests/test_teacher_single_slot.py does), and
every reply's DEBUG line from openai_compat (latency, completion tokens, prompts in flight when it was sent,
the limit after it) is kept. Printed: the limit over time, mean latency and completions per second by
prompts in flight (on one slot latency grows with it and throughput does not), dead letters, wall and CPU
time. `--trace` writes the replies as CSV.
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selfinstruct.core.config import build_config  # noqa: E402
from selfinstruct.grow import grow  # noqa: E402
from selfinstruct.teacher.llamacpp import MODEL_ALIAS, bundled_model_path, server_command  # noqa: E402
from selfinstruct.teacher.server import free_port  # noqa: E402

REPLY = re.compile(r"reply in ([\d.]+) s, (\d+) tokens, (\d+) prompts, (\d+) in flight at send, limit (\d+), "
                   r"epoch (\d+), at ([\d.]+), kind (\w*)")


@dataclass
class Reply:
    at: float  # seconds since the grow started, when the reply came
    seconds: float
    tokens: int
    prompts: int
    in_flight: int
    limit: int
    epoch: int
    now: float  # the clock the controller was given
    kind: str


class Trace(logging.Handler):
    """Keeps each reply line of the teacher client's log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.started = time.monotonic()
        self.replies: list[Reply] = []
        self.notes: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        at = time.monotonic() - self.started
        if match := REPLY.search(text):
            seconds, tokens, prompts, in_flight, limit, epoch, now, kind = match.groups()
            self.replies.append(Reply(at, float(seconds), int(tokens), int(prompts), int(in_flight), int(limit),
                                      int(epoch), float(now), kind))
        elif "in flight at most" in text or "adaptive limit" in text:
            self.notes.append((at, text))


@contextmanager
def llama_server() -> Iterator[str]:
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"single-slot-bench-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(server_command(bundled_model_path(), port), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"llama_cpp.server did not answer; see {log}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def summary(trace: Trace) -> list[str]:
    replies = trace.replies
    if not replies:
        return ["no replies"]
    lines = ["limit over time (each 10% of the replies: time, limit, in flight at send, median latency):"]
    step = max(1, len(replies) // 10)
    for i in range(0, len(replies), step):
        chunk = replies[i:i + step]
        most = max(r.in_flight for r in chunk)
        lines.append(f"  {chunk[-1].at:7.1f} s  limit {chunk[-1].limit:3d}  in flight {most:3d}"
                     f"  latency {statistics.median(r.seconds for r in chunk):6.2f} s")
    lines.append("by prompts in flight at send: replies, mean latency, mean completion tokens")
    by_flight: dict[int, list[Reply]] = defaultdict(list)
    for reply in replies:
        by_flight[reply.in_flight].append(reply)
    for in_flight, group in sorted(by_flight.items()):
        lines.append(f"  {in_flight:3d}: {len(group):4d} replies, {statistics.mean(r.seconds for r in group):6.2f} s, "
                     f"{statistics.mean(r.tokens for r in group):6.1f} tokens")
    lines.append("by limit in force: replies, completions per second while it held")
    spans: dict[int, list[float]] = defaultdict(lambda: [0, 0.0])
    for before, reply in zip(replies, replies[1:]):
        spans[before.limit][0] += 1
        spans[before.limit][1] += reply.at - before.at
    for limit, (count, seconds) in sorted(spans.items()):
        lines.append(f"  {limit:3d}: {count:4d} replies in {seconds:7.1f} s, {count / seconds if seconds else 0:.2f}/s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=None, help="the ceiling (default: the openai backend's)")
    parser.add_argument("--fixed", action="store_true", help="no adaptive limit: always --concurrency in flight")
    parser.add_argument("--trace", type=Path, help="write every reply as CSV here")
    parser.add_argument("--base-url", help="a running single-slot server instead of starting one")
    args = parser.parse_args()
    trace = Trace()
    logger = logging.getLogger("selfinstruct.teacher")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(trace)
    with tempfile.TemporaryDirectory() as tmp, (llama_server() if not args.base_url else _given(args.base_url)) as url:
        settings = {"backend": "openai", "base_url": [url], "model": MODEL_ALIAS, "api": "completions",
                    "batch_prompts": 1, "target": args.target, "out": Path(tmp) / "run",
                    "adaptive_concurrency": not args.fixed}
        if args.concurrency is not None:
            settings["concurrency"] = args.concurrency
        config = build_config(settings)
        trace.started = time.monotonic()
        cpu = time.process_time()
        result = grow(config)
        wall, cpu = time.monotonic() - trace.started, time.process_time() - cpu
    mode = "fixed" if args.fixed else "adaptive"
    print(f"{mode}, ceiling {config.concurrency}: {result.accepted}/{args.target} accepted in {wall:.0f} s wall, "
          f"{cpu:.1f} s CPU; {result.usage.requests} requests, dead letters {sum(result.dead_letters.values())} "
          f"{result.dead_letters or ''}")
    if trace.replies:
        most = max(r.in_flight for r in trace.replies)
        print(f"at most {most} in flight at send, final limit {trace.replies[-1].limit}")
    for at, note in trace.notes:
        print(f"  {at:7.1f} s  {note}")
    print("\n".join(summary(trace)))
    if args.trace:
        with open(args.trace, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["at", "seconds", "tokens", "prompts", "in_flight", "limit", "epoch", "now", "kind"])
            writer.writerows([r.at, r.seconds, r.tokens, r.prompts, r.in_flight, r.limit, r.epoch, r.now, r.kind]
                             for r in trace.replies)


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
