"""Deduplicate a file of candidates against a pool, as the grow loop would.

Behind ``selfinstruct dedup --input candidates.jsonl --output decisions.jsonl
[--pool pool.jsonl] [--threshold 0.7] [--stages rouge,minhash]``. Candidates
are decided in order: the ROUGE-L stage on the instruction first, then MinHash
on the whole example for those it kept; every kept candidate joins the pool at
once, so later candidates are checked against it (Alpaca's loop).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .core.atomic import write_atomic
from .core.errors import InputError
from .filters.base import MINHASH, ROUGE
from .filters.dedup_stage import DedupStage
from .filters.minhash import MinhashConfig, Sketched
from .core.records import Candidate, Instance

Stage = Literal["rouge", "minhash"]
STAGES: tuple[Stage, ...] = ("rouge", "minhash")
_BATCH = 256  # candidates sketched together: MinHash is much cheaper in bulk


class DedupInputError(InputError):
    """A line of a JSON-lines input is not a usable example."""

    def __init__(self, path: str | os.PathLike[str], line: int, field: str | None, expected: str) -> None:
        self.path, self.line = str(path), line
        super().__init__(f"{self.path}:{line}", field, expected)


class Example(BaseModel):
    """What dedup reads from a line: the instruction, and optionally input and output."""

    model_config = ConfigDict(frozen=True)

    instruction: str
    input: str = ""
    output: str = ""


class DedupConfig(BaseModel):
    """Which stages run and how strict they are; saved with a run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(0.7, gt=0, le=1)  # ROUGE-L F above this drops a candidate
    stages: tuple[Stage, ...] = STAGES
    minhash: MinhashConfig = MinhashConfig()


class Decision(BaseModel):
    """One output line per candidate.

    ``rouge_l_max`` and ``nearest`` come from the ROUGE-L stage (0.0 and None
    when it is off): exact when the candidate is a ROUGE duplicate, otherwise
    the best F among the pool texts the index verified (see RougeIndex.check).
    A MinHash drop names the matching pool instruction in ``nearest``.
    """

    model_config = ConfigDict(frozen=True)

    keep: bool
    reason: Literal["rouge", "minhash"] | None
    rouge_l_max: float
    nearest: str | None


def decide(candidates: Iterable[Example], pool: Iterable[Example], config: DedupConfig) -> Iterator[Decision]:
    """Decide each candidate in order with the grow loop's DedupStage; kept ones join the pool before the next."""
    stage = DedupStage.empty(config.threshold if "rouge" in config.stages else None,
                             config.minhash if "minhash" in config.stages else None)
    for batch in _batches(pool):
        for cand, sketched in _sketched(batch, stage):
            stage.add(cand, sketched)
    for batch in _batches(candidates):
        for cand, sketched in _sketched(batch, stage):
            verdict = stage.check(cand, sketched)
            if verdict.reason is None:
                stage.add(cand, sketched)
            nearest = verdict.minhash_nearest if verdict.reason == MINHASH else verdict.nearest
            yield Decision(keep=verdict.reason is None, reason=verdict.reason, rouge_l_max=verdict.nearest_rouge_l,
                           nearest=nearest)


def _sketched(batch: Sequence[Example], stage: DedupStage) -> Iterator[tuple[Candidate, Sketched | None]]:
    """Each example as a candidate with its MinHash sketch (None when MinHash is off), a batch at a time."""
    cands = [Candidate(instruction=e.instruction, instances=(Instance(input=e.input, output=e.output),))
             for e in batch]
    return zip(cands, stage.sketches(cands))


def _batches(examples: Iterable[Example]) -> Iterator[list[Example]]:
    iterator = iter(examples)
    while batch := list(islice(iterator, _BATCH)):
        yield batch


def read_examples(path: str | os.PathLike[str]) -> Iterator[Example]:
    """Examples from a JSON-lines file, lazily; blank lines are skipped.

    Raises DedupInputError naming the file, line and field of the first bad line.
    """
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield _parse_line(path, number, line)


def _parse_line(path: str | os.PathLike[str], number: int, line: str) -> Example:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise DedupInputError(path, number, None, "a JSON object") from None
    if not isinstance(record, dict):
        raise DedupInputError(path, number, None, "a JSON object")
    instruction = record.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise DedupInputError(path, number, "instruction", "a non-empty string")
    for field in ("input", "output"):
        if not isinstance(record.get(field, ""), str):
            raise DedupInputError(path, number, field, "a string")
    return Example(instruction=instruction, input=record.get("input", ""), output=record.get("output", ""))


def dedup_files(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    pool_path: str | os.PathLike[str] | None = None,
    threshold: float = 0.7,
    stages: Sequence[Stage] = STAGES,
) -> dict[str, int]:
    """Write one decision per candidate line; returns counts (total, kept, dropped_<reason>).

    The output appears only when complete (temp file + os.replace), so a bad
    line or a crash never leaves a partial decisions file.
    """
    config = DedupConfig(threshold=threshold, stages=tuple(stages))
    pool = read_examples(pool_path) if pool_path is not None else ()
    decisions = decide(read_examples(input_path), pool, config)
    return _write_atomically(Path(output_path), decisions)


def _write_atomically(output: Path, decisions: Iterable[Decision]) -> dict[str, int]:
    counts = {"total": 0, "kept": 0, f"dropped_{ROUGE}": 0, f"dropped_{MINHASH}": 0}
    lines = []
    for decision in decisions:
        lines.append(decision.model_dump_json() + "\n")
        counts["total"] += 1
        counts["kept" if decision.keep else f"dropped_{decision.reason}"] += 1
    write_atomic(output, "".join(lines))
    return counts
