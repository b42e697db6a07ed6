"""The run report: run_dir/report/report.html with its PNG figures, and a markdown summary for Prefect artifacts.

Both are views of the store (`RunStats`), never state: delete report/ and run it again for the same result.
The HTML is self-contained apart from its images, which sit beside it under relative paths, so the folder can
be zipped, attached to CI or opened from disk. Every string from the store is escaped: instructions are
teacher text and may contain markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from ..core.atomic import write_atomic
from .gates import GateConfig, GateResult, RunStats, collect_stats, evaluate_gates
from .plots import write_plots
from ..core.store import Store

REPORT_DIR = "report"
REPORT_FILE = "report.html"
SAMPLES_PER_REASON = 5
CELL_CHARS = 300  # long teacher text is cut in tables; the store keeps it whole

# Figure name -> (title, how to read it). docs/report.md says more.
FIGURES = {
    "verbs": ("Root verbs and direct objects",
              "Each bar is a root verb; its coloured segments are its four commonest direct objects. Long bars of "
              "one verb, or one object dominating its verb, mean the teacher keeps proposing the same kind of task."),
    "rouge": ("Similarity to the seeds",
              "ROUGE-L of each accepted instruction to its nearest seed (filled) and to its nearest pool item when "
              "it was accepted (line). Mass near the dashed threshold means near-copies are getting through."),
    "lengths": ("Lengths",
                "Word counts of instructions, non-empty inputs and outputs. A spike at a small output length often "
                "means truncated or one-word answers."),
    "drops": ("Drops per round",
              "Kept candidates (green) and dropped ones stacked by reason. A growing ROUGE/MinHash share is "
              "expected as the pool fills; a sudden new reason points at the teacher or the parser."),
    "throughput": ("Throughput",
                   "Cumulative accepted examples over the rounds' own time, and each round's accepted per minute."),
    "scores": ("Judge scores",
               "Rows by the score the judge gave them (1-5 on the rubric in docs/judge.md), and rows it left without "
               "one: unjudged (no usable verdict in two replies) or not judged yet. A judge is a model, not a check: "
               "read its lowest-scored rows below before trusting the distribution."),
    "categories": ("Judge scores by category",
                   "The judge's task category of each row, its rows stacked by score. A category with many low scores "
                   "is one the teacher handles badly (or the judge does)."),
}
JUDGE_FIGURES = ("scores", "categories")
LOWEST_SAMPLES = 10

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;background:#f5f7fa;margin:0}
main{max-width:1180px;margin:0 auto;padding:28px 32px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 8px}h3{font-size:15px;margin:22px 0 6px}
.meta{color:#52606d;font-size:13px;margin:0 0 20px}.meta code{background:#e4e7eb;padding:1px 5px;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(5,1fr);gap:12px}
.card .note{color:#7b8794;font-size:12px;margin-top:2px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:10px;padding:12px 14px}
.card .value{font-size:22px;font-weight:650}.card .label{color:#616e7c;font-size:12px;text-transform:uppercase;
letter-spacing:.04em}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e4e7eb;border-radius:8px;
overflow:hidden;font-size:13px}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #eef1f4;vertical-align:top}
th{background:#f0f3f7;font-weight:600}td.text{white-space:pre-wrap;word-break:break-word}
table.samples{table-layout:fixed}
.pass{color:#1e7b4b;font-weight:650}.fail{color:#c0392b;font-weight:650}
figure{margin:0;background:#fff;border:1px solid #e4e7eb;border-radius:10px;padding:14px}
figure img{max-width:100%;height:auto;display:block}figcaption{color:#52606d;font-size:13px;margin-top:8px}
.banner{padding:10px 14px;border-radius:8px;margin:14px 0;font-weight:600}
.banner.ok{background:#e3f9e5;color:#1e7b4b}.banner.bad{background:#ffe3e3;color:#a61b1b}
"""


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def summary_figures(stats: RunStats) -> list[tuple[str, str, str]]:
    """(label, value, note) triples for the report's header cards and the markdown summary."""
    mean_rouge = stats.mean_rouge_to_seed
    seconds = sum(float(r.get("seconds", 0)) for r in stats.rounds)
    verb, share = stats.top_verb_share
    return [
        ("accepted tasks", f"{stats.accepted}", f"of {stats.generated} generated"),
        ("exported rows", f"{stats.rows}", "one per instance of each accepted task"),
        ("acceptance rate", _percent(stats.acceptance_rate), "accepted / generated"),
        ("dropped", f"{stats.dropped}", f"{len(stats.drops)} reasons"),
        ("rounds", f"{len(stats.rounds)}", f"{_duration(seconds)} of round time"),
        ("requests", f"{stats.total('requests')}", f"{stats.total('cached')} cached · {stats.total('failed')} failed"),
        ("tokens", f"{stats.total('prompt_tokens') + stats.total('completion_tokens'):,}",
         f"{stats.total('prompt_tokens'):,} prompt · {stats.total('completion_tokens'):,} completion"),
        ("distinct root verbs", f"{len(stats.verb_counts)}", f"top: {verb} {_percent(share)}" if verb else ""),
        ("verb–noun pairs", f"{stats.distinct_pairs}", "distinct"),
        ("ROUGE-L to seed", "n/a" if mean_rouge is None else f"{mean_rouge:.3f}", "mean, nearest seed"),
        ("empty inputs", _percent(stats.empty_input_share), "of accepted examples"),
        *_judge_figures(stats),
    ]


