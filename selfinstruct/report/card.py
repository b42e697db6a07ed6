"""The dataset card: README.md in the run directory, in the Hugging Face Hub's card format (YAML header + prose).

It says how the data was made (teacher, method, config, seed-file hash, code version), how much was kept and why the
rest was dropped, how diverse it is, what the teacher's terms may mean for its use, and how to load each file.
Everything comes from the store (`RunStats`) and from the files present in the run directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..export.formats import (
    ALPACA_FILE, JSONL_FILE, MESSAGES_FILE, PROMPT_COMPLETION_FILE, PROVENANCE_FILE, TEXT_FILE, TRAIN_FILE,
    VALIDATION_FILE,
)
from .gates import GateConfig, GateResult, RunStats, collect_stats, evaluate_gates
from ..export.trainer_files import DATASET_INFO_FILE, LLAMAFACTORY_NAMES, axolotl_datasets


# What each exported file holds, in the order the card lists them.
FILE_NOTES = {
    ALPACA_FILE: "JSON list of `{instruction, input, output}` (the original Alpaca shape)",
    JSONL_FILE: "the same rows as JSON Lines",
    MESSAGES_FILE: "chat format: `{\"messages\": [user, assistant]}` (TRL `SFTTrainer`)",
    PROMPT_COMPLETION_FILE: "conversational prompt-completion: `{\"prompt\": [user], \"completion\": [assistant]}` "
                            "(TRL `SFTTrainer`, loss on the completion only)",
    TEXT_FILE: "`{\"text\": ...}` rendered in the Alpaca training prompt",
    TRAIN_FILE: "train split (parquet)",
    VALIDATION_FILE: "validation split (parquet)",
    DATASET_INFO_FILE: "LLaMA-Factory dataset entries for the Alpaca and chat files (`dataset_dir` = this folder)",
    PROVENANCE_FILE: "per example: teacher, method, round, demo seeds, prompt hash, nearest pool instruction; the "
                     "judge's score, reason, category and difficulty when a judge scored the run",
}
TOP_VERBS = 10


def _size_category(count: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < limit:
            return label
    return "n>1M"


def _front_matter(stats: RunStats, present: list[str]) -> list[str]:
    """YAML the Hub reads; `configs` maps splits to files so `load_dataset(repo)` finds them."""
    if TRAIN_FILE in present:
        splits = [("train", TRAIN_FILE)] + ([("validation", VALIDATION_FILE)] if VALIDATION_FILE in present else [])
    else:
        splits = [("train", ALPACA_FILE)]
    return [
        "---", "license: other  # set it after checking the teacher's terms (see Licence)", "language:", "- en",
        "task_categories:", "- text-generation", "tags:", "- synthetic", "- self-instruct", "- instruction-tuning",
        "size_categories:", f"- {_size_category(stats.rows)}", "configs:", "- config_name: default",
        "  data_files:", *(line for split, path in splits for line in (f"  - split: {split}", f"    path: {path}")),
        "---",
    ]


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _made(stats: RunStats) -> list[str]:
    config = stats.config
    filters = config.get("filters", {})
    return [
        "## How it was made", "",
        f"- Teacher: **{stats.provenance_value('teacher') or 'unknown'}** "
        f"(backend `{stats.provenance_value('backend') or 'unknown'}`)",
        f"- Method: `{stats.provenance_value('method') or 'unknown'}`, "
        f"{len(stats.seed_instructions)} seed tasks from `{Path(str(config.get('seeds', 'unknown'))).name}` "
        f"(sha256 `{stats.seeds_hash or 'unknown'}`)",
        f"- Filters: ROUGE-L > {filters.get('rouge_threshold', 'n/a')} to the pool dropped; MinHash "
        f"{'on' if filters.get('minhash') else 'off'}; instructions of {filters.get('min_words', '?')}–"
        f"{filters.get('max_words', '?')} words",
        f"- Code: selfinstruct {stats.version}; demo sampling seed {config.get('seed', 'n/a')}",
        *([f"- Grown by {len(stats.config_history)} configurations:"] if len(stats.config_history) > 1 else []),
        *(f"  - {line}" for line in stats.config_summaries()),
        "", "<details><summary>Full grow configuration (the last one that grew the pool)</summary>", "",
        "```json", json.dumps(config, indent=2, sort_keys=True), "```", "", "</details>",
    ]


def _counts(stats: RunStats) -> list[str]:
    lines = [
        "## Counts", "",
        f"{stats.accepted} tasks accepted of {stats.generated} candidates generated, exported as {stats.rows} rows "
        "(one per instance) "
        f"(acceptance rate {_percent(stats.acceptance_rate)}) in {len(stats.rounds)} rounds; "
        f"{stats.total('requests')} teacher requests ({stats.total('cached')} from cache, {stats.total('failed')} "
        f"failed), {stats.total('prompt_tokens'):,} prompt and {stats.total('completion_tokens'):,} completion tokens.",
        "", "| drop reason | candidates |", "|---|---:|",
    ]
    lines += [f"| `{reason}` | {count} |" for reason, count in stats.drops.items()] or ["| (none) | 0 |"]
    return lines


def _diversity(stats: RunStats) -> list[str]:
    top = ", ".join(f"{verb} ({count})" for verb, count in stats.verb_counts.most_common(TOP_VERBS)) or "none"
    found = sum(1 for verb, _ in stats.pairs if verb)
    mean_rouge = stats.mean_rouge_to_seed
    return [
        "## Diversity", "",
        f"- Distinct root verbs: {len(stats.verb_counts)}; distinct verb–noun pairs: {stats.distinct_pairs} "
        f"(root verb found in {found} of {stats.accepted} instructions by a word-list heuristic, not a parser)",
        f"- Commonest root verbs: {top}",
        f"- Mean ROUGE-L of an instruction to its nearest seed: {'n/a' if mean_rouge is None else f'{mean_rouge:.3f}'}",
        f"- Examples with an empty input: {_percent(stats.empty_input_share)}",
    ]


def _judge(stats: RunStats) -> list[str]:
    """The judge's verdicts: who judged on which rubric, the score distribution, mean, categories, the filter."""
    judge = stats.judge
    if judge is None:
        return []
    mean = "n/a" if judge.mean is None else f"{judge.mean:.2f}"
    lines = [
        "## Judge", "",
        f"Rows scored by **{judge.judge_model}** on selfinstruct's rubric `{judge.rubric_version}` (1–5: follows the "
        "instruction, correct, complete, harmless; with a one-line reason, a task category and a difficulty): "
        f"{len(judge.judged)} of {judge.rows} rows scored, {len(judge.unjudged)} unjudged (no usable verdict in two "
        f"replies), {judge.not_judged} not judged yet. Mean score **{mean}**. Each row's score, reason and tags "
        f"are in `{PROVENANCE_FILE}`.", "",
        "| score | rows |", "|---:|---:|", *(f"| {score} | {count} |" for score, count in
                                           sorted(judge.distribution.items(), reverse=True)), "",
        "| category | rows | mean score |", "|---|---:|---:|",
        *(f"| {category} | {len(scores)} | {sum(scores) / len(scores):.2f} |"
          for category, scores in judge.by_category().items()), "",
        "- Difficulty: " + (", ".join(f"{level} {count}" for level, count in judge.difficulties().items()) or "none"),
    ]
    lines += [f"- Also in the store: {model} (`{version}`) scored {count} rows" for model, version, count
              in judge.other_judges]
    rule = judge.selection
    if rule is not None:
        passing = sum(count for score, count in judge.distribution.items() if score >= rule.min_score)
        unscored = len(judge.unjudged) + judge.not_judged
        lines.append(f"- The exported files keep only rows scored ≥ {rule.min_score} ({passing} of {judge.rows} "
                     f"rows), and {'also' if rule.keep_unjudged else 'not'} the {unscored} rows without a score "
                     "(`selfinstruct export --min-score`)")
    return lines


