"""A folder of canonical scores on disk, streamed in both directions with bounded memory.

Layout (written by ingest, meter and quantize): `pieces.parquet` holds one row per score (the
stage's metadata columns plus `score_json`, the score without its notes) sorted by id, and
`notes.parquet` one row per note in the same piece order (see `score_io.NOTES_SCHEMA`).
`iter_scores` walks both files in lockstep, batch by batch, so a stage never holds more than a
batch of scores; `ScoreWriter` appends batches to temporary files and renames them into place
only when the whole folder is written, so a killed stage leaves no half file under a final name.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import GnmError
from pipeline.io.atomic import temporary_path
from pipeline.io.score_io import NOTES_SCHEMA, notes_table, score_from_dict, score_to_dict
from pipeline.notes import tables_from_fractions
from pipeline.score import NoteTable, Score

PIECES_FILE = "pieces.parquet"
NOTES_FILE = "notes.parquet"
BATCH_PIECES = 256  # scores per Parquet row group: bounds memory in both directions
NOTE_ROWS = 65536  # note rows read at once (a piece's notes may span batches)


class ScoreWriter:
    """Write (row, score) pairs, in id order, into `out_dir` with the given pieces schema."""

    def __init__(self, out_dir: Path, schema: pa.Schema) -> None:
        if "score_json" not in schema.names or "id" not in schema.names:
            raise ValueError("a pieces schema needs `id` and `score_json` columns")
        self.out_dir = out_dir
        self.schema = schema
        out_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = {name: temporary_path(out_dir / name) for name in (PIECES_FILE, NOTES_FILE)}
        self._pieces = pq.ParquetWriter(self._tmp[PIECES_FILE], schema, compression="zstd")
        self._notes = pq.ParquetWriter(self._tmp[NOTES_FILE], NOTES_SCHEMA, compression="zstd")
        self._rows: list[dict[str, Any]] = []
        self._scores: list[Score] = []
        self._last_id: str | None = None
        self.count = 0

    def write(self, row: Mapping[str, Any], score: Score) -> None:
        """Append one score; ids must arrive in increasing order (readers rely on it)."""
        if self._last_id is not None and score.meta.id <= self._last_id:
            raise ValueError(
                f"scores must be written in id order: {score.meta.id} after {self._last_id}"
            )
        self._last_id = score.meta.id
        body = score_to_dict(score, notes=False)  # notes live in notes.parquet
        self._rows.append(
            {**row, "id": score.meta.id, "score_json": json.dumps(body, sort_keys=True)}
        )
        self._scores.append(score)
        self.count += 1
        if len(self._rows) >= BATCH_PIECES:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        self._pieces.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
        self._notes.write_table(notes_table(self._scores))
        self._rows, self._scores = [], []

    def close(self) -> None:
        """Finish both files and rename them into place."""
        self._flush()
        self._pieces.close()
        self._notes.close()
        for name, tmp in self._tmp.items():
            tmp.replace(self.out_dir / name)

    def abort(self) -> None:
        """Drop the temporary files (the previous output, if any, stays as it was)."""
        for writer in (self._pieces, self._notes):
            # Closing a broken writer may fail too; that must not hide the original error.
            with contextlib.suppress(Exception):
                writer.close()
        for tmp in self._tmp.values():
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> ScoreWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def count_scores(folder: Path) -> int:
    """How many scores a folder holds (from the Parquet footer, without reading rows)."""
    return int(pq.ParquetFile(_require(folder, PIECES_FILE)).metadata.num_rows)


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise GnmError(f"{path}: missing (run the stage that writes {folder} first)")
    return path


def iter_scores(
    folder: Path, batch_size: int = BATCH_PIECES, note_rows: int = NOTE_ROWS
) -> Iterator[tuple[dict[str, Any], Score]]:
    """Every (row without `score_json`, score) of a folder, in id order, a batch at a time
    (`batch_size` pieces, `note_rows` note rows).

    Notes arrive column by column: each score gets a `NoteTable` sliced from the batch's arrays,
    never a Python object per note.
    """
    pieces = pq.ParquetFile(_require(folder, PIECES_FILE))
    runs = _note_runs(pq.ParquetFile(_require(folder, NOTES_FILE)), note_rows)
    pending: tuple[str, NoteTable] | None = next(runs, None)
    for batch in pieces.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            body = json.loads(row.pop("score_json"))
            body["notes"] = []
            score = score_from_dict(body, validate=False)  # validated below, notes and all
            sid = score.meta.id
            own = NoteTable.empty()
            if pending is not None and pending[0] == sid:
                own = pending[1]
                pending = next(runs, None)
            if pending is not None and pending[0] <= sid:
                raise GnmError(f"{folder / NOTES_FILE}: notes of {pending[0]} are out of order")
            yield row, score.replace(notes=own).validate()
    if pending is not None:
        raise GnmError(f"{folder / NOTES_FILE}: notes of {pending[0]} have no piece row")


NOTE_COLUMNS = ("onset_num", "onset_den", "pitch", "dur_num", "dur_den", "velocity", "part")


def _note_runs(notes: pq.ParquetFile, batch_rows: int) -> Iterator[tuple[str, NoteTable]]:
    """(piece id, its notes) for each run of rows of one piece, a run split across batches
    joined again."""
    carry: tuple[str, list[np.ndarray]] | None = None
    for batch in notes.iter_batches(batch_size=batch_rows):
        if not batch.num_rows:
            continue
        ids = batch.column("piece")
        columns = [batch.column(name).to_numpy() for name in NOTE_COLUMNS]
        changes = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(
            zero_copy_only=False
        )
        bounds = np.concatenate(([0], np.flatnonzero(changes) + 1, [batch.num_rows])).tolist()
        pieces = ids.take(bounds[:-1]).to_pylist()
        if carry is not None:
            first_hi = bounds[1]
            if carry[0] == pieces[0]:  # the carried piece goes on: join its rows, then convert
                chunk = [
                    np.concatenate((a, c[:first_hi]))
                    for a, c in zip(carry[1], columns, strict=True)
                ]
                carry = None
                if len(bounds) == 2:  # ... and may go on further
                    carry = (pieces[0], chunk)
                    continue
                yield pieces[0], NoteTable.from_fractions(*chunk)
                bounds, pieces = bounds[1:], pieces[1:]
            else:
                yield carry[0], NoteTable.from_fractions(*carry[1])
                carry = None
        # Every run but the last is whole; the last may go on in the next batch.
        first_lo, last_lo = bounds[0], bounds[-2]
        runs = [c[first_lo:last_lo] for c in columns]
        tables = tables_from_fractions(runs, [b - first_lo for b in bounds[:-1]])
        yield from zip(pieces[:-1], tables, strict=True)
        carry = (pieces[-1], [c[last_lo:] for c in columns])
    if carry is not None:
        yield carry[0], NoteTable.from_fractions(*carry[1])
