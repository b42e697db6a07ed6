"""Dedup benchmark: RougeIndex vs rouge-score as Alpaca uses it, and the MinHash stage.

    python bench/dedup_bench.py [--limit N]

Reads ../shared/bench/instruction_stream.jsonl and the 175 Self-Instruct seeds
(the initial pool) from beside the checkout. Prints every figure it measures;
docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from functools import partial
from pathlib import Path

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import LCSseq
from rouge_score import rouge_scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from selfinstruct.filters.minhash import MinhashConfig, MinhashIndex, jaccard, sketch_texts
from selfinstruct.filters.rouge import RougeIndex, tokenize

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
STREAM = SHARED / "bench" / "instruction_stream.jsonl"
SEEDS = SHARED / "peer" / "self_instruct_seed_tasks.jsonl"
THRESHOLD = 0.7


def reference_f(target: list[str], prediction: list[str]) -> float:
    """rouge-score's ROUGE-L F on pre-tokenized text: the private ``_score_lcs``
    Alpaca calls, wrapped once here and checked against the public API at start."""
    return rouge_scorer._score_lcs(target, prediction).fmeasure


def check_reference_wrapper() -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for a, b in [("w a b c d e f g h i", "w a b c d e f x y z"), ("one two", "two one three"), ("", "x")]:
        assert reference_f(tokenize(a), tokenize(b)) == scorer.score(a, b)["rougeL"].fmeasure


def rss_mb() -> float:
    """Peak resident set size of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


# --- ours on the full stream ----------------------------------------------------

