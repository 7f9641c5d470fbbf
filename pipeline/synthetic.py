"""Synthetic scores for load tests: deterministic, distinct Standard MIDI files the pipeline accepts.

Piece `i` of seed `s` is a pure function of (s, i): a meter (mostly supported ones, some that
meter normalisation splits, such as 5/4, 9/8 and 12/8), a tempo, a key, a melody that walks the
scale in rhythm cells that fill each beat exactly (triplets and dotted figures included), an
optional bass line, and a closing tonic. Every piece is different, so deduplication keeps them
all, and a corpus of any size is generated without copying a file. `write_corpus` spreads the
files over folders of 1,000 (`00000/000000.mid`, ...) and records the seed in `.synthetic.json`, so
that one folder never mixes two seeds.

    gnm data synth --pieces 137080 --out "$GNM_DATA_ROOT/synthetic"  # 10x the default profile
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.errors import GnmError
from pipeline.io.atomic import write_bytes_atomic

TICKS_PER_BEAT = 480
PER_FOLDER = 1000
MARKER = ".synthetic.json"
FORMAT = 1  # bump when a seed's pieces change

# (meter, weight): mostly what the vocabulary holds, some that meter normalisation must split.
METERS: tuple[tuple[str, int], ...] = (
    ("4/4", 30),
    ("3/4", 20),
    ("2/4", 14),
    ("6/8", 14),
    ("3/8", 5),
    ("2/2", 5),
    ("5/4", 4),
    ("12/8", 4),
    ("9/8", 4),
)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Rhythm cells that fill one beat exactly, in quarter notes.
SIMPLE_CELLS: tuple[tuple[Fraction, ...], ...] = tuple(
    tuple(Fraction(x) for x in cell)
    for cell in (
        ("1",),
        ("1",),
        ("1/2", "1/2"),
        ("1/2", "1/2"),
        ("3/4", "1/4"),
        ("1/4", "1/4", "1/4", "1/4"),
        ("1/2", "1/4", "1/4"),
        ("1/3", "1/3", "1/3"),
    )
)
COMPOUND_CELLS: tuple[tuple[Fraction, ...], ...] = tuple(
    tuple(Fraction(x) for x in cell)
    for cell in (("3/2",), ("1", "1/2"), ("1/2", "1/2", "1/2"), ("3/4", "1/4", "1/2"))
)


@dataclass(frozen=True)
class SynthNote:
    """One note: onset and duration in quarter notes."""

    onset: Fraction
    duration: Fraction
    pitch: int
    velocity: int


@dataclass(frozen=True)
class SynthPiece:
    """A generated piece before it is written."""

    title: str
    meter: str
    bpm: float
    bars: int
    melody: tuple[SynthNote, ...]
    bass: tuple[SynthNote, ...]


def _beats(meter: str) -> tuple[list[Fraction], tuple[tuple[Fraction, ...], ...]]:
    """The beat lengths of one bar (quarter notes) and the cells that fill them."""
    num, den = (int(x) for x in meter.split("/"))
    if den == 8 and num % 3 == 0:
        return [Fraction(3, 2)] * (num // 3), COMPOUND_CELLS
    if den == 8:
        return [Fraction(1, 2)] * num, ((Fraction(1, 2),), (Fraction(1, 4), Fraction(1, 4)))
    beat = Fraction(4, den)
    return [beat] * num, SIMPLE_CELLS if beat == 1 else ((beat,), (beat / 2, beat / 2))


def piece(seed: int, index: int) -> SynthPiece:
    """Piece `index` of `seed` (deterministic across runs and machines)."""
    rng = random.Random(f"gnm-synthetic:{seed}:{index}")
    meter = rng.choices([m for m, _ in METERS], weights=[w for _, w in METERS])[0]
    beats, cells = _beats(meter)
    bar_length = sum(beats, Fraction(0))
    bars = rng.randint(8, 40)
    bpm = float(rng.randrange(50, 200, 2))
    tonic = 60 + rng.randrange(-5, 7)
    scale = MAJOR if rng.random() < 0.7 else MINOR
    degree = rng.randrange(0, 7)
    melody: list[SynthNote] = []
    bass: list[SynthNote] = []
    with_bass = rng.random() < 0.4
    for bar in range(bars - 1):
        start = bar * bar_length
        onset = start
        for _beat in beats:
            for length in rng.choice(cells):
                if rng.random() > 0.08:  # otherwise a rest
                    degree = max(-7, min(12, degree + rng.choice((-2, -1, -1, 0, 1, 1, 2, 3))))
                    pitch = tonic + 12 * (degree // 7) + scale[degree % 7]
                    velocity = rng.randint(50, 100)
                    melody.append(SynthNote(onset, length, pitch, velocity))
                onset += length
        if with_bass:
            root = tonic - 24 + scale[rng.choice((0, 3, 4, 5))]
            bass.append(SynthNote(start, bar_length, root, 60))
    end = (bars - 1) * bar_length
    melody.append(SynthNote(end, bar_length, tonic, 70))
    if with_bass:
        bass.append(SynthNote(end, bar_length, tonic - 24, 60))
    return SynthPiece(f"Synthetic {seed}-{index}", meter, bpm, bars, tuple(melody), tuple(bass))


def vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, int, bytes]]) -> bytes:
    """An MTrk chunk from (tick, order, event bytes), sorted, with delta times and end of track."""
    body = bytearray()
    now = 0
    for tick, _, data in sorted(events):
        body += vlq(tick - now) + data
        now = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def midi_bytes(p: SynthPiece) -> bytes:
    """The piece as a format-1 Standard MIDI File: a conductor track, then melody and bass.

    Written directly (ten times faster than going through a MIDI library, which matters for a
    corpus of a hundred thousand files); the pipeline reads it back with its MIDI reader.
    """
    num, den = (int(x) for x in p.meter.split("/"))
    if den & (den - 1) or not 0 < num < 128:
        raise ValueError(f"{p.meter}: MIDI needs a power-of-two denominator")
    micros = round(60_000_000 / p.bpm)
    title = p.title.encode()
    conductor = [
        (0, 0, b"\xff\x03" + vlq(len(title)) + title),
        (0, 1, b"\xff\x58\x04" + bytes([num, den.bit_length() - 1, 24, 8])),
        (0, 2, b"\xff\x51\x03" + micros.to_bytes(3, "big")),
    ]
    tracks = [_track(conductor)]
    parts = (("melody", 73, p.melody), ("bass", 32, p.bass))
    for channel, (name, program, notes) in enumerate(parts):
        if not notes:
            continue
        events = [
            (0, 0, b"\xff\x03" + vlq(len(name)) + name.encode()),
            (0, 1, bytes([0xC0 | channel, program])),
        ]
        for n in notes:  # note-offs sort before note-ons on the same tick
            start = int(n.onset * TICKS_PER_BEAT)
            end = int((n.onset + n.duration) * TICKS_PER_BEAT)
            events.append((start, 3, bytes([0x90 | channel, n.pitch, n.velocity])))
            events.append((end, 2, bytes([0x80 | channel, n.pitch, 0])))
        tracks.append(_track(events))
    header = b"MThd" + (6).to_bytes(4, "big")
    header += (1).to_bytes(2, "big") + len(tracks).to_bytes(2, "big")
    header += TICKS_PER_BEAT.to_bytes(2, "big")
    return header + b"".join(tracks)


def write_midi(p: SynthPiece, path: Path) -> None:
    """Write one piece to `path` (atomically)."""
    write_bytes_atomic(path, midi_bytes(p))


def relative_path(index: int) -> str:
    """Where piece `index` lives under the corpus folder."""
    return f"{index // PER_FOLDER:05d}/{index:06d}.mid"


def write_corpus(
    out_dir: Path,
    pieces: int,
    seed: int = 0,
    *,
    start: int = 0,
    on_done: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write pieces `start` .. `start + pieces - 1` of `seed` under `out_dir`; their paths.

    A file that already exists is kept (the content is a function of seed and index), so a
    larger corpus reuses a smaller one's files and an interrupted run resumes. A folder written
    with another seed (or generator format) is refused.
    """
    if pieces < 0 or start < 0:
        raise ValueError("pieces and start must be >= 0")
    marker = out_dir / MARKER
    stamp = {"seed": seed, "format": FORMAT}
    if marker.is_file():
        found = json.loads(marker.read_text())
        if found != stamp:
            raise GnmError(
                f"{out_dir} holds synthetic pieces of {found}, not {stamp}: use another folder"
            )
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(stamp) + "\n")
    paths: list[Path] = []
    for index in range(start, start + pieces):
        path = out_dir / relative_path(index)
        if not path.is_file():
            write_midi(piece(seed, index), path)
        paths.append(path)
        if on_done:
            on_done(1)
    return paths


def declaration(name: str, folder: str) -> str:
    """A corpus declaration (YAML) for a synthetic folder under the data root."""
    return (
        f"name: {name}\n"
        "description: Synthetic MIDI scores for load tests (gnm data synth); not music.\n"
        f"source: {{kind: directory, path: {folder}, include: ['*/*.mid']}}\n"
        "formats: [mid]\n"
        "genre: other\n"
        "licence: generated by gnm; no rights reserved\n"
        "redistributable: true\n"
        "priority: 90\n"
    )
