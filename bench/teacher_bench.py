"""Teacher throughput: our pipelined grow vs an Alpaca-style serial loop, on the same teacher in the same run.

    .venv/bin/python bench/teacher_bench.py                      # fake teacher: L=0.5 s, C=128 and C=32
    .venv/bin/python bench/teacher_bench.py --cpu-minutes 3      # also the real CPU teacher (SmolLM2, llama.cpp)

The fake teacher runs as a SEPARATE process (`python -m fakes.fake_teacher`), so the CPU time
we report (time.process_time of this process) is the pipeline's alone. Ours runs on each API asked for: on
completions (the vllm backend's default) prompts ready together share a request (`batch_prompts`), on chat
each prompt is a request. Utilization is counted in prompts (sequences), as the server's capacity is: over
the whole run (prompts/s over C/L) and in steady state (busy slot-seconds over the middle 80% of the run). The serial loop is the reference
pattern of Alpaca's `generate_instruction.py` (and Self-Instruct's bootstrap script): send a batch of 5
prompts together with the openai client, wait for the whole batch, filter, then send the next batch. It uses
our prompts, parser and filters, so the ratio measures how the teacher is driven, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The fake teacher lives with the tests (tests/fakes), outside the shipped package.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))

from selfinstruct.core.config import GrowConfig, build_config
from selfinstruct.filters.base import EMPTY_OUTPUT
from selfinstruct.filters.dedup_stage import DedupStage
from selfinstruct.filters.heuristics import check_instruction, instruction_checks
from selfinstruct.generate.methods import (
    classify_request, instance_request, plan_self_instruct, read_classification, read_generation, read_instances,
)
from selfinstruct.grow import grow
from selfinstruct.core.records import Candidate
from selfinstruct.core.seeds import load_seeds
from selfinstruct.core.store import Store
from selfinstruct.core.config import SELF_INSTRUCT_CLASSIFY
from selfinstruct.generate.prompts import render_classify_prompt
from selfinstruct.core.teacher_records import TeacherReply, TeacherRequest
from selfinstruct.teacher.openai_compat import OpenAITeacher
from selfinstruct.teacher.registry import open_teacher

BATCH = 5  # Alpaca's request_batch_size


@dataclass
class Result:
    name: str
    accepted: int
    seconds: float
    requests: int  # prompts the teacher served (a batched request counts each of its prompts)
    cpu: float
    server_cpu: float | None = None
    http_requests: int | None = None
    steady: float | None = None  # share of the teacher's slots busy over the middle 80% of the run
    # Seconds from calling grow() to the teacher's first prompt (opening the store, seeds, the dedup index)
    # and from its last answer to grow()'s return (the final commit, exports, card and report).
    lead: float | None = None
    tail: float | None = None

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds


class FakeServer:
    """The fake teacher in its own process; its CPU time is read from /proc."""

    def __init__(self, latency: float, capacity: int, seed: int = 11):
        argv = [sys.executable, "-m", "fakes.fake_teacher", "--port", "0",
                "--latency", str(latency), "--capacity", str(capacity), "--seed", str(seed)]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().split()[-1]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/stats") as response:
            return json.load(response)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class BusyProbe:
    """Samples the server's busy slot-seconds while a run goes on, for its steady-state utilization."""

    def __init__(self, server: FakeServer, capacity: int, every: float = 0.25):
        self.server, self.capacity, self.every = server, capacity, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BusyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.server.stats()["busy_seconds"]))
            self._stop.wait(self.every)

    def steady(self) -> float | None:
        """Busy share of the capacity between 10% and 90% of the run: no ramp-up, no last round."""
        if len(self.samples) < 5:
            return None
        start, end = self.samples[0][0], self.samples[-1][0]
        window = [s for s in self.samples if start + 0.1 * (end - start) <= s[0] <= start + 0.9 * (end - start)]
        (t0, b0), (t1, b1) = window[0], window[-1]
        return (b1 - b0) / (self.capacity * (t1 - t0)) if t1 > t0 else None


def run_ours(name: str, config: GrowConfig, server: FakeServer | None = None) -> Result:
    before = server.stats() if server else None
    cpu, started, wall_start = time.process_time(), time.perf_counter(), time.time()
    if server is None:
        result = grow(config)
        probe = None
    else:
        with BusyProbe(server, config.concurrency or 1) as probe:
            result = grow(config)
    seconds, cpu, wall_end = time.perf_counter() - started, time.process_time() - cpu, time.time()
    out = Result(name, result.accepted, seconds, result.usage.requests, cpu)
    if server is not None and before is not None and probe is not None:
        after = server.stats()
        out.requests, out.http_requests = after["prompts"] - before["prompts"], after["requests"] - before["requests"]
        out.steady = probe.steady()
        out.lead, out.tail = after["first_served_at"] - wall_start, wall_end - after["last_answered_at"]
    return out