def run_ours(seeds: list[str], stream: list[str]) -> dict:
    index = RougeIndex(THRESHOLD)
    for text in seeds:
        index.add(text)
    wall, cpu = time.perf_counter(), time.process_time()
    drops, scores, pool_before = [], [], []
    for text in stream:
        pool_before.append(len(index))
        match = index.check(text)
        drop = index.is_duplicate(match)
        if not drop:
            index.add(text)
        drops.append(drop)
        scores.append(match.score)
    return {"drops": drops, "scores": scores, "pool_before": pool_before, "index": index,
            "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def kept_pool(seeds: list[str], stream: list[str], drops: list[bool]) -> list[str]:
    return seeds + [t for t, d in zip(stream, drops) if not d]


# --- (b) independent brute force: rapidfuzz LCS over the whole pool ---------------

def brute_force_max(seeds: list[str], stream: list[str], drops: list[bool], block: int = 256) -> np.ndarray:
    """Max F of each candidate over ours' pool at that moment, by scoring every pool text.

    Own vocabulary and encoding, rapidfuzz's C++ LCS for all pairs, and
    rouge-score's float formula (P = l/n, R = l/m, 2PR/(P+R)) element-wise.
    """
    vocab: dict[str, int] = {}
    encode = lambda text: "".join(chr(vocab.setdefault(t, len(vocab))) for t in tokenize(text))
    pool = [encode(t) for t in seeds]
    cands = [encode(t) for t in stream]
    best = np.zeros(len(stream))
    for start in range(0, len(stream), block):
        frozen = np.array([len(p) for p in pool], dtype=np.float64)
        chunk = cands[start : start + block]
        lcs = process.cdist(chunk, pool, scorer=LCSseq.similarity, dtype=np.int32, workers=2)
        for k, cand in enumerate(chunk):
            recent = pool[len(frozen):]
            extra = np.array([LCSseq.similarity(cand, p) for p in recent], dtype=np.int32)
            lengths = np.concatenate([frozen, [len(p) for p in recent]])
            best[start + k] = _max_f(np.concatenate([lcs[k], extra]), len(cand), lengths)
            if not drops[start + k]:
                pool.append(cand)
    return best


def _max_f(lcs: np.ndarray, m: int, n: np.ndarray) -> float:
    if m == 0 or not len(n):
        return 0.0
    p, r = lcs / np.maximum(n, 1), lcs / m
    total = p + r
    f = np.divide(2 * p * r, total, out=np.zeros_like(total), where=(total > 0) & (n > 0))
    return float(f.max())


# --- real rouge-score on samples -------------------------------------------------

def rouge_sample(seeds, stream, ours, brute, picks, workers, full: bool) -> Counter:
    """Decide each picked candidate with real rouge-score over ours' pool at that time.

    full: score every pool text. Otherwise score the pool texts whose brute-force
    F is >= 0.5 (every possible duplicate) plus 20 random ones.
    """
    pool_all = [tokenize(t) for t in kept_pool(seeds, stream, ours["drops"])]
    vocab: dict[str, int] = {}
    encoded = [_chars(p, vocab) for p in pool_all]
    stats: Counter = Counter()
    for i in picks:
        cand = tokenize(stream[i])
        size = ours["pool_before"][i]
        chosen = range(size) if full else _suspects(_chars(cand, vocab), len(cand), encoded[:size], i)
        f = workers.map(partial(reference_f, cand), [pool_all[j] for j in chosen], chunksize=512)
        stats["agree"] += (max(f, default=0.0) > THRESHOLD) == ours["drops"][i]
        stats["checked"] += 1
        if full:
            stats["max_equal"] += max(f, default=0.0) == brute[i]
    return stats


def _chars(tokens: list[str], vocab: dict[str, int]) -> str:
    return "".join(chr(vocab.setdefault(t, len(vocab))) for t in tokens)


def _suspects(cand: str, m: int, pool: list[str], seed: int) -> list[int]:
    lcs = process.cdist([cand], pool, scorer=LCSseq.similarity, dtype=np.int32)[0]
    n = np.array([len(p) for p in pool], dtype=np.float64)
    p, r = lcs / np.maximum(n, 1), lcs / max(m, 1)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    rng = random.Random(seed)
    return sorted(set(np.flatnonzero(f >= 0.5).tolist()) | set(rng.sample(range(len(pool)), min(20, len(pool)))))


# --- (a) timed reference at fixed pool sizes --------------------------------------

def timed_reference(pool_texts: list[str], stream: list[str], sizes, k_ref: int, k_ours: int, workers) -> list[dict]:
    rng = random.Random(0)
    rows = []
    for size in sizes:
        pool = _pool_of_size(pool_texts, size)
        index = RougeIndex(THRESHOLD)
        for text in pool:
            index.add(text)
        picks = rng.sample(range(len(stream)), k_ours)
        start = time.perf_counter()
        ours_drop = {i: index.is_duplicate(index.check(stream[i])) for i in picks}
        ours_ms = (time.perf_counter() - start) / k_ours * 1000
        tokens = [tokenize(t) for t in pool]
        start = time.perf_counter()
        agree = 0
        for i in picks[:k_ref]:
            f = workers.map(partial(reference_f, tokenize(stream[i])), tokens, chunksize=1024)
            agree += (max(f, default=0.0) > THRESHOLD) == ours_drop[i]
        ref_ms = (time.perf_counter() - start) / k_ref * 1000
        rows.append({"pool": size, "ref_ms": ref_ms, "ours_ms": ours_ms, "agree": agree, "n": k_ref})
    return rows


def _pool_of_size(kept: list[str], size: int) -> list[str]:
    """The first `size` texts ours kept; past the end, kept texts with their words
    reversed plus a serial (same lengths and vocabulary, so the same cost)."""
    filler = (" ".join(reversed(t.split())) + f" r{i}" for i, t in enumerate(kept * 4))
    pool = kept[:size]
    while len(pool) < size:
        pool.append(next(filler))
    return pool


def projected_reference_hours(rows: list[dict], keep_rate: float, target_pool: int = 50_000) -> float:
    """Reference time to grow the pool to target: ms(p) fitted linear in p, summed over
    the 1/keep_rate candidates decided per kept text."""
    slope, intercept = np.polyfit([r["pool"] for r in rows], [r["ref_ms"] for r in rows], 1)
    mean_ms = intercept + slope * target_pool / 2
    return target_pool / keep_rate * mean_ms / 1000 / 3600


# --- memory with a 100K pool (fresh process) --------------------------------------

def rss_child(size: int) -> None:
    texts = [json.loads(line)["instruction"] for line in STREAM.open()]
    before = current_rss_mb()
    index = RougeIndex(THRESHOLD)
    for i in range(size):
        index.add(f"{texts[i % len(texts)]} v{i // len(texts)}")
    for text in texts[:1000]:
        index.check(text)
    print(json.dumps({"pool": len(index), "peak_rss_mb": round(rss_mb()), "rss_before_index_mb": round(before)}))


# --- MinHash stage ----------------------------------------------------------------

def minhash_pass(docs: list[str], cfg: MinhashConfig, grow: bool) -> tuple[float, float, list[set], list[list[int]]]:
    """Shingle, sketch, query, insert every doc; returns (wall, cpu, sets, verified partners)."""
    index = MinhashIndex(cfg)
    sets, partners = [], []
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(docs), 1024):
        for k, sketched in enumerate(sketch_texts(docs[start : start + 1024], cfg)):
            found = index.matches(sketched.signature, sketched.shingles)
            partners.append([int(m.key) for m in found])
            if not (grow and found):
                index.add(str(start + k), sketched.signature, sketched.shingles)
            sets.append(sketched.shingles)  # a numpy array: made a set after the clock stops
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, [set(ids.tolist()) for ids in sets], partners