def _judge_figures(stats: RunStats) -> list[tuple[str, str, str]]:
    judge = stats.judge
    if judge is None:
        return []
    return [("judge score", "n/a" if judge.mean is None else f"{judge.mean:.2f}",
             f"mean of {len(judge.judged)} of {judge.rows} rows · {judge.judge_model}")]


def _identity(stats: RunStats) -> str:
    parts = [
        f"teacher <code>{escape(stats.provenance_value('teacher') or 'unknown')}</code>",
        f"backend <code>{escape(stats.provenance_value('backend') or 'unknown')}</code>",
        f"method <code>{escape(stats.provenance_value('method') or 'unknown')}</code>",
        f"{len(stats.seed_instructions)} seeds, sha256 <code>{escape((stats.seeds_hash or 'unknown')[:12])}</code>",
        f"selfinstruct <code>{escape(stats.version)}</code>",
    ]
    return " · ".join(parts)


def _config_html(stats: RunStats) -> str:
    """The configuration that grew the pool (the last of its history) and, if several did, each one's rounds."""
    if not stats.config:
        return ""
    history = "".join(f"<li>{escape(line)}</li>" for line in stats.config_summaries())
    shown = escape(json.dumps(stats.config, indent=2, sort_keys=True))
    listed = f'<ul class="meta">{history}</ul>' if history else ""
    return f"{listed}<details><summary>Grow configuration</summary><pre>{shown}</pre></details>"


def _gates_html(results: list[GateResult]) -> str:
    if not results:
        return ""
    failed = [r for r in results if not r.passed]
    banner = (f'<div class="banner bad">{len(failed)} of {len(results)} quality gates failed</div>' if failed
              else f'<div class="banner ok">All {len(results)} quality gates passed</div>')
    rows = "".join(
        f'<tr><td class="{"pass" if r.passed else "fail"}">{"pass" if r.passed else "FAIL"}</td>'
        f"<td><code>{escape(r.name)}</code></td><td>{escape(r.message)}</td></tr>" for r in results)
    return f"<h2>Quality gates</h2>{banner}<table><tr><th>result</th><th>gate</th><th>measured</th></tr>{rows}</table>"


# Fixed column widths so every reason's table lines up.
_SAMPLE_COLUMNS = ('<colgroup><col style="width:7%"><col style="width:45%"><col style="width:22%">'
                   '<col style="width:26%"></colgroup>')


