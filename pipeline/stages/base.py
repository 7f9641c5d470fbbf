"""The stage contract: what every DVC stage declares, and the one runner of the per-item stages.

A stage is described by the same fields whatever its kind: its `name` (the DVC stage, its output
folder and its ledger name), the params.yaml `sections` it reads (section -> config class, its
own first), its `inputs` (the earlier outputs it reads, in CLI order), the `columns` it adds to
the rows it writes, and whether it `decides` about items (writes a `decisions.parquet` that the
ledger merges).

Two kinds keep that contract. An `ItemStage` turns one (row, score) into a result at a time and
is run by `run_item_stage` (below): it streams the input score store, skips the items an earlier
stage rejected, reports progress, writes its outputs, decisions and a summary. A `SetStage`
(ingest, dedupe, shard, stats, ledger) needs the whole set at once and keeps its own `run`; it is
described here so that the registry (`pipeline.stages.STAGES`), the ledger, the CLI and the tests
read every stage from one list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa

from pipeline.errors import GnmError
from pipeline.io.score_store import ScoreWriter, count_scores, iter_scores
from pipeline.ledger import Decision, read_decisions, write_decisions
from pipeline.score import Score

DECISIONS_FILE = "decisions.parquet"

# What a per-item transform returns for one item: the (row, score) to write on (a score stage),
# a row of another table (tokenize's tokens row), a Decision (the item is rejected), or None
# (a stage that only judges accepted it).
Result = tuple[dict[str, Any], Score] | dict[str, Any] | Decision | None


@dataclass(frozen=True)
class Input:
    """An earlier output a stage reads: its CLI option `--<name>` and default folder."""

    name: str
    default: str
    help: str


def stage_input(name: str, what: str = "") -> Input:
    """The output folder of the earlier stage `name` (default `data/<name>`)."""
    return Input(name, f"data/{name}", f"The {name} stage's output folder{what}.")


@dataclass(frozen=True)
class Stage:
    """What every stage declares (see the module docstring).

    `item`: the per-item stage class (None: a whole-set stage). An item stage's first input is
    the score store it streams; unless `skip_rejected` is False, the registry adds the deciding
    stages from that store's writer to this one as inputs whose rejections it skips (`skips`).
    """

    name: str
    sections: Mapping[str, type] = field(default_factory=dict)
    inputs: tuple[Input, ...] = ()
    columns: tuple[pa.Field, ...] = ()
    decides: bool = False
    out: str = ""  # default output folder; "" for `data/<name>`
    item: type[ItemStage] | None = None
    skip_rejected: bool = True
    skips: tuple[str, ...] = ()  # filled in by the registry (`pipeline.stages.link`)

    @property
    def kind(self) -> Literal["item", "set"]:
        """`item` (run by `run_item_stage`) or `set` (its own `run` over the whole set)."""
        return "item" if self.item is not None else "set"

    @property
    def default_out(self) -> str:
        """The output folder a command writes when no --out is given."""
        return self.out or f"data/{self.name}"


class ItemStage:
    """A per-item stage: `transform` one (row, score) at a time; `run_item_stage` does the rest.

    Subclasses set the class attributes and implement `transform` (pure: no I/O) and `report`;
    an instance holds the stage's configuration and must pickle (the executor ships it to its
    workers). `count` may add a result's figures to the summary counters (in the parent).
    """

    writes: ClassVar[Literal["scores", "rows", "decisions"]] = "decisions"
    row_schema: ClassVar[pa.Schema | None] = None  # the schema of `rows` (tokenize)
    rows_file: ClassVar[str] = ""

    def __init__(self, configs: Mapping[str, Any], inputs: Mapping[str, Path]) -> None:
        """Configure the stage from its params.yaml `configs` (section name -> config) and the
        folders of its inputs (read here when the stage needs more than the scores)."""

    def transform(self, row: dict[str, Any], score: Score) -> Result:
        """The result for one item."""
        raise NotImplementedError

    def passes_everything(self) -> bool:
        """Whether this configuration can reject nothing (a judging stage whose checks are all
        off): the runner then writes no decisions without reading a score."""
        return False

    def count(self, result: Result, counts: Counter[str]) -> None:
        """Add one result's figures to `counts` (the summary's counters)."""

    def finish(self, out_dir: Path) -> None:
        """Write what the stage writes besides its rows (tokenize: vocab.json)."""

    def report(self, tally: Tally, out_dir: Path) -> tuple[dict[str, Any], list[str], list[str]]:
        """The summary: a JSON object, its text lines, and notes for stderr."""
        raise NotImplementedError


@dataclass
class Tally:
    """What a run of a per-item stage saw: items in its input store, ids not accepted earlier
    (by the stages it skips after), items written, its rejections, and the stage's counters."""

    items: int = 0
    skipped: int = 0
    written: int = 0
    decisions: list[Decision] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def rejected(folders: Iterable[Path]) -> set[str]:
    """Ids that the stages writing these folders did not accept (from their decisions)."""
    out: set[str] = set()
    for folder in folders:
        path = folder / DECISIONS_FILE
        if not path.is_file():
            raise GnmError(f"{path}: missing (run the stage that writes it first)")
        out.update(d.id for d in read_decisions(path) if d.kind != "accepted")
    return out