def true_pairs(sets: list[set], t: float) -> set[tuple[int, int]]:
    """Every pair with exact Jaccard >= t (all-pairs join with exact prefix filtering:
    a pair above t shares a shingle among the |A| - ceil(t|A|) + 1 rarest of each)."""
    df = Counter(x for s in sets for x in s)
    postings: dict[bytes, list[int]] = defaultdict(list)
    pairs = set()
    for j, s in enumerate(sets):
        prefix = sorted(s, key=lambda x: (df[x], x))[: len(s) - math.ceil(t * len(s) - 1e-9) + 1] if s else []
        seen = {i for x in prefix for i in postings[x]}
        for i in seen:
            if t * len(sets[i]) - 1e-9 <= len(s) <= len(sets[i]) / t + 1e-9 and jaccard(s, sets[i]) >= t:
                pairs.add((i, j))
        for x in prefix:
            postings[x].append(j)
    return pairs


def minhash_report(rows: list[dict], cfg: MinhashConfig) -> dict:
    docs = [r["doc"] for r in rows]
    wall, cpu, sets, grow_partners = minhash_pass(docs, cfg, grow=True)
    _, _, _, all_partners = minhash_pass(docs, cfg, grow=False)
    truth = true_pairs(sets, cfg.threshold)
    found = {(i, j) for j, ps in enumerate(all_partners) for i in ps}
    in_pool, should, flagged_right, flagged = set(), 0, 0, 0
    partners_of = defaultdict(set)
    for i, j in truth:
        partners_of[j].add(i)
    for j, ps in enumerate(grow_partners):
        dup = bool(partners_of[j] & in_pool)
        should += dup
        flagged += bool(ps)
        flagged_right += dup and bool(ps)
        if not ps:
            in_pool.add(j)
    ids = {r["id"]: k for k, r in enumerate(rows)}
    planted = {(ids[r["parent"]], k) for k, r in enumerate(rows) if r["parent"] in ids and r["op"] != "heavy"}
    planted_true = planted & truth
    return {"docs": len(docs), "wall": wall, "cpu": cpu, "flagged": flagged, "true_pairs": len(truth),
            "pair_recall": len(found & truth) / max(1, len(truth)),
            "pair_precision": len(found & truth) / max(1, len(found)),
            "decision_recall": flagged_right / max(1, should), "decision_precision": flagged_right / max(1, flagged),
            "should_flag": should, "planted": len(planted), "planted_true": len(planted_true),
            "planted_found": len(planted_true & found)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="first N stream lines only")
    parser.add_argument("--sample", type=int, default=2000, help="candidates checked with real rouge-score (suspects)")
    parser.add_argument("--full-sample", type=int, default=100,
                        help="candidates checked with real rouge-score (whole pool)")
    parser.add_argument("--sizes", default="1000,10000,50000", help="pool sizes for the timed reference")
    parser.add_argument("--ref-candidates", type=int, default=20, help="reference candidates per pool size")
    parser.add_argument("--skip-minhash", action="store_true")
    parser.add_argument("--skip-rouge", action="store_true", help="MinHash stage only")
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def report_agreement(seeds: list[str], stream: list[str], ours: dict) -> tuple[np.ndarray, list[int]]:
    """(b): every decision against the brute force; returns its max F and the boundary candidates."""
    start = time.perf_counter()
    brute = brute_force_max(seeds, stream, ours["drops"])
    agree = sum((b > THRESHOLD) == d for b, d in zip(brute, ours["drops"]))
    exact = sum(s == b for s, b, d in zip(ours["scores"], brute, ours["drops"]) if d)
    print(f"[check b] brute force (rapidfuzz, every pool text, rouge-score float formula) in "
          f"{time.perf_counter() - start:.0f} s: decisions agree {agree}/{len(stream)} "
          f"({100 * agree / len(stream):.3f}%); score equal on {exact}/{sum(ours['drops'])} drops")
    boundary = [i for i, b in enumerate(brute) if abs(b - THRESHOLD) <= 1e-9]
    bdrop = sum(ours["drops"][i] for i in boundary)
    same = sum((brute[i] > THRESHOLD) == ours["drops"][i] for i in boundary)
    print(f"[boundary] {len(boundary)} candidates with true max F = 0.7: {bdrop} dropped (F computed "
          f"0.7000000000000001), {len(boundary) - bdrop} kept; ours agrees on {same}")
    return brute, boundary


