"""The command line: each command parses flags, builds a config, calls one library function, shows the result.

Exit codes live here and only here: see EXIT_CODES.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer
from typer.core import TyperCommand
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .teacher.budget import Spent
from .core.config import RENAMED, GrowConfig, JudgeConfig, build_model, read_config_file
from .core.config_overrides import SettingSpec, common_specs, model_specs, parse_assignment, resolve_config
from .core.errors import InputError, SelfInstructError, StoreError, TeacherError
from .dedup_file import STAGES, dedup_files
from .core.errors import ConfigError
from .judge.scores import Selection
from .publish import export_run
from .core.seeds import load_seeds
from .report.gates import GateError, GateResult, enforce_gates
from .report.verify import verify_run
from .grow import GrowResult, grow as grow_pool, judge as judge_pool
from .generate.pipeline import RoundSummary
from .judge.run import JudgeResult, stored_settings_of

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


# Flags of earlier versions: each fails with a one-line hint to its new spelling.
OLD_GROW_FLAGS: dict[str, str] = {
    **{f"--{old.replace('_', '-')}": f"--{new.replace('_', '-')}" for old, new in RENAMED.items()},
    **{f"--{name.replace('_', '-')}": f"--set vllm.{name}=VALUE" for name in (
        "tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "dtype")},
    "--prefix-caching": "--set vllm.prefix_caching=true",
    "--no-prefix-caching": "--set vllm.prefix_caching=false",
    "--vllm-arg": '--set vllm.extra_args=["--enforce-eager"]',
}


class _GrowCommand(TyperCommand):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        for arg in args:
            if (new := OLD_GROW_FLAGS.get(arg.split("=", 1)[0])) is not None:
                raise typer.BadParameter(f"{arg.split('=', 1)[0]} was renamed: use {new}", ctx=ctx)
        return super().parse_args(ctx, args)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown_default(value: Any) -> str | None:
    if value is None or value == [] or value == ():
        return None
    if isinstance(value, Path) and value.is_absolute():
        with contextlib.suppress(ValueError):
            return str(value.relative_to(Path.cwd()))
    return str(value)


def _setting_parameters(specs: list[SettingSpec]) -> list[inspect.Parameter]:
    """One flag per setting, help and default from the config model."""
    params = []
    for spec in specs:
        help_text = spec.description[:1].upper() + spec.description[1:] + "."
        if (shown := _shown_default(spec.default)) is not None:
            help_text += f"  [default: {shown}]"
        names = [f"{_flag(spec.name)}/--no-{spec.name.replace('_', '-')}"] if spec.kind is bool else [_flag(spec.name)]
        option = typer.Option(None, *names, help=help_text, show_default=False)
        params.append(inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=Optional[spec.kind]))
    return params


_SET_HELP = ("Any other setting, e.g. --set filters.min_words=5 or --set instruction_decoding.temperature=1; "
             "the value is TOML (a number, true, a quoted string, a list in brackets); repeat for several.")


def _grow_parameters() -> list[inspect.Parameter]:
    """`selfinstruct grow`'s options: one flag per common setting, help and default from GrowConfig."""
    params = _setting_parameters(common_specs())
    extra = [
        ("config", Optional[Path], typer.Option(None, help="TOML or JSON file of grow settings; flags override it.")),
        ("set", Optional[list[str]], typer.Option(None, "--set", metavar="SECTION.KEY=VALUE", help=_SET_HELP)),
        ("show_config", bool, typer.Option(False, "--show-config",
                                           help="Print the resolved configuration as JSON and exit.")),
    ]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
               for name, kind, default in extra]
    return params


def grow_config_from_options(options: dict[str, Any]) -> GrowConfig:
    """The GrowConfig a `grow` command line means: config file, then flags, then --set."""
    config = options.pop("config", None)
    settings = dict(parse_assignment(text) for text in options.pop("set", None) or [])
    return resolve_config(config, options, settings, named_where=_flag, settings_where=lambda path: f"--set {path}")


def grow(**options: Any) -> None:
    """Grow the pool in --out to --target accepted examples; run again to continue."""
    show_config = options.pop("show_config", False)

    def action() -> None:
        grow_config = grow_config_from_options(options)
        if show_config:
            typer.echo(grow_config.model_dump_json(indent=2))
            return
        load_seeds(grow_config.seeds)  # a bad seed file fails before the progress bar appears
        _stop_on_sigterm()
        started = time.perf_counter()
        with _GrowProgress(grow_config.target) as progress:
            result = grow_pool(grow_config, on_round=progress.update, on_judged=progress.judged)
        _print_summary(result, time.perf_counter() - started)
        if result.judged is not None:
            _print_judged(result.judged)

    run_command(action)


