"""Near-duplicate stages of the grow loop: ROUGE-L on instructions, MinHash LSH on whole examples.

The indexes are caches of the store's pool: rebuilt from it when a session opens
or after a failed round, so they never hold a rejected or crash-lost item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..config import FilterConfig
from ..records import Candidate
from ..store import Store
from .base import MINHASH, ROUGE
from .minhash import MinhashConfig, MinhashIndex, example_text, sketch_texts
from .rouge import RougeIndex, RougeMatch


class DedupVerdict(NamedTuple):
    """A drop reason (None to keep) with evidence, and the nearest pool instruction by ROUGE-L."""

    reason: str | None
    detail: str
    nearest: str | None
    nearest_rouge_l: float


def _rouge_evidence(match: RougeMatch) -> str:
    return f"{match.score:.3f} vs {match.nearest!r}"


@dataclass
class DedupStage:
    rouge: RougeIndex
    minhash: MinhashIndex | None
    minhash_config: MinhashConfig

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

    def rouge_duplicate(self, instruction: str) -> str | None:
        """Evidence ("0.82 vs '...'") when the instruction is too close to the pool, else None."""
        match = self.rouge.check(instruction)
        return _rouge_evidence(match) if self.rouge.is_duplicate(match) else None

    def check(self, cand: Candidate) -> DedupVerdict:
        """Both stages for a candidate with instances: ROUGE-L on its instruction, then MinHash."""
        match = self.rouge.check(cand.instruction)
        verdict = DedupVerdict(None, "", match.nearest, match.score)
        if self.rouge.is_duplicate(match):
            return verdict._replace(reason=ROUGE, detail=_rouge_evidence(match))
        if self.minhash is not None:
            first = cand.instances[0]
            text = example_text(cand.instruction, first.input, first.output)
            sketched = sketch_texts([text], self.minhash_config)[0]
            found = self.minhash.check(sketched.signature, sketched.shingles)
            if found is not None:
                return verdict._replace(reason=MINHASH, detail=f"{found.jaccard:.3f} vs {found.key!r}")
        return verdict

    def add(self, cand: Candidate) -> None:
        self.rouge.add(cand.instruction)
        if self.minhash is not None:
            first = cand.instances[0]
            self._add_examples([(cand.instruction, first.input, first.output)])

    def _add_examples(self, examples: list[tuple[str, str, str]]) -> None:
        assert self.minhash is not None
        texts = [example_text(*example) for example in examples]
        for text, sketched in zip(texts, sketch_texts(texts, self.minhash_config)):
            self.minhash.add(text[:200], sketched.signature, sketched.shingles)
