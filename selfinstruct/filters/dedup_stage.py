"""Near-duplicate stages of the grow loop: ROUGE-L on instructions, MinHash LSH on whole examples.

The indexes are caches of the store's pool: rebuilt from it when a session opens
or after a failed round, so they never hold a rejected or crash-lost item.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass, field
from typing import NamedTuple

from ..core.config import FilterConfig
from ..core.records import Candidate
from ..core.store import Store
from .base import MINHASH, ROUGE
from .minhash import MinhashConfig, MinhashIndex, MinhashMatch, Sketched, example_text, sketch_texts
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
    minhash_nearest: str | None = None  # the pool instruction MinHash matched, for a MinHash drop


class Screened(NamedTuple):
    """An instruction's early ROUGE-L check: against which stage, how large its pool was, what it found."""

    generation: int
    pool_size: int
    match: RougeMatch


_generations = itertools.count()


def _rouge_evidence(match: RougeMatch) -> str:
    return f"{match.score:.3f} vs {match.nearest!r}"


def _minhash_evidence(found: MinhashMatch) -> str:
    return f"{found.jaccard:.3f} vs {found.key!r}"


def normalized(instruction: str) -> str:
    """The text two copies of an instruction share: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", instruction).casefold().split())


@dataclass
class DedupStage:
    rouge: RougeIndex | None
    minhash: MinhashIndex | None
    minhash_config: MinhashConfig
    # Tells stages apart: a screening record is only trusted by the stage that made it.
    generation: int = field(default_factory=lambda: next(_generations))
    # Normalized instruction -> the pool's text. ROUGE-L sees only [a-z0-9] tokens, so two identical CJK
    # instructions score 0 against each other; without this both would be kept and the store's UNIQUE
    # instruction would reject the round on every resume.
    exact: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_store(cls, config: FilterConfig, store: Store) -> DedupStage:
        stage = cls.empty(config.rouge_threshold, MinhashConfig(threshold=config.minhash_threshold)
                          if config.minhash else None)
        for text in store.instructions():
            stage._add_instruction(text)
        if stage.minhash is not None:
            stage._add_examples([(e.instruction, e.input, e.output) for e in store.pool_examples()])
        return stage

    @classmethod
    def empty(cls, rouge_threshold: float | None, minhash: MinhashConfig | None) -> DedupStage:
        """A stage with an empty pool; None turns ROUGE-L (with its exact-copy check) or MinHash off."""
        rouge = None if rouge_threshold is None else RougeIndex(threshold=rouge_threshold)
        minhash_config = minhash or MinhashConfig()
        return cls(rouge, None if minhash is None else MinhashIndex(minhash_config), minhash_config)

    def _exact_match(self, instruction: str) -> RougeMatch | None:
        # Part of the ROUGE-L stage: with it off (the dedup command's --stages minhash), copies go to MinHash.
        found = self.exact.get(normalized(instruction)) if self.rouge is not None else None
        return None if found is None else RougeMatch(1.0, found)

    def _add_instruction(self, text: str) -> None:
        if self.rouge is not None:
            self.rouge.add(text)
        self.exact.setdefault(normalized(text), text)

    def screen(self, instruction: str) -> tuple[str | None, Screened]:
        """Evidence ("0.82 vs '...'") when the instruction is too close to the pool, else None; and a record
        that lets `check` compare it later with only the pool texts added since."""
        if self.rouge is None:
            return None, Screened(self.generation, 0, RougeMatch(0.0, None))
        if (exact := self._exact_match(instruction)) is not None:
            return _rouge_evidence(exact), Screened(self.generation, len(self.rouge), exact)
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
        if (exact := self._exact_match(cand.instruction)) is not None:
            return DedupVerdict(ROUGE, _rouge_evidence(exact), exact.nearest, exact.score)
        match = self._rouge_match(cand.instruction, screened)
        verdict = DedupVerdict(None, "", match.nearest, match.score)
        if self.rouge is not None and self.rouge.is_duplicate(match):
            return verdict._replace(reason=ROUGE, detail=_rouge_evidence(match))
        if self.minhash is None:
            return verdict
        duplicates = []
        for position, sketch in enumerate(self._sketch(cand) if sketched is None else sketched):
            found = self.minhash.check(sketch.signature, sketch.shingles)
            if found is not None:
                duplicates.append((position, found))
        if len(duplicates) == len(cand.instances):
            first = duplicates[0][1]
            return verdict._replace(reason=MINHASH, detail=_minhash_evidence(first), minhash_nearest=first.key)
        return verdict._replace(duplicates=tuple((position, _minhash_evidence(found)) for position, found in duplicates))

    def _rouge_match(self, instruction: str, screened: Screened | None) -> RougeMatch:
        if self.rouge is None:
            return RougeMatch(0.0, None)
        if screened is not None and screened.generation == self.generation:
            match = self.rouge.check(instruction, since=screened.pool_size)
            if not self.rouge.is_duplicate(match) and screened.match.score >= match.score:
                match = screened.match  # the best evidence for a kept one; older texts win ties
            return match
        return self.rouge.check(instruction)

    def add(self, cand: Candidate, sketched: list[Sketched] | None = None) -> None:
        """Add a kept candidate (its instruction, and each instance's example) to the indexes."""
        self._add_instruction(cand.instruction)
        if self.minhash is not None:
            for sketch in self._sketch(cand) if sketched is None else sketched:
                self.minhash.add(cand.instruction, sketch.signature, sketch.shingles)

    def _sketch(self, cand: Candidate) -> list[Sketched]:
        return sketch_texts(_example_texts(cand), self.minhash_config)

    def _add_examples(self, examples: list[tuple[str, str, str]]) -> None:
        assert self.minhash is not None
        texts = [example_text(*example) for example in examples]
        for example, sketched in zip(examples, sketch_texts(texts, self.minhash_config)):
            self.minhash.add(example[0], sketched.signature, sketched.shingles)


def _example_texts(cand: Candidate) -> list[str]:
    return [example_text(cand.instruction, instance.input, instance.output) for instance in cand.instances]
