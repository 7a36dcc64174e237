"""The tree's import rules: no circles, and every import runs down the layers (README, "Where things live").

Layers, lowest first; a module imports its own unit or a lower layer, never a higher one:

- models/, data_contracts/ and pipelines/exit_codes.py: the foundations, each on its own;
- tasks/ base: errors, settings, evidence, policy, datasets, registry, stores, ledger/;
- tasks/<gate>/ in lifecycle order (LIFECYCLE): a gate may use the gates before it, never after;
- tasks/gates.py: the Prefect tasks over all gates;
- pipelines/ flows and their runtime; then pipelines/commands/; then pipelines/cli.py;
- lockgate/: the Python API over the commands, the top.

Imports inside functions count as much as module-level ones: a lazy import hides a circle,
it does not open it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lockgate", "tasks", "pipelines", "models", "data_contracts")
LIFECYCLE = ("registration", "validation", "compilation", "canary", "drift", "governance", "batch")
BASE_FOLDERS = ("ledger",)
# The approval gate is a Prefect pause/resume by design: its channel is the one gate module that talks to Prefect.
PREFECT_MODULES = {"tasks.gates", "tasks.governance.approval_prefect"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body (submodules resolved, parents not implied)."""
    modules = {module_name(p): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found.update(t for t in targets if t in modules and t != mod)
        graph[mod] = found
    return graph


def imports_prefect(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        if any(n == "prefect" or n.startswith("prefect.") for n in names):
            return True
    return False


def place(mod: str) -> tuple[int, str]:
    """(layer, unit) of a module: it may import its unit and any lower layer."""
    parts = mod.split(".")
    if parts[0] in ("models", "data_contracts") or mod == "pipelines.exit_codes":
        return 0, mod if mod == "pipelines.exit_codes" else parts[0]
    if parts[0] == "tasks":
        if len(parts) >= 2 and parts[1] in LIFECYCLE:
            return 2 + LIFECYCLE.index(parts[1]), f"tasks.{parts[1]}"
        if mod == "tasks.gates":
            return 2 + len(LIFECYCLE), mod
        return 1, "tasks"
    if parts[0] == "lockgate":
        return 13, "lockgate"
    if mod == "pipelines.cli":
        return 12, mod
    if len(parts) > 1 and parts[1] == "commands":
        return 11, "pipelines.commands"
    return 10, "pipelines"


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for a, targets in sorted(graph.items()):
        (la, ua) = place(a)
        for b in sorted(targets):
            (lb, ub) = place(b)
            if ua != ub and lb >= la:
                bad.append(f"{a} -> {b}")
    return bad


def test_no_module_imports_one_that_imports_it_back():
    assert circles(project_imports()) == []


def test_imports_run_down_the_layers_and_along_the_lifecycle():
    assert upward_imports(project_imports()) == []


def test_the_checks_catch_a_circle_and_an_upward_import():
    graph = {"tasks.canary.gate": {"tasks.canary.stats"}, "tasks.canary.stats": {"tasks.canary.gate"},
             "tasks.validation.gate": {"tasks.batch.partition"}, "tasks.batch.partition": {"tasks.validation.gate"},
             "tasks.policy": {"tasks.gates"}, "models.mlp": {"tasks.evidence"}, "pipelines.commands.runs": {"pipelines.cli"}}
    assert ["tasks.canary.gate", "tasks.canary.stats"] in circles(graph)
    assert upward_imports(graph) == ["models.mlp -> tasks.evidence", "pipelines.commands.runs -> pipelines.cli",
                                     "tasks.policy -> tasks.gates", "tasks.validation.gate -> tasks.batch.partition"]


def test_every_tasks_folder_is_a_gate_in_lifecycle_order_or_the_base():
    folders = {p.parent.name for p in (ROOT / "tasks").glob("*/__init__.py")}
    assert folders == set(LIFECYCLE) | set(BASE_FOLDERS)


@pytest.mark.parametrize("package", ["tasks", "models", "data_contracts"])
def test_only_the_gate_wrappers_talk_to_prefect(package):
    talking = {module_name(p) for p in (ROOT / package).rglob("*.py") if imports_prefect(p)}
    assert talking <= PREFECT_MODULES
