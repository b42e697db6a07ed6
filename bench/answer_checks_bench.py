"""CPU cost of the instance filters and answer checks per instance, against the cost of writing the row.

    .venv/bin/python bench/answer_checks_bench.py [--repeat R]

Real human-written instances from beside the checkout: the 175 Self-Instruct seed tasks and our 175 seeds
(their own instances), banking77's test set as a classification task (short labels), XQuAD's paragraphs as
the answers to "Write a paragraph about <title>" and SciTLDR's abstracts as answers written from their
one-sentence summary (long outputs). Each task goes through `TaskChecker.check` with the default config;
the figures are CPU seconds (time.process_time), the best of R passes, per instance. The reference,
measured in the same run, is `json.dumps` of each instance, the cost of writing an exported row: the
checks should cost about as much, and both a small part of the ~2 ms client CPU budget per example.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selfinstruct.core.config import AnswerCheckConfig, FilterConfig
from selfinstruct.filters.instances import TaskChecker
from selfinstruct.core.records import Instance

SHARED = ROOT.parent / "shared"
Task = tuple[str, list[Instance], bool]


def load_tasks() -> list[Task]:
    tasks: list[Task] = []
    for path in (SHARED / "peer/self_instruct_seed_tasks.jsonl", ROOT / "seeds/seed_tasks.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            seed = json.loads(line)
            tasks.append((seed["instruction"], [Instance(**i) for i in seed["instances"]], seed["is_classification"]))
    with (SHARED / "datasets/banking77/test.csv").open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            tasks.append(("Which banking intent does the message express?",
                          [Instance(input=row["text"], output=row["category"])], True))
    squad = json.loads((SHARED / "datasets/xquad_en/xquad.en.json").read_text(encoding="utf-8"))
    for article in squad["data"]:
        title = article["title"].replace("_", " ")
        for paragraph in article["paragraphs"]:
            tasks.append((f"Write a paragraph about {title}.", [Instance(output=paragraph["context"])], False))
    for line in (SHARED / "datasets/scitldr_a/dev.jsonl").read_text(encoding="utf-8").splitlines():
        paper = json.loads(line)
        tasks.append(("Write the abstract of a paper from its one-sentence summary.",
                      [Instance(input=paper["target"][0], output=" ".join(paper["source"]))], False))
    return tasks


def cpu_per_instance(work: Callable[[], object], instances: int, repeat: int) -> float:
    """Microseconds of CPU per instance, the best of `repeat` passes (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best / instances * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tasks = load_tasks()
    instances = sum(len(task[1]) for task in tasks)
    words = sum(len(inst.output.split()) for task in tasks for inst in task[1])
    print(f"{len(tasks)} tasks, {instances} instances, {words / instances:.0f} output words per instance on average")

    def run(checker: TaskChecker) -> Callable[[], object]:
        return lambda: [checker.check(instruction, insts, cls) for instruction, insts, cls in tasks]

    checker = TaskChecker(FilterConfig())
    reference = cpu_per_instance(lambda: [json.dumps(i.model_dump()) for t in tasks for i in t[1]], instances,
                                 args.repeat)
    total = cpu_per_instance(run(checker), instances, args.repeat)
    print(f"check_task, default config: {total:.1f} us/instance; json.dumps of the row: {reference:.1f} us; "
          f"ratio {total / reference:.2f}")
    for switch in ("refusal", "placeholder", "no_input_marker", "missing_input", "repetition",
                   "restates_instruction", "prompt_leak", "script"):
        without = TaskChecker(FilterConfig(answers=AnswerCheckConfig(**{switch: False})))
        cost = total - cpu_per_instance(run(without), instances, args.repeat)
        print(f"  {switch:<22} ~{cost:5.1f} us/instance")
    by_kind: dict[str, list[Task]] = {"short (banking77 labels)": [t for t in tasks if t[2] and "banking" in t[0]],
                                      "long (XQuAD, SciTLDR)": [t for t in tasks if t[0].startswith("Write ")
                                                               and len(t[1][0].output) > 400]}
    for kind, group in by_kind.items():
        count = sum(len(t[1]) for t in group)
        cost = cpu_per_instance(lambda: [checker.check(*t) for t in group], count, args.repeat)  # noqa: B023
        print(f"  {kind}: {cost:.1f} us/instance over {count}")
    drops = Counter(verdict.reason for t in tasks for _, verdict in checker.check(*t).dropped)
    print(f"drops: {dict(drops.most_common())}")


if __name__ == "__main__":
    main()
