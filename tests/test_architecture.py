"""The house rules of docs/architecture.md, checked on the source: the one-way flow
importers -> cim_core <- analyses <- services, small modules and short functions."""
from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("cim_core", "importers", "analyses", "services", "sample_models")
# What each part may import of the others (services.cli is listed apart: it ties everything together).
ALLOWED = {
    "cim_core": set(),
    "importers": {"cim_core"},
    "analyses": {"cim_core"},
    "services": {"cim_core", "analyses", "services"},
    "services.cli": {"cim_core", "importers", "analyses", "services", "sample_models"},
    "sample_models": {"cim_core", "importers", "sample_models"},
}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _sources(*suffixes: str) -> list[Path]:
    """The project's own files (tracked, or new and not ignored) of these kinds."""
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    return [ROOT / n for n in names if Path(n).suffix in suffixes and n.split("/")[0] in (*PACKAGES, "bench", "viewer")
            and (ROOT / n).exists()]


def _part(module: str) -> str:
    return "services.cli" if module.startswith("services.cli") else module.split(".")[0]


def _imports(path: Path) -> set[str]:
    """Top-level packages of ours that a module imports (relative imports stay within its package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        for name in names:
            if name.split(".")[0] in PACKAGES:
                found.add(name)
    return found


def test_dependencies_flow_one_way():
    wrong = []
    for path in _sources(".py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "bench":
            continue
        me = _part(".".join(rel.with_suffix("").parts))
        for imported in _imports(path):
            target = _part(imported)
            if target == me:
                continue
            if target == "services.cli" or (target != me.split(".")[0] and target not in ALLOWED[me]):
                wrong.append(f"{rel} imports {imported}")
    assert wrong == []


def test_modules_are_small_and_functions_short():
    big = [f"{p.relative_to(ROOT)}: {n} lines" for p in _sources(".py", ".js")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    long = []
    for path in _sources(".py"):
        if "migrations" in path.parts:  # frozen history: a migration is kept as it was applied
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert big == [] and long == []
