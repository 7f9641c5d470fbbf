"""Corpus declarations (`corpora/*.yaml`): loading, validation and enumeration of their files.

A declaration is data: adding a corpus needs a YAML file, not code. It is validated against
`schemas/corpus.schema.json`; every problem is a CorpusError naming the file and the field.
Enumeration never leaves the declared root: a glob match whose resolved path escapes it (a
symlink out, say) is listed but never read (`source_files`: ingest quarantines it).

A declaration's regular expressions are matched in linear time (see `linear_regex`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipeline.config_yaml import load_config
from pipeline.errors import CorpusError
from pipeline.linear_regex import check_pattern, linear_regex
from pipeline.readers import SUPPORTED_EXTENSIONS, ReaderKind
from pipeline.source_files import SourceFile, escape_name, scan
from pipeline.work_keys import WorkRule, parse_work_rules, work_key

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "corpus.schema.json"


@dataclass(frozen=True)
class CorpusDecl:
    """A validated corpus declaration."""

    name: str
    description: str
    source_kind: str
    include: tuple[str, ...]
    genre: str
    licence: str
    redistributable: bool
    priority: int
    source_path: str | None = None
    exclude: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    composer: str | None = None
    composer_pattern: str | None = None
    composer_map: Mapping[str, str] = field(default_factory=dict)
    composer_default: str | None = None
    meter_override_file: str | None = None
    max_items: int | None = None
    reader: ReaderKind | None = None  # overrides params.yaml's ingest.reader for this corpus
    # Tunes of an ABC book that are the voices of one piece become one multi-part piece; when
    # False they are quarantined `voice_of_multi_voice_piece` (see stages.merge_voices).
    group_voices: bool = False
    work_rules: tuple[WorkRule, ...] = ()  # `work_pattern`: the declared work of each item
    declaration: str = ""

    def root(self, data_root: Path | None) -> Path:
        """The folder the include globs are relative to."""
        if self.source_kind == "music21":
            return music21_corpus_root()
        if data_root is None:
            raise CorpusError(
                f"{self.declaration}: source.path '{self.source_path}' needs a data root "
                "(give --data-root or set GNM_DATA_ROOT)"
            )
        return data_root / str(self.source_path)

    def composer_for(self, rel_path: str) -> str | None:
        """The composer of an item: fixed, or derived from its relative path."""
        if self.composer is not None:
            return self.composer
        if self.composer_pattern is None:
            return None
        match = linear_regex(self.composer_pattern).search(rel_path)
        if match is None:
            return self.composer_default
        raw = match.group("composer")
        return self.composer_map.get(raw, raw)

    def work_for(self, rel_path: str, title: str) -> str | None:
        """The item's declared work key (see `pipeline.work_keys`), or None."""
        return work_key(self.work_rules, rel_path, title, self.composer_for(rel_path))

    def files(self, data_root: Path | None) -> list[SourceFile]:
        """Every matching file, sorted by id, capped at `max_items` (deterministic).

        Matches that cannot be read as files are listed too, each with its quarantine reason
        (see `source_files`); ids are valid UTF-8 (`source_files.escape_name`).
        """
        root = self.root(data_root)
        if not root.is_dir():
            raise CorpusError(f"{self.declaration}: source folder {root} does not exist")
        found: dict[str, SourceFile] = {}
        try:
            for entry in scan(root, self.include, self.exclude):
                if not entry.folder:
                    suffix = entry.path.suffix.lower().lstrip(".")
                    if self.formats and suffix not in self.formats:
                        continue
                    if f".{suffix}" not in SUPPORTED_EXTENSIONS:
                        continue
                rel = escape_name(entry.rel)
                found[rel] = SourceFile(self.name, rel, entry.path, entry.reason, entry.detail)
        except OSError as exc:
            raise CorpusError(
                f"{self.declaration}: cannot list source folder {root}: {exc.strerror}"
            ) from None
        ordered = [found[rel] for rel in sorted(found)]
        return ordered[: self.max_items] if self.max_items else ordered


@cache
def music21_corpus_root() -> Path:
    """The folder of music21's bundled corpus (real files shipped inside the package)."""
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