def pieces_schema(name: str, registry: Mapping[str, Stage]) -> pa.Schema:
    """The pieces schema of the score store stage `name` writes: the columns of the store it
    reads (its first input; ingest's are the first store's), then its own."""
    spec = registry[name]
    if spec.item is None or not spec.inputs:
        return pa.schema(list(spec.columns))
    upstream = pieces_schema(spec.inputs[0].name, registry)
    return pa.schema([*upstream, *spec.columns])


# Maps results over items, in order: the executor's partitioned map, or a plain loop.
Mapper = Callable[[Callable[[tuple[dict[str, Any], Score]], Result],
                   Iterable[tuple[dict[str, Any], Score]]], Iterator[Result]]  # fmt: skip


def _inline(
    func: Callable[[tuple[dict[str, Any], Score]], Result],
    items: Iterable[tuple[dict[str, Any], Score]],
) -> Iterator[Result]:
    return map(func, items)


def run_item_stage(
    spec: Stage,
    stage: ItemStage,
    inputs: Mapping[str, Path],
    out_dir: Path,
    schema: pa.Schema | None,
    on_done: Callable[[int], None] | None = None,
    mapper: Mapper = _inline,
) -> Tally:
    """Run the per-item stage `spec` (configured as `stage`) over its input store into
    `out_dir`; return what it saw.

    `inputs` maps each input name to its folder; `schema` is the pieces schema of a score stage
    (see `pieces_schema`). Writes the stage's outputs (a score store or a rows file), then
    `decisions.parquet` (its rejections; accepted items need no row, ingest listed them).
    """
    source = inputs[spec.inputs[0].name]
    skip = rejected(inputs[name] for name in spec.skips)
    tally = Tally(items=count_scores(source), skipped=len(skip))
    if stage.writes == "decisions" and stage.passes_everything():
        if on_done:
            on_done(tally.items)
        write_decisions([], out_dir / DECISIONS_FILE)
        return tally

    def accepted() -> Iterator[tuple[dict[str, Any], Score]]:
        for row, score in iter_scores(source):
            if row["id"] in skip:
                if on_done:
                    on_done(1)
                continue
            yield row, score

    with _Sink(spec.name, stage, out_dir, schema) as write:
        for result in mapper(_Transform(stage), accepted()):
            if isinstance(result, Decision):
                tally.decisions.append(result)
            elif result is not None:
                write(result)
                tally.written += 1
            stage.count(result, tally.counts)
            if on_done:
                on_done(1)
    stage.finish(out_dir)
    write_decisions(tally.decisions, out_dir / DECISIONS_FILE)
    return tally


@dataclass(frozen=True)
class _Transform:
    """`stage.transform` over (row, score) pairs: a picklable callable for the executor."""

    stage: ItemStage

    def __call__(self, item: tuple[dict[str, Any], Score]) -> Result:
        return self.stage.transform(*item)


class _Sink:
    """Where a stage's results go: a score store, a rows file, or nowhere (decisions only)."""

    def __init__(
        self, name: str, stage: ItemStage, out_dir: Path, schema: pa.Schema | None
    ) -> None:
        self._scores: ScoreWriter | None = None
        self._rows: Any = None
        out_dir.mkdir(parents=True, exist_ok=True)
        if stage.writes == "scores":
            if schema is None:
                raise ValueError(f"{name}: a score stage needs its pieces schema")
            self._scores = ScoreWriter(out_dir, schema)
        elif stage.writes == "rows":
            from pipeline.io.rows import RowWriter

            assert stage.row_schema is not None
            self._rows = RowWriter(out_dir / stage.rows_file, stage.row_schema)

    def __enter__(self) -> Callable[[Any], None]:
        return self._write

    def _write(self, result: Any) -> None:
        if self._scores is not None:
            self._scores.write(*result)
        elif self._rows is not None:
            self._rows.write(result)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        for writer in (self._scores, self._rows):
            if writer is None:
                continue
            if exc_type is None:
                writer.close()
            else:
                writer.abort()
