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
