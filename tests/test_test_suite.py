"""The test suite's own rules: helpers come from `tests/helpers.py`, never from `conftest.py`, and
the fast tier (`pytest -m "not slow and not corpus"`) keeps at least one test of every test file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

TESTS = REPO / "tests"
# Markers that take a test out of the fast tier (registered in pyproject.toml).
HEAVY = {"slow", "corpus"}


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module an `import` or `from ... import` statement anywhere in `tree` names."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def marker_names(node: ast.expr) -> set[str]:
    """The `pytest.mark.<name>` names an expression holds (a mark, a call of one, or a list)."""
    return {
        sub.attr
        for sub in ast.walk(node)
        if isinstance(sub, ast.Attribute)
        and isinstance(sub.value, ast.Attribute)
        and sub.value.attr == "mark"
    }


def fast_tests(tree: ast.Module) -> list[str]:
    """The test functions of a module (classes included) that no slow or corpus mark removes
    from the fast tier: none when the module-level `pytestmark` holds one."""
    module_marks = {
        mark
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(
            isinstance(target, ast.Name) and target.id == "pytestmark" for target in node.targets
        )
        for mark in marker_names(node.value)
    }
    if module_marks & HEAVY:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            marks = set().union(*(marker_names(d) for d in node.decorator_list))
            if not marks & HEAVY:
                found.append(node.name)
    return found


def parse(path: Path) -> ast.Module:
    """The syntax tree of a file of this repository."""
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda p: p.name)
def test_no_test_module_imports_from_conftest(path: Path) -> None:
    # pytest loads conftest.py itself; importing it a second time as a module runs its code twice
    # and mixes fixtures with helpers. Helpers live in tests/helpers.py.
    assert not {"conftest", "tests.conftest"} & imported_modules(parse(path)), (
        f"{path.name} imports from conftest.py: import from tests.helpers instead"
    )


@pytest.mark.parametrize("path", sorted(TESTS.glob("test_*.py")), ids=lambda p: p.name)
def test_every_test_file_keeps_a_test_in_the_fast_tier(path: Path) -> None:
    assert fast_tests(parse(path)), (
        f"every test of {path.name} is marked slow or corpus: give it a quick test on a smaller "
        "input that checks the same invariant"
    )


def test_the_fast_tier_check_sees_module_and_function_marks() -> None:
    module = ast.parse("import pytest\npytestmark = pytest.mark.corpus\ndef test_a(): pass\n")
    assert fast_tests(module) == []
    module = ast.parse(
        "import pytest\n@pytest.mark.slow\ndef test_a(): pass\n"
        "@pytest.mark.parametrize('x', [1])\ndef test_b(x): pass\n"
    )
    assert fast_tests(module) == ["test_b"]
    assert "tests.conftest" in imported_modules(ast.parse("from tests.conftest import REPO\n"))
