"""Near-duplicate stages of the grow loop: ROUGE-L on instructions, MinHash LSH on whole examples.

The indexes are caches of the store's pool: rebuilt from it when a session opens
or after a failed round, so they never hold a rejected or crash-lost item.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import NamedTuple

from ..config import FilterConfig
from ..records import Candidate
from ..store import Store
from .base import MINHASH, ROUGE
from .minhash import MinhashConfig, MinhashIndex, Sketched, example_text, sketch_texts
from .rouge import RougeIndex, RougeMatch


class DedupVerdict(NamedTuple):
    """A drop reason (None to keep) with evidence, and the nearest pool instruction by ROUGE-L.

    `duplicates` lists the instances (position, evidence) whose whole example MinHash found in the pool when
    the task is kept for its others; a task none of whose instances is new is dropped as a whole.
    """

    reason: str | None
    detail: str
    nearest: str | None
    nearest_rouge_l: float
    duplicates: tuple[tuple[int, str], ...] = ()


class Screened(NamedTuple):
    """An instruction's early ROUGE-L check: against which stage, how large its pool was, what it found."""

    generation: int
    pool_size: int
    match: RougeMatch


_generations = itertools.count()


def _rouge_evidence(match: RougeMatch) -> str:
    return f"{match.score:.3f} vs {match.nearest!r}"


@dataclass
class DedupStage:
    rouge: RougeIndex
    minhash: MinhashIndex | None
    minhash_config: MinhashConfig
    # Tells stages apart: a screening record is only trusted by the stage that made it.
    generation: int = field(default_factory=lambda: next(_generations))

    @classmethod
    def from_store(cls, config: FilterConfig, store: Store) -> DedupStage:
        rouge = RougeIndex(threshold=config.rouge_threshold)
        for text in store.instructions():
            rouge.add(text)
        minhash_config = MinhashConfig(threshold=config.minhash_threshold)
        stage = cls(rouge, MinhashIndex(minhash_config) if config.minhash else None, minhash_config)
        if stage.minhash is not None:
            stage._add_examples([(e.instruction, e.input, e.output) for e in store.pool_examples()])
        return stage

    def screen(self, instruction: str) -> tuple[str | None, Screened]:
        """Evidence ("0.82 vs '...'") when the instruction is too close to the pool, else None; and a record
        that lets `check` compare it later with only the pool texts added since."""
        match = self.rouge.check(instruction)
        evidence = _rouge_evidence(match) if self.rouge.is_duplicate(match) else None
        return evidence, Screened(self.generation, len(self.rouge), match)

    def sketches(self, cands: list[Candidate]) -> list[list[Sketched] | None]:
        """MinHash sketches of each candidate's examples (one per instance), all in one batch; None when off."""
        if self.minhash is None:
            return [None] * len(cands)
        flat = iter(sketch_texts([text for cand in cands for text in _example_texts(cand)], self.minhash_config))
        return [[next(flat) for _ in cand.instances] for cand in cands]

    def check(
        self, cand: Candidate, sketched: list[Sketched] | None = None, screened: Screened | None = None
    ) -> DedupVerdict:
        """Both stages for a candidate with instances: ROUGE-L on its instruction, then MinHash on each example.

        `screened` (from `screen`, when it kept the instruction) limits ROUGE-L to the texts added since.
        """
        if screened is not None and screened.generation == self.generation:
            match = self.rouge.check(cand.instruction, since=screened.pool_size)
            if not self.rouge.is_duplicate(match) and screened.match.score >= match.score:
                match = screened.match  # the best evidence for a kept one; older texts win ties
        else:
            match = self.rouge.check(cand.instruction)
        verdict = DedupVerdict(None, "", match.nearest, match.score)
        if self.rouge.is_duplicate(match):
            return verdict._replace(reason=ROUGE, detail=_rouge_evidence(match))
        if self.minhash is None:
            return verdict
        duplicates = []
        for position, sketch in enumerate(self._sketch(cand) if sketched is None else sketched):
            found = self.minhash.check(sketch.signature, sketch.shingles)
            if found is not None:
                duplicates.append((position, f"{found.jaccard:.3f} vs {found.key!r}"))
        if len(duplicates) == len(cand.instances):
            return verdict._replace(reason=MINHASH, detail=duplicates[0][1])
        return verdict._replace(duplicates=tuple(duplicates))

    def add(self, cand: Candidate, sketched: list[Sketched] | None = None) -> None:
        """Add a kept candidate (its instruction, and each instance's example) to the indexes."""
        self.rouge.add(cand.instruction)
        if self.minhash is not None:
            sketches = self._sketch(cand) if sketched is None else sketched
            for text, sketch in zip(_example_texts(cand), sketches):
                self.minhash.add(text[:200], sketch.signature, sketch.shingles)

    def _sketch(self, cand: Candidate) -> list[Sketched]:
        return sketch_texts(_example_texts(cand), self.minhash_config)

    def _add_examples(self, examples: list[tuple[str, str, str]]) -> None:
        assert self.minhash is not None
        texts = [example_text(*example) for example in examples]
        for text, sketched in zip(texts, sketch_texts(texts, self.minhash_config)):
            self.minhash.add(text[:200], sketched.signature, sketched.shingles)


def _example_texts(cand: Candidate) -> list[str]:
    return [example_text(cand.instruction, instance.input, instance.output) for instance in cand.instances]
