"""The card of a mix, from its store: the mixture table (source, rows available, removed by dedup and by
decontamination, rate, target and actual share, rows taken) and how the rates and checks were set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import __version__
from ..convert.card import front_matter, loading, split_line, stored_route
from ..core.records import ExampleRow
from .config import MixConfig


def _rate_rule(config: MixConfig) -> str:
    cap = f"min(n, {config.cap})" if config.cap else "n"
    power = f" ** (1/{config.temperature:g})" if config.temperature != 1 else ""
    return f"rate = {cap}{power} over the rows left after dedup and decontamination"


def _table(lines: list[dict[str, Any]], total: int) -> list[str]:
    rows = []
    for line in lines:
        rate = f"fixed {line['weight']:g}" if line["weight"] else f"{line['rate']:.2f}"
        actual = line["taken"] / total if total else 0.0
        rows.append(f"| {line['label']} | {line['available']} | {line['dedup']} | {line['decontaminated']} | "
                    f"{rate} | {line['target_share']:.1%} | {actual:.1%} | {line['taken']} |")
    return ["| source | rows available | removed by dedup | removed by decontamination | rate | target share | "
            "actual share | rows taken |", "|---|---:|---:|---:|---:|---:|---:|---:|", *rows]


def _checks(config: MixConfig) -> list[str]:
    dedup = config.dedup
    evals = ", ".join(f"`{path.name}`" for path in config.decontaminate.files) or "none"
    return [
        f"- Dedup across sources, earlier sources first: exact {'on' if dedup.exact else 'off'}; MinHash on the "
        f"whole example, Jaccard ≥ {dedup.minhash_threshold} {'on' if dedup.minhash else 'off'} (a templated row "
        "against other sources' rows, a synthetic row against all); ROUGE-L > "
        f"{dedup.rouge_threshold} on instructions between synthetic rows only {'on' if dedup.rouge else 'off'}",
        f"- Decontamination: rows sharing a {config.decontaminate.ngram}-word n-gram with {evals} removed; each "
        "removed row is listed in `removed.jsonl` with its reason and evidence",
    ]


def mix_card(run_dir: Path, title: str, meta: dict[str, Any], rows: list[ExampleRow]) -> str:
    config = MixConfig.model_validate(meta["mix"])
    lines: list[dict[str, Any]] = meta["mixture"]
    whole = [line["label"] for line in lines
             if line["taken"] and line["taken"] == line["available"] - line["dedup"] - line["decontaminated"]]
    text = [
        *front_matter(["instruction-tuning", "mixture"], len(rows)), "", f"# {title}", "",
        f"A mixture of {len(lines)} sources, {len(rows)} rows (target {config.target}), made by selfinstruct "
        f"{__version__}.", "", "## Mixture", "", *_table(lines, len(rows)), "",
        f"- Rates: {_rate_rule(config)}; a fixed `weight` is a share of the target, the other sources share the "
        "rest by rate",
        f"- Taken whole (no more rows than their share; what they could not fill went to the others): "
        f"{', '.join(whole) or 'none'}",
        *_checks(config),
        f"- Sampling seed {config.seed}. {split_line(rows, config.val_fraction, config.seed)}", "",
        "## Licence", "", "Each row keeps its source's terms: a converted row its data set's licence, a grown row "
        "its teacher's terms. See each source's own card; `provenance.jsonl` names every row's source.", "",
        *loading(run_dir), "",
    ]
    return "\n".join(text)


def mix_run_card(run_dir: Path, title: str) -> str:
    """README.md of a mix's run directory, from its store."""
    meta, rows, _ = stored_route(run_dir)
    return mix_card(run_dir, title, meta, rows)
