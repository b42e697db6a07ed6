"""The report's PNG figures, drawn from `RunStats` with matplotlib's object API.

`Figure` objects, never pyplot: no global state and no GUI backend, so drawing is safe in a Prefect worker thread
and needs no display (a bare Figure renders with Agg). Each plot draws a "no data yet" panel instead of failing on
an empty run, and every PNG is written atomically.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..core.atomic import write_atomic
from .gates import RunStats

TOP_VERBS = 20
TOP_OBJECTS = 4
DPI = 110
KEPT_COLOR = "#2a9d8f"
OTHER_COLOR = "#d9dde3"
OBJECT_COLORS = ("#264653", "#2a9d8f", "#e9c46a", "#f4a261")
LABEL_COLORS = ("white", "white", "#1f2933", "#1f2933")  # dark text on the light segments, for contrast
# Distinct, colour-blind-friendly hues for drop reasons (Okabe–Ito), repeated past eight reasons.
REASON_COLORS = ("#e69f00", "#56b4e9", "#cc79a7", "#0072b2", "#d55e00", "#999999", "#f0e442", "#000000")
PLOTS = ("verbs", "rouge", "lengths", "drops", "throughput")
JUDGE_PLOTS = ("scores", "categories")  # drawn once a judge has scored the run
SCORE_COLORS = {1: "#c0392b", 2: "#e67e22", 3: "#f1c40f", 4: "#8bc34a", 5: "#2a9d8f"}
UNJUDGED_COLOR = "#b0b7c3"


def _figure(width: float, height: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x" if columns == 1 else "y", color="#eceff3", linewidth=0.8)
        ax.set_axisbelow(True)
    return figure, list(axes)


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes, color="#8a94a6")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    write_atomic(path, buffer.getvalue())
    return path


def _label_if_fits(ax: Axes, left: float, width: float, y: float, text: str, color: str) -> None:
    """Write the object's name inside its bar segment when the segment is wide enough to hold it."""
    pixels_per_unit = ax.get_window_extent().width / (ax.get_xlim()[1] - ax.get_xlim()[0])
    if width * pixels_per_unit > 6.2 * len(text) + 6:
        ax.text(left + width / 2, y, text, ha="center", va="center", fontsize=8, color=color)


def _verb_segments(stats: RunStats, verbs: list[str]) -> list[list[tuple[str, int]]]:
    """Per verb, its top objects and counts, commonest first; instructions without an object are left out."""
    table: dict[str, dict[str, int]] = {verb: {} for verb in verbs}
    for verb, noun in stats.pairs:
        if verb in table and noun:
            table[verb][noun] = table[verb].get(noun, 0) + 1
    return [sorted(table[verb].items(), key=lambda item: (-item[1], item[0]))[:TOP_OBJECTS] for verb in verbs]


def plot_verbs(stats: RunStats, path: Path) -> Path:
    """Top root verbs (bars) split into their top direct objects (segments) and the rest (grey)."""
    figure, (ax,) = _figure(10, 7.5)
    counts = list(reversed(stats.verb_counts.most_common(TOP_VERBS)))  # barh draws bottom-up: commonest on top
    if not counts:
        _no_data(ax, "root verbs")
        return _save(figure, path)
    segments = _verb_segments(stats, [verb for verb, _ in counts])
    ax.set_xlim(0, max(total for _, total in counts) * 1.08)
    rows = range(len(counts))
    lefts = [0] * len(counts)
    for rank in range(TOP_OBJECTS):  # one barh call per rank, not per segment: far fewer artists to lay out
        widths = [objects[rank][1] if rank < len(objects) else 0 for objects in segments]
        ax.barh(rows, widths, left=lefts, color=OBJECT_COLORS[rank], height=0.75)
        for row, objects in enumerate(segments):
            if rank < len(objects):
                _label_if_fits(ax, lefts[row], widths[row], row, objects[rank][0], LABEL_COLORS[rank])
        lefts = [left + width for left, width in zip(lefts, widths)]
    ax.barh(rows, [total - left for (_, total), left in zip(counts, lefts)], left=lefts, color=OTHER_COLOR,
            height=0.75)
    for row, (_, total) in enumerate(counts):
        ax.text(total, row, f" {total}", va="center", fontsize=8, color="#44505f")
    ax.set_yticks(rows, [verb for verb, _ in counts])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("instructions")
    ax.set_title(f"Top {len(counts)} root verbs and their top {TOP_OBJECTS} direct objects "
                 "(grey: other or no object)", loc="left", fontsize=11)
    return _save(figure, path)


