"""The README's set-up commands are the ones CI and users run."""

import re

from conftest import ROOT


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(python3 -m venv .venv && [^\n]+)\n```", readme)


def test_readme_has_a_run_command_and_a_test_command() -> None:
    run, test = _commands()
    assert "selfinstruct grow" in run
    assert "pytest" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = _commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def _options(command_name: str | None = None) -> set[str]:
    import typer.main

    from selfinstruct.cli import app

    commands = typer.main.get_command(app).commands
    chosen = [commands[command_name]] if command_name else list(commands.values())
    return {opt for command in chosen for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_the_grow_synopsis_names_real_grow_flags() -> None:
    readme = (ROOT / "README.md").read_text()
    synopsis = readme[readme.index("selfinstruct grow --out DIR"):readme.index("selfinstruct dedup --input")]
    flags = set(re.findall(r"--[a-z][a-z-]*", synopsis))
    assert "--set" in flags and flags <= _options("grow"), flags - _options("grow")


def test_the_readme_names_no_old_or_unknown_flag() -> None:
    from selfinstruct.cli import OLD_GROW_FLAGS

    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`(--[a-z][a-z-]*)", readme))
    assert not named & set(OLD_GROW_FLAGS)
    external = {"--no-deps"}  # pip's
    assert named - external <= _options(), named - external - _options()
