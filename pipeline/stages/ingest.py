"""The ingest stage: declared corpora -> canonical scores (Parquet) + a decision for every input.

For each file of each declaration: hash its bytes, look the hash up in the per-file cache
(`ingest_cache`: keyed by content hash and reader version, so unchanged files are never parsed
twice and adding a corpus parses only its files), otherwise parse it in an isolated child (see
`executor` and `ingest_read`), which caches the result; a failure is cached too. A collection
file yields one item per piece, with id `<corpus>/<relative path>#X:<n>`; a file that cannot be
parsed is one quarantined item. A file that cannot be opened (or that the listing found
unreadable: see `source_files`) is quarantined without being parsed or cached, so that it is
read once it can be. Tunes of an ABC book that are the voices of one piece are found as the
file is read (and cached with it); the declaration's `group_voices` then decides whether they
become one multi-part piece or are quarantined (`merge_voices`), so changing it never
reparses a file.

Scores are never held for the whole corpus: each parsed file goes to the cache (or a temporary
spool) as it finishes, and the output is written by reading the outcomes back in id order, one
file at a time, through a `ScoreWriter` (see `IngestResult`). What does grow with the corpus is
small: each file's path and hashes, and each item's decision.

Output folder: `pieces.parquet` (one row per parsed item), `notes.parquet` (one row per note) and
`decisions.parquet` (one row per input item).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.corpora import CorpusDecl, SourceFile
from pipeline.errors import GnmError
from pipeline.executor import Limits, Outcome, iter_items
from pipeline.io.score_store import ScoreWriter
from pipeline.ledger import (
    ACCEPTED,
    Decision,
    merged_into,
    quarantined,
    write_decisions,
)
from pipeline.readers import (
    FALLBACK_PREFIX,
    READER_KINDS,
    ItemFailure,
    ReaderKind,
)
from pipeline.readers.parser_messages import PARSER_WARNINGS, FileMessages
from pipeline.readers.voices import VoiceGroup
from pipeline.score import Score, ScoreMeta
from pipeline.source_files import (
    NOT_A_REGULAR_FILE,
    os_problem,
    regular_file_sha256,
    valid_text,
)
from pipeline.stages.base import Input, Stage
from pipeline.stages.ingest_cache import (
    StoreJob,
    cache_path,
    load_cached,
    parse_and_store,
    store_cached,
)
from pipeline.stages.ingest_read import PRELOAD, Parsed, ParseJob, parse_job
from pipeline.stages.merge_voices import MergedVoice, resolve_voices
from pipeline.stages.parser_warnings import WarningTally, ledger_detail

STAGE = "ingest"

PIECES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("corpus", pa.string()),
        ("rel_path", pa.string()),
        ("item", pa.string()),
        ("sha256", pa.string()),
        ("genre", pa.string()),
        ("composer", pa.string()),
        ("work", pa.string()),  # the declared work key (work_pattern); null: none declared
        ("priority", pa.int32()),
        ("title", pa.string()),
        ("source_composer", pa.string()),
        ("reader", pa.string()),  # fast | reference | reader_fallback:<what>
        ("notes", pa.int64()),
        ("source_notes", pa.int64()),  # as written (readers.source_counts); null: not counted
        ("bars", pa.int64()),
        ("score_json", pa.string()),
    ]
)


@dataclass(frozen=True)
class IngestConfig:
    """Parameters of ingest (params.yaml section `ingest`)."""

    timeout_s: float = 120.0
    memory_mb: int = 4096
    expand_repeats: bool = False
    data_root: str | None = "../shared/data"
    # fast | reference (music21 / miditoolkit); a declaration's `reader` overrides it
    reader: ReaderKind = "fast"

    def __post_init__(self) -> None:
        if self.timeout_s < 0 or self.memory_mb < 0:
            raise ValueError("timeout_s and memory_mb must be >= 0 (0 disables the limit)")
        if self.reader not in READER_KINDS:
            raise ValueError(
                f"reader must be one of {', '.join(READER_KINDS)}, not {self.reader!r}"
            )


def _source_notes(score: Score) -> int | None:
    """The notes its source writes (None for MIDI and sources that could not be counted)."""
    written = score.report.get("source_notes")
    return None if written is None else int(written)


@dataclass(frozen=True)
class Entry:
    """One input item: its decision and, when it was read, its score and pieces-row fields."""

    decision: Decision
    score: Score | None = None
    row: dict[str, Any] | None = None


class IngestResult:
    """One ingest run, streamed: every file's outcome waits on disk until it is read back.

    `run` (phase one) parses what the cache lacks and stores each outcome as it arrives (a batch
    of files at a time), so the process never holds the corpus's scores. `entries` (phase two)
    reads the outcomes back and yields every item in id order, merging files so that it holds
    about one file's items whatever the corpus size. Outcomes live in the cache folder, or,
    without one, in a temporary spool that `close` removes. Outcomes that are never cached
    (timeouts, crashes, files that could not be read) are the only ones kept in memory, and
    they hold no scores.
    """

    def __init__(
        self,
        files: Sequence[SourceFile],
        decls: Mapping[str, CorpusDecl],
        jobs: Sequence[ParseJob],
        shas: Sequence[str],
        paths: Sequence[Path | None],
        store: Path,
        spool: tempfile.TemporaryDirectory[str] | None,
        failures: dict[int, Outcome[Parsed]],
        parsed: int,
        limits: Limits,
    ) -> None:
        self.files, self.decls, self.jobs = files, decls, jobs
        self._shas, self._paths, self._store, self._spool = shas, paths, store, spool
        self._failures = failures
        self._limits = limits
        self._parsed = parsed
        self._reparsed: set[int] = set()  # cache entries found unreadable in phase two
        self.warnings = WarningTally()  # of the files `entries` has read so far

    @property
    def parsed(self) -> int:
        """Files parsed by this run (the cache lacked them, or held them unreadable)."""
        return self._parsed + len(self._reparsed)

    @property
    def unread(self) -> int:
        """Files that could not be read (see `source_files`): neither parsed nor cached."""
        return sum(path is None for path in self._paths)

    @property
    def cached(self) -> int:
        """Files whose outcome came from the cache."""
        return len(self.files) - self.parsed - self.unread

    def entries(self, on_file: Callable[[int], None] | None = None) -> Iterator[Entry]:
        """Every item (accepted or quarantined) in id order; `on_file(1)` after each file read.

        `warnings` counts the parser warnings of the files read so far (whole once it ends).
        Files are read in order of their ids. An item id starts with its file's id, so once the
        smallest pending item sorts before the next file's id, nothing still unread can precede
        it: the merge yields it and reads each file exactly once.
        """
        if not self._store.is_dir():
            raise GnmError(f"ingest result read after close: its spool {self._store} is gone")
        self.warnings = WarningTally()
        order = sorted(range(len(self.files)), key=lambda i: self.files[i].id)
        pending: list[tuple[str, int, Entry]] = []
        tiebreak = itertools.count()
        k = 0
        while k < len(order) or pending:
            while k < len(order) and (not pending or self.files[order[k]].id <= pending[0][0]):
                for entry in self._file_entries(order[k]):
                    heapq.heappush(pending, (entry.decision.id, next(tiebreak), entry))
                k += 1
                if on_file:
                    on_file(1)
            yield heapq.heappop(pending)[2]

    def scores(
        self, on_file: Callable[[int], None] | None = None
    ) -> Iterator[tuple[Score, dict[str, Any]]]:
        """(score, pieces-row fields) of every accepted item, in id order; `on_file` as `entries`."""
        for entry in self.entries(on_file):
            if entry.score is not None and entry.row is not None:
                yield entry.score, entry.row

    def decisions(self) -> list[Decision]:
        """One decision per input item, in id order (reads every outcome back)."""
        return [entry.decision for entry in self.entries()]

    def close(self) -> None:
        """Remove the temporary spool, if this run used one."""
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None

    def __enter__(self) -> IngestResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def outcome(self, i: int) -> Outcome[Parsed]:
        """The outcome of file `i` (its pieces, or why it could not be read), from the store."""
        if i in self._failures:
            return self._failures[i]
        path = self._paths[i]
        assert path is not None, "a file without a cache entry has its outcome in _failures"
        loaded = load_cached(path)
        if loaded is not None:
            return loaded
        # Gone or unreadable since phase one looked it up (a cache cleaner, a torn write on a
        # bad disk): parse it again, and repair the entry, rather than lose the file.
        _, outcome = next(
            iter_items(parse_job, [self.jobs[i]], limits=self._limits, scheduler="inline")
        )
        if not store_cached(path, outcome):
            self._failures[i] = outcome
        self._reparsed.add(i)
        return outcome

    def _file_entries(self, i: int) -> list[Entry]:
        """The entries of one file, from its outcome."""
        source = self.files[i]
        decl = self.decls[source.corpus]
        outcome = self.outcome(i)
        if not outcome.ok:
            reason = _reason(outcome.reason or "error")
            return [Entry(_file_quarantined(source, reason, valid_text(outcome.detail)))]
        parsed = outcome.value or []
        groups = [p for p in parsed if isinstance(p, VoiceGroup)]
        pieces = [p for p in parsed if isinstance(p, Score | ItemFailure)]
        said = next((p for p in parsed if isinstance(p, FileMessages)), None)
        if said is not None:
            self.warnings.add(source.id, said)
        quoted = said.first if said is not None else ()  # on the file's first item that warned
        if not pieces:
            return [Entry(_file_quarantined(source, "no_scores", "the file holds no score"))]
        entries: list[Entry] = []
        used: set[str] = set()
        ids: list[str] = []  # the id of each piece, by position
        for piece in resolve_voices(pieces, groups, merge=decl.group_voices):
            item = piece.meta.collection_item if isinstance(piece, Score) else piece.item
            base = source.id + (f"#X:{item}" if item is not None else "")
            item_id, copy = base, 1
            while item_id in used:  # a collection that reuses an X: number
                copy += 1
                item_id = f"{base}.{copy}"
            used.add(item_id)
            ids.append(item_id)
            if isinstance(piece, MergedVoice):  # the merged score precedes its other voices
                status = merged_into(ids[piece.into])
                detail = f"voice {piece.name}"
                merged = Decision(
                    item_id, source.corpus, source.rel_path, item, STAGE, status, detail
                )
                entries.append(Entry(merged))
                continue
            if isinstance(piece, ItemFailure):
                status = quarantined(piece.reason)
                detail = valid_text(piece.detail)
                failed = Decision(
                    item_id, source.corpus, source.rel_path, item, STAGE, status, detail
                )
                entries.append(Entry(failed))
                continue
            # A reader may title a piece after its file name, which need not be UTF-8.
            title, composer = valid_text(piece.meta.title), valid_text(piece.meta.composer)
            meta = ScoreMeta(item_id, title, composer, source.rel_path, item)
            score = piece.replace(meta=meta)
            fallbacks = sorted(k for k in score.report if k.startswith(FALLBACK_PREFIX))
            reader = "; ".join(fallbacks) or self.jobs[i].reader
            row = {
                "id": item_id,
                "corpus": source.corpus,
                "rel_path": source.rel_path,
                "item": item,
                "sha256": self._shas[i],
                "genre": decl.genre,
                "composer": decl.composer_for(source.rel_path),
                "work": decl.work_for(source.rel_path, title),
                "priority": decl.priority,
                "title": score.meta.title,
                "source_composer": score.meta.composer,
                "reader": reader,
                "notes": len(score.notes),
                "source_notes": _source_notes(score),
                "bars": len(score.bars),
            }
            # The ledger names every item the reference reader had to read for the fast one,
            # and every item whose reading printed warnings.
            notes = list(fallbacks)
            if warned := int(score.report.get(PARSER_WARNINGS, 0)):
                notes.append(ledger_detail(warned, quoted))
                quoted = ()
            detail = valid_text("; ".join(notes))  # messages quote the file's own bytes
            decision = Decision(
                item_id, source.corpus, source.rel_path, item, STAGE, ACCEPTED, detail
            )
            entries.append(Entry(decision, score, row))
        return entries


def run(
    files: Sequence[SourceFile],
    decls: Mapping[str, CorpusDecl],
    cfg: IngestConfig,
    cache_dir: Path | None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    reader: ReaderKind | None = None,
) -> IngestResult:
    """Phase one of ingest: make sure every file has an outcome on disk; `on_done(1)` per file.

    Read the items back with the result's `entries`, `scores` or `write_outputs`. Without
    `cache_dir`, outcomes go to a temporary spool: close the result (or use it as a context
    manager) to remove it. `reader` forces one reader for every corpus (crosscheck); otherwise a
    declaration's `reader`, else `cfg.reader`.
    """
    spool = None
    if cache_dir is None:  # in $TMPDIR: point it at a disk with room for a large corpus
        spool = tempfile.TemporaryDirectory(prefix="gnm-ingest-")
        store = Path(spool.name)
    else:
        store = cache_dir
    try:
        return _phase_one(files, decls, cfg, store, spool, scheduler, workers, on_done, reader)
    except BaseException:
        if spool is not None:
            spool.cleanup()
        raise


def _phase_one(
    files: Sequence[SourceFile],
    decls: Mapping[str, CorpusDecl],
    cfg: IngestConfig,
    store: Path,
    spool: tempfile.TemporaryDirectory[str] | None,
    scheduler: str | None,
    workers: int | None,
    on_done: Callable[[int], None] | None,
    forced: ReaderKind | None = None,
) -> IngestResult:
    limits = Limits(cfg.timeout_s, cfg.memory_mb)
    shas: list[str] = []
    paths: list[Path | None] = []  # where each file's outcome is stored (None: in `failures`)
    jobs: list[ParseJob] = []
    to_parse: list[tuple[int, Path]] = []  # (file, where its outcome goes)
    failures: dict[int, Outcome[Parsed]] = {}
    for i, source in enumerate(files):
        decl = decls[source.corpus]
        reader = forced or decl.reader or cfg.reader
        job = ParseJob(str(source.path), cfg.expand_repeats, decl.meter_override_file, reader)
        jobs.append(job)
        keys = _fingerprint(source, decl)
        if isinstance(keys, Outcome):  # never parsed, never cached: it may be readable next run
            failures[i] = keys
            shas.append("")
            paths.append(None)
        else:
            sha, cache_key = keys
            where = cache_path(store, cache_key, job)
            shas.append(sha)
            paths.append(where)
            if not where.is_file():
                to_parse.append((i, where))
                continue
        if on_done:
            on_done(1)
    finished = iter_items(
        parse_and_store,
        [StoreJob(jobs[i], str(where)) for i, where in to_parse],
        limits=limits,
        scheduler=scheduler,
        workers=workers,
        preload=PRELOAD,
    )
    for k, outcome in finished:
        i, where = to_parse[k]
        # A reading is stored by the child that made it, as each file finishes (a killed run
        # keeps what it parsed); this process only stores why a file failed.
        if not outcome.ok:
            failure: Outcome[Parsed] = Outcome(reason=outcome.reason, detail=outcome.detail)
            if not store_cached(where, failure):
                failures[i] = failure
        if on_done:
            on_done(1)
    return IngestResult(
        files, decls, jobs, shas, paths, store, spool, failures, len(to_parse), limits
    )


def _fingerprint(source: SourceFile, decl: CorpusDecl) -> tuple[str, str] | Outcome[Parsed]:
    """(sha256 of the file, cache key) of a file; or, when it cannot be read, why (an outcome).

    A file the listing could not read (`source.reason`) is not opened. The key covers the beat
    file too when the corpus has one: it is an input, so a change to it must miss the cache.
    """
    if source.reason is not None:
        return Outcome(reason=source.reason, detail=source.detail)
    try:
        sha = regular_file_sha256(source.path)
        if sha is None:  # replaced by a FIFO or the like since the listing
            return Outcome(reason=NOT_A_REGULAR_FILE, detail="no longer a regular file")
        if not decl.meter_override_file:
            return sha, sha
        beats = source.path.parent / decl.meter_override_file
        beat_bytes = beats.read_bytes() if beats.is_file() else b""
    except OSError as exc:
        reason, detail = os_problem(exc)
        return Outcome(reason=reason, detail=detail)
    return sha, hashlib.sha256(sha.encode() + beat_bytes).hexdigest()


def _file_quarantined(source: SourceFile, reason: str, detail: str) -> Decision:
    """The decision for a file that yields no item: one quarantined row under the file's id."""
    return Decision(
        source.id, source.corpus, source.rel_path, None, STAGE, quarantined(reason), detail
    )


_REASONS = {"ScoreParseError": "parse_error", "ScoreValidationError": "invalid_score"}


def _reason(raw: str) -> str:
    return _REASONS.get(raw, raw)


def write_outputs(
    result: IngestResult, out_dir: Path, on_file: Callable[[int], None] | None = None
) -> list[Decision]:
    """Write pieces, notes and decisions (atomically, in id order, streamed); the decisions."""
    decisions: list[Decision] = []
    with ScoreWriter(out_dir, PIECES_SCHEMA) as writer:
        for entry in result.entries(on_file):
            decisions.append(entry.decision)
            if entry.score is not None and entry.row is not None:
                writer.write(entry.row, entry.score)
    write_decisions(decisions, out_dir / "decisions.parquet")
    return decisions


SPEC = Stage(
    "ingest",
    sections={"ingest": IngestConfig},
    inputs=(Input("corpora", "corpora", "Folder of corpus declarations (*.yaml)."),),
    columns=tuple(PIECES_SCHEMA),
    decides=True,  # about every input: accepted, merged, or quarantined when unreadable
)
