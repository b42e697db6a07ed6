"""MinHash LSH over whole examples: deterministic sketches, exact verification, recall."""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
import time
import zlib

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from selfinstruct.filters.minhash import (
    MinhashConfig,
    MinhashIndex,
    MinhashMatch,
    RedisConfig,
    example_text,
    jaccard,
    shingles,
    signatures,
    sketch,
)

CFG = MinhashConfig()
VOCAB = [f"w{i}" for i in range(3000)]


def doc(rng: random.Random, n: int = 150) -> list[str]:
    return rng.choices(VOCAB, k=n)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", set()),
        ("?!", set()),
        ("Hello World", {b"hello world"}),  # fewer than k words: one shingle
        ("A, b; c d e f", {b"a b c d e", b"b c d e f"}),  # punctuation and case do not count
        ("ünï cödé x y z w", {"ünï cödé x y z".encode(), "cödé x y z w".encode()}),
    ],
)
def test_shingles(text: str, expected: set[bytes]) -> None:
    assert shingles(text, CFG) == expected


@given(st.text(alphabet=st.sampled_from("ab c,Dé\n_1") | st.characters(max_codepoint=127), max_size=40), st.integers(1, 4))
def test_shingles_are_word_k_grams(text: str, k: int) -> None:
    # Whatever the fast path, the meaning: lowercased \w+ words, k at a time, space-joined.
    words = re.findall(r"\w+", text.lower())
    expected = {" ".join(words[i : i + k]).encode() for i in range(max(1, len(words) - k + 1))} if words else set()
    assert shingles(text, MinhashConfig(shingle_words=k)) == expected


def test_example_text_skips_empty_parts() -> None:
    assert example_text("Do it.", "", "Done.") == "Do it.\nDone."


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(set(), set(), 0.0), ({b"x"}, {b"x"}, 1.0), ({b"x", b"y"}, {b"y", b"z"}, 1 / 3)],
)
def test_jaccard(a: set[bytes], b: set[bytes], expected: float) -> None:
    assert jaccard(a, b) == expected


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sets(st.binary(min_size=1, max_size=8), max_size=40), max_size=20), st.integers(0, 2**31))
def test_sketch_equals_datasketch_bulk(sets: list[set[bytes]], seed: int) -> None:
    cfg = MinhashConfig(seed=seed)
    ours = sketch(sets, cfg)
    theirs = MinHash.bulk([sorted(s) for s in sets], num_perm=cfg.num_perm, seed=seed, hashfunc=zlib.crc32)
    assert [list(m.hashvalues) for m in ours] == [list(m.hashvalues) for m in theirs]


def test_signatures_are_deterministic_per_seed() -> None:
    texts = ["the quick brown fox jumps over the lazy dog " * 3, "", "a b"]
    first, again = signatures(texts, CFG), signatures(texts, CFG)
    other_seed = signatures(texts, MinhashConfig(seed=2))
    assert all(np.array_equal(a.hashvalues, b.hashvalues) for a, b in zip(first, again))
    assert not np.array_equal(first[0].hashvalues, other_seed[0].hashvalues)


def test_config_rejects_bands_beyond_permutations() -> None:
    with pytest.raises(ValidationError):
        MinhashConfig(num_perm=64, bands=20, rows=4)


def test_recall_on_constructed_near_duplicates() -> None:
    # 300 random 150-word documents; each copy has 1-3 words replaced, which
    # keeps exact Jaccard (5-word shingles) at or above 0.7 in most copies.
    rng = random.Random(7)
    bases = [doc(rng) for _ in range(300)]
    index = MinhashIndex(CFG)
    base_sets = [shingles(" ".join(words), CFG) for words in bases]
    for i, (s, sig) in enumerate(zip(base_sets, sketch(base_sets, CFG))):
        index.add(str(i), sig, s)
    found = expected = 0
    for i, words in enumerate(bases):
        copy = list(words)
        for pos in rng.sample(range(len(copy)), rng.randint(1, 3)):
            copy[pos] = rng.choice(VOCAB)
        s = shingles(" ".join(copy), CFG)
        if jaccard(s, base_sets[i]) >= CFG.threshold:
            expected += 1
            match = index.check(sketch([s], CFG)[0], s)
            found += match is not None and match.key == str(i)
    assert expected > 200
    assert found / expected >= 0.95


def test_check_verifies_exactly_and_never_mutates() -> None:
    rng = random.Random(1)
    a, b = " ".join(doc(rng)), " ".join(doc(rng))
    index = MinhashIndex(CFG)
    sa = shingles(a, CFG)
    index.add("a", sketch([sa], CFG)[0], sa)
    sb = shingles(b, CFG)
    assert index.check(sketch([sb], CFG)[0], sb) is None
    assert index.check(sketch([sa], CFG)[0], sa) == MinhashMatch("a", 1.0)
    assert len(index) == 1


def test_labels_need_not_be_unique_and_ties_go_to_the_oldest() -> None:
    s = shingles("one two three four five six seven", CFG)
    sig = sketch([s], CFG)[0]
    index = MinhashIndex(CFG)
    for label in ("first", "same", "same"):
        index.add(label, sig, s)
    assert [m.key for m in index.matches(sig, s)] == ["first", "same", "same"]
    assert index.check(sig, s) == MinhashMatch("first", 1.0)


def test_empty_examples_are_never_duplicates() -> None:
    index = MinhashIndex(CFG)
    index.add("empty", sketch([set()], CFG)[0], set())
    assert index.check(sketch([set()], CFG)[0], set()) is None


@pytest.fixture
def redis_port(tmp_path):
    redis = pytest.importorskip("redis")  # optional: only a persistent index needs it
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    with socket.socket() as probe:  # a free port, so parallel runs do not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [server, "--port", str(port), "--save", "", "--dir", str(tmp_path)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait()


def test_redis_index_persists_across_instances(redis_port: int) -> None:
    # A nightly run opens the same basename and sees the earlier runs' examples.
    cfg = MinhashConfig(redis=RedisConfig(port=redis_port, basename="test"))
    s = shingles("one two three four five six seven eight", CFG)
    sig = sketch([s], cfg)[0]
    first = MinhashIndex(cfg)
    first.add("yesterday: naïve ✓", sig, s)
    first.add("empty", sketch([set()], cfg)[0], set())
    later = MinhashIndex(cfg)
    assert len(later) == 2
    assert later.check(sig, s) == MinhashMatch("yesterday: naïve ✓", 1.0)
    later.add("today", sig, s)
    assert [m.key for m in MinhashIndex(cfg).matches(sig, s)] == ["yesterday: naïve ✓", "today"]
