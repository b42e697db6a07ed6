"""Where one grow's utilization goes: the adaptive limit and the fake teacher's busy share over time.

    .venv/bin/python bench/ramp_trace.py --api chat             # adaptive, C=128, L=0.5 s, 4,000 rows
    .venv/bin/python bench/ramp_trace.py --api chat --fixed     # the same with a fixed concurrency

Prints every change of the limit (when, to what, whether still in slow start) and the share of the server's
slots busy per half second, so the ramp, a round's commit and the tail show as what they cost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from teacher_bench import BusyProbe, FakeServer  # noqa: E402 (bench/ is not a package)

from selfinstruct.core.config import build_config  # noqa: E402
from selfinstruct.grow import grow  # noqa: E402
from selfinstruct.teacher.adaptive import AimdLimit  # noqa: E402


def record_limits(changes: list[tuple[float, float, bool]]) -> None:
    """Record (time, limit, slow start) at each change: the controller is pure and keeps no history, and
    `_set` is the one place its limit changes."""
    original = AimdLimit._set

    def traced(self: AimdLimit, limit: float) -> None:
        before = self.limit
        original(self, limit)
        if self.limit != before:
            changes.append((time.perf_counter(), self.limit, self.slow_start))

    AimdLimit._set = traced  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", choices=["completions", "chat"], default="chat")
    parser.add_argument("--fixed", action="store_true", help="a fixed concurrency instead of the adaptive one")
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--capacity", type=int, default=128)
    parser.add_argument("--target", type=int, default=4000)
    args = parser.parse_args()

    changes: list[tuple[float, float, bool]] = []
    record_limits(changes)
    server = FakeServer(args.latency, args.capacity)
    try:
        with tempfile.TemporaryDirectory() as work:
            config = build_config({"backend": "openai", "base_url": [server.base_url], "api": args.api,
                                   "out": Path(work) / "out", "target": args.target, "model": "fake-teacher",
                                   "concurrency": args.capacity, "adaptive_concurrency": not args.fixed})
            started = time.perf_counter()
            with BusyProbe(server, args.capacity) as probe:
                result = grow(config)
            wall = time.perf_counter() - started
        prompts = server.stats()["prompts"]
    finally:
        server.stop()

    print(f"wall {wall:.1f} s, {result.accepted} accepted, {prompts} prompts: "
          f"{prompts / wall / (args.capacity / args.latency):.0%} of C/L")
    for at, limit, slow_start in changes:
        print(f"  {at - started:6.2f} s  limit {limit:6.1f}{'  (slow start)' if slow_start else ''}")
    half_seconds = probe.samples[::2]  # the probe samples every 0.25 s
    for (t0, busy0), (t1, busy1) in zip(half_seconds, half_seconds[1:]):
        print(f"  {t0 - started:5.1f} to {t1 - started:5.1f} s  busy {(busy1 - busy0) / (args.capacity * (t1 - t0)):.0%}")


if __name__ == "__main__":
    main()
