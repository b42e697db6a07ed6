"""The command line: each command parses flags, builds a config, calls one library function, shows the result.

Exit codes live here and only here: see EXIT_CODES.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .budget import Spent
from .config import build_config, build_model, key_line, read_config_file
from .errors import InputError, SelfInstructError, StoreError, TeacherError
from .dedup import STAGES, dedup_files
from .errors import ConfigError
from .export import export_run
from .seeds import load_seeds
from .gates import GateError, GateResult, enforce_gates
from .verify import verify_run
from .pipeline import GrowResult, RoundSummary, grow as grow_pool

if TYPE_CHECKING:
    from .rebuild import RebuildResult

app = typer.Typer(
    help="Grow instruction-tuning data from seed tasks with a teacher LLM (Self-Instruct / Alpaca).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

# Error class → exit code; the first matching class wins.
EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (InputError, 2),
    (TeacherError, 3),
    (StoreError, 4),
    (GateError, 5),
    (SelfInstructError, 1),
]


def fail(error: BaseException) -> NoReturn:
    code = next(code for kind, code in EXIT_CODES if isinstance(error, kind))
    console.print(f"[bold red]error:[/] {error}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def run_command(action: Callable[[], Any]) -> Any:
    """Run `action`, turning our errors into one message and an exit code, Ctrl-C into 130."""
    try:
        return action()
    except SelfInstructError as err:
        fail(err)
    except KeyboardInterrupt:
        console.print("interrupted: the store keeps every committed round; run the same command to continue")
        raise typer.Exit(130) from None


def _stop_on_sigterm() -> None:
    # SIGTERM behaves as Ctrl-C, so `with` blocks stop the teacher server on the way out.
    def interrupt(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each request and round.")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def grow(
    out: Annotated[Optional[Path], typer.Option(help="Run directory (store, alpaca_data.json).  [default: outputs/default]")] = None,
    target: Annotated[Optional[int], typer.Option(help="Accepted examples to reach.  [default: 25]")] = None,
    seeds: Annotated[Optional[Path], typer.Option(help="Seed tasks: Self-Instruct JSONL or Alpaca JSON/JSONL.  [default: seeds/seed_tasks.jsonl]")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Teacher backend: cpu, openai or vllm.  [default: cpu]")] = None,
    model: Annotated[Optional[str], typer.Option(help="Teacher model (a GGUF path for cpu, a model name otherwise).")] = None,
    base_url: Annotated[Optional[list[str]], typer.Option(help="OpenAI-compatible endpoint; repeat for several.")] = None,
    api: Annotated[Optional[str], typer.Option(help="chat or completions (prompts batched per request).  [default: chat for openai, completions otherwise]")] = None,
    method: Annotated[Optional[str], typer.Option(help="self-instruct or alpaca.  [default: self-instruct]")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file of grow settings; flags override it.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed for demo sampling.")] = None,
    prompts_per_round: Annotated[Optional[int], typer.Option(help="Generation requests per round.  [default: 4 for cpu, 8 otherwise]")] = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Teacher requests in flight at most.  [default: 4 for cpu, 128 otherwise]")] = None,
    batch_prompts: Annotated[Optional[int], typer.Option(help="Prompts per completions request.  [default: 32 on completions, 1 for cpu and chat]")] = None,
    pipeline_rounds: Annotated[Optional[int], typer.Option(help="Rounds in flight at once.  [default: 1 for cpu, 16 otherwise]")] = None,
    max_rounds: Annotated[Optional[int], typer.Option(help="Stop after this many rounds in this run.")] = None,
    request_timeout: Annotated[Optional[float], typer.Option(help="Seconds per teacher request.  [default: 120]")] = None,
    max_attempts: Annotated[Optional[int], typer.Option(help="Tries per request before it is dead-lettered.  [default: 5]")] = None,
    requests_per_minute: Annotated[Optional[int], typer.Option(help="Rate limit (else from x-ratelimit-* headers).")] = None,
    tokens_per_minute: Annotated[Optional[int], typer.Option(help="Token rate limit (else from x-ratelimit-* headers).")] = None,
    failure_threshold: Annotated[Optional[float], typer.Option(help="Stop when this share of the last 200 requests failed.  [default: 0.5]")] = None,
    max_requests: Annotated[Optional[int], typer.Option(help="Budget: teacher requests over the run directory.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="Budget: prompt + completion tokens over the run directory.")] = None,
    max_cost: Annotated[Optional[float], typer.Option(help="Budget: estimated USD over the run directory (needs a price).")] = None,
    tensor_parallel_size: Annotated[Optional[int], typer.Option(help="vllm serve: GPUs per model replica.")] = None,
    gpu_memory_utilization: Annotated[Optional[float], typer.Option(help="vllm serve: share of GPU memory to use.")] = None,
    max_model_len: Annotated[Optional[int], typer.Option(help="vllm serve: context length.")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="vllm serve: weight dtype (auto, bfloat16, float16).")] = None,
    prefix_caching: Annotated[Optional[bool], typer.Option("--prefix-caching/--no-prefix-caching", help="vllm serve: reuse shared prompt prefixes.")] = None,
    vllm_arg: Annotated[Optional[list[str]], typer.Option(help="vllm serve: one more argument, e.g. --vllm-arg=--enforce-eager; repeat.")] = None,
) -> None:
    """Grow the pool in --out to --target accepted examples; run again to continue."""
    flags = {
        "out": out, "target": target, "seeds": seeds, "backend": backend, "model": model, "base_url": base_url,
        "api": api, "method": method, "seed": seed, "prompts_per_round": prompts_per_round,
        "concurrency": concurrency, "batch_prompts": batch_prompts, "pipeline_rounds": pipeline_rounds,
        "max_rounds": max_rounds, "request_timeout": request_timeout, "max_attempts": max_attempts, "requests_per_minute": requests_per_minute,
        "tokens_per_minute": tokens_per_minute, "failure_threshold": failure_threshold,
        "max_requests": max_requests, "max_tokens": max_tokens, "max_cost": max_cost,
    }
    vllm_flags = {
        "tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
        "max_model_len": max_model_len, "dtype": dtype, "prefix_caching": prefix_caching,
        "extra_args": tuple(vllm_arg) if vllm_arg else None,
    }

    def action() -> None:
        values = read_config_file(config) if config else {}
        values.update({key: value for key, value in flags.items() if value is not None})
        if any(value is not None for value in vllm_flags.values()):
            values["vllm"] = {**values.get("vllm", {}), **{k: v for k, v in vllm_flags.items() if v is not None}}
        def locate(loc: tuple[str, ...]) -> str:
            # A flag overrides the file: name the flag's value as the culprit, else the file's line.
            from_flags = flags.get(loc[0]) is not None or (loc[0] == "vllm" and len(loc) > 1
                                                           and vllm_flags.get(loc[1]) is not None)
            if config is None or from_flags:
                return "options"
            line = key_line(config, loc)
            return f"{config}:{line}" if line else str(config)

        grow_config = build_config(values, str(config) if config else "options", locate=locate)
        load_seeds(grow_config.seeds)  # a bad seed file fails before the progress bar appears
        _stop_on_sigterm()
        started = time.perf_counter()
        with _GrowProgress(grow_config.target) as progress:
            result = grow_pool(grow_config, on_round=progress.update)
        _print_summary(result, time.perf_counter() - started)

    run_command(action)


@app.command()
def dedup(
    input: Annotated[Path, typer.Option("--input", help="Candidates: JSON lines with instruction (input, output optional).")],
    output: Annotated[Path, typer.Option(help="Decisions: one JSON line per candidate, written atomically.")],
    pool: Annotated[Optional[Path], typer.Option(help="Pool to start from (same format); empty by default.")] = None,
    threshold: Annotated[float, typer.Option(help="Drop when ROUGE-L F against the pool is above this.")] = 0.7,
    stages: Annotated[str, typer.Option(help="Comma-separated: rouge, minhash.")] = "rouge,minhash",
) -> None:
    """Decide keep/drop for candidates in order, as the grow loop does (ROUGE-L, then MinHash LSH)."""
    def action() -> dict[str, int]:
        chosen = [stage.strip() for stage in stages.split(",") if stage.strip()]
        unknown = sorted(set(chosen) - set(STAGES))
        if unknown or not chosen:
            raise ConfigError("--stages", "stages", f"a comma-separated subset of {', '.join(STAGES)}", stages)
        return dedup_files(input, output, pool, threshold, tuple(chosen))

    counts = run_command(action)
    summary = ", ".join(f"{key} {value}" for key, value in counts.items())
    console.print(f"[bold green]wrote[/] {output}: {summary}", highlight=False)


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="Run directory: reads its store, writes the files beside it.")],
    format: Annotated[list[str], typer.Option(
        "--format", help="alpaca, jsonl, messages, prompt_completion, text, parquet or all; repeat or "
                         "comma-separate for several.")],
    val_fraction: Annotated[float, typer.Option(help="Share of examples in validation.parquet.")] = 0.02,
    seed: Annotated[int, typer.Option(help="Seed of the train/validation split.")] = 0,
    instances: Annotated[str, typer.Option(
        help="Rows per accepted task: all (every instance a row), first, or a number.")] = "all",
    system: Annotated[Optional[str], typer.Option(
        help="System prompt opening every chat row (messages, prompt_completion).")] = None,
) -> None:
    """Export accepted examples for trainers, with dataset_info.json, provenance.jsonl and the card README.md."""
    paths = run_command(lambda: export_run(out, format, val_fraction=val_fraction, seed=seed, instances=instances,
                                           system=system))
    for path in paths:
        console.print(f"wrote {path}", highlight=False)


@app.command()
def rebuild(
    source: Annotated[Path, typer.Option("--from", help="Run directory whose stored teacher replies to re-read.")],
    out: Annotated[Path, typer.Option(help="New run directory to build (must not hold files).")],
    config: Annotated[Optional[Path], typer.Option(
        help="TOML or JSON file of settings that override the source run's (e.g. [filters]).")] = None,
) -> None:
    """Re-derive a run's pool from its stored replies with today's parser and filters; sends no request."""
    def action() -> RebuildResult:
        from .rebuild import rebuild as rebuild_run

        return rebuild_run(source, out, read_config_file(config) if config else None)

    result = run_command(action)
    console.print(
        f"[bold green]rebuilt:[/] {result.tasks} tasks, {result.rows} rows in {out} (source: {result.source_tasks} "
        f"tasks, {result.source_rows} rows); {result.rounds} rounds replayed, {result.usage.requests} requests "
        f"sent, {result.usage.cached} answers from the source's store; dead letters: "
        f"{_by_class(result.dead_letters)}", highlight=False)
    if result.drops:
        console.print("dropped: " + ", ".join(f"{reason} {count}" for reason, count in result.drops.items()))


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Run directory to report on.")],
    fail_on_gates: Annotated[bool, typer.Option(help="Exit non-zero when a quality gate fails.")] = False,
) -> None:
    """Write DIR/report/report.html: figures, drop samples and quality gates."""
    def action() -> None:
        from .report import build_report  # matplotlib loads only for this command

        result = build_report(out)
        _print_gates(result.gates)
        console.print(f"[bold green]report:[/] {result.path}", highlight=False)
        if fail_on_gates:
            enforce_gates(result.gates)

    run_command(action)


def _print_gates(results: list[GateResult]) -> None:
    for result in results:
        mark = "[green]pass[/]" if result.passed else "[bold red]FAIL[/]"
        console.print(f"  {mark} {result.name}: {result.message}", highlight=False)


@app.command()
def verify(out: Annotated[Path, typer.Option(help="Run directory to check.")]) -> None:
    """Check a run directory: SQLite integrity, export against store, counts, ROUGE-L, provenance."""
    problems = run_command(lambda: verify_run(out))
    if problems:
        console.print(f"[bold red]{len(problems)} problem(s) in {out}:[/]")
        for problem in problems:
            console.print(f"  - {problem}", highlight=False, markup=False)
        raise typer.Exit(1)
    console.print(f"[bold green]sound:[/] {out}")


@app.command()
def convert(
    data: Annotated[str, typer.Option(help="Labelled data: JSON, JSONL, CSV, TSV, parquet, a saved dataset dir or a hub name.")],
    out: Annotated[Path, typer.Option(help="Run directory to write (store, exports, card); replaced only on success.")],
    task: Annotated[Optional[str], typer.Option(help="Family: extractive-qa, classification, summarization, nli, paraphrase, yes-no-qa.")] = None,
    templates: Annotated[Optional[Path], typer.Option(help="TOML file of your own templates (Jinja2).")] = None,
    columns: Annotated[Optional[str], typer.Option(help="field=column,… where the usual column names do not fit.")] = None,
    labels: Annotated[Optional[str], typer.Option(help="value=label,… (e.g. 0=negative,1=positive) or a file.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Split to read (saved/hub) or that the file holds; eval rows stay out of train.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Read at most this many rows.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the per-row template choice and of few-shot exemplars.")] = 0,
    shots: Annotated[int, typer.Option(help="Few-shot exemplars per row, from the data's training part.")] = 0,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip bad rows, counted by reason, instead of stopping.")] = False,
    headerless: Annotated[bool, typer.Option("--headerless", help="CSV/TSV without a header: columns are 0, 1, ….")] = False,
    unanswerable: Annotated[Optional[str], typer.Option(help="Answer for unanswerable questions (else they are skipped).")] = None,
) -> None:
    """Turn a labelled data set into instruction rows through templates, in a run directory like grow's."""
    from .convert import ConvertConfig, convert_dataset

    def action() -> Any:
        settings = {"data": data, "out": out, "task": task, "templates": templates, "columns": columns,
                    "labels": labels, "split": split, "limit": limit, "seed": seed, "shots": shots,
                    "skip_bad": skip_bad, "headerless": headerless, "unanswerable": unanswerable}
        return convert_dataset(build_model(ConvertConfig, settings, "options"))

    result = run_command(action)
    used = ", ".join(f"{name} {count}" for name, count in sorted(result.used.items()))
    console.print(f"[bold green]converted[/] {result.source} → {result.out}: {len(result.rows)} rows, "
                  f"{len(result.used)} of {len(result.templates)} templates used ({used})", highlight=False)
    skipped = ", ".join(f"{reason} {count}" for reason, count in result.skipped.most_common()) or "none"
    console.print(f"skipped: {skipped}", highlight=False)