def _cut(text: str) -> str:
    return escape(text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…")


def _samples_html(samples: dict[str, list[dict[str, Any]]], drops: dict[str, int]) -> str:
    if not samples:
        return "<h2>Dropped candidates</h2><p>No candidate was dropped.</p>"
    parts = ["<h2>Dropped candidates</h2><p class=\"meta\">The first rows of each reason; the store's "
             "<code>rejections</code> table keeps them all, with the full text.</p>"]
    for reason, rows in samples.items():
        body = "".join(
            f"<tr><td>{row['round']}</td><td class=\"text\">{_cut(str(row['instruction']))}</td>"
            f"<td class=\"text\">{_cut(str(row['detail']))}</td>"
            f"<td class=\"text\">{_cut(_first_output(row))}</td></tr>" for row in rows)
        parts.append(f"<h3><code>{escape(reason)}</code> · {drops.get(reason, len(rows))} dropped</h3>"
                     f"<table class=\"samples\">{_SAMPLE_COLUMNS}"
                     f"<tr><th>round</th><th>instruction</th><th>evidence</th><th>first output</th></tr>"
                     f"{body}</table>")
    return "".join(parts)


def _first_output(row: dict[str, Any]) -> str:
    instances = row.get("instances") or []
    return str(instances[0].get("output", "")) if instances and isinstance(instances[0], dict) else ""


def _figure_html(name: str, src: str) -> str:
    return (f"<h2>{escape(FIGURES[name][0])}</h2><figure><img src=\"{escape(src)}\" alt=\"{escape(FIGURES[name][0])}\">"
            f"<figcaption>{escape(FIGURES[name][1])}</figcaption></figure>")


def _judge_html(stats: RunStats, images: dict[str, str]) -> str:
    """The judge's figures and its lowest-scored rows, with their reasons."""
    judge = stats.judge
    if judge is None:
        return ""
    mean = "n/a" if judge.mean is None else f"{judge.mean:.2f}"
    intro = (f"<h2>Judge</h2><p class=\"meta\">judge <code>{escape(judge.judge_model)}</code> · rubric "
             f"<code>{escape(judge.rubric_version)}</code> · {len(judge.judged)} of {judge.rows} rows scored · "
             f"{len(judge.unjudged)} unjudged · mean {mean}</p>")
    figures = "".join(_figure_html(name, images[name]) for name in JUDGE_FIGURES if name in images)
    rows = "".join(
        f"<tr><td>{item.judgement.score}</td><td>{escape(item.judgement.category or '')}<br>"
        f"{escape(item.judgement.difficulty or '')}</td><td class=\"text\">{_cut(item.target.instruction)}"
        f"{'<br><br>' + _cut(item.target.input) if item.target.input else ''}</td>"
        f"<td class=\"text\">{_cut(item.target.output)}</td><td class=\"text\">{_cut(item.judgement.reason)}</td></tr>"
        for item in judge.lowest(LOWEST_SAMPLES))
    table = ("<h3>Lowest-scored rows</h3><table class=\"samples\"><colgroup><col style=\"width:6%\">"
             "<col style=\"width:12%\"><col style=\"width:30%\"><col style=\"width:28%\"><col style=\"width:24%\">"
             "</colgroup><tr><th>score</th><th>tags</th><th>instruction (input)</th><th>output</th>"
             f"<th>judge's reason</th></tr>{rows}</table>") if rows else ""
    return intro + figures + table


def report_html(stats: RunStats, gates: list[GateResult], images: dict[str, str],
                samples: dict[str, list[dict[str, Any]]]) -> str:
    """The whole page; `images` maps figure names to paths relative to the HTML file."""
    title = escape(stats.run_dir.resolve().name or "run")
    cards = "".join(f'<div class="card"><div class="label">{escape(label)}</div><div class="value">{escape(value)}'
                    f'</div><div class="note">{escape(note)}</div></div>'
                    for label, value, note in summary_figures(stats))
    figures = "".join(_figure_html(name, src) for name, src in images.items() if name not in JUDGE_FIGURES)
    return (
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
        f"content=\"width=device-width,initial-scale=1\"><title>selfinstruct report: {title}</title>"
        f"<style>{CSS}</style></head><body><main><h1>selfinstruct report: {title}</h1>"
        f"<p class=\"meta\">{_identity(stats)}</p>{_config_html(stats)}<div class=\"cards\">{cards}</div>"
        f"{_gates_html(gates)}"
        f"{figures}{_judge_html(stats, images)}{_samples_html(samples, stats.drops)}</main></body></html>\n"
    )


def drop_samples(run_dir: Path, drops: dict[str, int],
                 per_reason: int = SAMPLES_PER_REASON) -> dict[str, list[dict[str, Any]]]:
    """The first `per_reason` rejections of each reason, commonest reason first."""
    with Store.open(run_dir) as store:
        return {reason: store.rejections(reason=reason, limit=per_reason) for reason in drops}


@dataclass(frozen=True)
class ReportResult:
    """The written page and the gate verdicts it shows, so a caller can fail on them without measuring twice."""

    path: Path
    gates: list[GateResult]


def build_report(run_dir: Path, gate_config: GateConfig | None = None) -> ReportResult:
    """Write run_dir/report/report.html and its figures."""
    stats = collect_stats(run_dir)
    gates = evaluate_gates(stats, gate_config)
    out_dir = run_dir / REPORT_DIR
    plots = write_plots(stats, out_dir)
    images = {name: path.relative_to(out_dir).as_posix() for name, path in plots.items()}
    path = out_dir / REPORT_FILE
    write_atomic(path, report_html(stats, gates, images, drop_samples(run_dir, stats.drops)))
    return ReportResult(path, gates)


def report_run(run_dir: Path, gate_config: GateConfig | None = None) -> Path:
    """Write run_dir/report/report.html and its figures; return the HTML's path."""
    return build_report(run_dir, gate_config).path


def render_markdown(stats: RunStats, gates: list[GateResult]) -> str:
    """Counts, gates, drop reasons and top verbs as markdown (tables render in Prefect's UI)."""
    lines = [f"# selfinstruct report: {stats.run_dir.resolve().name}", "", _identity_markdown(stats), "",
             *(f"- {line}" for line in stats.config_summaries()), *([""] if stats.config_summaries() else []),
             "| figure | value | |", "|---|---:|---|",
             *(f"| {label} | {value} | {note} |" for label, value, note in summary_figures(stats))]
    if gates:
        lines += ["", "## Quality gates", "", "| result | gate | measured |", "|---|---|---|"]
        lines += [f"| {'pass' if r.passed else '**FAIL**'} | `{r.name}` | {r.message} |" for r in gates]
    lines += ["", "## Drop reasons", ""]
    lines += (["| reason | dropped |", "|---|---:|", *(f"| `{k}` | {v} |" for k, v in stats.drops.items())]
              if stats.drops else ["No candidate was dropped."])
    top = stats.verb_counts.most_common(10)
    lines += ["", "## Top root verbs", "", ", ".join(f"{verb} ({count})" for verb, count in top) or "none found"]
    return "\n".join(lines) + "\n"


def _identity_markdown(stats: RunStats) -> str:
    return (f"Teacher `{stats.provenance_value('teacher') or 'unknown'}`, method "
            f"`{stats.provenance_value('method') or 'unknown'}`, {len(stats.seed_instructions)} seeds "
            f"(sha256 `{(stats.seeds_hash or 'unknown')[:12]}`), selfinstruct {stats.version}.")


def report_markdown(run_dir: Path, gate_config: GateConfig | None = None) -> str:
    """The report's summary as markdown, e.g. for `create_markdown_artifact`."""
    stats = collect_stats(run_dir)
    return render_markdown(stats, evaluate_gates(stats, gate_config))
