"""RougeIndex decides exactly as a brute-force rouge-score scan (Alpaca's filter)."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import LCSseq
from rouge_score import rouge_scorer
from rouge_score.tokenizers import DefaultTokenizer

from selfinstruct.filters.rouge import RougeIndex, RougeMatch, rouge_f, tokenize

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
REFERENCE_TOKENIZER = DefaultTokenizer(use_stemmer=False)

# A small vocabulary makes long common subsequences (and exact-threshold ties) frequent.
WORDS = ["a", "b", "c", "d", "e", "f", "x1", "Zz", "café", "ü"]
TEXTS = st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join)


def brute_force(text: str, pool: list[str]) -> RougeMatch:
    """Alpaca's scan: rouge-score against every pool text; ties go to the first."""
    best, nearest = 0.0, None
    for other in pool:
        f = SCORER.score(text, other)["rougeL"].fmeasure
        if f > best:
            best, nearest = f, other
    return RougeMatch(best, nearest)


def grow(texts: list[str], pool: list[str], threshold: float = 0.7) -> list[tuple[bool, float]]:
    """Run the grow loop twice, indexed and brute force; assert they agree; return decisions."""
    index, reference_pool = RougeIndex(threshold), list(pool)
    for text in pool:
        index.add(text)
    decisions = []
    for text in texts:
        ours, ref = index.check(text), brute_force(text, reference_pool)
        drop = ref.score > threshold
        assert index.is_duplicate(ours) == drop, (text, ours, ref)
        if drop:  # exact maximum and the same nearest text, bit for bit
            assert (ours.score, ours.nearest) == (ref.score, ref.nearest)
        else:  # a lower bound, never above the threshold
            assert ours.score <= ref.score
        if not drop:
            index.add(text)
            reference_pool.append(text)
        decisions.append((drop, ours.score))
    return decisions


# --- tokenizer ---------------------------------------------------------------

@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
@example("Hello, World! It's 2024.")
@example("naïve café — 東京 ß İstanbul \u212a")  # non-ASCII: lowercasing Kelvin sign gives ASCII 'k'
@example("  \t\n ")
@example("under_score hy-phen x\u00a0y")
def test_tokenize_matches_rouge_score(text: str) -> None:
    assert tokenize(text) == REFERENCE_TOKENIZER.tokenize(text)


# --- F formula ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("lcs", "m", "n", "expected"),
    [
        # True F = 0.7 in all three rows; rouge-score's float order decides which side it lands on.
        (7, 10, 10, 0.7),
        (7, 9, 11, 0.7000000000000001),
        (21, 23, 37, 0.6999999999999998),
        (0, 5, 5, 0.0),
        (0, 0, 4, 0.0),  # empty token list: rouge-score returns 0
        (3, 3, 3, 1.0),
    ],
)
def test_rouge_f_matches_rouge_score_float_for_float(lcs: int, m: int, n: int, expected: float) -> None:
    assert rouge_f(lcs, m, n) == expected


@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_rouge_f_equals_rouge_score_on_token_lists(m: int, n: int, data: st.DataObject) -> None:
    cand = " ".join(data.draw(st.lists(st.sampled_from("abc"), min_size=m, max_size=m)))
    other = " ".join(data.draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n)))
    lcs = LCSseq.similarity(cand.split(), other.split())
    assert rouge_f(lcs, m, n) == SCORER.score(cand, other)["rougeL"].fmeasure


# --- boundary pairs (true F exactly 0.7), pinned as named examples -------------

BASE = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"


@pytest.mark.parametrize(
    ("pool_text", "candidate", "dropped"),
    [
        # m = n = 10, LCS 7: rouge-score computes exactly 0.7, not > 0.7: keep.
        (BASE, "w0 w1 w2 w3 w4 w5 w6 q1 q2 q3", False),
        # m = 9, n = 11, LCS 7: rouge-score computes 0.7000000000000001: drop.
        ("w0 w1 w2 w3 w4 w5 w6 q1 q2 q3 q4", "w0 w1 w2 w3 w4 w5 w6 q5 q6", True),
        # m = 23, n = 37, LCS 21: 0.6999999999999998: keep.
        (
            " ".join(f"w{i}" for i in range(21)) + " " + " ".join(f"p{i}" for i in range(16)),
            " ".join(f"w{i}" for i in range(21)) + " r1 r2",
            False,
        ),
    ],
)
def test_boundary_pairs_decided_as_rouge_score(pool_text: str, candidate: str, dropped: bool) -> None:
    assert (SCORER.score(candidate, pool_text)["rougeL"].fmeasure > 0.7) == dropped
    [(drop, _)] = grow([candidate], [pool_text])
    assert drop == dropped


