"""A Parquet table written a batch of rows at a time and renamed into place when complete."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io.atomic import temporary_path

BATCH_ROWS = 256  # rows per Parquet row group: bounds the memory a writer holds


class RowWriter:
    """Append rows (mappings of the schema's columns) to `path` (zstd), atomically."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_path(path)
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")
        self._rows: list[Mapping[str, Any]] = []

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row."""
        self._rows.append(row)
        if len(self._rows) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def close(self) -> None:
        """Finish the file and rename it into place."""
        self._flush()
        self._writer.close()
        self._tmp.replace(self.path)

    def abort(self) -> None:
        """Drop the temporary file (the previous output, if any, stays as it was)."""
        with contextlib.suppress(Exception):  # a broken writer must not hide the first error
            self._writer.close()
        self._tmp.unlink(missing_ok=True)
