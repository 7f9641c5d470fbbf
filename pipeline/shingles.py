"""Shingles of a piece's lines: what near-duplicate detection compares.

A line is one pitch per onset; a shingle hashes `n` consecutive steps of it, each step the pitch
interval and the inter-onset ratio (log2, in half steps, rounded half to even), so shingles do not
change under transposition or a uniform change of note values. Two views of a piece:

* **parts**: the line of each part (its top note per onset), pooled over the parts. Two editions
  of a quartet differ in small places (a tie, an inner voice, a grace note) and a line drawn
  through all the parts changes at each, while a part's own line changes only where that part
  does;
* **whole**: the top line and the bass line of the whole score (the highest and the lowest note
  starting at each onset, whatever its part). It does not depend on how the notes are divided
  into parts: a prelude kept as three spines (left hand, inner and upper right-hand voices) and
  the same prelude on two staves have the same whole view, where their parts views share under
  half their shingles.

Onsets may be quarter notes or integer grid ticks (as float64): only their ratios count. The work
is vectorised (numpy), a few microseconds a note: dedupe computes both views of every piece.
"""

from __future__ import annotations

import itertools

import numpy as np

from pipeline.containment_join import distinct

# Line tags: a top-line shingle never equals a bass-line one with the same steps.
PART_LINE, TOP_LINE, BASS_LINE = 0, 1, 2
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: the n-gram's polynomial hash base
_EMPTY = np.zeros(0, dtype=np.uint32)


def part_shingles(onsets: np.ndarray, pitches: np.ndarray, parts: np.ndarray, n: int) -> np.ndarray:
    """The parts view of notes given as arrays: sorted distinct uint32."""
    return distinct(_line_shingles(*_line(parts, onsets, pitches, highest=True), n, PART_LINE)[0])


def whole_shingles(onsets: np.ndarray, pitches: np.ndarray, n: int) -> np.ndarray:
    """The whole view of notes given as arrays (parts ignored): sorted distinct uint32."""
    one = np.zeros(len(onsets), dtype=np.int64)
    top = _line_shingles(*_line(one, onsets, pitches, highest=True), n, TOP_LINE)[0]
    bass = _line_shingles(*_line(one, onsets, pitches, highest=False), n, BASS_LINE)[0]
    return distinct(np.concatenate([top, bass]))


def piece_views(
    piece: np.ndarray,
    onsets: np.ndarray,
    pitches: np.ndarray,
    parts: np.ndarray,
    n: int,
    count: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Both views of `count` pieces at once: the parts view and the whole view of each, as
    `part_shingles` and `whole_shingles` give them, from the notes of all pieces (`piece`: the
    index of each note's piece, ascending). One numpy pass for all: per piece, the calls cost
    more than the work."""
    piece = np.asarray(piece, dtype=np.int64)
    parts = np.asarray(parts, dtype=np.int64)
    span = int(parts.max()) + 1 if len(parts) else 1
    # A line is (piece, part) for the parts view and the piece for the whole view: no window
    # crosses a line, so none crosses a piece.
    by_part = _owned(_line(piece * span + parts, onsets, pitches, highest=True), n, PART_LINE, span)
    top = _owned(_line(piece, onsets, pitches, highest=True), n, TOP_LINE, 1)
    bass = _owned(_line(piece, onsets, pitches, highest=False), n, BASS_LINE, 1)
    whole = (np.concatenate((top[0], bass[0])), np.concatenate((top[1], bass[1])))
    return _split(*by_part, count), _split(*whole, count)


def _owned(
    line: tuple[np.ndarray, np.ndarray, np.ndarray], n: int, tag: int, span: int
) -> tuple[np.ndarray, np.ndarray]:
    """(piece of each shingle, shingle) of the lines (line ids are piece * span + part)."""
    hashes, first = _line_shingles(*line, n, tag)
    return line[0][first] // span, hashes


def _split(piece: np.ndarray, hashes: np.ndarray, count: int) -> list[np.ndarray]:
    """Each piece's distinct shingles, sorted (pieces without any get an empty array)."""
    keys = distinct((piece.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64))
    owner = (keys >> np.uint64(32)).astype(np.int64)
    values = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    cuts = np.searchsorted(owner, np.arange(count + 1))
    return [values[lo:hi] for lo, hi in itertools.pairwise(cuts.tolist())]


def _line(
    lines: np.ndarray, onsets: np.ndarray, pitches: np.ndarray, *, highest: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One note per (line, onset): the highest or lowest pitch; sorted by line, then onset."""
    lines = np.asarray(lines, dtype=np.int64)
    onsets = np.asarray(onsets, dtype=np.float64)
    pitches = np.asarray(pitches, dtype=np.int64)
    order = np.lexsort((pitches if highest else -pitches, onsets, lines))
    lines, onsets, pitches = lines[order], onsets[order], pitches[order]
    # The last note of each (line, onset) run: the highest (or, with pitches negated, lowest).
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (lines[1:] != lines[:-1]) | (onsets[1:] != onsets[:-1])
    return lines[last], onsets[last], pitches[last]


def _line_shingles(
    lines: np.ndarray, onsets: np.ndarray, pitches: np.ndarray, n: int, tag: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the n-grams of steps within each line (none across two lines), and the index
    (into the notes) of each n-gram's first note."""
    none = (_EMPTY, np.zeros(0, dtype=np.int64))
    if len(onsets) < n + 2:
        return none
    gap = np.diff(onsets)
    with np.errstate(divide="ignore", invalid="ignore"):  # steps across lines are dropped
        ratio = np.rint(2 * np.log2(gap[1:] / gap[:-1]))
    same_line = (lines[2:] == lines[:-2]) & np.isfinite(ratio)
    interval = np.diff(pitches)[:-1]
    code = (interval + 0x8000) << 16 | (np.where(same_line, ratio, 0).astype(np.int64) + 0x8000)
    code = code.astype(np.uint64)
    windows = len(code) - n + 1
    if windows < 1:
        return none
    hashed = np.full(windows, np.uint64(tag + 1))
    for j in range(n):
        hashed = hashed * _MULTIPLIER + code[j : j + windows]
    broken = np.concatenate(([0], np.cumsum(~same_line)))  # steps not within one line so far
    whole = broken[n:] - broken[:windows] == 0
    return _mix(hashed[whole]), np.flatnonzero(whole)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, keeping the top 32 bits: well-spread uint32."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (h >> np.uint64(32)).astype(np.uint32)