class SerialLoop:
    """Alpaca-style: batches of 5 prompts sent together, each batch awaited before the next."""

    def __init__(self, config: GrowConfig, base_url: str, model: str, run_dir: Path):
        self.config = config.model_copy(update={"prompts_per_round": BATCH})
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=2,
                                         timeout=config.request_timeout)
        self.model = model
        self.store = Store.open(run_dir)
        self.store.add_seeds(load_seeds(config.seeds), "bench")
        self.seeds = self.store.seed_tasks()
        self.dedup = DedupStage.from_store(config.filters, self.store)
        self.checks = instruction_checks(config.filters)
        self.machine: list[str] = []
        self.requests = 0

    async def ask(self, request: TeacherRequest) -> TeacherReply | None:
        d = request.decoding
        params = dict(model=self.model, temperature=d.temperature, top_p=d.top_p, max_tokens=d.max_tokens,
                      presence_penalty=d.presence_penalty, frequency_penalty=d.frequency_penalty)
        if d.stop:
            params["stop"] = list(d.stop)
        self.requests += 1
        try:
            if self.config.api == "chat":
                r = await self.client.chat.completions.create(
                    messages=[{"role": "user", "content": request.prompt}], **params)
                text = r.choices[0].message.content or ""
            else:
                r = await self.client.completions.create(prompt=request.prompt, **params)
                text = r.choices[0].text or ""
        except openai.OpenAIError:
            return None
        return TeacherReply(text=text, finish_reason=r.choices[0].finish_reason)

    async def batched(self, requests: list[TeacherRequest]) -> list[TeacherReply | None]:
        replies: list[TeacherReply | None] = []
        for start in range(0, len(requests), BATCH):
            replies += await asyncio.gather(*(self.ask(r) for r in requests[start:start + BATCH]))
        return replies

    async def one_round(self, round_no: int) -> int:
        plans = plan_self_instruct(self.config, self.seeds, self.machine, round_no)
        candidates: list[Candidate] = []
        for plan, reply in zip(plans, await self.batched([p.request for p in plans])):
            if reply is not None:
                candidates += read_generation(plan, reply, round_no)[0]
        candidates = [c for c in candidates if check_instruction(c.instruction, self.checks).keep
                      and self.dedup.screen(c.instruction)[0] is None]
        questions = [classify_request(self.config, c.instruction) for c in candidates]
        labels = await self.batched(questions)
        candidates = [c.model_copy(update={"is_classification": read_classification(q, r)})
                      for c, q, r in zip(candidates, questions, labels)]
        requests = [instance_request(self.config, c) for c in candidates]
        replies = await self.batched(requests)
        kept = 0
        for cand, request, reply in zip(candidates, requests, replies):
            if reply is None:
                continue
            cand = read_instances(request, cand, reply, self.config.instances_per_task)[0]
            if cand.instances and self.dedup.check(cand).reason is None:
                self.dedup.add(cand)
                self.machine.append(cand.instruction)
                kept += 1
        return kept

    async def run(self, seconds: float) -> Result:
        cpu, started, round_no = time.process_time(), time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            round_no += 1
            await self.one_round(round_no)
        await self.client.close()
        self.store.close()
        return Result("Alpaca-style serial (batch 5)", len(self.machine), time.perf_counter() - started,
                      self.requests, time.process_time() - cpu)


async def request_cpu(base_url: str, concurrency: int, n: int = 2000) -> dict[str, float]:
    """Process CPU per request: our request path (OpenAITeacher, no store) vs the SDK's typed call on one client."""
    prompt = render_classify_prompt("Tell whether the following sentence is positive or negative.")
    request = TeacherRequest(stage="classify", prompt=prompt, decoding=SELF_INSTRUCT_CLASSIFY)
    teacher = OpenAITeacher(base_urls=[base_url], model="fake-teacher", concurrency=concurrency)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def typed() -> None:
        async with slots:
            await client.chat.completions.create(model="fake-teacher", max_tokens=4,
                                                 messages=[{"role": "user", "content": prompt}])

    results = {}
    for name, one in (("ours", lambda: teacher.complete(request)), ("sdk typed call", typed)):
        await asyncio.gather(*(one() for _ in range(200)))  # warm connections
        cpu = time.process_time()
        await asyncio.gather(*(one() for _ in range(n)))
        results[name] = 1000 * (time.process_time() - cpu) / n
    await teacher.close()
    await client.close()
    return results


