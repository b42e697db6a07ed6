"""What the Prefect flow shows about a run: progress, a per-round table and a final summary.

Pure functions over plain data: a round's stats are the dicts of `RoundSummary.as_stats()`, which is also what
the store keeps (`Store.round_stats()`), so the artifacts are views of the store and never state. No Prefect here:
the flow passes these values to `create_progress_artifact`, `create_table_artifact` and `create_markdown_artifact`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RoundStats = Mapping[str, Any]

# Columns of the per-round table, in order; the drop reasons go between "kept" and "accepted_total".
LEADING_COLUMNS = ("round", "generated", "kept")
TRAILING_COLUMNS = ("accepted_total", "requests", "cached", "failed", "prompt_tokens", "completion_tokens", "seconds")
DROPPED_PREFIX = "dropped_"
RUN_COLUMNS = ("generated", "kept", "requests", "cached", "failed", "prompt_tokens", "completion_tokens")
MAX_KEY_SLUG = 40  # keeps keys readable in the UI's artifact list


def artifact_key(run_dir: Path | str, kind: str) -> str:
    """A Prefect artifact key for one run directory: lowercase letters, digits and dashes only.

    Keyed artifacts are versioned by Prefect, so each run directory gets its own history on the Artifacts page.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", Path(run_dir).name.lower()).strip("-")[:MAX_KEY_SLUG].strip("-")
    return "-".join(part for part in ("selfinstruct", slug or "run", kind) if part)


def progress_percent(accepted: int, target: int) -> float:
    """Accepted / target in percent, within 0..100 (a run may end above a target that was lowered)."""
    if target <= 0:
        return 100.0
    return max(0.0, min(100.0, 100.0 * accepted / target))


def progress_description(accepted: int, target: int, run_dir: Path | str) -> str:
    return f"{accepted} / {target} accepted examples in {run_dir}"


def drop_reasons(rounds: Iterable[RoundStats]) -> list[str]:
    """Every drop reason seen in these rounds, sorted, so table rows share one set of columns."""
    return sorted({reason for stats in rounds for reason in stats.get("dropped", {})})


def rounds_table(rounds: list[RoundStats]) -> list[dict[str, Any]]:
    """One row per round: counts, one `dropped_<reason>` column per reason (0 when absent), tokens, seconds."""
    reasons = drop_reasons(rounds)
    rows = []
    for stats in rounds:
        row = {column: stats.get(column, 0) for column in LEADING_COLUMNS}
        row |= {DROPPED_PREFIX + reason: stats.get("dropped", {}).get(reason, 0) for reason in reasons}
        row |= {column: stats.get(column, 0) for column in TRAILING_COLUMNS}
        rows.append(row)
    return rows


def drops_text(dropped: Mapping[str, int]) -> str:
    """'rouge 12, blacklist 3' (most frequent first), or 'none': for one log line per round."""
    ranked = sorted(dropped.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} {count}" for reason, count in ranked) or "none"


def sum_drops(rounds: Iterable[RoundStats]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for stats in rounds:
        for reason, count in stats.get("dropped", {}).items():
            totals[reason] = totals.get(reason, 0) + count
    return totals


def _total(rounds: Iterable[RoundStats], column: str) -> int:
    return sum(int(stats.get(column, 0)) for stats in rounds)


def throughput(rounds: list[RoundStats]) -> dict[str, float]:
    """Rates over the rounds' own seconds (teacher and filters, not scheduling): kept/min, tokens/s, s/round."""
    seconds = sum(float(stats.get("seconds", 0)) for stats in rounds)
    kept = _total(rounds, "kept")
    tokens = _total(rounds, "prompt_tokens") + _total(rounds, "completion_tokens")
    if seconds <= 0:
        return {"seconds": 0.0, "kept_per_minute": 0.0, "tokens_per_second": 0.0, "seconds_per_round": 0.0}
    return {
        "seconds": seconds,
        "kept_per_minute": 60 * kept / seconds,
        "tokens_per_second": tokens / seconds,
        "seconds_per_round": seconds / len(rounds),
    }


def summary_markdown(
    *,
    accepted: int,
    target: int,
    run_rounds: list[RoundStats],
    total_rounds: int,
    total_drops: Mapping[str, int],
    outputs: Mapping[str, Path | str],
) -> str:
    """The final report of one flow run: where the pool stands, what this run did, why candidates were dropped."""
    status = "target reached" if accepted >= target else "target not reached yet; the next run continues"
    lines = [
        "# selfinstruct grow",
        "",
        f"**{accepted} / {target}** accepted examples ({progress_percent(accepted, target):.0f}%): {status}.",
        "",
        *_run_section(run_rounds, total_rounds),
        "",
        *_drops_section(sum_drops(run_rounds), total_drops),
        "",
        "## Outputs",
        "",
        *(f"- {name}: `{path}`" for name, path in outputs.items()),
    ]
    return "\n".join(lines) + "\n"


def _run_section(run_rounds: list[RoundStats], total_rounds: int) -> list[str]:
    rates = throughput(run_rounds)
    totals = {column: _total(run_rounds, column) for column in RUN_COLUMNS}
    return [
        "## This run",
        "",
        "| rounds | " + " | ".join(column.replace("_", " ") for column in RUN_COLUMNS) + " | seconds |",
        "|---:|" + "---:|" * len(RUN_COLUMNS) + "---:|",
        f"| {len(run_rounds)} | " + " | ".join(str(totals[column]) for column in RUN_COLUMNS)
        + f" | {rates['seconds']:.1f} |",
        "",
        f"Throughput: {rates['kept_per_minute']:.1f} kept/min, {rates['tokens_per_second']:.0f} tokens/s, "
        f"{rates['seconds_per_round']:.1f} s/round. Rounds in the store: {total_rounds}.",
    ]


def _drops_section(run_drops: Mapping[str, int], total_drops: Mapping[str, int]) -> list[str]:
    reasons = sorted(set(run_drops) | set(total_drops), key=lambda reason: (-total_drops.get(reason, 0), reason))
    if not reasons:
        return ["## Drop reasons", "", "No candidate was dropped."]
    return [
        "## Drop reasons",
        "",
        "| reason | this run | all rounds |",
        "|---|---:|---:|",
        *(f"| `{reason}` | {run_drops.get(reason, 0)} | {total_drops.get(reason, 0)} |" for reason in reasons),
    ]