# Typer reads the options from the signature: derived from GrowConfig, so a new common setting needs no code here.
grow.__signature__ = inspect.Signature(_grow_parameters())  # type: ignore[attr-defined]
grow.__annotations__ = {param.name: param.annotation for param in _grow_parameters()}
app.command(cls=_GrowCommand)(grow)


# `selfinstruct judge`'s named flags: the judge section's settings most runs change (the rest through --set judge.x=y).
JUDGE_FLAGS: tuple[str, ...] = ("backend", "model", "base_url", "api", "structured", "rubric_version", "concurrency",
                                "request_timeout", "max_prompts", "max_total_tokens", "max_cost")


def _judge_parameters() -> list[inspect.Parameter]:
    """`selfinstruct judge`'s options: --out, one flag per JUDGE_FLAGS setting of JudgeConfig, --config, --set."""
    out = typer.Option(..., "--out", help="Run directory whose grown rows to judge.")
    params = [inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=out, annotation=Path)]
    params += _setting_parameters(model_specs(JudgeConfig, JUDGE_FLAGS))
    extra = [
        ("config", Optional[Path], typer.Option(None, help="TOML or JSON file of settings (its [judge] table); "
                                                           "flags override it.")),
        ("set", Optional[list[str]], typer.Option(
            None, "--set", metavar="SECTION.KEY=VALUE",
            help="Any other setting, e.g. --set judge.decoding.max_tokens=300 or --set judge.rubric_version=mine; "
                 "TOML value.")),
        ("show_config", bool, typer.Option(False, "--show-config",
                                           help="Print the resolved configuration as JSON and exit.")),
    ]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
               for name, kind, default in extra]
    return params


def judge_config_from_options(options: dict[str, Any]) -> GrowConfig:
    """The configuration a `judge` command line means: the run's stored grow settings, the config file, the
    judge flags (as judge.<name>), then --set."""
    out: Path = options.pop("out")
    config = options.pop("config", None)
    assigned = dict(parse_assignment(text) for text in options.pop("set", None) or [])
    flags = {f"judge.{name}": value for name, value in options.items() if value is not None}
    settings = flags | assigned
    where = {f"judge.{name}": _flag(name) for name in JUDGE_FLAGS}
    return resolve_config(config, {"out": out}, settings, named_where=_flag, base=stored_settings_of(out),
                          settings_where=lambda path: where.get(path, f"--set {path}"))


def judge(**options: Any) -> None:
    """Score each grown row of --out with a judge model on our rubric (1-5, a reason, category, difficulty).

    The judge defaults to the run's own teacher (its stored backend, model and URL); rows this judge model has
    scored on this rubric version are skipped, so a stopped run continues where it stopped. See docs/judge.md.
    """
    show_config = options.pop("show_config", False)

    def action() -> None:
        config = judge_config_from_options(options)
        if show_config:
            typer.echo(config.model_dump_json(indent=2))
            return
        _stop_on_sigterm()
        with _JudgeProgress() as progress:
            result = judge_pool(config, on_judged=progress.update)
        _print_judged(result)

    run_command(action)


judge.__signature__ = inspect.Signature(_judge_parameters())  # type: ignore[attr-defined]
judge.__annotations__ = {param.name: param.annotation for param in _judge_parameters()}
app.command()(judge)


@app.command()
def serve(
    timezone: Annotated[str, typer.Option(envvar="SELFINSTRUCT_TIMEZONE", help="IANA timezone of the schedules.")] = "UTC",
    cron: Annotated[Optional[list[str]], typer.Option(
        "--cron", metavar="DEPLOYMENT=CRON",
        help="A deployment's schedule, e.g. --cron 'grow=0 2 * * *'; default: grow 0 1 * * *, mix 0 3 * * *.")] = None,
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", metavar="DEPLOYMENT.NAME=VALUE",
        help="A default parameter, e.g. --param grow.target=500 or --param grow.settings.max_cost=2; TOML value; "
             "repeat for several.")] = None,
    deployment: Annotated[Optional[list[str]], typer.Option(
        "--deployment", help="Serve only this deployment (grow, mix); repeat for several.  [default: all]")] = None,
    limit: Annotated[int, typer.Option(help="Flow runs at once in this process (one run directory is grown by "
                                            "one run at a time).")] = 1,
) -> None:
    """Serve every deployment of the project (selfinstruct/grow, selfinstruct/mix) from this process, until Ctrl-C."""
    def action() -> None:
        from .core.config_overrides import apply_settings
        from .flows import build_deployments, serve_deployments

        defaults: dict[str, Any] = {}
        for text in param or []:
            path, value = parse_assignment(text, "--param")
            defaults = apply_settings(defaults, {path: value}, "--param")
        crons = dict(_cron_assignment(text) for text in cron or [])
        serve_deployments(build_deployments(timezone, crons, defaults, deployment), limit)

    run_command(action)


