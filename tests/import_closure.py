"""Which `pipeline` source files a CLI command runs, read from the source (tests/test_dvc_deps.py).

The command's callback is found by asking click, the way the shell finds it. Of the module that
defines it (a command module holds many commands) only what the callback reaches counts: the
imports inside it and the modules of the names it uses, following the helpers of that module it
calls. From there the closure is by whole modules: every `pipeline` module that an import
statement anywhere in a reached module names (lazy imports inside functions included, imports
under `if TYPE_CHECKING:` excluded, as they never run), or that a string literal names in full
(`importlib.import_module` tables such as `readers.READERS`). A package's `__init__.py` counts
when a name is imported from the package itself, not when only a submodule of it is imported.

Left out on purpose: the callbacks of the groups above the command (`gnm`, `gnm data`), which
only parse the command line, and click's own machinery. A name the callback uses counts by the
import statement that binds it; a value of its own module (a table, a closure variable of a
generated command, a dataclass such as a stage record) by what it holds.
"""

from __future__ import annotations

import ast
import functools
import inspect
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import click

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "pipeline"


@functools.cache
def module_files() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name)."""
    out = {}
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _package_of(module: str) -> str:
    return module if module_files()[module].name == "__init__.py" else module.rpartition(".")[0]


def _walk_running(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of `tree`, leaving out the bodies of `if TYPE_CHECKING:` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(node: ast.ImportFrom, package: str) -> str:
    """The module a `from ... import` statement imports from, relative ones resolved."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    return ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [node.module])])


def _bound(node: ast.AST, package: str) -> dict[str, str]:
    """The names an import statement binds, each with the package module it stands for."""
    modules = module_files()
    out = {}
    if isinstance(node, ast.Import):
        # `import a.b` binds `a`, but code naming it reaches into a.b.
        out = {alias.asname or alias.name.partition(".")[0]: alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(node, package)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            out[alias.asname or alias.name] = sub if sub in modules else base
    return {name: module for name, module in out.items() if module in modules}


def _imported(node: ast.AST, package: str) -> set[str]:
    """The package's modules an import statement (or a string naming one in full) runs."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & set(module_files())
    return set(_bound(node, package).values())


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _tree(module: str) -> ast.Module:
    return _parsed(module_files()[module])


def imports_in(tree: ast.AST, package: str) -> set[str]:
    """The package's modules that code (parsed, in `package`) imports anywhere when it runs."""
    found: set[str] = set()
    for node in _walk_running(tree):
        found |= _imported(node, package)
    return found


@functools.cache
def module_imports(module: str) -> frozenset[str]:
    """The package's modules that `module` imports (see the module docstring)."""
    return frozenset(imports_in(_tree(module), _package_of(module)) - {module})


@functools.cache
def _bindings(path: Path, package: str) -> dict[str, str]:
    """The names a source file's top-level import statements bind, and where each comes from."""
    out: dict[str, str] = {}
    for node in _parsed(path).body:
        out.update(_bound(node, package))
    return out


def closure(roots: Iterable[str]) -> set[str]:
    """`roots` and every package module they import, transitively."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(module_imports(module))
    return seen


def _source(func: types.FunctionType) -> tuple[Path, str]:
    """The file that defines `func` and the package its relative imports start from."""
    path = Path(inspect.getsourcefile(func) or "")
    module = func.__module__
    return path, module if path.name == "__init__.py" else module.rpartition(".")[0]


def _definition(func: types.FunctionType) -> ast.AST:
    """The `def` (or lambda) of `func` in its module's syntax tree."""
    first = func.__code__.co_firstlineno
    for node in ast.walk(_parsed(_source(func)[0])):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if start == first and node.name == func.__name__:
                return node
        elif isinstance(node, ast.Lambda) and node.lineno == first:
            return node
    raise LookupError(f"{func.__module__}.{func.__qualname__}: definition not found")


def _scope(func: types.FunctionType) -> dict[str, Any]:
    """The names `func` can see: its module's globals and the variables it closes over."""
    free = dict(
        zip(
            func.__code__.co_freevars,
            (c.cell_contents for c in func.__closure__ or ()),
            strict=True,
        )
    )
    return {**func.__globals__, **free}


def callback_modules(func: Callable[..., Any]) -> set[str]:
    """The package modules a command callback reaches: its own module, the modules it imports
    and those of the objects it names, following functions and classes of its own module."""
    func = inspect.unwrap(func)
    home = func.__module__
    found = {home}
    seen: set[int] = set()

    def visit_function(f: types.FunctionType) -> None:
        if id(f) in seen:
            return
        seen.add(id(f))
        # A name imported by the module counts by its import statement (a constant's value does
        # not say where it came from); any other is followed by its value.
        path, package = _source(f)
        bindings, scope = _bindings(path, package), _scope(f)
        for node in _walk_running(_definition(f)):
            found.update(_imported(node, package))
            if not isinstance(node, ast.Name):
                continue
            if node.id in bindings and node.id not in f.__code__.co_freevars:
                found.add(bindings[node.id])
            elif node.id in scope:
                visit(scope[node.id])

    def visit(value: Any) -> None:
        if isinstance(value, types.FunctionType) and value.__module__ == home:
            visit_function(value)  # which keeps its own record of what it has seen
            return
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, types.ModuleType):
            found.add(value.__name__)
        elif isinstance(value, type) and value.__module__ == home:
            for member in vars(value).values():
                visit(inspect.unwrap(member) if callable(member) else member)
        elif isinstance(value, dict | list | tuple | set | frozenset):
            for item in value.values() if isinstance(value, dict) else value:
                visit(item)
        elif isinstance(value, click.Command):
            return  # another command (a group's): not what this one runs
        elif isinstance(value, functools.partial):
            visit(value.func)
            visit((value.args, value.keywords))
        elif isinstance(value, types.MethodType):
            visit(value.__func__)
            visit(value.__self__)
        else:
            owner = value if isinstance(value, type | types.FunctionType) else type(value)
            found.add(getattr(owner, "__module__", ""))
            if is_dataclass(value) and not isinstance(value, type):
                for f in fields(value):
                    visit(getattr(value, f.name))

    visit(func)
    return {m for m in found if m in module_files()}


def command_callback(root: click.Group, args: list[str]) -> Callable[..., Any]:
    """The callback click runs for `args` (the words after the program name) under `root`."""
    command: click.Command = root
    for word in args:
        if not isinstance(command, click.Group) or word not in command.commands:
            break
        command = command.commands[word]
    assert command.callback is not None, args
    return command.callback


def command_files(root: click.Group, args: list[str]) -> set[Path]:
    """The package source files the command `args` runs (see the module docstring)."""
    callback = command_callback(root, args)
    entry = inspect.unwrap(callback).__module__
    reached = callback_modules(callback)
    # The entry module is a file the command runs, but only what the callback reaches in it
    # is followed (its other commands' imports are not).
    modules = closure(reached - {entry}) | (reached & {entry})
    return {module_files()[m] for m in modules}
