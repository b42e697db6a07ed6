"""Re-derive a run's pool from the teacher replies its store already holds: no request is sent.

The replies table is a cache of answers by request; reading them is a pure function (parse, filter, dedup).
A parser fix or a filter change therefore applies to last night's run for free: `rebuild` renders each of the
source's rounds again exactly as it was sent (its prompts depend only on the seeds, the round number and the
source's pool at that round, all in the store) and runs them through today's rounds, filters and final pass,
into a new run directory. Every request is answered from the source's replies by stage and prompt, so a
changed decoding (a new stop sequence) still finds its answer; a request never answered in the source run
(its prompt was rendered by another version) is dead-lettered as `not_in_source_cache`.
The source directory is opened read-only and left as it was.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .core.config import GrowConfig, build_config, stored_settings
from .core.errors import InputError
from .export.formats import export_alpaca
from .core.atomic import write_atomic
from .generate.methods import PromptPlan, plan_alpaca, plan_self_instruct
from .generate.pipeline import GrowSession
from .core.records import SeedTask
from .core.store import STORE_NAME, Store
from .core.teacher_records import TeacherReply, TeacherRequest
from .teacher.openai_compat import TeacherRequestFailed
from .teacher.backend import Endpoints
from .teacher.usage import Usage

SEEDS_FILE = "seeds_of_source.jsonl"
NOT_CACHED = "not_in_source_cache"


@dataclass(frozen=True)
class SourceReply:
    stage: str
    prompt: str
    reply: TeacherReply


class ReplayTeacher:
    """Answers from a source run's stored replies, by stage and prompt; never opens a connection."""

    def __init__(self, api: str, model: str, replies: list[SourceReply]):
        self.api = api
        self.model = model
        self._by_prompt: dict[tuple[str, str], deque[TeacherReply]] = defaultdict(deque)
        for item in replies:
            self._by_prompt[(item.stage, item.prompt)].append(item.reply)

    async def complete(self, request: TeacherRequest, usage: Usage | None = None) -> TeacherReply:
        answers = self._by_prompt.get((request.stage, request.prompt))
        if not answers:
            raise TeacherRequestFailed(f"no stored {request.stage} reply for this prompt ({NOT_CACHED})", NOT_CACHED)
        # The same prompt asked several times (other samples) was answered several times: serve them in turn.
        reply = answers[0] if len(answers) == 1 else answers.popleft()
        return reply.model_copy(update={"cached": True})

    def raise_if_failing(self) -> None:
        """A replay does not fail as a server does: a missing answer is one dead letter, not an outage."""

    async def close(self) -> None:
        """Nothing to close."""


class RebuildSession(GrowSession):
    """A grow session whose rounds are the source run's stored generation prompts, answered by replay."""

    def __init__(self, config: GrowConfig, source: SourceRun):
        super().__init__(config)
        self._source = source
        self._replay = ReplayTeacher(config.api or "completions", config.model or "", source.replies)

    def wants_round(self, rounds_run: int) -> bool:
        if rounds_run >= self._source.rounds:
            self.stopped = "every stored generation reply replayed"
            return False
        return True

    def _may_start(self, in_flight: int, committed: int) -> bool:
        return in_flight < (self.config.pipeline_rounds or 1) and self.wants_round(committed + in_flight)

    def _check_idle(self, summary: object) -> None:
        """A replayed round that keeps nothing is a fact of the source run, not a stuck teacher."""

    def _teacher(self, endpoints: Endpoints) -> ReplayTeacher:  # type: ignore[override]
        return self._replay

    def _plans(self, round_no: int) -> list[PromptPlan]:
        """The source's round as it was sent: its machine demos come from the source's pool, not ours."""
        if self.config.method == "alpaca":
            return plan_alpaca(self.config, self.seeds, round_no)
        shown = round_no - (self.config.pipeline_rounds or 1)
        machine = [text for number, text in self._source.machine if number <= shown]
        return plan_self_instruct(self.config, self.seeds, machine, round_no)


@dataclass(frozen=True)
class SourceRun:
    """What a rebuild reads of the source run."""

    config: dict[str, Any]
    seeds: list[SeedTask]
    replies: list[SourceReply]
    machine: list[tuple[int, str]]  # (round, instruction) of its accepted tasks, in order
    rounds: int
    tasks: int
    rows: int


@dataclass(frozen=True)
class RebuildResult:
    source_tasks: int
    source_rows: int
    tasks: int
    rows: int
    rounds: int
    usage: Usage
    dead_letters: dict[str, int]
    drops: dict[str, int]
    alpaca_path: Path


def rebuild(source: Path, out: Path, overrides: dict[str, Any] | None = None) -> RebuildResult:
    """Rebuild `source`'s pool into the new run directory `out` with today's parser and filters."""
    if not (source / STORE_NAME).is_file():
        raise InputError(str(source), None, f"a run directory holding {STORE_NAME}", "no store there")
    if out.exists() and any(out.iterdir()):
        raise InputError(str(out), "--out", "a new or empty run directory (rebuild never writes into a run)",
                         "a directory with files in it")
    if out.resolve() == source.resolve():
        raise InputError(str(out), "--out", "a directory other than --from", "the same directory")
    run = _read_source(source)
    out.mkdir(parents=True, exist_ok=True)
    seeds_path = write_atomic(out / SEEDS_FILE, "".join(seed.model_dump_json() + "\n" for seed in run.seeds))
    values = {**run.config, **(overrides or {}), "out": out, "seeds": seeds_path}
    config = build_config(values, source=str(source / STORE_NAME))
    with RebuildSession(config, run) as session:
        session.store.set_meta("rebuilt_from", str(source.resolve()))
        rounds = session.run_rounds(Endpoints(base_urls=[], model=config.model or ""))
        path = export_alpaca(session.store, out)
        store = session.store
        return RebuildResult(source_tasks=run.tasks, source_rows=run.rows, tasks=store.accepted_count(),
                             rows=len(store.example_rows()), rounds=rounds, usage=session.usage,
                             dead_letters=store.dead_letter_counts(), drops=store.drop_counts(), alpaca_path=path)


def _read_source(source: Path) -> SourceRun:
    """What the rebuild needs of the source, read without writing to it."""
    with Store.open_readonly(source) as store:
        history = store.config_history()
        replies = [SourceReply(stage, prompt, reply) for stage, prompt, reply in store.stored_replies()]
        tasks = store.generated_tasks()
        run = SourceRun(config={}, seeds=store.seed_tasks(), replies=replies, machine=store.generated_rounds(),
                        rounds=store.next_round() - 1, tasks=len(tasks), rows=len(store.example_rows()))
    if not history:
        raise InputError(str(source / STORE_NAME), "configs", "the configuration the run was grown with",
                         "none stored")
    # The last configuration that grew the source (the config history, see store.py), under today's names.
    values = {key: value for key, value in stored_settings(history[-1].config).items() if key not in {"out", "seeds"}}
    model = next((str(prov["teacher"]) for _, _, prov in tasks if prov.get("teacher")), None)
    if model and not values.get("model"):
        values["model"] = model  # what the source's cache keys were made with, so the new store's match
    return replace(run, config=values)
