"""MinHash LSH near-duplicate filter over whole examples (instruction + input + output).

ROUGE-L looks only at instructions; two tasks with different wording can still
carry the same input and output. Here each example becomes a set of word
shingles (64-bit ids of its word k-grams), MinHash signatures with datasketch's
permutations, and LSH banding proposes pool examples that probably share many
of them; every proposal is verified with the exact Jaccard of the shingle
sets, so LSH only decides what gets verified, never what is dropped. Shingles
and signatures are computed a batch at a time in numpy (``sketch_texts``).

Bands and rows: a pair with Jaccard s collides in at least one of b bands of
r rows with probability 1 - (1 - s^r)^b. datasketch's optimiser at 0.7 picks
a curve that finds only ~82% of pairs at the threshold; the default b=16, r=3
(48 permutations) finds a pair at s=0.7 with probability 0.9988, at 0.5 with
0.88 and at 0.3 with 0.36. Each proposal below the threshold costs one set
intersection; each band costs a dict look-up per query and per insert, and
each permutation a column of the sketch, which is why 16 short bands beat 128
permutations here (measured in docs/benchmarks.md).

Storage: the buckets are plain dicts keyed by the band's bytes (one numpy view
gives all of a signature's band keys); the index is a cache rebuilt from the
run's store when a session opens.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Collection, Hashable, Sequence
from collections.abc import Set as AbstractSet
from functools import lru_cache
from itertools import chain
from typing import NamedTuple

import numpy as np
from datasketch import MinHash
from pydantic import BaseModel, ConfigDict, Field, model_validator

_WORD_RE = re.compile(r"\w+")
# On ASCII text \w is [A-Za-z0-9_]: every other byte separates words.
_ASCII_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_ASCII_NON_WORD_TO_SPACE = bytes(c if c in _ASCII_WORD else 0x20 for c in range(256))
_SCHEME = "affine32"  # datasketch's default since 2.0: 32-bit hashes, uint32 arithmetic
_EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's value for "no element seen"
_CHUNK = 256  # examples per numpy batch: bounds the (shingles x num_perm) matrix
_MAX_SHINGLE_WORDS = 32
_MASK64 = (1 << 64) - 1


class MinhashConfig(BaseModel):
    """Shingling, sketch and LSH settings; saved with a run, so it is frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shingle_words: int = Field(5, ge=1, le=_MAX_SHINGLE_WORDS)
    num_perm: int = Field(48, ge=2)
    threshold: float = Field(0.7, gt=0, le=1)  # exact Jaccard >= threshold is a duplicate
    bands: int = Field(16, ge=2)
    rows: int = Field(3, ge=1)
    seed: int = 1

    @model_validator(mode="after")
    def _bands_fit(self) -> MinhashConfig:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


class MinhashMatch(NamedTuple):
    """The closest verified pool example: its label and exact Jaccard."""

    key: str
    jaccard: float


def example_text(instruction: str, input: str = "", output: str = "") -> str:
    """One text for a whole example; empty parts add nothing."""
    return "\n".join(part for part in (instruction, input, output) if part)


def words(text: str) -> list[bytes]:
    """Lowercased ``\\w+`` words, UTF-8."""
    if text.isascii():  # same words as the regex, ~2x faster: C-level translate and split
        return text.encode().translate(_ASCII_NON_WORD_TO_SPACE).lower().split()
    return [w.encode() for w in _WORD_RE.findall(text.lower())]


def word_kgrams(text: str, k: int) -> set[tuple[bytes, ...]]:
    """What a shingle stands for: k consecutive words; a text of at most k words is one."""
    ws = words(text)
    return {tuple(ws[i : i + k]) for i in range(max(1, len(ws) - k + 1))} if ws else set()


class Sketched(NamedTuple):
    """One text's shingles and its MinHash signature.

    ``shingles`` holds the distinct 64-bit ids of its word k-grams, sorted: a
    numpy array rather than a set, because the garbage collector walks every
    element of every live set (a pool of 50K sets made it a quarter of a pass).
    """

    shingles: np.ndarray  # uint64, sorted, distinct
    signature: np.ndarray  # uint32[num_perm]


def jaccard(a: AbstractSet[Hashable], b: Collection[Hashable]) -> float:
    """Exact Jaccard of a set and a collection of distinct items; two empty ones share nothing (0.0)."""
    inter = len(a.intersection(b))
    union = len(a) + len(b) - inter
    return inter / union if union else 0.0


