"""Convert benchmark: the four shared datasets through their families, against a naive per-row render.

    python bench/convert_bench.py [--repeat 3]

Our path: templates compiled once, one sandboxed render per row (the three parts joined), rows built without
re-validation. The baselines, measured in the same run on the same rows and contexts: (1) naive, a script that
builds the Jinja2 template of each part for every row and renders it (`Environment.from_string(...).render`);
(2) precompiled parts, three `Template.render` calls per row. Prints rows/s (best of --repeat), the ratios, the
end-to-end convert time (read + render + store + every export + card) and the peak RSS. Times are CPU seconds
of this process (see `best`).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from selfinstruct.convert import ConvertConfig, convert_dataset
from selfinstruct.convert.convert import prepare, render_rows
from selfinstruct.convert.render import choose_template
from selfinstruct.convert.templates import ENV

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CASES = [("extractive-qa", DATA / "xquad_en" / "xquad.en.json"), ("classification", DATA / "banking77" / "test.csv"),
         ("summarization", DATA / "scitldr_a" / "dev.jsonl"), ("nli", DATA / "snli_dev" / "dev.jsonl")]
PARTS = ("instruction", "input", "output")


def best(action, repeat: int) -> float:
    """The fewest CPU seconds of this process over `repeat` runs: on a shared machine wall time measures the
    neighbours as much as the code (both sides of every ratio are measured the same way)."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return min(times)


def naive(prepared, compile_each_row: bool) -> int:
    """Every row rendered part by part; with `compile_each_row`, each part's template is built for the row."""
    templates = prepared.templates.templates
    compiled = {t.id: [ENV.from_string(getattr(t.spec, part)) for part in PARTS] for t in templates}
    count = 0
    for context, key in zip(prepared.contexts, prepared.keys):
        if context is None:
            continue
        template = choose_template(templates, context, key)
        parts = ([ENV.from_string(getattr(template.spec, part)) for part in PARTS] if compile_each_row
                 else compiled[template.id])
        [part.render(context).strip() for part in parts]
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    totals = {"ours": 0.0, "precompiled": 0.0, "naive": 0.0, "end_to_end": 0.0}
    rows_total = 0
    for family, path in CASES:
        config = ConvertConfig(data=str(path), task=family, out=Path(tempfile.mkdtemp()) / family)
        prepared = prepare(config)
        rows = len(render_rows(config, prepared)[0])
        ours = best(lambda: render_rows(config, prepared), options.repeat)
        pre = best(lambda: naive(prepared, False), options.repeat)
        slow = best(lambda: naive(prepared, True), 1)
        whole = best(lambda: convert_dataset(config), 1)
        print(f"{family:<15} {rows:>6} rows  ours {rows / ours:>9,.0f} rows/s  precompiled parts "
              f"{rows / pre:>8,.0f} rows/s  naive {rows / slow:>7,.0f} rows/s  ratio {slow / ours:5.1f}x naive, "
              f"{pre / ours:4.2f}x precompiled  end to end {whole:5.2f} s ({rows / whole:,.0f} rows/s)")
        rows_total += rows
        for name, value in (("ours", ours), ("precompiled", pre), ("naive", slow), ("end_to_end", whole)):
            totals[name] += value
    print(f"{'all four':<15} {rows_total:>6} rows  ours {rows_total / totals['ours']:>9,.0f} rows/s  precompiled "
          f"parts {rows_total / totals['precompiled']:>8,.0f} rows/s  naive {rows_total / totals['naive']:>7,.0f} "
          f"rows/s  ratio {totals['naive'] / totals['ours']:5.1f}x naive, "
          f"{totals['precompiled'] / totals['ours']:4.2f}x precompiled  end to end {totals['end_to_end']:5.2f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
