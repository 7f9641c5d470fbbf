"""Ingest's per-file cache: its key, and each file's reading stored as JSON and read back.

A file's outcome is stored under the hash of its bytes (and of its beat file), the cache format,
the reader kind and the hash of that reader's code (`reader_version`), so a file is parsed once
per reader version; failures that depend on the machine (timeouts, memory, crashes) or on the
file system are never stored. Children store their readings themselves (`parse_and_store`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.errors import GnmError
from pipeline.executor import Outcome
from pipeline.io.atomic import write_text_atomic
from pipeline.io.score_io import score_from_dict, score_to_dict
from pipeline.readers import ItemFailure, ReaderKind
from pipeline.readers.parser_messages import FileMessages
from pipeline.readers.voices import Voice, VoiceGroup
from pipeline.score import Score
from pipeline.source_files import FILE_SYSTEM_REASONS
from pipeline.stages.ingest_read import Parsed, ParseJob, parse_job

# Bump when score_io's dict layout changes, or when `parse_job` changes what it stores (the
# source counts, the voice groups, the parser messages): reader_version hashes the readers, not
# this module.
CACHE_FORMAT = 6


# Reader code shared by both kinds: the dispatch, bar building, beat files, source counts,
# voice groups.
_SHARED_READER_FILES = (
    "__init__.py",
    "common.py",
    "beats.py",
    "source_counts.py",
    "voices.py",
    "parser_messages.py",
)
_REFERENCE_READER_FILES = ("music21_reader.py", "midi_reader.py")


@cache
def reader_version(kind: ReaderKind = "fast") -> str:
    """Hash of one reader kind's code and parser library versions: part of every cache key.

    The reference kind hashes only music21's and miditoolkit's readers, so that a change to a
    fast reader never throws away the (slow) reference readings that crosscheck keeps.
    """
    import miditoolkit
    import music21
    import symusic

    import pipeline.readers as readers_pkg

    digest = hashlib.sha256()
    root = Path(readers_pkg.__file__).parent
    if kind == "reference":
        names = sorted((*_SHARED_READER_FILES, *_REFERENCE_READER_FILES))
        files = [root / n for n in names]
        versions = f"music21={music21.__version__};miditoolkit={miditoolkit.__version__}"
    else:  # the fast readers fall back on the reference ones: any reader change counts
        files = sorted(root.glob("*.py"))
        versions = (
            f"music21={music21.__version__};miditoolkit={miditoolkit.__version__};"
            f"symusic={symusic.__version__}"
        )
    for path in [*files, root.parent / "score.py"]:
        digest.update(path.read_bytes())
    digest.update(versions.encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class StoreJob:
    """A file to parse and where its reading goes in the cache."""

    job: ParseJob
    cache_path: str


def parse_and_store(task: StoreJob) -> None:
    """`parse_job`, with the reading stored at `task.cache_path` (runs in the isolated child).

    The scores never travel back to the parent: pickling them to the scheduler and storing them
    there as JSON, one file after another, held the parent's core for a fifth of a cold ingest.
    A failure raises, as in `parse_job`, and the parent stores why.
    """
    store_cached(Path(task.cache_path), Outcome(value=parse_job(task.job)))


def cache_path(cache_dir: Path, sha: str, job: ParseJob) -> Path:
    flavour = hashlib.sha256(
        f"{CACHE_FORMAT}|{reader_version(job.reader)}|{job.expand_repeats}|{job.beat_file}|{job.reader}".encode()
    ).hexdigest()[:12]
    return cache_dir / "ingest" / sha[:2] / f"{sha}-{flavour}.json"


def load_cached(path: Path) -> Outcome[Parsed] | None:
    """The cached outcome at `path`, or None when it is missing or unreadable in any way."""
    try:
        data = json.loads(path.read_text())
        if data.get("reason"):
            return Outcome(reason=data["reason"], detail=data.get("detail", ""))
        items: Parsed = [_item_from_dict(s) for s in data["items"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, GnmError):
        return None  # torn, garbled or of another layout: parse the file again
    return Outcome(value=items)


def _item_from_dict(data: dict[str, Any]) -> Score | ItemFailure | VoiceGroup | FileMessages:
    if "score" in data:
        # Validated in the child before it was cached; the cache key hashes score.py, so the
        # invariants cannot have changed since (validating again took a quarter of phase two).
        return score_from_dict(data["score"], validate=False)
    if "messages" in data:
        said = data["messages"]
        return FileMessages(int(said["count"]), tuple(str(m) for m in said["first"]))
    if "voices" in data:
        group = data["voices"]
        return VoiceGroup(group["title"], tuple(Voice(**v) for v in group["voices"]))
    return ItemFailure(**data["failure"])


def _item_to_dict(item: Score | ItemFailure | VoiceGroup | FileMessages) -> dict[str, Any]:
    if isinstance(item, Score):
        return {"score": score_to_dict(item)}
    if isinstance(item, FileMessages):
        return {"messages": {"count": item.count, "first": list(item.first)}}
    if isinstance(item, VoiceGroup):
        return {"voices": asdict(item)}
    return {"failure": asdict(item)}


def store_cached(path: Path, outcome: Outcome[Parsed]) -> bool:
    """Store `outcome` at `path` (atomically); False for outcomes that are never cached."""
    if outcome.reason in ("timeout", "memory_limit", "crash", *FILE_SYSTEM_REASONS):
        return False  # may depend on the machine's load or the file's permissions: try again
    if outcome.ok:
        data: dict[str, Any] = {"items": [_item_to_dict(s) for s in outcome.value or []]}
    else:
        data = {"reason": outcome.reason, "detail": outcome.detail}
    write_text_atomic(path, json.dumps(data))
    return True