# --- the index against brute force --------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.lists(TEXTS, max_size=25), st.lists(TEXTS, max_size=8))
def test_index_agrees_with_brute_force(texts: list[str], pool: list[str]) -> None:
    grow(texts, pool)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_index_agrees_with_brute_force_across_rebuilds(seed: int) -> None:
    # > 64 and > 128 pool texts: the index rebuilds its token order on the way.
    rng = random.Random(seed)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(0, 12))) for _ in range(150)]
    grow(texts, pool=[])


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.9, 1.0])
def test_other_thresholds_agree_with_brute_force(threshold: float) -> None:
    rng = random.Random(threshold)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(0, 10))) for _ in range(80)]
    grow(texts, pool=[], threshold=threshold)


@settings(max_examples=40, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=20), st.lists(TEXTS, max_size=10), st.randoms())
def test_pool_insertion_order_does_not_change_decisions(
    pool: list[str], candidates: list[str], rng: random.Random
) -> None:
    shuffled = list(pool)
    rng.shuffle(shuffled)
    decisions = []
    for order in (pool, shuffled):
        index = RougeIndex()
        for text in order:
            index.add(text)
        decisions.append([index.is_duplicate(index.check(c)) for c in candidates])
    assert decisions[0] == decisions[1]


@given(st.lists(TEXTS, max_size=10), TEXTS)
def test_exact_copy_always_rejected(pool: list[str], text: str) -> None:
    index = RougeIndex()
    for other in pool:
        index.add(other)
    index.add(text)
    for copy in (text, text.upper(), f"  {text}!!"):  # same tokens
        match = index.check(copy)
        if tokenize(text):
            assert index.is_duplicate(match) and match.score == 1.0
        else:  # no tokens: F = 0 against everything, never a duplicate
            assert match == RougeMatch(0.0, None)


@pytest.mark.parametrize("text", ["", "!!!", "über straße", "東京"])
def test_texts_without_tokens_are_never_duplicates(text: str) -> None:
    # "über straße" still yields "ber", "stra", "e"; the others yield nothing.
    index = RougeIndex()
    for other in ["", "!!!", "東京", "ber stra e"]:
        index.add(other)
    match = index.check(text)
    assert index.is_duplicate(match) == bool(tokenize(text))
    if not tokenize(text):
        assert match == RougeMatch(0.0, None)


def test_one_token_texts() -> None:
    decisions = grow(["a", "a", "b", "a b", "b a", "c"], pool=[])
    # "a b" and "b a" score 2/3 against "a": kept, as rouge-score keeps them.
    assert [drop for drop, _ in decisions] == [False, True, False, False, False, False]


def test_check_never_mutates() -> None:
    index = RougeIndex()
    index.add("write a poem about the sea")
    index.check("write a poem about the moon")
    index.check("something else entirely")
    assert len(index) == 1
    assert not index.is_duplicate(index.check("something else entirely"))


def test_threshold_must_be_in_range() -> None:
    with pytest.raises(ValueError):
        RougeIndex(threshold=0.0)


def test_rapidfuzz_compares_chars_and_ints_alike() -> None:
    # RougeIndex stores token ids as characters and falls back to int tuples
    # past the Unicode range; mixing both must mean the same LCS.
    assert LCSseq.similarity("abc", (97, 120, 99)) == 2
    assert LCSseq.similarity(chr(0xD800) + "a", (0xD800, 97)) == 2


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXTS, max_size=20), st.lists(TEXTS, max_size=20), TEXTS, st.sampled_from([0.5, 0.7, 1.0]))
def test_check_since_decides_as_a_full_check(older: list[str], newer: list[str], text: str, threshold: float) -> None:
    # The final pass re-checks a kept instruction against the texts added since its first check only.
    index = RougeIndex(threshold)
    for pool_text in older:
        index.add(pool_text)
    if index.is_duplicate(first := index.check(text)):
        return  # screened out: never re-checked
    since = len(index)
    for pool_text in newer:
        index.add(pool_text)
    full, recent = index.check(text), index.check(text, since=since)
    assert index.is_duplicate(recent) == index.is_duplicate(full)
    if index.is_duplicate(full):
        assert recent == full  # the same exact maximum and earliest text
    else:
        assert max(first.score, recent.score) <= threshold
