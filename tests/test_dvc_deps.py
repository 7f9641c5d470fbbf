"""Every stage's code deps, in every dvc.yaml, are exactly the package files its command runs.

Both ways: a file the command runs but the stage does not list can leave its output stale; a
listed file it never runs reruns it for nothing. What a command runs is read from the source
(tests/import_closure.py); the rule for folders is the one at the top of dvc.yaml.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from pipeline.profile_pipelines import GENERATED, profile_dvc_yaml
from tests.import_closure import (
    PACKAGE,
    REPO,
    callback_modules,
    command_files,
    imports_in,
    module_imports,
)

DVC_FILES = [REPO / "dvc.yaml", *sorted((REPO / "profiles").glob("*/dvc.yaml"))]
REGENERATE = "gnm data profiles --write"


def _program() -> tuple[str, click.Group]:
    """The console script's name and the click group it runs (from pyproject.toml)."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    [(name, target)] = scripts.items()
    module, _, attribute = target.partition(":")
    group = getattr(importlib.import_module(module), attribute)
    assert isinstance(group, click.Group)
    return name, group


def _stages(path: Path) -> dict[str, Any]:
    stages: dict[str, Any] = yaml.safe_load(path.read_text())["stages"]
    return stages


def _is_code(dep: str) -> bool:
    return dep == PACKAGE or dep.startswith(f"{PACKAGE}/")


def code_deps_problems(deps: list[str], runs: set[Path]) -> list[str]:
    """What is wrong with a stage's code deps, given the package files its command runs."""
    code = [d for d in deps if _is_code(d)]
    folders = [REPO / d for d in code if (REPO / d).is_dir()]
    problems = [f"lists {d} twice" for d in sorted({d for d in code if code.count(d) > 1})]
    for dep in code:
        path = REPO / dep
        if not path.exists():
            problems.append(f"lists {dep}, which does not exist")
        elif path.is_dir():
            if path == REPO / PACKAGE or not (path / "__init__.py").is_file():
                problems.append(f"lists {dep}: a folder dep must be a package below {PACKAGE}/")
            elif not any(path in f.parents for f in runs):
                problems.append(f"lists {dep} but runs none of its modules (reruns for nothing)")
        elif any(folder in path.parents for folder in folders):
            problems.append(f"lists {dep} inside a listed folder")
        elif path not in runs:
            problems.append(f"lists {dep} but never imports it (reruns for nothing)")
    for path in sorted(runs):
        if path.relative_to(REPO).as_posix() not in code and not any(
            folder in path.parents for folder in folders
        ):
            problems.append(
                f"runs {path.relative_to(REPO).as_posix()} but does not list it (stale-output risk)"
            )
    return problems


def test_profile_pipelines_are_generated_from_dvc_yaml() -> None:
    top = (REPO / "dvc.yaml").read_text()
    stale = [
        path.relative_to(REPO).as_posix()
        for path in DVC_FILES[1:]
        if path.read_text().startswith(GENERATED)
        and path.read_text() != profile_dvc_yaml(top, path.parent.name)
    ]
    assert stale == [], f"{', '.join(stale)}: out of date with dvc.yaml; run `{REGENERATE}`"


STAGES = [(path, name) for path in DVC_FILES for name in _stages(path)]


@pytest.mark.parametrize(
    ("dvc_yaml", "stage"),
    STAGES,
    ids=[f"{p.relative_to(REPO).as_posix()}:{s}" for p, s in STAGES],
)
def test_code_deps_are_what_the_stage_command_runs(dvc_yaml: Path, stage: str) -> None:
    program, group = _program()
    body = _stages(dvc_yaml)[stage]
    words = shlex.split(body["cmd"])
    assert words[0] == program, f"{stage}: a stage runs `{program} ...`"
    problems = code_deps_problems(body["deps"], command_files(group, words[1:]))
    fix = "fix dvc.yaml" + ("" if dvc_yaml == REPO / "dvc.yaml" else f", then run `{REGENERATE}`")
    where = dvc_yaml.relative_to(REPO).as_posix()
    assert problems == [], f"{where} stage {stage} ({fix}):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    "dvc_yaml", DVC_FILES, ids=[p.relative_to(REPO).as_posix() for p in DVC_FILES]
)
def test_data_deps_exist_or_are_an_earlier_stage_output(dvc_yaml: Path) -> None:
    produced: set[str] = set()
    for name, body in _stages(dvc_yaml).items():
        for dep in body["deps"]:
            if not _is_code(dep):
                assert dep in produced or (REPO / dep).exists(), f"{name}: {dep}"
        for kind in ("outs", "metrics", "plots"):
            produced.update(
                next(iter(out)) if isinstance(out, dict) else out for out in body.get(kind, [])
            )


def test_the_rule_sees_both_directions() -> None:
    runs = {REPO / "pipeline/score.py", REPO / "pipeline/readers/kern.py"}
    assert code_deps_problems(["pipeline/score.py", "pipeline/readers"], runs) == []
    assert code_deps_problems(["pipeline/readers"], runs) == [
        "runs pipeline/score.py but does not list it (stale-output risk)"
    ]
    assert code_deps_problems(
        ["pipeline/score.py", "pipeline/readers", "pipeline/ledger.py"], runs
    ) == ["lists pipeline/ledger.py but never imports it (reruns for nothing)"]
    assert code_deps_problems(["pipeline", "pipeline/music", "pipeline/readers/kern.py"], runs)[
        :3
    ] == [
        "lists pipeline: a folder dep must be a package below pipeline/",
        "lists pipeline/music but runs none of its modules (reruns for nothing)",
        "lists pipeline/readers/kern.py inside a listed folder",
    ]


def test_the_closure_is_read_from_the_source() -> None:
    _, group = _program()
    ledger = {p.relative_to(REPO).as_posix() for p in command_files(group, ["data", "ledger"])}
    # the callback's own module and what it imports; not the modules of the group's other commands
    assert "pipeline/cli/data.py" in ledger and "pipeline/ledger.py" in ledger
    assert not any(path.startswith("pipeline/cli/crosscheck") for path in ledger)
    # readers are imported by name from a table (importlib), as the ingest stage's children do
    assert "pipeline.readers.kern" in module_imports("pipeline.readers")
    code = """
from typing import TYPE_CHECKING
from .io import score_io
from .stages import meter, COLUMNS
if TYPE_CHECKING:
    from pipeline import ledger  # for the type checker only: never runs
def later():
    import pipeline.readers.abc as abc
"""
    found = imports_in(ast.parse(code), "pipeline")
    assert found == {
        "pipeline.io.score_io",
        "pipeline.stages.meter",
        "pipeline.stages",
        "pipeline.readers.abc",
    }


@dataclasses.dataclass(frozen=True)
class _Entry:
    """A stage registry entry, as a command generated from it holds one."""

    config: type
    run: Callable[..., Any]


def _helper() -> None:
    from pipeline import shingles  # a lazy import, reached through the command's helper

    assert shingles


def _generated(entry: _Entry) -> click.Command:
    @click.command()
    def command() -> None:
        _helper()
        entry.run(entry.config())

    return command


def test_a_generated_command_runs_what_its_registry_entry_names() -> None:
    from pipeline.music.quantize import QuantizeConfig
    from pipeline.stages import quantize

    callback = _generated(_Entry(QuantizeConfig, quantize.QuantizeStage)).callback
    assert callback is not None
    assert callback_modules(callback) == {
        "pipeline.music.quantize",
        "pipeline.stages.quantize",
        "pipeline.shingles",
    }
