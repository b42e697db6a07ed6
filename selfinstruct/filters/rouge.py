"""ROUGE-L near-duplicate filter with the exact meaning of Self-Instruct / Alpaca.

Alpaca drops a candidate when its highest ROUGE-L F-measure (rouge-score,
``RougeScorer(["rougeL"], use_stemmer=False)``) against the whole pool exceeds
0.7, scanning every pool item per candidate. ``RougeIndex`` decides the same way
but only computes the LCS for pool items that could possibly score above the
threshold, found through an inverted index with length, prefix and positional
filtering; the LCS itself is rapidfuzz's (C++).

Why the filters never miss a duplicate: with m and n tokens and LCS l,
F = 2l/(m+n) and l <= min(m, n) <= multiset overlap, so F > t needs
l >= l_min(m, n) = floor((t - eps)(m + n)/2) + 1 shared token occurrences.
The bound uses a small eps, so pairs whose true F is exactly t are always
verified and then decided by rouge-score's own float formula (see ``rouge_f``).
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import LCSseq

# rouge-score lowercases, turns every run of characters outside [a-z0-9] into a
# space and keeps the non-empty runs: the tokens are exactly these runs.
_TOKEN_RE = re.compile(r"[a-z0-9]+")

# Slack for the filter bounds: far above float error (~1e-15), far below the
# gap between two achievable scores (>= 1/(m+n)^2), so boundary pairs whose
# true F equals the threshold are verified instead of skipped.
_EPS = 1e-9

# Token ids are stored as one character each so rapidfuzz compares plain
# strings (fastest path); ids beyond the Unicode range fall back to tuples,
# which rapidfuzz compares element-wise with the same meaning (chr(i) == i).
_MAX_CHAR = 0x110000

# New tokens (unseen when the order was frozen) rank before every frozen one:
# they are the rarest. Any fixed total order keeps prefix filtering exact.
_NEW_TOKEN_RANK_BASE = -(1 << 62)

TokenSeq = str | tuple[int, ...]

# A posting packs (length n, pool id, position of the token in that text's
# order) in one int64; arrays stay sorted, so a query reads only the lengths
# that can still pass (see RougeIndex). Clamping a length or a position only
# widens what is read or loosens a bound, so huge texts stay exact.
_POS_BITS = 20
_POS_MASK = (1 << _POS_BITS) - 1
_ID_BITS = 32
_ID_MASK = (1 << _ID_BITS) - 1
_LEN_SHIFT = _POS_BITS + _ID_BITS
_MAX_LEN_KEY = (1 << (63 - _LEN_SHIFT)) - 1

# Below this many survivors a Python loop beats one batched call (fixed costs).
_LOOP_MAX = 12


def tokenize(text: str) -> list[str]:
    """Tokens exactly as rouge-score's DefaultTokenizer(use_stemmer=False) makes them."""
    return _TOKEN_RE.findall(text.lower())


def rouge_f(lcs: int, m: int, n: int) -> float:
    """ROUGE-L F for an LCS of ``lcs`` between m candidate and n pool tokens.

    Same operations in the same order as rouge-score's ``_score_lcs`` and
    ``scoring.fmeasure`` (P = lcs/n, R = lcs/m, 2PR/(P+R)), so a true 0.7 comes
    out as 0.7000000000000001 exactly when rouge-score says so.
    """
    if m == 0 or n == 0:
        return 0.0
    precision = lcs / n
    recall = lcs / m
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _rouge_f_array(lcs: np.ndarray, m: int | np.ndarray, n: np.ndarray) -> np.ndarray:
    """``rouge_f`` over arrays: numpy float64 does the same IEEE operations in the same order."""
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty text: 0/0, scored 0 as rouge_f does
        precision = lcs / n
        recall = lcs / m
        total = precision + recall
        product = 2 * precision * recall
    return np.divide(product, total, out=np.zeros_like(total), where=total > 0)


@dataclass(frozen=True)
class RougeMatch:
    """Best ROUGE-L F found for a text, and the pool text that scored it."""

    score: float
    nearest: str | None


@dataclass(frozen=True)
class _Limits:
    """What a text of m tokens needs from a partner to possibly score above threshold."""

    prefix: int  # token occurrences that must include a shared one
    lo: int  # shortest partner that can pass
    need: np.ndarray  # need[n]: smallest LCS allowing F > threshold, for n <= longest
    longest: tuple[int, ...]  # longest[r]: longest partner whose need is <= r


@lru_cache(maxsize=4096)
def _limits(m: int, threshold: float) -> _Limits:
    """Length, prefix and positional limits for m tokens (conservative by _EPS).

    F = 2l/(m+n) > t needs l >= need[n]; l <= min(m, n) rules out most n. The
    smallest need o over feasible n gives the prefix m - o + 1: if a partner
    shared none of those occurrences, at most o - 1 could match.
    """
    t = threshold - _EPS
    need = [int(t * (m + n) / 2) + 1 for n in range(int(m * 2 / t) + 2)]
    feasible = [n for n, l in enumerate(need) if l <= min(m, n)]
    if not feasible:
        return _Limits(0, 1, np.zeros(0, dtype=np.int64), ())
    lo, hi = feasible[0], feasible[-1]
    longest = [max((n for n in feasible if need[n] <= r), default=lo - 1) for r in range(m + 1)]
    return _Limits(m - need[lo] + 1, lo, np.array(need[: hi + 1], dtype=np.int64), tuple(longest))


