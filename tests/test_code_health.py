"""The layout's contract (issue 24): no import circles, no file over 800 lines. ruff's C901 at
max-complexity 15 is on in pyproject.toml, so CI's ``ruff check`` holds function length."""

from __future__ import annotations

import ast

from experiments.bench.code_health import (
    MAX_LINES,
    ROOT,
    import_cycles,
    imported_modules,
    python_files,
)


def test_no_import_circles() -> None:
    assert import_cycles(python_files()) == []


def test_no_file_over_800_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_imports_inside_functions_count_and_type_checking_blocks_do_not() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import a.b\n"
        "def f():\n    from c import d\n"
        "from . import e\n"
    )
    known = {"a", "a.b", "c", "c.d", "pkg", "pkg.e", "pkg.m"}
    assert imported_modules(tree, "pkg.m", False, known) == {"c", "c.d", "pkg", "pkg.e"}
