"""Atomic writes and file hashes: every file a stage writes appears whole or not at all.

A writer writes into `temporary_path(path)` and renames it into place when complete
(`atomic_path`), so a killed build leaves no half file under a final name and a rerun finishes
the job. Standard library only (pyarrow is imported by the one function that needs it), so that
the pure layers may use it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

TEMPORARY_MARK = ".tmp"  # in every temporary name, before the final suffix


def temporary_path(path: Path) -> Path:
    """Where this process writes `path` before renaming it into place.

    Hidden (a leading dot), per process (ingest's children store cache entries themselves, and
    two files with the same bytes share one entry, so two children may write it at once), and
    ending in the final suffix (matplotlib, music21 and miditoolkit choose the format by it).
    """
    return path.with_name(f".{path.name}.{os.getpid()}{TEMPORARY_MARK}{path.suffix}")


def stale_temporaries(folder: Path, name: str = "*") -> list[Path]:
    """Temporary files of `folder / name` (default: of any file in `folder`) that any process
    left behind: a killed writer."""
    return sorted(folder.glob(f".{name}.*{TEMPORARY_MARK}*")) if folder.is_dir() else []


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write `path` into: renamed to `path` when the block ends normally,
    removed when it raises (the previous file, if any, stays as it was)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write bytes to a temporary name, then rename: a killed run leaves no half file."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text (UTF-8) to a temporary name, then rename."""
    write_bytes_atomic(path, text.encode())


def write_table_atomic(table: pa.Table, path: Path, **options: object) -> None:
    """Write Parquet (zstd; `options` go to `pyarrow.parquet.write_table`) atomically."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", **options)


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