def fake_scenario(latency: float, capacity: int, target: int, serial_seconds: float, work: Path,
                  apis: list[str], modes: tuple[bool, ...] = (False, True)) -> list[str]:
    # A fresh server per run, so its first-served and last-answered times are that run's.
    results, configs = [], []
    for api in apis:
        for adaptive in modes:
            server = FakeServer(latency, capacity)
            try:
                config = build_config({"backend": "openai", "base_url": [server.base_url], "api": api,
                                       "out": work / f"ours-{capacity}-{api}-{adaptive}", "target": target,
                                       "concurrency": capacity, "model": "fake-teacher",
                                       "adaptive_concurrency": adaptive})
                cpu0 = server.cpu_seconds()
                mode = "adaptive, ceiling" if adaptive else "fixed concurrency"
                ours = run_ours(f"ours, {api} (batch {config.batch_prompts}), {mode} {capacity}", config, server)
                ours.server_cpu = server.cpu_seconds() - cpu0
            finally:
                server.stop()
            results.append(ours)
            configs.append(config)
    server = FakeServer(latency, capacity)
    try:
        # The reference on the completions API, as Alpaca's (5 prompts at a time, text replies: it sends no schema).
        serial_config = configs[0].model_copy(update={"api": "completions"})
        loop = SerialLoop(serial_config, server.base_url, "fake-teacher", work / f"serial-{capacity}")
        serial = asyncio.run(loop.run(serial_seconds))
        per_request = asyncio.run(request_cpu(server.base_url, capacity))
    finally:
        server.stop()
    lines: list[str] = []
    for ours in results:
        lines += rows(f"fake L={latency:g}s C={capacity}", ours, serial, capacity / latency)
    return lines + [f"| fake L={latency:g}s C={capacity} | CPU ms per request, request path alone (chat) | | | "
                    + ", ".join(f"{name} {ms:.2f}" for name, ms in per_request.items()) + " | | | | | | | |"]


def cpu_scenario(minutes: float, work: Path) -> list[str]:
    """The bundled SmolLM2 through llama.cpp (one server for both): ours for `minutes`, then the serial loop."""
    server_config = build_config({"backend": "cpu", "out": work / "cpu-server"})
    with open_teacher(server_config, work) as endpoints:
        # Attach to the running server; one round per grow() call so we can stop between rounds.
        config = build_config({"backend": "cpu", "base_url": endpoints.base_urls, "out": work / "ours-cpu",
                               "target": 100000, "max_rounds": 1})
        ours = Result("ours (pipelined)", 0, 0.0, 0, 0.0)
        started, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - started < minutes * 60:
            result = grow(config)
            ours.accepted = result.accepted
            ours.requests += result.usage.requests
        ours.seconds, ours.cpu = time.perf_counter() - started, time.process_time() - cpu
        loop = SerialLoop(config, endpoints.base_urls[0], endpoints.model, work / "serial-cpu")
        serial = asyncio.run(loop.run(minutes * 60))
    return rows(f"cpu SmolLM2-135M (~{minutes:g} min each)", ours, serial, None, per_hour=True)


def rows(scenario: str, ours: Result, serial: Result, capacity_rate: float | None, per_hour: bool = False) -> list[str]:
    scale, unit = (3600, "/h") if per_hour else (1, "/s")
    lines = []
    for r in (ours, serial):
        rate = r.requests / r.seconds
        of_capacity = f"{rate / capacity_rate:.0%}" if capacity_rate else "-"
        steady = f"{r.steady:.0%}" if r.steady is not None else "-"
        cpu_each = f"{1000 * r.cpu / r.accepted:.2f}" if r.accepted else "-"
        server = f"{r.server_cpu:.1f}" if r.server_cpu is not None else "-"
        http = f" ({r.http_requests} HTTP)" if r.http_requests is not None else ""
        ends = f"{r.lead:.1f} / {r.tail:.1f}" if r.lead is not None and r.tail is not None else "-"
        lines.append(f"| {scenario} | {r.name} | {r.accepted} | {r.seconds:.1f} | {r.per_second * scale:.1f}{unit} | "
                     f"{r.requests}{http} | {rate:.1f} | {of_capacity} | {steady} | {ends} | {cpu_each} | {server} |")
    ratio = ours.per_second / serial.per_second if serial.per_second else float("inf")
    lines.append(f"| {scenario} | ratio {ours.name} / serial | | | {ratio:.1f}x | | | | | | | |")
    return lines


HEADER = ("| scenario | loop | accepted | wall s | accepted rate | prompts | prompts/s | of C/L | steady busy | "
          "s before first / after last prompt | our CPU ms / accepted | server CPU s |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--capacities", type=int, nargs="*", default=[128, 32],
                        help="fake-teacher capacities C to run; none (just the flag) skips the fake teacher")
    parser.add_argument("--target", type=int, default=4000, help="accepted examples our pipeline grows")
    parser.add_argument("--apis", nargs="+", default=["completions", "chat"], choices=["completions", "chat"],
                        help="our pipeline on each API: completions batches prompts (the vllm default), chat cannot")
    parser.add_argument("--serial-seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", nargs="+", default=["fixed", "adaptive"], choices=["fixed", "adaptive"],
                        help="fixed: always C in flight (--no-adaptive-concurrency); adaptive: found by AIMD, C the ceiling")
    parser.add_argument("--cpu-minutes", type=float, default=0.0, help="also the real CPU teacher, this long each")
    args = parser.parse_args()
    lines = [HEADER]
    with tempfile.TemporaryDirectory() as tmp:
        for capacity in args.capacities:
            modes = tuple(mode == "adaptive" for mode in args.concurrency)
            lines += fake_scenario(args.latency, capacity, args.target, args.serial_seconds, Path(tmp), args.apis, modes)
            print("\n".join(lines), flush=True)
        if args.cpu_minutes:
            lines += cpu_scenario(args.cpu_minutes, Path(tmp))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
