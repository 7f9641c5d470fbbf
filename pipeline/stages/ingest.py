"""The ingest stage: declared corpora -> canonical scores (Parquet) + a decision for every input.

For each file of each declaration: hash its bytes, look the hash up in the per-file cache (keyed
by content hash and reader version, so unchanged files are never parsed twice and adding a
corpus parses only its files), otherwise parse it in an isolated child (see `executor`) and
cache the result, a failure included. A collection file yields one item per piece, with id
`<corpus>/<relative path>#X:<n>`; a file that cannot be read is one quarantined item.

Output folder: `pieces.parquet` (one row per parsed item), `notes.parquet` (one row per note) and
`decisions.parquet` (one row per input item).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.corpora import CorpusDecl, SourceFile
from pipeline.executor import Limits, Outcome, iter_items
from pipeline.ledger import ACCEPTED, Decision, quarantined, write_decisions, write_table_atomic
from pipeline.readers import ItemFailure, read_items
from pipeline.readers.beats import apply_beat_file
from pipeline.score import Score, ScoreMeta
from pipeline.score_io import notes_table, score_from_dict, score_to_dict

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
        ("priority", pa.int32()),
        ("title", pa.string()),
        ("source_composer", pa.string()),
        ("notes", pa.int64()),
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

    def __post_init__(self) -> None:
        if self.timeout_s < 0 or self.memory_mb < 0:
            raise ValueError("timeout_s and memory_mb must be >= 0 (0 disables the limit)")


CACHE_FORMAT = 3  # bump when score_io's dict layout changes

# Imported by each worker before it forks a child per file.
PRELOAD = ("music21", "miditoolkit", "pipeline.readers")


@dataclass(frozen=True)
class ParseJob:
    """What a child needs to parse one file."""

    path: str
    expand_repeats: bool
    beat_file: str | None


@cache
def reader_version() -> str:
    """Hash of the reader code and the parser library versions: part of every cache key."""
    import miditoolkit
    import music21

    import pipeline.readers as readers_pkg

    digest = hashlib.sha256()
    root = Path(readers_pkg.__file__).parent
    for path in sorted([*root.glob("*.py"), root.parent / "score.py"]):
        digest.update(path.read_bytes())
    digest.update(f"music21={music21.__version__};miditoolkit={miditoolkit.__version__}".encode())
    return digest.hexdigest()[:16]


def parse_job(job: ParseJob) -> list[Score | ItemFailure]:
    """Read one file (runs in the isolated child): its pieces, or failures of single pieces."""
    items = read_items(job.path, expand_repeats=job.expand_repeats)
    if job.beat_file is not None:
        beat_path = Path(job.path).parent / job.beat_file
        items = [apply_beat_file(s, beat_path) if isinstance(s, Score) else s for s in items]
    return items


def _cache_path(cache_dir: Path, sha: str, job: ParseJob) -> Path:
    flavour = hashlib.sha256(
        f"{CACHE_FORMAT}|{reader_version()}|{job.expand_repeats}|{job.beat_file}".encode()
    ).hexdigest()[:12]
    return cache_dir / "ingest" / sha[:2] / f"{sha}-{flavour}.json"


Parsed = list[Score | ItemFailure]


def _load_cached(path: Path) -> Outcome[Parsed] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("reason"):
        return Outcome(reason=data["reason"], detail=data.get("detail", ""))
    items: Parsed = [
        score_from_dict(s["score"]) if "score" in s else ItemFailure(**s["failure"])
        for s in data["items"]
    ]
    return Outcome(value=items)


def _store_cached(path: Path, outcome: Outcome[Parsed]) -> None:
    if outcome.reason in ("timeout", "memory_limit", "crash"):
        return  # may depend on the machine's load: try again next time
    if outcome.ok:
        data: dict[str, Any] = {
            "items": [
                {"score": score_to_dict(s)} if isinstance(s, Score) else {"failure": asdict(s)}
                for s in outcome.value or []
            ]
        }
    else:
        data = {"reason": outcome.reason, "detail": outcome.detail}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


@dataclass(frozen=True)
class IngestResult:
    """What one ingest run produced, in memory."""

    scores: list[tuple[Score, dict[str, Any]]]
    decisions: list[Decision]
    parsed: int
    cached: int


def run(
    files: Sequence[SourceFile],
    decls: dict[str, CorpusDecl],
    cfg: IngestConfig,
    cache_dir: Path | None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> IngestResult:
    """Ingest `files`; return the scores (with their pieces-row fields) and one decision per item."""
    outcomes: dict[int, Outcome[Parsed]] = {}
    shas: list[str] = []
    keys: list[str] = []  # cache keys: the file's hash, with its beat file's where it has one
    jobs: list[ParseJob] = []
    to_parse: list[int] = []
    for i, source in enumerate(files):
        decl = decls[source.corpus]
        sha = hashlib.sha256(source.path.read_bytes()).hexdigest()
        if decl.meter_override_file:  # the beat file is an input too: a change must miss the cache
            beats = source.path.parent / decl.meter_override_file
            beat_bytes = beats.read_bytes() if beats.is_file() else b""
            cache_key = hashlib.sha256(sha.encode() + beat_bytes).hexdigest()
        else:
            cache_key = sha
        shas.append(sha)
        keys.append(cache_key)
        job = ParseJob(str(source.path), cfg.expand_repeats, decl.meter_override_file)
        jobs.append(job)
        cached = _load_cached(_cache_path(cache_dir, cache_key, job)) if cache_dir else None
        if cached is not None:
            outcomes[i] = cached
            if on_done:
                on_done(1)
        else:
            to_parse.append(i)
    finished = iter_items(
        parse_job,
        [jobs[i] for i in to_parse],
        limits=Limits(cfg.timeout_s, cfg.memory_mb),
        scheduler=scheduler,
        workers=workers,
        preload=PRELOAD,
    )
    for k, outcome in finished:
        i = to_parse[k]
        outcomes[i] = outcome
        if cache_dir:  # as each file finishes, so that a killed run keeps what it parsed
            _store_cached(_cache_path(cache_dir, keys[i], jobs[i]), outcome)
        if on_done:
            on_done(1)

    scores: list[tuple[Score, dict[str, Any]]] = []
    decisions: list[Decision] = []
    for i, source in enumerate(files):
        decl = decls[source.corpus]
        outcome = outcomes[i]
        if not outcome.ok:
            decisions.append(
                _file_quarantined(source, _reason(outcome.reason or "error"), outcome.detail)
            )
            continue
        parsed = outcome.value or []
        if not parsed:
            decisions.append(_file_quarantined(source, "no_scores", "the file holds no score"))
            continue
        seen: dict[str, int] = {}
        for piece in parsed:
            item = piece.item if isinstance(piece, ItemFailure) else piece.meta.collection_item
            item_id = source.id + (f"#X:{item}" if item is not None else "")
            seen[item_id] = seen.get(item_id, 0) + 1
            if seen[item_id] > 1:  # a collection that reuses an X: number
                item_id += f".{seen[item_id]}"
            if isinstance(piece, ItemFailure):
                decisions.append(
                    Decision(
                        item_id,
                        source.corpus,
                        source.rel_path,
                        item,
                        STAGE,
                        quarantined(piece.reason),
                        piece.detail,
                    )
                )
                continue
            score = piece
            meta = ScoreMeta(item_id, score.meta.title, score.meta.composer, source.rel_path, item)
            score = score.replace(meta=meta)
            row = {
                "id": item_id,
                "corpus": source.corpus,
                "rel_path": source.rel_path,
                "item": item,
                "sha256": shas[i],
                "genre": decl.genre,
                "composer": decl.composer_for(source.rel_path),
                "priority": decl.priority,
                "title": score.meta.title,
                "source_composer": score.meta.composer,
                "notes": len(score.notes),
                "bars": len(score.bars),
            }
            scores.append((score, row))
            decisions.append(
                Decision(item_id, source.corpus, source.rel_path, item, STAGE, ACCEPTED)
            )
    return IngestResult(scores, decisions, parsed=len(to_parse), cached=len(files) - len(to_parse))


def _file_quarantined(source: SourceFile, reason: str, detail: str) -> Decision:
    """The decision for a file that yields no item: one quarantined row under the file's id."""
    return Decision(
        source.id, source.corpus, source.rel_path, None, STAGE, quarantined(reason), detail
    )


_REASONS = {"ScoreParseError": "parse_error", "ScoreValidationError": "invalid_score"}


def _reason(raw: str) -> str:
    return _REASONS.get(raw, raw)


def write_outputs(result: IngestResult, out_dir: Path) -> None:
    """Write pieces, notes and decisions (atomically, deterministic order)."""
    ordered = sorted(result.scores, key=lambda pair: pair[0].meta.id)
    rows = []
    for score, row in ordered:
        body = score_to_dict(score)
        body["notes"] = []  # notes live in notes.parquet
        rows.append({**row, "score_json": json.dumps(body, sort_keys=True)})
    write_table_atomic(pa.Table.from_pylist(rows, schema=PIECES_SCHEMA), out_dir / "pieces.parquet")
    write_table_atomic(notes_table(s for s, _ in ordered), out_dir / "notes.parquet")
    write_decisions(result.decisions, out_dir / "decisions.parquet")