@cache
def _schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


# The genres a declaration may name. The schema's enum is the one list; the CLI's choices and
# the model report's reference groups read it from here.
GENRES: tuple[str, ...] = tuple(_schema()["properties"]["genre"]["enum"])


def parse_declaration(data: Any, source: str) -> CorpusDecl:
    """Validate a declaration's parsed YAML and build it; CorpusError names the field."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(e.path), e.message))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.path) or "(top level)"
        raise CorpusError(f"{source}: field {where}: {err.message}")
    source_block = data["source"]
    from_path = data.get("composer_from_path") or {}
    if from_path:
        _check_composer_pattern(from_path["pattern"], f"{source}: field composer_from_path.pattern")
    return CorpusDecl(
        name=data["name"],
        description=data["description"],
        source_kind=source_block["kind"],
        include=tuple(source_block["include"]),
        genre=data["genre"],
        licence=data["licence"],
        redistributable=data["redistributable"],
        priority=data["priority"],
        source_path=source_block.get("path"),
        exclude=tuple(source_block.get("exclude", ())),
        formats=tuple(data.get("formats", ())),
        composer=data.get("composer"),
        composer_pattern=from_path.get("pattern"),
        composer_map=dict(from_path.get("map", {})),
        composer_default=from_path.get("default"),
        meter_override_file=(data.get("meter_override") or {}).get("file"),
        max_items=data.get("max_items"),
        reader=data.get("reader"),
        group_voices=data.get("group_voices", False),
        work_rules=parse_work_rules(data.get("work_pattern", []), f"{source}: field work_pattern"),
        declaration=source,
    )


def _check_composer_pattern(pattern: str, where: str) -> None:
    """CorpusError (prefixed `where`) unless RE2 reads `pattern` as `re` does, with a composer group."""
    if "composer" not in check_pattern(pattern, where).groupindex:
        raise CorpusError(f"{where}: needs a (?P<composer>...) group")


def load_declaration(path: str | Path) -> CorpusDecl:
    """Read and validate one declaration file."""
    path = Path(path)
    try:
        data = load_config(path)
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CorpusError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    decl = parse_declaration(data, str(path))
    if decl.name != path.stem:
        raise CorpusError(
            f"{path}: field name: '{decl.name}' must equal the file name '{path.stem}'"
        )
    return decl


def load_declarations(folder: str | Path, names: Iterable[str] | None = None) -> list[CorpusDecl]:
    """Every declaration in `folder` (or only `names`), sorted by name; CorpusError on the first problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: corpus declaration folder does not exist")
    decls = [load_declaration(p) for p in sorted(folder.glob("*.yaml"))]
    if names is not None:
        wanted = list(names)
        known = {d.name for d in decls}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise CorpusError(
                f"{folder}: no declaration for corpus {', '.join(missing)} (known: {', '.join(sorted(known))})"
            )
        decls = [d for d in decls if d.name in wanted]
    return decls


def known_composers(decls: Iterable[CorpusDecl]) -> list[str]:
    """Every composer name the declarations can assign (fixed ones and mapped folder names)."""
    names = set()
    for d in decls:
        if d.composer:
            names.add(d.composer)
        names.update(d.composer_map.values())
        if d.composer_default:
            names.add(d.composer_default)
    return sorted(names)


def validate_folder(folder: str | Path, data_root: Path | None) -> list[str]:
    """One line per problem across all declarations in `folder` (empty when all is well)."""
    problems: list[str] = []
    folder = Path(folder)
    for path in sorted(folder.glob("*.yaml")):
        try:
            decl = load_declaration(path)
            if (
                decl.source_kind == "directory"
                and data_root is not None
                and not decl.root(data_root).is_dir()
            ):
                problems.append(f"{path}: field source.path: {decl.root(data_root)} does not exist")
        except CorpusError as exc:
            problems.append(str(exc))
    return problems


def resolve_data_root(option: str | None, env: str | None, params_value: str | None) -> Path | None:
    """The data root: --data-root, else $GNM_DATA_ROOT, else params (None when none is given)."""
    for value in (option, env, params_value):
        if value:
            return Path(value)
    return None
