"""Mix benchmark: 200,000 rows through exact + MinHash dedup and 13-gram decontamination against 10,000 eval rows.

    python bench/mix_bench.py [--rows 200000] [--evals 10000]

Rows: the 60,000 candidates of ../shared/bench/instruction_stream.jsonl (instruction + a 100-300-word doc as
output, with planted near-duplicates), each whole and as its two halves, as one synthetic source; then the four
shared datasets converted under seed 0, 1, … (one source per seed) until --rows. Eval rows: SNLI dev
pairs, then banking77 texts, to --evals. Everything goes through `mix_run` as a user's config would (JSONL
sources on disk, every export written). Prints each phase's seconds, the removal counts and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from selfinstruct.convert import ConvertConfig, convert_rows
from selfinstruct.mix import mix_rows, mix_run, read_mix_config

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "datasets"
CASES = [("extractive-qa", DATA / "xquad_en" / "xquad.en.json"), ("classification", DATA / "banking77" / "test.csv"),
         ("summarization", DATA / "scitldr_a" / "dev.jsonl"), ("nli", DATA / "snli_dev" / "dev.jsonl")]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def build_sources(base: Path, total: int) -> list[Path]:
    """The stream's 60K candidates whole and as their two halves (180K distinct rows with the stream's planted
    near-duplicates), then the four conversions under seed 0, 1, … (templated rows, each seed its own source:
    the same row under another template is a cross-source look-alike) until `total`."""
    stream = jsonl(SHARED / "bench" / "instruction_stream.jsonl")
    synthetic = []
    for item in stream:
        words = item["doc"].split()
        half = len(words) // 2
        synthetic += [{"instruction": item["instruction"], "input": "", "output": item["doc"]},
                      {"instruction": item["instruction"], "input": "", "output": " ".join(words[:half])},
                      {"instruction": item["instruction"], "input": "", "output": " ".join(words[half:])}]
    synthetic = synthetic[:total]
    write_rows(base / "synthetic.jsonl", synthetic)
    paths, count, seed = [base / "synthetic.jsonl"], len(synthetic), 0
    while count < total:
        converted = []
        for family, path in CASES:
            _, rows, _ = convert_rows(ConvertConfig(data=str(path), task=family, seed=seed, out=base / "unused"))
            converted += [{"instruction": r.instruction, "input": r.input, "output": r.output} for r in rows]
        converted = converted[:total - count]
        paths.append(base / f"converted-{seed}.jsonl")
        write_rows(paths[-1], converted)
        count, seed = count + len(converted), seed + 1
    return paths


def build_evals(base: Path, total: int) -> Path:
    snli = [{"premise": r["premise"], "hypothesis": r["hypothesis"]} for r in jsonl(DATA / "snli_dev" / "dev.jsonl")]
    banking = [line.rsplit(",", 1)[0] for line in (DATA / "banking77" / "test.csv").read_text().splitlines()[1:]]
    rows = (snli + [{"text": text} for text in banking])[:total]
    write_rows(base / "evals.jsonl", rows)
    return base / "evals.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--evals", type=int, default=10_000)
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mix-bench-"))
    started = time.perf_counter()
    sources, evals = build_sources(base, options.rows), build_evals(base, options.evals)
    print(f"inputs: {options.rows:,} rows in {len(sources)} JSONL sources, {options.evals:,} eval rows "
          f"({time.perf_counter() - started:.1f} s to build, not counted)")
    blocks = "".join(f'[[source]]\npath = "{path}"\nsynthetic = {str(n == 0).lower()}\n' for n, path in enumerate(sources))
    config_path = base / "mix.toml"
    config_path.write_text(f"target = {options.rows}\ncap = 60000\ntemperature = 2.0\n{blocks}"
                           f'[dedup]\nrouge = false\n[decontaminate]\nfiles = ["{evals}"]\nngram = 13\n')
    config = read_mix_config(config_path)
    # Wall time and this process's CPU time: on a shared machine the CPU seconds are what the work costs.
    started, cpu = time.perf_counter(), time.process_time()
    rows, lines, removed = mix_rows(config)
    cleaned, cleaned_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    mix_run(config, base / "out")
    whole, whole_cpu = time.perf_counter() - started, time.process_time() - cpu
    reasons: dict[str, int] = {}
    for item in removed:
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    print(f"load + exact + MinHash dedup + 13-gram decontamination + sampling: {cleaned:.1f} s wall, "
          f"{cleaned_cpu:.1f} s CPU ({options.rows / cleaned_cpu:,.0f} rows per CPU second); removed {reasons}; "
          f"{len(rows):,} rows in the mix")
    print(f"the same through mix_run with every export, the store and the card: {whole:.1f} s wall, "
          f"{whole_cpu:.1f} s CPU")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