def plot_rouge(stats: RunStats, path: Path) -> Path:
    """ROUGE-L of each instruction to its nearest seed, and to the nearest pool item when it was accepted."""
    figure, (ax,) = _figure(7, 3.6)
    # Only where a nearest item was recorded: a missing one is "not measured", not a score of 0.
    at_acceptance = [float(r["provenance"]["nearest_rouge_l"]) for r in stats.records
                     if r.get("provenance", {}).get("nearest") is not None
                     and r["provenance"].get("nearest_rouge_l") is not None]
    if not stats.rouge_to_seed:
        _no_data(ax, "accepted instructions")
        return _save(figure, path)
    bins = [i / 20 for i in range(21)]
    ax.hist(stats.rouge_to_seed, bins=bins, color="#264653", alpha=0.85, label="nearest seed")
    if at_acceptance:
        ax.hist(at_acceptance, bins=bins, histtype="step", linewidth=2, color="#e76f51",
                label="nearest pool item when accepted")
    threshold = stats.config.get("filters", {}).get("rouge_threshold")
    if threshold:
        ax.axvline(threshold, color="#8a94a6", linestyle="--", linewidth=1)
        ax.text(threshold, ax.get_ylim()[1] * 0.95, f" drop above {threshold}", fontsize=8, color="#44505f")
    ax.set_xlim(0, 1)
    ax.set_xlabel("ROUGE-L F-measure")
    ax.set_ylabel("instructions")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Similarity to the nearest seed instruction", loc="left", fontsize=11)
    return _save(figure, path)