def _gates(results: list[GateResult]) -> list[str]:
    if not results:
        return []
    rows = [f"| {'pass' if r.passed else '**FAIL**'} | `{r.name}` | {r.message} |" for r in results]
    return ["## Quality gates", "", "| result | gate | measured |", "|---|---|---|", *rows]


def _licence(stats: RunStats) -> list[str]:
    teacher = stats.provenance_value("teacher") or "the teacher model"
    return [
        "## Licence", "",
        f"Every instruction, input and output was written by **{teacher}**, prompted with the seed tasks. "
        "Whether and how you may use, share or train models on this text depends on that model's licence and its "
        "provider's terms of use (some forbid training competing models on outputs) and on the seed file's licence. "
        "Check them before use; the `license` field above is `other` until you do.",
    ]


def _loading(present: list[str]) -> list[str]:
    files = [f"| `{name}` | {FILE_NOTES[name]} |" for name in FILE_NOTES if name in present]
    json_files = [name for name in present if name.endswith((".json", ".jsonl"))
                  and name not in (PROVENANCE_FILE, DATASET_INFO_FILE)]
    code = ["```python", "from datasets import load_dataset", "", "# any one of:"]
    code += [f'ds = load_dataset("json", data_files="{name}", split="train")' for name in json_files]
    if TRAIN_FILE in present:
        code.append(f'ds = load_dataset("parquet", data_files={{"train": "{TRAIN_FILE}", '
                    f'"validation": "{VALIDATION_FILE}"}})')
    return ["## Files and loading", "", "| file | contents |", "|---|---|", *files, "", *code, "```"]