@app.command()
def mix(
    config: Annotated[Path, typer.Option(help="Mix config (TOML): target, cap, temperature, seed, [[source]], [decontaminate].")],
    out: Annotated[Path, typer.Option(help="Run directory of the mix (store, exports, card with the mixture table).")],
) -> None:
    """Mix grow runs, conversions and Alpaca files into one trainer-ready set: rates, dedup, decontamination."""
    from .mix import mix_run, read_mix_config

    result = run_command(lambda: mix_run(read_mix_config(config), out))
    for line in result.table_lines():
        console.print(line, highlight=False, markup=False)
    console.print(f"[bold green]mixed[/] {len(result.rows)} rows → {out}", highlight=False)


class _GrowProgress:
    """A rich progress bar: accepted / target, drops by reason, rate."""

    def __init__(self, target: int):
        self.progress = Progress(
            TextColumn("[bold]growing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self.task = self.progress.add_task("grow", total=target, info="starting the teacher…")
        self.drops: dict[str, int] = {}
        self.started = time.perf_counter()
        self.kept = 0

    def __enter__(self) -> "_GrowProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, summary: RoundSummary) -> None:
        for reason, count in summary.dropped.items():
            self.drops[reason] = self.drops.get(reason, 0) + count
        self.kept += summary.kept
        rate = self.kept / max(time.perf_counter() - self.started, 1e-9) * 60
        drops = " ".join(f"{reason}={count}" for reason, count in sorted(self.drops.items(), key=lambda kv: -kv[1]))
        info = f"round {summary.round} · {rate:.1f}/min · {_spent_text(summary.spent)} · dropped: {drops or 'none'}"
        self.progress.update(self.task, completed=summary.accepted_total, info=info)


def _spent_text(spent: Spent | None) -> str:
    """'1,234 req · 456,789 tok · $0.0123' for the run directory (cost '?' when a price is unknown)."""
    if spent is None:
        return "no requests"
    money = "$?" if spent.cost is None else f"${spent.cost:.4f}"
    return f"{spent.requests:,} req · {spent.tokens:,} tok · {money}"


def _by_class(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _print_summary(result: GrowResult, seconds: float) -> None:
    console.print(
        f"[bold green]done:[/] {result.accepted}/{result.target} accepted in {seconds:.0f} s "
        f"({result.rounds} rounds this run; {result.stopped or 'stopped'}) → {result.alpaca_path}"
    )
    usage = result.usage
    stages = ", ".join(f"{stage} {part.requests}+{part.cached} cached ({part.prompt_tokens:,}+"
                       f"{part.completion_tokens:,} tok)" for stage, part in usage.by_stage.items())
    console.print(f"this run: {usage.requests:,} requests answered, {usage.cached:,} from the store's cache, "
                  f"{usage.failed:,} dead-lettered; {usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} "
                  f"completion tokens; {usage.seconds:,.0f} request-seconds" + (f" [{stages}]" if stages else ""),
                  highlight=False)
    console.print(f"failed attempts: {sum(usage.errors.values())} ({_by_class(usage.errors)}); "
                  f"{usage.retried} retried, dead-lettered by cause: {_by_class(usage.dead)}", highlight=False)
    console.print(f"run directory total: {_spent_text(result.spent)}; dead letters: {_by_class(result.dead_letters)}",
                  highlight=False)
    if result.drops:
        console.print("dropped: " + ", ".join(f"{reason} {count}" for reason, count in result.drops.items()))


def run() -> None:  # pragma: no cover - console entry for `python -m selfinstruct`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
