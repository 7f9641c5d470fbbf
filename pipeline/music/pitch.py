"""Pitch folding: notes outside a declared range moved by whole octaves into it (counted)."""

from __future__ import annotations

from pipeline.score import Note, Score


def fold_pitches(score: Score, low: int, high: int) -> tuple[Score, int]:
    """Move notes outside `low`-`high` by whole octaves into range; return the score and the count."""
    moved = 0
    notes: list[Note] = []
    for note in score.notes:
        pitch = note.pitch
        while pitch < low:
            pitch += 12
        while pitch > high:
            pitch -= 12
        moved += pitch != note.pitch
        notes.append(note._replace(pitch=pitch))
    if not moved:
        return score, 0
    return score.replace(notes=notes).with_counts({"octave_folded": moved}), moved