def _training(present: list[str], system: str | None) -> list[str]:
    """How each trainer reads these files: TRL by file name, LLaMA-Factory by dataset name, axolotl by YAML."""
    lines = ["## Training", ""]
    if system:
        lines += [f"Every chat row opens with this system turn: `{json.dumps(system, ensure_ascii=False)}`.", ""]
    chat = [name for name in (MESSAGES_FILE, PROMPT_COMPLETION_FILE) if name in present]
    if chat:
        lines.append(f"- TRL `SFTTrainer`: `load_dataset(\"json\", data_files=\"{chat[-1]}\", split=\"train\")` as "
                     "`train_dataset`.")
    names = [LLAMAFACTORY_NAMES[name] for name in LLAMAFACTORY_NAMES if name in present]
    if DATASET_INFO_FILE in present and names:
        lines.append(f"- LLaMA-Factory: `dataset_dir: <this folder>` and `dataset: {names[-1]}` "
                     f"(entries: {', '.join(f'`{name}`' for name in names)}).")
    snippet = axolotl_datasets(present)
    if snippet:
        lines += ["- axolotl, in its config YAML (paths relative to this folder):", "", "```yaml", *snippet, "```"]
    return lines if len(lines) > 2 else []


def render_card(stats: RunStats, present: list[str], gates: list[GateResult], system: str | None = None) -> str:
    """The card's markdown; `present` names the files in the run directory it should describe."""
    title = stats.run_dir.resolve().name or "selfinstruct run"
    lines = [
        *_front_matter(stats, present), "", f"# {title}", "",
        f"Synthetic instruction-following data ({stats.rows} rows from {stats.accepted} tasks) grown from seed "
        f"tasks by a teacher LLM with selfinstruct {stats.version}, in the Self-Instruct / Alpaca manner.", "",
        *_made(stats), "", *_counts(stats), "", *_diversity(stats), "",
        *([*_judge(stats), ""] if stats.judge is not None else []), *_gates(gates), "", *_licence(stats), "",
        *_loading(present), "", *_training(present, system), "",
        "Root verbs and objects come from a word-list heuristic; see the project's docs/report.md for its limits.",
    ]
    return "\n".join(lines) + "\n"


def grow_card(run_dir: Path, system: str | None = None, stats: RunStats | None = None,
              gate_config: GateConfig | None = None) -> str:
    """README.md of a grow run: the run and the exported files now in `run_dir` (`system`: their system turn)."""
    stats = stats or collect_stats(run_dir)
    present = [name for name in FILE_NOTES if (run_dir / name).is_file()]
    return render_card(stats, present, evaluate_gates(stats, gate_config), system)