def plot_lengths(stats: RunStats, path: Path) -> Path:
    """Word counts of instructions, non-empty inputs and outputs, with their medians."""
    figure, axes = _figure(12, 3.4, columns=3)
    columns = {
        "instruction": [len(e.instruction.split()) for e in stats.examples],
        "input (non-empty)": [len(e.input.split()) for e in stats.examples if e.input.strip()],
        "output": [len(e.output.split()) for e in stats.examples],
    }
    for ax, (name, lengths), color in zip(axes, columns.items(), ("#264653", "#e9c46a", "#2a9d8f")):
        if not lengths:
            _no_data(ax, name)
            continue
        ax.hist(lengths, bins=min(30, max(5, len(set(lengths)))), color=color)
        median = sorted(lengths)[len(lengths) // 2]
        ax.axvline(median, color="#44505f", linestyle="--", linewidth=1)
        ax.set_title(f"{name}: median {median} words (n={len(lengths)})", loc="left", fontsize=10)
        ax.set_xlabel("words")
    axes[0].set_ylabel("examples")
    return _save(figure, path)


def plot_drops(stats: RunStats, path: Path) -> Path:
    """Per round: kept candidates and dropped ones stacked by reason."""
    figure, (ax,) = _figure(10, 3.8)
    if not stats.rounds:
        _no_data(ax, "rounds")
        return _save(figure, path)
    rounds = [int(r.get("round", i + 1)) for i, r in enumerate(stats.rounds)]
    reasons = sorted({reason for r in stats.rounds for reason in r.get("dropped", {})},
                     key=lambda reason: -stats.drops.get(reason, 0))
    bottom = [int(r.get("kept", 0)) for r in stats.rounds]
    ax.bar(rounds, bottom, color=KEPT_COLOR, label="kept")
    for reason, color in zip(reasons, itertools.cycle(REASON_COLORS)):
        heights = [int(r.get("dropped", {}).get(reason, 0)) for r in stats.rounds]
        ax.bar(rounds, heights, bottom=bottom, color=color, label=reason)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.grid(axis="y", color="#eceff3")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("candidates")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Kept and dropped candidates per round, by drop reason", loc="left", fontsize=11)
    return _save(figure, path)


def plot_throughput(stats: RunStats, path: Path) -> Path:
    """Accepted examples against the rounds' working time, and the accept rate of each round."""
    figure, (left, right) = _figure(12, 3.4, columns=2)
    if not stats.rounds:
        _no_data(left, "rounds")
        _no_data(right, "rounds")
        return _save(figure, path)
    seconds = list(itertools.accumulate(float(r.get("seconds", 0)) for r in stats.rounds))
    scale, unit = (60.0, "minutes") if seconds[-1] >= 120 else (1.0, "seconds")  # a fast fake run reads in seconds
    accepted = [int(r.get("accepted_total", 0)) for r in stats.rounds]
    left.plot([0.0, *(s / scale for s in seconds)], [accepted[0] - int(stats.rounds[0].get("kept", 0)), *accepted],
              color="#264653", marker="o", markersize=3)
    left.set_xlabel(f"{unit} of round time (pauses between runs left out)")
    left.set_ylabel("accepted (cumulative)")
    left.set_title("Accepted examples over time", loc="left", fontsize=10)
    rates = [60 * int(r.get("kept", 0)) / float(r["seconds"]) if float(r.get("seconds", 0)) > 0 else 0.0
             for r in stats.rounds]
    right.bar([int(r.get("round", i + 1)) for i, r in enumerate(stats.rounds)], rates, color=KEPT_COLOR)
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("round")
    right.set_ylabel("accepted per minute")
    right.set_title("Accept rate of each round", loc="left", fontsize=10)
    return _save(figure, path)


def plot_scores(stats: RunStats, path: Path) -> Path:
    """How many rows the judge gave each score, and how many it left without one."""
    figure, (ax,) = _figure(7, 3.4)
    judge = stats.judge
    if judge is None or not (judge.judged or judge.unjudged):
        _no_data(ax, "judge scores")
        return _save(figure, path)
    labels = ["1", "2", "3", "4", "5", "unjudged", "not judged"]
    counts = [*judge.distribution.values(), len(judge.unjudged), judge.not_judged]
    colors = [*SCORE_COLORS.values(), UNJUDGED_COLOR, OTHER_COLOR]
    ax.bar(labels, counts, color=colors)
    for x, count in enumerate(counts):
        ax.text(x, count, f"{count}", ha="center", va="bottom", fontsize=8, color="#44505f")
    ax.grid(axis="y", color="#eceff3")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("score")
    ax.set_ylabel("rows")
    mean = "n/a" if judge.mean is None else f"{judge.mean:.2f}"
    ax.set_title(f"Judge scores by {judge.judge_model} ({judge.rubric_version}): mean {mean}", loc="left", fontsize=11)
    return _save(figure, path)


def plot_categories(stats: RunStats, path: Path) -> Path:
    """Per task category: its rows stacked by score (red 1 to green 5), with the category's mean score."""
    judge = stats.judge
    table = judge.by_category() if judge is not None else {}
    figure, (ax,) = _figure(9, max(2.6, 0.45 * len(table) + 1.2))
    if not table:
        _no_data(ax, "judge scores")
        return _save(figure, path)
    categories = list(reversed(table))  # barh draws bottom-up: the commonest category on top
    lefts = [0] * len(categories)
    for score, color in SCORE_COLORS.items():
        widths = [table[category].count(score) for category in categories]
        ax.barh(range(len(categories)), widths, left=lefts, color=color, height=0.7, label=str(score))
        lefts = [left + width for left, width in zip(lefts, widths)]
    for row, category in enumerate(categories):
        scores = table[category]
        ax.text(len(scores), row, f" mean {sum(scores) / len(scores):.2f}", va="center", fontsize=8, color="#44505f")
    ax.set_yticks(range(len(categories)), categories)
    ax.set_xlim(0, max(lefts) * 1.25)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rows")
    ax.legend(title="score", frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Judge scores by task category (the judge's tags)", loc="left", fontsize=11)
    return _save(figure, path)


def write_plots(stats: RunStats, out_dir: Path) -> dict[str, Path]:
    """Every figure as out_dir/<name>.png (the judge's once a judge has scored the run); returns name -> path."""
    draw = {"verbs": plot_verbs, "rouge": plot_rouge, "lengths": plot_lengths, "drops": plot_drops,
            "throughput": plot_throughput, "scores": plot_scores, "categories": plot_categories}
    names = PLOTS + (JUDGE_PLOTS if stats.judge is not None else ())
    return {name: draw[name](stats, out_dir / f"{name}.png") for name in names}
