"""Notes as columns: integer ticks at one exact resolution, readable as `Note` objects too.

A `NoteTable` holds a score's notes as five integer arrays (onset and duration in ticks, pitch,
velocity, part) and `resolution`, the ticks per quarter note. The resolution is exact: every
onset and duration is a whole number of ticks. A table from fractions (the score store, a
reader's `Note` objects) uses the least common multiple of their denominators; the MIDI reader
uses the file's ticks per beat, a transform that shifts notes a multiple of the old resolution,
quantisation the grid's. Fractions are written reduced, so the choice never shows in outputs.
Meter normalisation, quantisation, encoding and the store work on the arrays; readers, writers
and tests that want objects iterate the table as a sequence of `Note` (quarter-note `Fraction`s),
built on first use and kept. A table built from objects keeps them and builds the arrays on first
use, so a reader's score costs no conversion until a transform needs one.

Ticks are int64 while every value a transform computes fits in 62 bits; a score whose exact
resolution is larger (tuplets nested past reason, a MIDI file with an absurd division) falls back
to arrays of Python integers (`dtype=object`): the same code, exact, slower.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any, NamedTuple, overload

import numpy as np

DEFAULT_VELOCITY = 80
# Largest magnitude an int64 computation may reach here (headroom for a doubling and a sum).
INT64_SAFE = 1 << 61


class Note(NamedTuple):
    """One sounding note: onset and duration in quarter notes, MIDI pitch, velocity, part index.

    Field order is the canonical sort order: by onset, then pitch, then duration.
    """

    onset: Fraction
    pitch: int
    duration: Fraction
    velocity: int = DEFAULT_VELOCITY
    part: int = 0

    @property
    def end(self) -> Fraction:
        """Offset of the note in quarter notes."""
        return self.onset + self.duration


@lru_cache(maxsize=1 << 16)
def fraction(num: int, den: int) -> Fraction:
    """`Fraction(num, den)`, shared: scores repeat few distinct values and building Fractions
    dominated the cost of turning columns into notes."""
    return Fraction(num, den)


def int_array(values: Any, bound: int) -> np.ndarray:
    """`values` as int64 when `bound` (the largest magnitude a caller will compute from them)
    fits, else as Python integers (object dtype, exact)."""
    dtype = np.int64 if bound < INT64_SAFE else object
    return np.asarray(values, dtype=dtype)


def magnitude(values: np.ndarray) -> int:
    """The largest absolute value in `values` (0 when empty), as a Python int."""
    return int(abs(values).max()) if len(values) else 0


def to_ticks(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, int]:
    """Fractions `num/den` (positive denominators) as ticks at their exact resolution (the least
    common multiple of the denominators): `(ticks, resolution)`."""
    dens = [int(d) for d in np.unique(den)] if len(den) else [1]
    resolution = math.lcm(*dens)
    bound = resolution * (magnitude(num) + 1)
    if bound < INT64_SAFE:
        num64, den64 = num.astype(np.int64), den.astype(np.int64)
        return num64 * (resolution // den64), resolution
    exact = [
        int(n) * (resolution // int(d)) for n, d in zip(num.tolist(), den.tolist(), strict=True)
    ]
    return np.array(exact, dtype=object), resolution


def divide(num: np.ndarray, den: int) -> np.ndarray:
    """`num / den` as float64, each correctly rounded like Python's `int / int` (and so like
    `float(Fraction(num, den))`), whatever the size of the integers."""
    if num.dtype != object and den < 2**53 and magnitude(num) < 2**53:
        return num / den  # both exact as float64: IEEE division rounds correctly
    return np.array([int(n) / den for n in num.tolist()], dtype=np.float64)


def to_fractions(ticks: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Ticks as reduced fractions of a quarter: `(numerators, denominators)`."""
    common = np.gcd(ticks, resolution)
    return ticks // common, resolution // common


