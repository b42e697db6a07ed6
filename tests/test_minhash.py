"""MinHash LSH over whole examples: deterministic sketches, exact verification, recall."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from selfinstruct.filters.minhash import (
    MinhashConfig, MinhashIndex, MinhashMatch, Sketched, example_text, jaccard, sketch_texts, word_kgrams, words,
)

CFG = MinhashConfig()
VOCAB = [f"w{i}" for i in range(3000)]


def doc(rng: random.Random, n: int = 150) -> list[str]:
    return rng.choices(VOCAB, k=n)


def sk(text: str, cfg: MinhashConfig = CFG) -> Sketched:
    return sketch_texts([text], cfg)[0]


def ids(text: str, cfg: MinhashConfig = CFG) -> set[int]:
    return set(sk(text, cfg).shingles.tolist())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("?!", []),
        ("A, b; c_d 9", [b"a", b"b", b"c_d", b"9"]),  # punctuation and case do not count
        ("Ünï, cödé!", ["ünï".encode(), "cödé".encode()]),
    ],
)
def test_words(text: str, expected: list[bytes]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", set()),
        ("Hello World", {(b"hello", b"world")}),  # fewer than k words: one shingle
        ("a b c d e f", {(b"a", b"b", b"c", b"d", b"e"), (b"b", b"c", b"d", b"e", b"f")}),
    ],
)
def test_word_kgrams(text: str, expected: set[tuple[bytes, ...]]) -> None:
    assert word_kgrams(text, 5) == expected


@given(st.text(alphabet=st.sampled_from("ab c,Dé\n_1") | st.characters(max_codepoint=127), max_size=40))
def test_words_match_the_regex_meaning(text: str) -> None:
    # Whatever the fast path: lowercased \w+ words.
    assert words(text) == [w.encode() for w in re.findall(r"\w+", text.lower())]


_SMALL_TEXT = st.lists(st.sampled_from(["a", "b", "c", "Ab", "é", "x1"]), max_size=12).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_SMALL_TEXT, _SMALL_TEXT, st.integers(1, 4))
@example("a é é a", "é a a é", 4)  # one id for both under multipliers in arithmetic progression
def test_shingle_ids_encode_the_kgram_sets(a: str, b: str, k: int) -> None:
    # Ids stand for k-grams one to one: same sizes, same overlaps, same Jaccard.
    cfg = MinhashConfig(shingle_words=k)
    ka, kb = word_kgrams(a, k), word_kgrams(b, k)
    ia, ib = ids(a, cfg), ids(b, cfg)
    assert (len(ia), len(ib), len(ia & ib)) == (len(ka), len(kb), len(ka & kb))
    assert jaccard(ia, ib) == jaccard(ka, kb)


def test_sketches_do_not_depend_on_the_batch() -> None:
    # Texts on both sides of every chunk boundary, empty and short ones included.
    rng = random.Random(3)
    texts = [" ".join(doc(rng, rng.choice([0, 1, 4, 5, 6, 40]))) for _ in range(600)]
    together = sketch_texts(texts, CFG)
    for text, one in zip(texts, together):
        alone = sk(text)
        assert np.array_equal(one.shingles, alone.shingles)
        assert np.array_equal(one.signature, alone.signature)
        assert list(one.shingles) == sorted(set(one.shingles.tolist()))  # sorted, distinct


def test_shingle_ids_are_the_same_in_every_process() -> None:
    # A resumed run rebuilds its index in another process: the ids must not depend on hash randomization.
    code = (
        "from selfinstruct.filters.minhash import MinhashConfig, sketch_texts; "
        "print(sketch_texts(['Naïve one two three four five six'], MinhashConfig())[0].shingles.tolist())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert runs == {f"{sk('Naïve one two three four five six').shingles.tolist()}\n"}


def test_example_text_skips_empty_parts() -> None:
    assert example_text("Do it.", "", "Done.") == "Do it.\nDone."


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(set(), set(), 0.0), ({b"x"}, {b"x"}, 1.0), ({b"x", b"y"}, (b"y", b"z"), 1 / 3)],
)
def test_jaccard(a: set[bytes], b, expected: float) -> None:
    assert jaccard(a, b) == expected


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=20), st.integers(0, 2**31))
def test_signatures_equal_datasketch_bulk(texts: list[str], seed: int) -> None:
    cfg = MinhashConfig(seed=seed)
    ours = sketch_texts(texts, cfg)
    theirs = MinHash.bulk(
        [s.shingles.tolist() for s in ours], num_perm=cfg.num_perm, seed=seed, hashfunc=lambda i: i & 0xFFFFFFFF
    )
    assert [list(s.signature) for s in ours] == [list(m.hashvalues) for m in theirs]


def test_signatures_are_deterministic_per_seed() -> None:
    texts = ["the quick brown fox jumps over the lazy dog " * 3, "", "a b"]
    first, again = sketch_texts(texts, CFG), sketch_texts(texts, CFG)
    other_seed = sketch_texts(texts, MinhashConfig(seed=2))
    assert all(np.array_equal(a.signature, b.signature) for a, b in zip(first, again))
    assert not np.array_equal(first[0].signature, other_seed[0].signature)


def test_config_rejects_bands_beyond_permutations() -> None:
    with pytest.raises(ValidationError):
        MinhashConfig(num_perm=64, bands=20, rows=4)


def test_recall_on_constructed_near_duplicates() -> None:
    # 300 random 150-word documents; each copy has 1-3 words replaced, which
    # keeps exact Jaccard (5-word shingles) at or above 0.7 in most copies.
    rng = random.Random(7)
    bases = [doc(rng) for _ in range(300)]
    index = MinhashIndex(CFG)
    base = sketch_texts([" ".join(ws) for ws in bases], CFG)
    for i, b in enumerate(base):
        index.add(str(i), b.signature, b.shingles)
    found = expected = 0
    for i, base_words in enumerate(bases):
        copy = list(base_words)
        for pos in rng.sample(range(len(copy)), rng.randint(1, 3)):
            copy[pos] = rng.choice(VOCAB)
        s = sk(" ".join(copy))
        if jaccard(set(s.shingles.tolist()), base[i].shingles.tolist()) >= CFG.threshold:
            expected += 1
            match = index.check(s.signature, s.shingles)
            found += match is not None and match.key == str(i)
    assert expected > 200
    assert found / expected >= 0.95


def test_check_verifies_exactly_and_never_mutates() -> None:
    rng = random.Random(1)
    a, b = " ".join(doc(rng)), " ".join(doc(rng))
    index = MinhashIndex(CFG)
    sa, sb = sk(a), sk(b)
    index.add("a", sa.signature, sa.shingles)
    assert index.check(sb.signature, sb.shingles) is None
    assert index.check(sa.signature, sa.shingles) == MinhashMatch("a", 1.0)
    assert len(index) == 1


def test_labels_need_not_be_unique_and_ties_go_to_the_oldest() -> None:
    s, sig = sk("one two three four five six seven")
    index = MinhashIndex(CFG)
    for label in ("first", "same", "same"):
        index.add(label, sig, s)
    assert [m.key for m in index.matches(sig, s)] == ["first", "same", "same"]
    assert index.check(sig, s) == MinhashMatch("first", 1.0)


def test_empty_examples_are_never_duplicates() -> None:
    index = MinhashIndex(CFG)
    empty = sk("")
    index.add("empty", empty.signature, empty.shingles)
    assert index.check(empty.signature, empty.shingles) is None