def report_rouge_score(seeds, stream, ours, brute, boundary, args, workers) -> None:
    rng = random.Random(1)
    suspects = sorted(set(rng.sample(range(len(stream)), min(args.sample, len(stream))) + boundary))
    whole = sorted(rng.sample(range(len(stream)), min(args.full_sample, len(stream))))
    for label, picks, full in [("suspects", suspects, False), ("whole pool", whole, True)]:
        start = time.perf_counter()
        stats = rouge_sample(seeds, stream, ours, brute, picks, workers, full)
        extra = f", max F equal to brute force on {stats['max_equal']}" if full else ""
        print(f"[check rouge-score, {label}] {stats['agree']}/{stats['checked']} decisions agree{extra} "
              f"({time.perf_counter() - start:.0f} s)")


def report_speed(seeds, stream, ours, args, workers) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    table = timed_reference(kept_pool(seeds, stream, ours["drops"]), stream, sizes, args.ref_candidates, 2000, workers)
    for row in table:
        print(f"[speed] pool {row['pool']:>6}: reference {row['ref_ms']:9.1f} ms/candidate, "
              f"ours {row['ours_ms']:.3f} ms, "
              f"speedup {row['ref_ms'] / row['ours_ms']:,.0f}x, decisions agree {row['agree']}/{row['n']}")
    keep_rate = 1 - sum(ours["drops"]) / len(stream)
    print(f"[projection] reference to grow a 50K pool at this keep rate ({keep_rate:.2f}): "
          f"{projected_reference_hours(table, keep_rate):.1f} h (linear fit of ms/candidate over pool size)")


def print_minhash(rows: list[dict]) -> None:
    cfg = MinhashConfig()
    mh = minhash_report(rows, cfg)
    print(f"[minhash] {cfg.model_dump()}")
    print(f"[minhash] grow pass over {mh['docs']} docs (shingle, sketch, query, insert kept): "
          f"{mh['docs'] / mh['wall']:.0f} docs/s wall, {mh['docs'] / mh['cpu']:.0f} docs/s cpu, "
          f"flagged {mh['flagged']}")
    print(f"[minhash] true pairs (exact Jaccard >= {cfg.threshold}, all-pairs join): {mh['true_pairs']}; "
          f"insert-all pass: pair recall {mh['pair_recall']:.4f}, precision {mh['pair_precision']:.4f}")
    print(f"[minhash] grow decisions: recall {mh['decision_recall']:.4f} of {mh['should_flag']} candidates "
          f"with a true partner in the pool, precision {mh['decision_precision']:.4f}")
    print(f"[minhash] planted parent/child pairs: {mh['planted']}, of which {mh['planted_true']} have "
          f"Jaccard >= {cfg.threshold}; found {mh['planted_found']}")


def main() -> None:
    args = parse_args()
    if args.rss_child:
        return rss_child(args.rss_child)
    check_reference_wrapper()
    rows = [json.loads(line) for line in STREAM.open()][: args.limit]
    stream = [r["instruction"] for r in rows]
    seeds = [json.loads(line)["instruction"] for line in SEEDS.open()]
    print(f"stream {len(stream)} candidates, initial pool {len(seeds)} seeds, {multiprocessing.cpu_count()} cores")
    if not args.skip_rouge:
        rouge_report(seeds, stream, args)
    if not args.skip_minhash:
        print_minhash(rows)


def rouge_report(seeds: list[str], stream: list[str], args: argparse.Namespace) -> None:
    print(f"RSS with the stream loaded, before the index: {current_rss_mb():.0f} MB")
    ours = run_ours(seeds, stream)
    kept = len(ours.pop("index")) - len(seeds)
    print(f"[ours] full stream through ROUGE-L: wall {ours['wall']:.2f} s, cpu {ours['cpu']:.2f} s, "
          f"kept {kept}, dropped {len(stream) - kept}, pool {kept + len(seeds)}, peak RSS {rss_mb():.0f} MB")
    brute, boundary = report_agreement(seeds, stream, ours)
    with multiprocessing.Pool(2) as workers:
        report_rouge_score(seeds, stream, ours, brute, boundary, args, workers)
        report_speed(seeds, stream, ours, args, workers)
    child = subprocess.run([sys.executable, __file__, "--rss-child", "100000"],
                           capture_output=True, text=True, check=True)
    print(f"[memory] RougeIndex with a 100K pool, fresh process: {json.loads(child.stdout)}")


if __name__ == "__main__":
    main()