def tables_from_fractions(columns: Sequence[np.ndarray], bounds: Sequence[int]) -> list[NoteTable]:
    """`NoteTable.from_fractions` of each run of rows `bounds[k]:bounds[k + 1]` of the fraction
    columns (onset num, den, pitch, duration num, den, velocity, part), computed for all runs at
    once: the store's loader calls it once per batch rather than once per score.

    Exact: a run's resolution is the least common multiple of its denominators; a run where it
    reaches 2**31, or a numerator 2**29, is converted on its own (Python integers if needed).
    """
    onset_num, onset_den, pitch, dur_num, dur_den, velocity, part = (
        np.asarray(c, dtype=np.int64) for c in columns
    )
    starts = np.asarray(bounds[:-1], dtype=np.int64)
    counts = np.diff(np.asarray(bounds, dtype=np.int64)).astype(np.int64)
    if not len(starts):
        return []
    resolution = np.lcm.reduceat(np.lcm(onset_den, dur_den), starts)
    row_res = np.repeat(resolution, counts)
    # A positive common multiple below 2**31 is the least one: an intermediate lcm never
    # exceeds the final one, so nothing overflowed on the way (see the docstring).
    fits = (
        (row_res > 0)
        & (row_res < 1 << 31)
        & (row_res % onset_den == 0)
        & (row_res % dur_den == 0)
        & (np.abs(onset_num) < 1 << 29)
        & (np.abs(dur_num) < 1 << 29)
    )
    run_fits = np.logical_and.reduceat(fits, starts).tolist()
    safe = np.where(fits, row_res, 1)
    onset = onset_num * (safe // np.where(fits, onset_den, 1))
    duration = dur_num * (safe // np.where(fits, dur_den, 1))
    # Descents (a row sorting before the previous one) counted over the batch: a run without one
    # inside it is sorted, which spares each score's own check.
    descents = np.concatenate(([0], np.cumsum(_descents((onset, pitch, duration, velocity, part)))))
    tables = []
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if run_fits[k]:
            table = NoteTable(onset[lo:hi], pitch[lo:hi], duration[lo:hi],
                              velocity[lo:hi], part[lo:hi], int(resolution[k]))  # fmt: skip
            table._sorted = bool(descents[hi - 1] == descents[lo])
            tables.append(table)
        else:
            run = [
                c[lo:hi] for c in (onset_num, onset_den, pitch, dur_num, dur_den, velocity, part)
            ]
            tables.append(NoteTable.from_fractions(*run))
    return tables


def _descents(columns: Sequence[np.ndarray]) -> np.ndarray:
    """For each row after the first, whether it sorts before the previous row (lexicographic
    order of `columns`, most significant first)."""
    count = max(len(columns[0]) - 1, 0)
    before = np.zeros(count, dtype=bool)
    tied = np.ones(count, dtype=bool)
    for col in columns:
        before |= tied & (col[1:] < col[:-1])
        tied &= col[1:] == col[:-1]
    return before


class _Column:
    """One column of a `NoteTable`, read-only (built on first use)."""

    def __init__(self, index: int, doc: str) -> None:
        self.index = index
        self.__doc__ = doc

    def __get__(self, table: NoteTable, owner: object = None) -> np.ndarray:
        return table.columns()[self.index]


class NoteTable(Sequence[Note]):
    """A score's notes as integer columns at one exact resolution (see the module docstring).

    Build one from arrays (`NoteTable(onset, pitch, duration, velocity, part, resolution)`, ticks)
    or from objects (`NoteTable.of(notes)`); either view is built from the other on first use.
    Order is kept as given; `sorted()` returns the canonical order (that of `sorted(notes)`).
    """

    __slots__ = ("_cols", "_notes", "_sorted")

    def __init__(
        self,
        onset: np.ndarray,
        pitch: np.ndarray,
        duration: np.ndarray,
        velocity: np.ndarray,
        part: np.ndarray,
        resolution: int,
    ) -> None:
        if resolution < 1:
            raise ValueError(f"resolution must be a positive number of ticks, not {resolution}")
        self._cols: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None
        self._cols = (onset, pitch, duration, velocity, part, int(resolution))
        self._notes: tuple[Note, ...] | None = None
        self._sorted = False  # known to be in canonical order

    @classmethod
    def of(cls, notes: Iterable[Note]) -> NoteTable:
        """A table over `notes` (kept as given; the columns are built on first use)."""
        if isinstance(notes, NoteTable):
            return notes
        table = cls.__new__(cls)
        table._cols = None
        table._notes = tuple(notes)
        table._sorted = False
        return table

    @classmethod
    def from_fractions(
        cls,
        onset_num: np.ndarray,
        onset_den: np.ndarray,
        pitch: np.ndarray,
        dur_num: np.ndarray,
        dur_den: np.ndarray,
        velocity: np.ndarray,
        part: np.ndarray,
    ) -> NoteTable:
        """A table from fraction columns (quarter notes, as the score store keeps them), at the
        notes' exact resolution."""
        onset, res_on = to_ticks(onset_num, onset_den)
        duration, res_du = to_ticks(dur_num, dur_den)
        resolution = math.lcm(res_on, res_du)
        up_on, up_du = resolution // res_on, resolution // res_du
        bound = max(up_on * (magnitude(onset) + 1), up_du * (magnitude(duration) + 1))
        onset, duration = int_array(onset, bound) * up_on, int_array(duration, bound) * up_du
        pitch, velocity, part = (np.asarray(c, dtype=np.int64) for c in (pitch, velocity, part))
        return cls(onset, pitch, duration, velocity, part, resolution)

    @classmethod
    def empty(cls) -> NoteTable:
        """A table without notes."""
        return cls.of(())

    # -- the columns -----------------------------------------------------------------------
    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        if self._cols is None:
            notes = self._notes or ()
            if notes:
                # Object columns: a reader's numerator or denominator may exceed int64.
                rows = np.array([(n.onset.numerator, n.onset.denominator, n.pitch,
                                  n.duration.numerator, n.duration.denominator, n.velocity,
                                  n.part) for n in notes], dtype=object)  # fmt: skip
                self._cols = NoteTable.from_fractions(*rows.T)._columns()
            else:
                none = np.zeros(0, dtype=np.int64)
                self._cols = (none, none, none, none, none, 1)
        return self._cols

    @property
    def resolution(self) -> int:
        """Ticks per quarter note."""
        return self._columns()[5]

    onset = _Column(0, "Onsets in ticks.")
    pitch = _Column(1, "MIDI pitches.")
    duration = _Column(2, "Durations in ticks.")
    velocity = _Column(3, "Velocities (1-127).")
    part = _Column(4, "Part indices.")

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(onset, pitch, duration, velocity, part): the canonical sort keys, most significant
        first."""
        return self._columns()[:5]

    def at(self, resolution: int) -> NoteTable:
        """The same notes at `resolution` ticks per quarter, a multiple of the current one."""
        onset, pitch, duration, velocity, part, res = self._columns()
        if resolution == res:
            return self
        if resolution % res:
            raise ValueError(f"{resolution} ticks per quarter is not a multiple of {res}")
        factor = resolution // res
        bound = factor * (max(magnitude(onset), magnitude(duration)) + 1)
        onset, duration = int_array(onset, bound), int_array(duration, bound)
        return NoteTable(onset * factor, pitch, duration * factor, velocity, part, resolution)

    def with_columns(self, *, resolution: int | None = None, **columns: np.ndarray) -> NoteTable:
        """A table with some columns replaced (same resolution unless `resolution` is given)."""
        onset, pitch, duration, velocity, part, res = self._columns()
        current = {"onset": onset, "pitch": pitch, "duration": duration,
                   "velocity": velocity, "part": part}  # fmt: skip
        current.update(columns)
        return NoteTable(**current, resolution=res if resolution is None else resolution)

    def take(self, index: np.ndarray) -> NoteTable:
        """The notes at `index` (integer positions or a boolean mask), in that order."""
        onset, pitch, duration, velocity, part, res = self._columns()
        return NoteTable(onset[index], pitch[index], duration[index], velocity[index],
                         part[index], res)  # fmt: skip

    def sorted(self) -> NoteTable:
        """The notes in canonical order: by onset, pitch, duration, velocity, then part."""
        if len(self) < 2:
            return self
        if self._cols is None:
            return NoteTable.of(sorted(self._notes or ()))
        if self.unsorted_at() is None:
            return self
        onset, pitch, duration, velocity, part = self.columns()
        ordered = self.take(np.lexsort((part, velocity, duration, pitch, onset)))
        ordered._sorted = True
        return ordered

    def unsorted_at(self) -> int | None:
        """The first index whose note sorts before the previous one, or None when sorted."""
        if self._sorted:
            return None
        cols = self.columns()
        if len(cols[0]) < 2:
            self._sorted = True
            return None
        bad = np.flatnonzero(_descents(cols))
        self._sorted = not bad.size
        return int(bad[0]) + 1 if bad.size else None

    # -- fractions -------------------------------------------------------------------------
    def quarters(self, ticks: int) -> Fraction:
        """`ticks` of this table as quarter notes."""
        return Fraction(ticks, self.resolution)

    def fraction_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(onset numerators, onset denominators, duration numerators, duration denominators),
        reduced, in quarter notes."""
        onset_num, onset_den = to_fractions(self.onset, self.resolution)
        dur_num, dur_den = to_fractions(self.duration, self.resolution)
        return onset_num, onset_den, dur_num, dur_den

    # -- the sequence of Note objects ------------------------------------------------------
    def objects(self) -> tuple[Note, ...]:
        """The notes as `Note` objects (built once, then kept)."""
        if self._notes is None:
            on, od, dn, dd = (c.tolist() for c in self.fraction_columns())
            q = fraction
            self._notes = tuple(
                Note(q(a, b), p, q(c, d), v, part)
                for a, b, p, c, d, v, part in zip(
                    on, od, self.pitch.tolist(), dn, dd, self.velocity.tolist(),
                    self.part.tolist(), strict=True,
                )
            )  # fmt: skip
        return self._notes

    def __len__(self) -> int:
        if self._notes is not None:
            return len(self._notes)
        return len(self._columns()[0])

    @overload
    def __getitem__(self, index: int) -> Note: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Note, ...]: ...

    def __getitem__(self, index: int | slice) -> Note | tuple[Note, ...]:
        return self.objects()[index]

    def __iter__(self) -> Iterator[Note]:
        return iter(self.objects())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NoteTable):
            if len(self) != len(other):
                return False
            common = math.lcm(self.resolution, other.resolution)
            return all(
                np.array_equal(a, b)
                for a, b in zip(self.at(common).columns(), other.at(common).columns(), strict=True)
            )
        if isinstance(other, Sequence):
            return self.objects() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable caches; equal tables may differ in form

    def __repr__(self) -> str:
        return f"NoteTable({len(self)} notes)"
