"""Import rules between the packages (issue 15): the data flows one way, and the pure layers stay
light. Read statically (every import statement, lazy ones inside functions included) and, for
the heavy-library rule, by importing in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: {i for i in _imports(m, p) if i in modules and i != m} for m, p in modules.items()}


def test_pipeline_has_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = (
                    [*path[path.index(target) :], target] if target in path else [module, target]
                )
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_pipeline_never_imports_the_model() -> None:
    offenders = [m for m, p in _modules().items() if any(
        i == "gnm_model" or i.startswith("gnm_model.") for i in _imports(m, p))]  # fmt: skip
    assert offenders == []


def test_the_model_never_imports_a_stage() -> None:
    # gnm_model reads data through pipeline.io (open_shards) and scores through pipeline.music /
    # pipeline.tokenizer; a stage module is the build's business
    offenders = {
        f"{path.name}: {i}"
        for path in sorted((REPO / "gnm_model").glob("*.py"))
        for i in _imports(f"gnm_model.{path.stem}", path)
        if i == "pipeline.stages" or i.startswith("pipeline.stages.")
    }
    assert offenders == set()


@pytest.mark.parametrize("package", ["pipeline.music", "pipeline.tokenizer"])
def test_pure_layers_load_no_table_or_cluster_library(package: str) -> None:
    code = (
        f"import sys, importlib, pkgutil; import {package} as p\n"
        "for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.'): importlib.import_module(m.name)\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'pyarrow', 'polars', 'dask'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{package} loads {done.stdout.strip()}"