def _cron_assignment(text: str) -> tuple[str, str]:
    name, equals, schedule = text.partition("=")
    if not equals or not name.strip() or not schedule.strip():
        raise ConfigError("--cron", None, "DEPLOYMENT=CRON, e.g. --cron 'grow=0 2 * * *'", repr(text))
    return name.strip(), schedule.strip()


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
    min_score: Annotated[Optional[int], typer.Option(
        help="Keep only rows the judge scored at least this (1-5; the last judge that ran, see `selfinstruct "
             "judge`). Rows without a score are left out unless --keep-unjudged. Recorded: later grows and "
             "verify follow it until an export without --min-score.")] = None,
    keep_unjudged: Annotated[bool, typer.Option(
        "--keep-unjudged", help="With --min-score: also keep rows the judge has not scored.")] = False,
) -> None:
    """Export accepted examples for trainers, with dataset_info.json, provenance.jsonl and the card README.md."""
    def selected(selection: Selection) -> None:
        console.print(selection.describe(), highlight=False)

    paths = run_command(lambda: export_run(out, format, val_fraction=val_fraction, seed=seed, instances=instances,
                                           system=system, min_score=min_score, keep_unjudged=keep_unjudged,
                                           on_selection=selected))
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
        from .report.html import build_report

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
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self.task = self.progress.add_task("growing", total=target, info="starting the teacher…")
        self.drops: dict[str, int] = {}
        self.started = time.perf_counter()
        self.kept = 0
        self.judge_task: Any = None

    def __enter__(self) -> "_GrowProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def judged(self, done: int, total: int) -> None:
        if self.judge_task is None:
            self.judge_task = self.progress.add_task("judging", total=total, info="rows not yet scored")
        self.progress.update(self.judge_task, completed=done)

    def update(self, summary: RoundSummary) -> None:
        for reason, count in summary.dropped.items():
            self.drops[reason] = self.drops.get(reason, 0) + count
        self.kept += summary.kept
        rate = self.kept / max(time.perf_counter() - self.started, 1e-9) * 60
        drops = " ".join(f"{reason}={count}" for reason, count in sorted(self.drops.items(), key=lambda kv: -kv[1]))
        info = f"round {summary.round} · {rate:.1f}/min · {_spent_text(summary.spent)} · dropped: {drops or 'none'}"
        self.progress.update(self.task, completed=summary.accepted_total, info=info)


class _JudgeProgress:
    """A rich progress bar of the rows judged in this run."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("[bold]judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=console, transient=False)
        self.task: Any = None

    def __enter__(self) -> "_JudgeProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("judge", total=total)
        self.progress.update(self.task, completed=done)


def _print_judged(result: JudgeResult) -> None:
    usage = result.usage
    console.print(
        f"[bold green]judged:[/] {result.scored} rows scored by {result.judge_model} ({result.rubric_version}) in "
        f"{result.seconds:.0f} s, {result.unjudged} unjudged (no usable verdict in two replies), {result.failed} "
        f"failed (dead-lettered); {result.scored_before} scored before; {result.left} of {result.rows} rows "
        f"without a score now" + (f"; stopped: {result.stopped}" if result.stopped else ""), highlight=False)
    console.print(f"judge requests this run: {usage.requests:,} answered, {usage.cached:,} from the store's cache, "
                  f"{usage.failed:,} dead-lettered; {usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} "
                  f"completion tokens; judge total in the run directory: {_spent_text(result.spent)}", highlight=False)


def _spent_text(spent: Spent | None) -> str:
    """'1,234 prompts · 456,789 tok · $0.0123' for the run directory (cost '?' when a price is unknown)."""
    if spent is None:
        return "no requests"
    money = "$?" if spent.cost is None else f"${spent.cost:.4f}"
    return f"{spent.prompts:,} prompts · {spent.tokens:,} tok · {money}"


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
