"""Near-duplicate stages of the grow loop: ROUGE-L on instructions, MinHash LSH on whole examples.

The indexes are caches of the store's pool: rebuilt from it when a session opens
or after a failed round, so they never hold a rejected or crash-lost item.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import FilterConfig
from ..records import Candidate
from ..store import Store
from .base import MINHASH, ROUGE
from .minhash import MinhashConfig, MinhashIndex, example_text, signatures, shingles
from .rouge import RougeIndex


@dataclass
class DedupStage:
    rouge: RougeIndex
    minhash: MinhashIndex | None
    minhash_config: MinhashConfig

    @classmethod
    def from_store(cls, config: FilterConfig, store: Store) -> "DedupStage":
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
        if self.rouge.is_duplicate(match):
            return f"{match.score:.3f} vs {match.nearest!r}"
        return None

    def check(self, cand: Candidate) -> tuple[str, str] | None:
        """(reason, evidence) when `cand` duplicates the pool, else None."""
        if (evidence := self.rouge_duplicate(cand.instruction)) is not None:
            return ROUGE, evidence
        if self.minhash is not None:
            text = example_text(cand.instruction, cand.instances[0].input, cand.instances[0].output)
            found = self.minhash.check(signatures([text], self.minhash_config)[0], shingles(text, self.minhash_config))
            if found is not None:
                key, jaccard = found
                return MINHASH, f"{jaccard:.3f} vs {key!r}"
        return None

    def nearest(self, instruction: str) -> tuple[str | None, float]:
        match = self.rouge.check(instruction)
        return match.nearest, match.score

    def add(self, cand: Candidate) -> None:
        self.rouge.add(cand.instruction)
        if self.minhash is not None:
            first = cand.instances[0]
            self._add_examples([(cand.instruction, first.input, first.output)])

    def _add_examples(self, examples: list[tuple[str, str, str]]) -> None:
        assert self.minhash is not None
        texts = [example_text(*example) for example in examples]
        for text, signature in zip(texts, signatures(texts, self.minhash_config)):
            self.minhash.add(text[:200], signature, shingles(text, self.minhash_config))
