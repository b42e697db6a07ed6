"""Dedup across sources and decontamination against eval data, reusing the grow loop's engines.

Rows are seen in the config's source order, so an earlier source wins a tie. Three checks, in cost order:
exact (case and spacing ignored), MinHash LSH on the whole example (`filters/minhash.py`, verified Jaccard), and
ROUGE-L on the instruction only between synthetic rows (`filters/rouge.py`): templated rows share their
instructions by design, so ROUGE-L on them would drop nearly all of a conversion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..filters.minhash import MinhashConfig, MinhashIndex, MinhashMatch, Sketched, example_text, sketch_texts, words
from ..filters.rouge import RougeIndex
from ..core.records import ExampleRow
from .config import DecontaminateConfig, MixDedupConfig

DEDUP_EXACT = "dedup_exact"
DEDUP_MINHASH = "dedup_minhash"
DEDUP_ROUGE = "dedup_rouge"
DECONTAMINATED = "decontaminated"
_SPACE = re.compile(r"\s+")
_BATCH = 2048  # rows sketched per numpy batch


@dataclass(frozen=True)
class Removed:
    """A row left out of the mix, why, and the evidence (the earlier row, or the shared n-gram and eval file)."""

    row: ExampleRow
    reason: str
    detail: str

    def as_json(self) -> dict[str, object]:
        return {"reason": self.reason, "detail": self.detail, "source": self.row.provenance.get("mix_source"),
                "group": self.row.group, "instruction": self.row.instruction, "input": self.row.input,
                "output": self.row.output}


def _exact_key(row: ExampleRow) -> str:
    return "\0".join(_SPACE.sub(" ", part).strip().lower() for part in (row.instruction, row.input, row.output))


def dedup_rows(rows: list[ExampleRow], config: MixDedupConfig) -> tuple[list[ExampleRow], list[Removed]]:
    """Rows kept in order, and those dropped as duplicates of an earlier kept row."""
    seen: dict[str, ExampleRow] = {}
    minhash_config = MinhashConfig(threshold=config.minhash_threshold)
    # One index per source: a templated row is compared with other sources' rows only, so its own source's
    # look-alikes (the template's words, a shared passage) are never even proposed.
    indexes: dict[str, MinhashIndex] | None = {} if config.minhash else None
    rouge = RougeIndex(threshold=config.rouge_threshold) if config.rouge else None
    kept: list[ExampleRow] = []
    removed: list[Removed] = []
    # ROUGE-L decides once per group: a grown task's instances share its instruction, so the first decides all.
    rouge_verdicts: dict[str, str | None] = {}
    for start in range(0, len(rows), _BATCH):
        batch = rows[start:start + _BATCH]
        texts = [example_text(row.instruction, row.input, row.output) for row in batch]
        sketches = sketch_texts(texts, minhash_config) if indexes is not None else [None] * len(batch)
        for row, text, sketched in zip(batch, texts, sketches):
            key = _exact_key(row)
            if config.exact and key in seen:
                removed.append(Removed(row, DEDUP_EXACT, f"same as {seen[key].group}"))
                continue
            synthetic = bool(row.provenance.get("synthetic"))
            if indexes is not None and sketched is not None:
                found = _near(indexes, sketched, row, synthetic)
                if found is not None:
                    removed.append(Removed(row, DEDUP_MINHASH, f"Jaccard {found.jaccard:.3f} vs {found.key}"))
                    continue
            if rouge is not None and synthetic:
                if row.group not in rouge_verdicts:
                    rouge_verdicts[row.group] = _rouge_verdict(rouge, row.instruction)
                if rouge_verdicts[row.group] is not None:
                    removed.append(Removed(row, DEDUP_ROUGE, str(rouge_verdicts[row.group])))
                    continue
            seen[key] = row
            if indexes is not None and sketched is not None:
                source = str(row.provenance.get("mix_source"))
                indexes.setdefault(source, MinhashIndex(minhash_config)).add(
                    row.group, sketched.signature, sketched.shingles)
            kept.append(row)
    return kept, removed


def _rouge_verdict(rouge: RougeIndex, instruction: str) -> str | None:
    """Evidence when the instruction is too close to an earlier group's, else None (and it joins the index)."""
    match = rouge.check(instruction)
    if rouge.is_duplicate(match):
        return f"ROUGE-L {match.score:.3f} vs {match.nearest!r}"
    rouge.add(instruction)
    return None


def _near(indexes: dict[str, MinhashIndex], sketched: Sketched, row: ExampleRow,
          synthetic: bool) -> MinhashMatch | None:
    """The first near-duplicate that counts: in another source's index; for a synthetic row also in its own,
    except its own group's rows (a grown task's instances share their instruction).

    Rows of one conversion are distinct source rows by construction; the template's own words and a passage
    shared by several questions make them look alike to MinHash, and exact dedup still applies to them.
    """
    own = str(row.provenance.get("mix_source"))
    for source, index in indexes.items():
        if source != own:
            found = index.check(sketched.signature, sketched.shingles)
            if found is not None:
                return found
        elif synthetic:
            found = next((m for m in index.matches(sketched.signature, sketched.shingles) if m.key != row.group),
                         None)
            if found is not None:
                return found
    return None


class NgramIndex:
    """Every word n-gram of the eval texts (lowercased `\\w+` words, as MinHash reads them)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.grams: dict[tuple[bytes, ...], str] = {}

    def add(self, text: str, label: str) -> None:
        ws = words(text)
        for i in range(len(ws) - self.n + 1):
            self.grams.setdefault(tuple(ws[i:i + self.n]), label)

    def find(self, text: str) -> tuple[tuple[bytes, ...], str] | None:
        """The first n-gram of `text` found in the eval texts, with its eval file; None when clean."""
        ws = words(text)
        grams = self.grams
        for i in range(len(ws) - self.n + 1):
            gram = tuple(ws[i:i + self.n])
            if gram in grams:
                return gram, grams[gram]
        return None


def eval_index(texts: Iterable[tuple[str, str]], config: DecontaminateConfig) -> NgramIndex:
    index = NgramIndex(config.ngram)
    for text, label in texts:
        index.add(text, label)
    return index


def decontaminate(rows: list[ExampleRow], index: NgramIndex) -> tuple[list[ExampleRow], list[Removed]]:
    """Rows sharing no n-gram with the eval texts, and the others with the n-gram they share."""
    if not index.grams:
        return rows, []
    kept, removed = [], []
    for row in rows:
        found = index.find(example_text(row.instruction, row.input, row.output))
        if found is None:
            kept.append(row)
        else:
            gram, label = found
            removed.append(Removed(row, DECONTAMINATED, f"{b' '.join(gram).decode()!r} in {label}"))
    return kept, removed