def sketch_texts(texts: Sequence[str], cfg: MinhashConfig) -> list[Sketched]:
    """Shingles and signature of each text, a whole batch per numpy pass.

    A shingle is a k-gram of ``words``; its id mixes the k word hashes (CRC-32
    and Adler-32 of each word, both C calls, so 64 bits) with a different odd
    multiplier per position, in numpy for the whole batch at once. Two distinct
    k-grams share an id with probability about 2^-64, so Jaccard on the id sets
    is the exact Jaccard of the k-gram sets; ids are the same in every process
    and every run (a persistent index relies on it), unlike ``hash()``.
    """
    out: list[Sketched] = []
    for start in range(0, len(texts), _CHUNK):
        out.extend(_sketch_chunk(texts[start : start + _CHUNK], cfg))
    return out


def _sketch_chunk(texts: Sequence[str], cfg: MinhashConfig) -> list[Sketched]:
    word_lists = [words(text) for text in texts]
    counts = np.fromiter(map(len, word_lists), dtype=np.int64, count=len(word_lists))
    ids = _shingle_ids(word_lists, counts, cfg.shingle_words)
    per_text = np.where(counts > 0, np.maximum(counts - cfg.shingle_words + 1, 1), 0)
    ids, sizes = _distinct_per_text(ids, per_text)
    ends = np.cumsum(sizes).tolist()
    rows = _signatures(ids, sizes, cfg)
    return [Sketched(ids[a:b], row) for a, b, row in zip([0, *ends], ends, rows)]


