"""The card of a mix: the mixture table (source, rows available, rate, target and actual share, rows taken,
removed by dedup and by decontamination) and how the rates were set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..convert.card import front_matter, loading, split_line
from .config import MixConfig

if TYPE_CHECKING:
    from .mix import MixResult


def _rate_rule(config: MixConfig) -> str:
    cap = f"min(n, {config.cap})" if config.cap else "n"
    power = f" ** (1/{config.temperature:g})" if config.temperature != 1 else ""
    return f"rate = {cap}{power} over the rows left after dedup and decontamination"


def mix_card(run_dir: Path, title: str, config: MixConfig, result: MixResult) -> str:
    table = [f"| {line.label} | {line.available} | {line.dedup} | {line.decontaminated} | "
             f"{'fixed ' + format(line.weight, 'g') if line.weight else format(line.rate, '.2f')} | "
             f"{line.target_share:.1%} | {result.actual_share(line):.1%} | {line.taken} |" for line in result.lines]
    whole = [line.label for line in result.lines if line.clean and line.taken == line.clean]
    evals = ", ".join(f"`{path.name}`" for path in config.decontaminate.files) or "none"
    lines = [
        *front_matter(["instruction-tuning", "mixture"], len(result.rows)), "", f"# {title}", "",
        f"A mixture of {len(result.lines)} sources, {len(result.rows)} rows (target {config.target}), made by "
        f"selfinstruct {__version__}.", "",
        "## Mixture", "",
        "| source | rows available | removed by dedup | removed by decontamination | rate | target share | "
        "actual share | rows taken |", "|---|---:|---:|---:|---:|---:|---:|---:|", *table, "",
        f"- Rates: {_rate_rule(config)}; a fixed `weight` is a share of the target, the other sources share the "
        "rest by rate.",
        f"- Taken whole (smaller than their share, the rest redistributed to the others): "
        f"{', '.join(whole) or 'none'}",
        f"- Dedup across sources, earlier sources first: exact {'on' if config.dedup.exact else 'off'}, MinHash on "
        f"the whole example ≥ {config.dedup.minhash_threshold} {'on' if config.dedup.minhash else 'off'}, ROUGE-L "
        f"> {config.dedup.rouge_threshold} on instructions between synthetic rows only "
        f"{'on' if config.dedup.rouge else 'off'}",
        f"- Decontamination: rows sharing a {config.decontaminate.ngram}-word n-gram with {evals} removed; every "
        "removed row is listed in `removed.jsonl` with its reason and evidence",
        f"- Sampling seed {config.seed}. {split_line(result.rows, config.val_fraction, config.seed)}", "",
        "## Licence", "", "Each row keeps its source's terms: a converted row its data set's licence, a grown row "
        "its teacher's terms. See each source's own card; `provenance.jsonl` names every row's source.", "",
        *loading(run_dir), "",
    ]
    return "\n".join(lines)
