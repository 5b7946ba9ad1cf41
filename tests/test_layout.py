"""The package layout: sub-packages by role, imports flowing one way, no import circle, modules that fit a few screens."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parent.parent / "pipeline"
# who may import whom (SPEC §1 and the layout issue): entry points → runs, serve → contract, transform, warehouse → settings
ALLOWED = {
    "settings": set(),
    "contract": {"settings"},
    "transform": {"settings"},
    "warehouse": {"settings"},
    "runs": {"contract", "transform", "warehouse", "settings"},
    "serve": {"warehouse", "settings"},
    "sample": {"settings"},
    "bench": {"runs", "serve", "sample", "contract", "transform", "warehouse", "settings"},  # transform: timing a builder alone
    "cli": {"runs", "serve", "sample", "bench", "contract", "warehouse", "settings"},
    "__main__": {"cli"},
    "__init__": set(),
}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PIPELINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every pipeline module a file imports, at the top or inside functions (`from pkg import module` included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pipeline":
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in known)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "pipeline")
    return found & known


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PIPELINE.rglob("*.py")}
    return {name: imported_modules(path, set(files)) - {name} for name, path in files.items()}


def role(module: str) -> str:
    """The sub-package (or top-level module) a module belongs to: pipeline.runs.stage → runs."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_module_imports_in_a_circle():
    graph, done, path = import_graph(), set(), []

    def visit(module: str) -> None:
        if module in path:
            pytest.fail("import circle: " + " → ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_imports_flow_from_the_entry_points_down():
    wrong = sorted(
        f"{module} imports {imported}"
        for module, imports in import_graph().items()
        for imported in imports
        if role(imported) != role(module) and role(imported) not in ALLOWED[role(module)] and role(imported) != "__init__"
    )
    assert wrong == []


def test_every_sub_package_has_a_known_role():
    packages = {p.name for p in PIPELINE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(ALLOWED), packages - set(ALLOWED)


@pytest.mark.parametrize("package", ["transform", "contract"])
def test_pure_packages_touch_no_database(package):
    sql = sorted(
        str(path.relative_to(PIPELINE))
        for path in (PIPELINE / package).rglob("*.py")
        if any(isinstance(node, (ast.Import, ast.ImportFrom)) and "sqlalchemy" in ast.dump(node) for node in ast.walk(ast.parse(path.read_text())))
    )
    assert sql == []


def test_modules_fit_a_few_screens():
    long = {str(p.relative_to(PIPELINE)): n for p in PIPELINE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
