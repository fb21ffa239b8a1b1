"""The layer contract: experiments > agents > representations > envs.

Each package imports only from itself and the packages below it, module-level and
function-level imports alike (a world knows nothing of learning, a representation knows no RL,
an agent knows no CLI). The tests mirror the packages and keep to the same rule, so a test of
a layer never needs a layer above it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RANK = {"envs": 0, "representations": 1, "agents": 2, "experiments": 3}


def upward_imports(files: list[Path], rank: int, root: Path = ROOT) -> list[str]:
    bad = []
    for f in files:
        tree = ast.parse(f.read_text(), str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if RANK.get(name.split(".")[0], -1) > rank:
                    bad.append(f"{f.relative_to(root)}:{node.lineno} imports {name}")
    return bad


@pytest.mark.parametrize("package", list(RANK))
def test_packages_import_only_downwards(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found under {package}/"
    assert upward_imports(files, RANK[package]) == []


@pytest.mark.parametrize("package", list(RANK))
def test_tests_of_a_layer_import_only_downwards(package: str) -> None:
    files = sorted((ROOT / "tests" / package).rglob("*.py"))
    assert upward_imports(files, RANK[package]) == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    f = tmp_path / "envs" / "world.py"
    f.parent.mkdir()
    f.write_text("import numpy\n\n\ndef f():\n    from agents import make_agent\n")
    assert upward_imports([f], RANK["envs"], tmp_path) == ["envs/world.py:5 imports agents"]
