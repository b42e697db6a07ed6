"""MinHash LSH near-duplicate filter over whole examples (instruction + input + output).

ROUGE-L looks only at instructions; two tasks with different wording can still
carry the same input and output. Here each example becomes a set of word
shingles, LSH (datasketch) proposes pool examples that probably share many of
them, and every proposal is verified with the exact Jaccard of the shingle
sets, so LSH only decides what gets verified, never what is dropped.

Bands and rows: a pair with Jaccard s collides in at least one of b bands of
r rows with probability 1 - (1 - s^r)^b. datasketch's optimiser at 0.7 picks
a curve that finds only ~82% of pairs at the threshold; the default b=16, r=3
(48 permutations) finds a pair at s=0.7 with probability 0.9988, at 0.5 with
0.88 and at 0.3 with 0.36. Each proposal below the threshold costs one set
intersection; each band costs a hash per query and per insert, and each
permutation a column of the sketch, which is why 16 short bands beat 128
permutations here (measured in docs/benchmarks.md).

Persistence: with ``MinhashConfig.redis`` set, the LSH buckets live in Redis
(datasketch's ``storage_config``) and so do the shingle sets and labels needed
to verify them, under ``basename``. A nightly run that opens an index with the
same basename and config deduplicates against every earlier run's examples.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, MutableMapping, Sequence, Set
from functools import lru_cache
from itertools import accumulate, chain
from typing import NamedTuple

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH
from pydantic import BaseModel, ConfigDict, Field, model_validator

_WORD_RE = re.compile(r"\w+")
# On ASCII text \w is [A-Za-z0-9_]: every other byte separates words.
_ASCII_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_ASCII_NON_WORD_TO_SPACE = bytes(c if c in _ASCII_WORD else 0x20 for c in range(256))
_SCHEME = "affine32"  # datasketch's default since 2.0: 32-bit hashes, uint32 arithmetic
_EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's value for "no element seen"
_CHUNK = 256  # examples per numpy batch: bounds the (shingles x num_perm) matrix


class RedisConfig(BaseModel):
    """Where a persistent index lives; ``basename`` names one index in that server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    basename: str = "selfinstruct"


class MinhashConfig(BaseModel):
    """Shingling, sketch and LSH settings; saved with a run, so it is frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shingle_words: int = Field(5, ge=1)
    num_perm: int = Field(48, ge=2)
    threshold: float = Field(0.7, gt=0, le=1)  # exact Jaccard >= threshold is a duplicate
    bands: int = Field(16, ge=2)
    rows: int = Field(3, ge=1)
    seed: int = 1
    redis: RedisConfig | None = None

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


def shingles(text: str, cfg: MinhashConfig) -> set[bytes]:
    """Lowercased word k-grams joined by one space, UTF-8.

    A text of at most k words is one shingle, a text without words none.
    """
    k = cfg.shingle_words
    if text.isascii():  # same words as the regex, ~2x faster: C-level translate and split
        words = text.encode().translate(_ASCII_NON_WORD_TO_SPACE).lower().split()
    else:
        words = [w.encode() for w in _WORD_RE.findall(text.lower())]
    if len(words) <= k:
        return {b" ".join(words)} if words else set()
    # Slice one joined buffer instead of joining every k-gram: fewer allocations.
    joined = b" ".join(words)
    ends = list(accumulate(map((1).__add__, map(len, words))))
    return {joined[a : b - 1] for a, b in zip([0, *ends], ends[k - 1 :])}


def jaccard(a: Set[bytes], b: Set[bytes]) -> float:
    """Exact Jaccard; two empty sets share nothing (0.0), so they are never duplicates."""
    inter = len(a & b)
    union = len(a) + len(b) - inter
    return inter / union if union else 0.0


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


def signatures(texts: Sequence[str], cfg: MinhashConfig) -> list[LeanMinHash]:
    """MinHash of each text's shingles (see ``sketch``)."""
    return sketch([shingles(text, cfg) for text in texts], cfg)


def sketch(shingle_sets: Sequence[Set[bytes]], cfg: MinhashConfig) -> list[LeanMinHash]:
    """MinHash of each set, equal to ``MinHash.bulk(sets, ..., hashfunc=zlib.crc32)``.

    One numpy pass per batch instead of one MinHash object per set; the result
    is what datasketch computes, which the tests check. CRC-32 instead of
    datasketch's default SHA-1 because it is one C call (5x faster here) and is
    deterministic across processes, unlike ``hash()``; datasketch's non-linear
    pre-mix (``_fmix32``) spreads its values before permuting.
    """
    out: list[LeanMinHash] = []
    for start in range(0, len(shingle_sets), _CHUNK):
        for values in _sketch(shingle_sets[start : start + _CHUNK], cfg):
            out.append(LeanMinHash(seed=cfg.seed, hashvalues=values, scheme=_SCHEME))
    return out


