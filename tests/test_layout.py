"""The package's layout: imports point down the data path, and no module takes part in an import cycle.

Read from the source with `ast` (every import, deferred ones inside functions included), so a cycle hidden
behind a function-level import counts as one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "selfinstruct"

# Stages in data-path order; a module may import its own stage and the ones before it, never a later one.
STAGES = [
    ("vocabulary", {"selfinstruct", "selfinstruct.core"}),
    ("teacher", {"selfinstruct.teacher"}),
    ("filters", {"selfinstruct.filters"}),
    ("generate", {"selfinstruct.generate"}),
    ("judge", {"selfinstruct.judge"}),
    ("export", {"selfinstruct.export"}),
    ("report", {"selfinstruct.report"}),
    ("routes", {"selfinstruct.grow", "selfinstruct.rebuild", "selfinstruct.dedup_file", "selfinstruct.convert"}),
    ("mix", {"selfinstruct.mix"}),  # mixes read conversions' run directories and write through convert's writer
    ("publish", {"selfinstruct.publish"}),
    ("shells", {"selfinstruct.cli", "selfinstruct.__main__", "selfinstruct.flows"}),
]


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports (a `from X import y` counts X.y when y is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = module_names()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def stage_of(module: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} belongs to no stage: add it to STAGES"
    return best[0]


def test_every_module_belongs_to_a_stage() -> None:
    for module in graph():
        stage_of(module)


def test_no_module_imports_a_later_stage() -> None:
    back_edges = [f"{module} ({STAGES[stage_of(module)][0]}) imports {target} ({STAGES[stage_of(target)][0]})"
                  for module, targets in graph().items() for target in sorted(targets)
                  if stage_of(target) > stage_of(module)]
    assert back_edges == []


def test_the_package_root_imports_nothing_of_ours() -> None:
    assert graph()["selfinstruct"] == set()


def test_no_import_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_test_fakes_are_not_shipped() -> None:
    assert not (PACKAGE / "testing").exists()
    assert not any("fake" in path.stem for path in PACKAGE.rglob("*.py"))