def _encode(ids: Sequence[int], vocab_size: int) -> TokenSeq:
    # Ids are below the vocabulary size, so a small vocabulary needs no per-id check.
    if vocab_size <= _MAX_CHAR or all(i < _MAX_CHAR for i in ids):
        return "".join(map(chr, ids))
    return tuple(ids)


def _decode(seq: TokenSeq) -> list[int]:
    return [ord(c) for c in seq] if isinstance(seq, str) else list(seq)


def _first_positions(ordered: list[int]) -> list[tuple[int, int]]:
    """(token, position of its first occurrence) for each distinct token, in order."""
    seen: dict[int, int] = {}
    for pos, token in enumerate(ordered):
        seen.setdefault(token, pos)
    return list(seen.items())


class RougeIndex:
    """Incremental exact ROUGE-L duplicate index.

    ``check`` never mutates; ``add`` puts a text in the pool (call it only for
    kept texts). Decisions equal a full rouge-score scan, whatever the pool.

    Prefix filtering (as in PPJoin): tokens are totally ordered rarest first, a
    pool text is indexed under the tokens of its prefix, a query probes its own
    prefix, and any pair that could score above the threshold shares a token of
    both prefixes. Tokens before the first shared one, in either order, are
    unmatched, which bounds the overlap and so the LCS. Postings are sorted by
    length, so a query reads only the lengths its bound still allows. The order
    uses document frequencies frozen at the last rebuild; rebuilding each time
    the pool doubles keeps it useful at O(1) amortised cost per add.
    """

    def __init__(self, threshold: float = 0.7) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._vocab: dict[str, int] = {}
        self._df: list[int] = []
        self._rank: list[int] = []
        self._texts: list[str] = []
        self._seqs: list[TokenSeq] = []
        self._lens = np.zeros(1024, dtype=np.int64)
        self._postings: dict[int, array[int]] = {}
        self._first_copy: dict[TokenSeq, int] = {}
        self._rebuild_at = 64

    def __len__(self) -> int:
        return len(self._texts)

    def is_duplicate(self, match: RougeMatch) -> bool:
        """True when the score exceeds the threshold, as Alpaca's ``> 0.7`` test."""
        return match.score > self.threshold

    def check(self, text: str, since: int = 0) -> RougeMatch:
        """Highest ROUGE-L F of ``text`` against the pool, as far as a decision needs.

        With ``since``, only pool texts added from that position on (``len`` at
        an earlier check) are compared: a text already checked against the
        older ones needs only the newer ones for the same decision.

        If the true maximum exceeds the threshold, ``score`` is exactly that
        maximum (bit-for-bit rouge-score) and ``nearest`` the earliest-added pool
        text reaching it. Otherwise ``score`` is the highest F among the pool
        texts the index had to verify: a lower bound of the true maximum (never
        above the threshold), 0.0 with ``nearest=None`` when none was verified.
        The exact maximum for kept texts would mean scoring nearly every pool
        text sharing a word with it, which is the cost this index removes.
        """
        tokens = tokenize(text)
        m = len(tokens)
        known = [i for i in map(self._vocab.get, tokens) if i is not None]
        seq = _encode(known, len(self._vocab))
        if m and len(known) == m and self._first_copy.get(seq, -1) >= since:
            # Same tokens: F = 1.0, the largest possible, so no other text can beat it.
            return RougeMatch(rouge_f(m, m, m), self._texts[self._first_copy[seq]])
        limits = _limits(m, self.threshold)
        # Tokens unknown to the pool rank first (rarest) and match nothing: they
        # use up prefix slots, and dropping them from the LCS input changes no LCS.
        unknown = m - len(known)
        probe = sorted(known, key=self._rank.__getitem__)[: max(0, limits.prefix - unknown)]
        survivors = self._survivors(_first_positions(probe), m - unknown, limits)
        return self._verify(seq, m, survivors[bisect_left(survivors, since) :] if since else survivors)

    def _survivors(self, probe: list[tuple[int, int]], rest: int, limits: _Limits) -> list[int]:
        """Pool ids whose positional overlap bound allows F > threshold, ascending.

        For the first shared token, at position k of the query's order and pos
        of the partner's, the overlap is at most min(rest - k, n - pos). Later
        shared tokens only give lower bounds, so accepting a pool text on any of
        its hits is the same as judging it by the first.
        """
        start = min(limits.lo, _MAX_LEN_KEY) << _LEN_SHIFT
        # Copies of the posting slices (never views: add() may grow the arrays).
        hits, rests, counts = array("q"), [], []
        for token, k in probe:
            longest = limits.longest[rest - k]
            postings = self._postings.get(token)
            if postings is None or longest < limits.lo:
                continue
            stop = (min(longest, _MAX_LEN_KEY) + 1) << _LEN_SHIFT
            a, b = bisect_left(postings, start), bisect_left(postings, stop)
            if b > a:
                hits += postings[a:b]
                rests.append(rest - k)
                counts.append(b - a)
        if not counts:
            return []
        entries = np.frombuffer(hits, dtype=np.int64)
        ids = (entries >> _POS_BITS) & _ID_MASK
        n = self._lens[ids]
        bound = np.minimum(np.repeat(rests, counts), n - (entries & _POS_MASK))
        need = limits.need[np.minimum(n, len(limits.need) - 1)]
        return np.unique(ids[(n < len(limits.need)) & (bound >= need)]).tolist()

    def _verify(self, seq: TokenSeq, m: int, survivors: list[int]) -> RougeMatch:
        """Best F over the survivors; ties go to the earliest-added text."""
        if len(survivors) <= _LOOP_MAX:
            scores = [rouge_f(LCSseq.similarity(seq, self._seqs[j]), m, len(self._seqs[j])) for j in survivors]
        else:
            # One C++ call for all survivors; the F arithmetic is rouge_f's, element-wise.
            choices = [self._seqs[j] for j in survivors]
            lcs = process.cdist([seq], choices, scorer=LCSseq.similarity, dtype=np.int64)[0]
            scores = _rouge_f_array(lcs, m, self._lens[survivors]).tolist()
        best = max(scores, default=0.0)
        if best <= 0.0:
            return RougeMatch(0.0, None)
        return RougeMatch(best, self._texts[survivors[scores.index(best)]])

    def best_scores(self, texts: Sequence[str], chunk: int = 2048) -> list[float]:
        """Each text's exact highest ROUGE-L F against the whole pool, below the threshold too (0.0 if empty).

        Unlike ``check`` this scores every pool text, a chunk of texts per C++ call: meant for a small pool
        such as the seeds (the report's ROUGE-L to the nearest seed), with the same tokens and F arithmetic.
        """
        if not self._texts:
            return [0.0] * len(texts)
        pool_lengths = self._lens[: len(self._texts)][None, :]
        scores: list[float] = []
        for start in range(0, len(texts), chunk):
            seqs, lengths = [], []
            for text in texts[start : start + chunk]:
                tokens = tokenize(text)
                # Tokens unknown to the pool match nothing: left out of the LCS input, counted in m.
                seqs.append(_encode([i for i in map(self._vocab.get, tokens) if i is not None], len(self._vocab)))
                lengths.append(len(tokens))
            lcs = process.cdist(seqs, self._seqs, scorer=LCSseq.similarity, dtype=np.int64)
            lengths_column = np.array(lengths, dtype=np.int64)[:, None]
            scores += _rouge_f_array(lcs, lengths_column, pool_lengths).max(axis=1).tolist()
        return scores

    def add(self, text: str) -> None:
        """Add ``text`` to the pool (Alpaca adds every kept candidate at once)."""
        ids = [self._token_id(t) for t in tokenize(text)]
        for i in set(ids):
            self._df[i] += 1
        j = len(self._texts)
        self._texts.append(text)
        self._seqs.append(_encode(ids, len(self._vocab)))
        self._first_copy.setdefault(self._seqs[-1], j)
        if j == len(self._lens):
            self._lens = np.concatenate([self._lens, np.zeros_like(self._lens)])
        self._lens[j] = len(ids)
        if len(self._texts) >= self._rebuild_at:
            self._rebuild()
            return
        for token, entry in self._entries(j, ids):
            postings = self._postings.setdefault(token, array("q"))
            postings.insert(bisect_right(postings, entry), entry)

    def _token_id(self, token: str) -> int:
        i = self._vocab.get(token)
        if i is None:
            i = self._vocab[token] = len(self._vocab)
            self._df.append(0)
            self._rank.append(_NEW_TOKEN_RANK_BASE + i)
        return i

    def _entries(self, j: int, ids: list[int]) -> list[tuple[int, int]]:
        """(token, packed posting) for each distinct token of the prefix of text j."""
        n = len(ids)
        prefix = sorted(ids, key=self._rank.__getitem__)[: _limits(n, self.threshold).prefix]
        key = (min(n, _MAX_LEN_KEY) << _LEN_SHIFT) | (j << _POS_BITS)
        return [(token, key | min(pos, _POS_MASK)) for token, pos in _first_positions(prefix)]

    def _rebuild(self) -> None:
        order = sorted(range(len(self._df)), key=lambda i: (self._df[i], i))
        for r, i in enumerate(order):
            self._rank[i] = r
        grouped: dict[int, list[int]] = {}
        for j, seq in enumerate(self._seqs):
            for token, entry in self._entries(j, _decode(seq)):
                grouped.setdefault(token, []).append(entry)
        self._postings = {token: array("q", sorted(entries)) for token, entries in grouped.items()}
        self._rebuild_at = 2 * len(self._texts)