def _sketch(sets: Sequence[Set[bytes]], cfg: MinhashConfig) -> np.ndarray:
    a, b = _permutations(cfg.num_perm, cfg.seed)
    sizes = np.array([len(s) for s in sets])
    result = np.full((len(sets), cfg.num_perm), _EMPTY, dtype=np.uint32)
    if not sizes.sum():
        return result
    hashes = np.fromiter(map(zlib.crc32, chain.from_iterable(sets)), dtype=np.uint32, count=int(sizes.sum()))
    # (num_perm, shingles): reducing along the contiguous axis is ~10x faster.
    permuted = a[:, None] * _fmix32(hashes)[None, :] + b[:, None]  # uint32 wraps: modulo 2^32 intended
    filled = sizes > 0
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])[filled]
    result[filled] = np.minimum.reduceat(permuted, offsets, axis=1).T
    return result


class _RedisExamples(MutableMapping[int, tuple[str, frozenset[bytes]]]):
    """Labels and shingle sets in one Redis hash, so later runs can verify against them.

    Stored as plain bytes, never pickles: whoever can write to the server must
    not be able to run code here. Shingles cannot contain NUL (they are \\w words).
    """

    def __init__(self, cfg: RedisConfig) -> None:
        import redis  # optional dependency: only a persistent index needs it

        self._client = redis.Redis(host=cfg.host, port=cfg.port, db=cfg.db)
        self._name = f"{cfg.basename}:examples"

    def __getitem__(self, slot: int) -> tuple[str, frozenset[bytes]]:
        raw = self._client.hget(self._name, slot)
        if raw is None:
            raise KeyError(slot)
        size = int.from_bytes(raw[:4], "big")
        label, rest = raw[4 : 4 + size].decode(errors="surrogatepass"), raw[4 + size :]
        return label, frozenset(rest.split(b"\0")) if rest else frozenset()

    def __setitem__(self, slot: int, value: tuple[str, frozenset[bytes]]) -> None:
        label = value[0].encode(errors="surrogatepass")
        self._client.hset(self._name, slot, len(label).to_bytes(4, "big") + label + b"\0".join(value[1]))

    def __delitem__(self, slot: int) -> None:
        self._client.hdel(self._name, slot)

    def __iter__(self) -> Iterator[int]:
        return (int(k) for k in self._client.hkeys(self._name))

    def __len__(self) -> int:
        return int(self._client.hlen(self._name))


class MinhashIndex:
    """LSH proposals, exact verification. ``check`` never mutates; ``add`` only kept examples."""

    def __init__(self, cfg: MinhashConfig) -> None:
        self.cfg = cfg
        storage = None
        self._examples: MutableMapping[int, tuple[str, frozenset[bytes]]] = {}
        if cfg.redis is not None:
            storage = {
                "type": "redis",
                "basename": cfg.redis.basename.encode(),
                "redis": {"host": cfg.redis.host, "port": cfg.redis.port, "db": cfg.redis.db},
            }
            self._examples = _RedisExamples(cfg.redis)
        # bytes keys and no pickling: keys read back from Redis are only parsed as numbers
        self._lsh = MinHashLSH(
            num_perm=cfg.num_perm, params=(cfg.bands, cfg.rows), storage_config=storage, prepickle=False
        )

    def __len__(self) -> int:
        return len(self._examples)

    def check(self, sig: MinHash, shingle_set: Set[bytes]) -> MinhashMatch | None:
        """The pool example with the highest exact Jaccard >= threshold, or None.

        Ties go to the earliest-added example. Only LSH proposals are verified,
        so a duplicate whose bands never collide is missed (see the module doc).
        """
        found = self.matches(sig, shingle_set)
        return found[0] if found else None

    def matches(self, sig: MinHash, shingle_set: Set[bytes]) -> list[MinhashMatch]:
        """Every proposed pool example with exact Jaccard >= threshold, best first, then oldest."""
        scored = []
        for key in self._lsh.query(sig):
            label, other = self._examples[int(key)]
            score = jaccard(shingle_set, other)
            if score >= self.cfg.threshold:
                scored.append((-score, int(key), label))
        return [MinhashMatch(label, -neg) for neg, _, label in sorted(scored)]

    def add(self, key: str, sig: MinHash, shingle_set: Set[bytes]) -> None:
        """Add a kept example; ``key`` is a label for evidence and need not be unique.

        With Redis, one writer at a time: slots are numbered from the stored count.
        """
        # LSH keys are insertion numbers, so equal labels never collide and ties
        # resolve by age; in Redis the count continues from earlier runs.
        slot = len(self._examples)
        self._examples[slot] = (key, frozenset(shingle_set))
        self._lsh.insert(str(slot).encode(), sig, check_duplication=False)
