"""Code-health figures of the reprl tree, as JSON: the before/after numbers of a refactor.

Prints one JSON object with

- ``files``: line counts of every Python file of the four packages, and those over 800 lines;
- ``import_cycles``: the strongly connected components of the module import graph (imports at
  module level and inside functions alike; ``TYPE_CHECKING`` blocks excluded), each a list of
  modules: a cycle is a circle however late one side imports;
- ``c901``: the functions ruff's mccabe check (max-complexity 15) flags;
- ``longest_functions``: the 10 longest functions and methods, in lines;
- ``duplicates``: the summary line of the ``duplicates`` tool (six or more shared lines), when
  it is installed.

Usage::

    python experiments/bench/code_health.py > health.json
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agents", "representations", "envs", "experiments")
MAX_LINES = 800


def python_files() -> list[Path]:
    """Every ``.py`` file of the four packages, sorted."""
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def module_name(path: Path) -> str:
    """``envs/lab/lab.py`` -> ``envs.lab.lab``; ``envs/__init__.py`` -> ``envs``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(tree: ast.AST, this: str, is_package: bool, known: set[str]) -> set[str]:
    """The reprl modules ``tree`` imports (resolved to the longest known module name)."""
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = this.split(".") if is_package else this.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != this:
                found.add(name)
    return found


def import_cycles(files: list[Path]) -> list[list[str]]:
    """Strongly connected components (size > 1) of the import graph (Tarjan)."""
    known = {module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    for p in files:
        name = module_name(p)
        tree = ast.parse(p.read_text())
        deps = imported_modules(tree, name, p.name == "__init__.py", known)
        # A package's own __init__ is imported with any submodule: not an edge of its own.
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def longest_functions(files: list[Path], n: int = 10) -> list[dict[str, object]]:
    """The ``n`` longest function definitions, with file, line and length in lines."""
    rows = []
    for p in files:
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                rows.append(
                    {
                        "function": node.name,
                        "at": f"{p.relative_to(ROOT)}:{node.lineno}",
                        "lines": length,
                    }
                )
    rows.sort(key=lambda r: -int(r["lines"]))  # type: ignore[call-overload]
    return rows[:n]


def c901() -> list[str]:
    """ruff's C901 findings at max-complexity 15, one ``path:line: message`` each."""
    ruff = shutil.which("ruff")
    if ruff is None:
        return ["ruff not installed"]
    proc = subprocess.run(
        [
            ruff,
            "check",
            "--select",
            "C901",
            "--config",
            "lint.mccabe.max-complexity=15",
            "--output-format",
            "concise",
            *PACKAGES,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return [line for line in proc.stdout.splitlines() if re.search(r":\d+:\d+: C901", line)]


def duplicates_summary() -> str | None:
    """The first line of ``duplicates`` over the packages, or None where it is missing."""
    tool = shutil.which("duplicates")
    if tool is None:
        return None
    lines = []
    for pkg in PACKAGES:
        proc = subprocess.run(
            [tool, "--repo", str(ROOT / pkg), "--seconds", "60"],
            capture_output=True,
            text=True,
            check=False,
        )
        lines.append(f"{pkg}: {proc.stdout.splitlines()[0] if proc.stdout else ''}")
    return "; ".join(lines)


def main() -> None:
    files = python_files()
    counts = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in files}
    report = {
        "python_files": len(files),
        "python_lines": sum(counts.values()),
        "files_over_800": {k: v for k, v in counts.items() if v > MAX_LINES},
        "import_cycles": import_cycles(files),
        "c901": c901(),
        "longest_functions": longest_functions(files),
        "duplicates": duplicates_summary(),
        "files": counts,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