def _distinct_per_text(ids: np.ndarray, per_text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each text's ids sorted and without repeats (texts stay in order), and their counts."""
    text = np.repeat(np.arange(len(per_text), dtype=np.uint16), per_text)  # _CHUNK < 2^16
    # Sort by id, then stably by text (a radix sort on uint16): 5x faster than lexsort.
    by_id = np.argsort(ids)
    order = by_id[np.argsort(text[by_id], kind="stable")]
    ids, text = ids[order], text[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = (ids[1:] != ids[:-1]) | (text[1:] != text[:-1])
    return ids[first], np.bincount(text[first], minlength=len(per_text))


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


# Odd 64-bit constants, one per position in a k-gram. Scrambled, not in arithmetic progression: with M_j linear
# in j, M0 + M3 = M1 + M2, so "a b b a" and "b a a b" got one id (found by the property test).
_POSITION_MULTIPLIERS = np.array([_splitmix64(j) | 1 for j in range(_MAX_SHINGLE_WORDS)], dtype=np.uint64)


def _mix64(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: spreads every input bit over the whole word."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _shingle_ids(word_lists: list[list[bytes]], counts: np.ndarray, k: int) -> np.ndarray:
    """Ids of every text's k-grams, texts one after another (see ``sketch_texts``)."""
    total = int(counts.sum())
    flat = list(chain.from_iterable(word_lists))
    crc = np.fromiter(map(zlib.crc32, flat), dtype=np.uint64, count=total)
    adler = np.fromiter(map(zlib.adler32, flat), dtype=np.uint64, count=total)
    word_hash = _mix64((crc << np.uint64(32)) | adler)
    text_end = np.repeat(np.cumsum(counts), counts)  # end of each word's text
    position = np.arange(total)
    acc = np.zeros(total, dtype=np.uint64)
    padded = np.concatenate([word_hash, np.zeros(k, dtype=np.uint64)])
    for j in range(k):  # k-grams near a text's end stop at it
        inside = position + j < text_end
        acc += np.where(inside, padded[j : j + total], np.uint64(0)) * _POSITION_MULTIPLIERS[j]
    # A k-gram starts at each word with k-1 words after it, or at the first word of a short text.
    text_start = text_end - np.repeat(counts, counts)
    starts = (position + k <= text_end) | ((position == text_start) & (text_end - text_start < k))
    return _mix64(acc[starts])


def _signatures(ids: np.ndarray, per_text: np.ndarray, cfg: MinhashConfig) -> np.ndarray:
    """MinHash rows, equal to datasketch's ``MinHash.bulk`` on the ids with ``hashfunc`` = low 32 bits.

    One (num_perm x shingles) matrix per batch instead of one MinHash object per
    text; datasketch's own permutations and non-linear pre-mix (``_fmix32``).
    """
    a, b = _permutations(cfg.num_perm, cfg.seed)
    result = np.full((len(per_text), cfg.num_perm), _EMPTY, dtype=np.uint32)
    if not len(ids):
        return result
    low = _fmix32((ids & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    # (num_perm, shingles): reducing along the contiguous axis is ~10x faster.
    permuted = a[:, None] * low[None, :] + b[:, None]  # uint32 wraps: modulo 2^32 intended
    filled = per_text > 0
    offsets = np.concatenate([[0], np.cumsum(per_text)[:-1]])[filled]
    result[filled] = np.minimum.reduceat(permuted, offsets, axis=1).T
    return result


@lru_cache(maxsize=16)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's own permutation parameters for (num_perm, seed)."""
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=_SCHEME).permutations
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix datasketch applies before permuting."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class _MemoryBands:
    """In-memory LSH buckets: one dict per band, keyed by the band's raw bytes.

    The same banding as datasketch's ``MinHashLSH`` with ``params=(bands, rows)``
    (band i is columns i*rows .. (i+1)*rows - 1), but all band keys of a sketch
    come from one numpy view instead of one Python hash call per band, which
    was half the cost of a pass (docs/benchmarks.md).
    """

    def __init__(self, cfg: MinhashConfig) -> None:
        self._width = cfg.bands * cfg.rows
        self._key_dtype = np.dtype((np.void, 4 * cfg.rows))
        self._tables: list[dict[bytes, int | list[int]]] = [{} for _ in range(cfg.bands)]

    def _keys(self, signature: np.ndarray) -> list[bytes]:
        return np.ascontiguousarray(signature[: self._width]).view(self._key_dtype).tolist()

    def query(self, signature: np.ndarray) -> set[int]:
        found: set[int] = set()
        for table, key in zip(self._tables, self._keys(signature)):
            bucket = table.get(key)
            if bucket is None:
                continue
            if isinstance(bucket, int):
                found.add(bucket)
            else:
                found.update(bucket)
        return found

    def insert(self, slot: int, signature: np.ndarray) -> None:
        # A bucket is a bare slot until a second one shares it: most buckets hold
        # one example, and a dict of ints is invisible to the garbage collector,
        # where a million one-item lists made it cost a third of the pass.
        for table, key in zip(self._tables, self._keys(signature)):
            bucket = table.get(key)
            if bucket is None:
                table[key] = slot
            elif isinstance(bucket, int):
                table[key] = [bucket, slot]
            else:
                bucket.append(slot)


class MinhashIndex:
    """LSH proposals, exact verification. ``check`` never mutates; ``add`` only kept examples."""

    def __init__(self, cfg: MinhashConfig) -> None:
        self.cfg = cfg
        self._examples: dict[int, tuple[str, tuple[int, ...]]] = {}
        self._bands = _MemoryBands(cfg)

    def __len__(self) -> int:
        return len(self._examples)

    def check(self, signature: np.ndarray, shingles: np.ndarray) -> MinhashMatch | None:
        """The pool example with the highest exact Jaccard >= threshold, or None.

        Ties go to the earliest-added example. Only LSH proposals are verified,
        so a duplicate whose bands never collide is missed (see the module doc).
        """
        found = self.matches(signature, shingles)
        return found[0] if found else None

    def matches(self, signature: np.ndarray, shingles: np.ndarray) -> list[MinhashMatch]:
        """Every proposed pool example with exact Jaccard >= threshold, best first, then oldest."""
        threshold = self.cfg.threshold
        size = len(shingles)
        mine: set[int] | None = None  # built once, and only when a proposal needs it
        scored = []
        for slot in self._bands.query(signature):
            label, other = self._examples[slot]
            # Jaccard <= min/max of the sizes: skip the intersection when that already fails.
            if min(size, len(other)) < threshold * max(size, len(other)):
                continue
            if mine is None:
                mine = set(shingles.tolist())
            score = jaccard(mine, other)
            if score >= threshold:
                scored.append((-score, slot, label))
        return [MinhashMatch(label, -neg) for neg, _, label in sorted(scored)]

    def add(self, key: str, signature: np.ndarray, shingles: np.ndarray) -> None:
        """Add a kept example (``Sketched`` parts); ``key`` is a label for evidence and need not be unique."""
        # LSH keys are insertion numbers, so equal labels never collide and ties resolve by age.
        slot = len(self._examples)
        # A tuple of ints drops out of the garbage collector's sight once it has
        # survived a collection, where a set would be walked at every full one.
        self._examples[slot] = (key, tuple(shingles.tolist()))
        self._bands.insert(slot, signature)
