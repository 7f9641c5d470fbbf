"""The test suite's own rules: helpers come from `tests/helpers.py`, never from `conftest.py`, and
the fast tier (`pytest -m "not slow and not corpus"`) keeps at least one test of every test file.
A test leaves the fast tier by a slow or corpus mark, on itself or its module, or by using a
built profile (conftest.py marks those corpus)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import BUILD_FIXTURES, REPO

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


def arguments(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The names of a function's parameters: for a test or a fixture, the fixtures it uses."""
    return {arg.arg for arg in node.args.args}


def functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function defined in `tree`, in classes and other functions too."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def building_fixtures(tree: ast.Module) -> set[str]:
    """The fixtures that use a built profile: conftest's, and the module's own that use one of
    them, directly or through each other."""
    fixtures = {
        node.name: arguments(node)
        for node in functions(tree)
        if any("fixture" in ast.unparse(d) for d in node.decorator_list)
    }
    building = set(BUILD_FIXTURES)
    while grown := {name for name, uses in fixtures.items() if uses & building} - building:
        building |= grown
    return building


def fast_tests(tree: ast.Module) -> list[str]:
    """The test functions of a module (classes included) that stay in the fast tier: none when
    the module-level `pytestmark` holds a slow or corpus mark."""
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
    building = building_fixtures(tree)
    return [
        node.name
        for node in functions(tree)
        if node.name.startswith("test")
        and not set().union(*(marker_names(d) for d in node.decorator_list)) & HEAVY
        and not arguments(node) & building
    ]


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
    module = ast.parse(
        "import pytest\n@pytest.fixture\ndef shards(quick_shards): pass\n"
        "@pytest.fixture\ndef index(shards): pass\n"
        "def test_a(index): pass\ndef test_b(tiny_build): pass\ndef test_c(tmp_path): pass\n"
    )
    assert fast_tests(module) == ["test_c"]
    assert "tests.conftest" in imported_modules(ast.parse("from tests.conftest import REPO\n"))
