"""Fast MIDI reader through symusic (C++), giving exactly the score of `midi_reader.read_midi`.

The reference is miditoolkit on mido; this module reproduces that reading, quirks included:

* Instruments are (track, channel, program) groups in the order miditoolkit creates them: track
  by track, and inside a track by the tick of each group's first closing note-off. symusic sorts
  a track's groups by (channel, program) and does not say which track a group came from, so each
  MTrk chunk is loaded on its own and its groups are re-ordered by their first note end. Two
  groups of one track that first close on the same tick cannot be ordered without the raw events:
  the file falls back to the reference (`Unsupported("midi:instrument-order")`).
* Note pairing is first-in-first-out per (channel, pitch) in both, and symusic 0.6 also closes a
  note on its note-on's tick (a zero-length note, dropped and counted as the reference does). But
  symusic files a note under the program current at its note-on, miditoolkit at its note-off: a
  program change after a note-on in a track sends the file to the reference.
* Tempos follow miditoolkit: a tempo at tick 0 in any track discards those collected so far, and a
  later one is kept only when it differs from the last kept value; time and key signatures of all
  tracks are stably sorted by tick, and the first key signature names the key (mido's names).
* What mido refuses and symusic reads (an empty track, a zero tempo, a zero time-signature
  numerator, an unknown key, a short meta event, chunks that do not frame) is `bad_midi` here too.

`midi_scan` frames the chunks and, for a track where a quick byte search finds a reason (a
program change or track name after a note-on, several names, a short meta event, events after
the end of track, meta events sharing a tick, a non-ASCII name), walks its events as mido does.
Times stay integer ticks: the notes become the score's `NoteTable` at the file's ticks per beat,
sorted with numpy (no `Note` object is built unless a caller asks for one), and bars are built in
integer units.
"""

from __future__ import annotations

import struct
from collections import Counter
from fractions import Fraction
from itertools import repeat
from operator import is_not, itemgetter
from pathlib import Path
from typing import Any

import numpy as np
from symusic.core import ScoreTick

from pipeline.errors import ScoreValidationError, Unsupported
from pipeline.readers.common import (
    DEFAULT_METER,
    MAX_MIDI_BYTES,
    ItemFailure,
    read_capped,
    report_dict,
)
from pipeline.readers.midi_scan import TrackScan, bad_midi, frame, scan_track, suspect
from pipeline.score import Bar, Meter, NoteTable, Part, Score, ScoreMeta, TempoChange, new_bar

# mido's key-signature table ((sharps, mode) -> name); anything else makes mido refuse the file.
_MAJOR = ["Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#"]
_MINOR = [
    k + "m"
    for k in ["Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#"]
]
KEY_NAMES: dict[tuple[int, int], str] = {
    **{(k, 0): n for k, n in zip(range(-7, 8), _MAJOR, strict=True)},
    **{(k, 1): n for k, n in zip(range(-7, 8), _MINOR, strict=True)},
}

CACHE_LIMIT = 200_000  # fractions kept per resolution (about 20 MB at most)
CACHE_SCALES = 8  # resolutions kept (ticks per beat, and bar units)
RUN_KEYS, RUN_LIMIT = 64, 4096  # runs of bars kept, and bars in one (about 40 MB at most)
_FRACTIONS: dict[int, dict[int, Fraction]] = {}
# symusic's fields of tempos, time signatures and key signatures (`_meta_arrays`)
META_FIELDS = (("mspq",), ("numerator", "denominator"), ("key", "tonality"))
_RUNS: dict[tuple[int, int, int, Meter], list[Bar]] = {}  # runs of bars (`_run`)


def read_midi_fast(path: Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
    """Parse a MIDI file into one canonical score, as `read_midi` does (`expand_repeats`: no meaning)."""
    try:
        data = read_capped(path, MAX_MIDI_BYTES, "MIDI file")
    except OSError as exc:
        raise bad_midi(path, exc.strerror or type(exc).__name__) from None
    tpb, chunks = frame(data, path)
    counts: Counter[str] = Counter()
    parts: list[Part] = []
    # onset, duration, pitch and velocity arrays of each part, and (part index, notes) pairs
    columns: list[list[Any]] = [[], [], [], [], []]
    tempo_list: list[tuple[float, int]] = [(120.0, 0)]  # miditoolkit's default, (bpm, tick)
    signatures: list[tuple[int, int, int]] = []
    keys: list[tuple[int, int, int]] = []
    header = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01" + struct.pack(">h", tpb)
    for start, end in chunks:
        chunk = data[start:end]
        score = _load(header + data[start - 8 : end], chunk, path)
        tracks = list(score.tracks)  # each access to symusic's list builds new wrappers
        scan = None  # the full byte scan, only where the quick look finds a reason
        metas = _meta_arrays(score)
        if suspect(chunk) or _ties(metas) or not all(t.name.isascii() for t in tracks):
            scan = scan_track(chunk, path)
        _collect_meta(metas, scan, tempo_list, signatures, keys, path)
        _collect_instruments(tracks, scan, parts, columns, counts, path)
    return [_build(path, tpb, parts, columns, counts, tempo_list, signatures, keys)]


def _load(data: bytes, chunk: bytes, path: Path) -> Any:
    """One track as a symusic tick-time score.

    When symusic refuses it, the scan says whether mido refuses it too (`bad_midi`); if not,
    the reference reads it (a delta time of five bytes, for one).
    """
    try:
        return ScoreTick.from_midi(data, False)  # symusic.Score.from_midi(data, ttype="tick")
    except Exception as exc:  # symusic raises RuntimeError, ValueError, range errors, ...
        scan_track(chunk, path)
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise Unsupported("midi:symusic-refuses", f"{path}: {detail[:200]}") from exc


def _meta_arrays(score: Any) -> list[dict[str, np.ndarray] | None]:
    """symusic's arrays of one track's tempos, time and key signatures (None where it has none).

    Fetched once: each access to a symusic list builds a new wrapper, each `numpy()` new arrays.
    """
    kinds = (score.tempos, score.time_signatures, score.key_signatures)
    return [events.numpy() if len(events) else None for events in kinds]


def _ties(metas: list[dict[str, np.ndarray] | None]) -> bool:
    """True when two meta events of one kind share a tick with different values.

    symusic sorts a track's events by tick, perhaps not stably: only the scan knows their order.
    """
    for arrays, fields in zip(metas, META_FIELDS, strict=True):
        if arrays is not None and len(arrays["time"]) > 1:
            same = arrays["time"][1:] == arrays["time"][:-1]
            if same.any() and any((arrays[f][1:] != arrays[f][:-1])[same].any() for f in fields):
                return True
    return False


def _rows(
    arrays: dict[str, np.ndarray] | None,
    fields: tuple[str, ...],
    values: list[Any] | None,
    path: Path,
) -> list[Any]:
    """(tick, *values) of one kind of meta event: ticks from symusic, values from the scan if any."""
    if arrays is None and not values:
        return []
    times = [] if arrays is None else arrays["time"].tolist()
    if values is None:
        assert arrays is not None
        return list(zip(times, *(arrays[f].tolist() for f in fields), strict=True))
    if len(times) != len(values):
        raise Unsupported(
            "midi:meta-event-count", f"{path}: symusic {len(times)}, mido {len(values)}"
        )
    return [(t, *v) if isinstance(v, tuple) else (t, v) for t, v in zip(times, values, strict=True)]


def _collect_meta(
    metas: list[dict[str, np.ndarray] | None],
    scan: TrackScan | None,
    tempo_list: list[tuple[float, int]],
    signatures: list[tuple[int, int, int]],
    keys: list[tuple[int, int, int]],
    path: Path,
) -> None:
    """Add this track's tempos (miditoolkit's rules), time and key signatures, in file order."""
    tempo_values = scan.tempos if scan else None
    for tick, mspq in _rows(metas[0], META_FIELDS[0], tempo_values, path):
        if mspq <= 0:
            raise bad_midi(path, "float division by zero (a tempo of 0 microseconds per beat)")
        bpm = 60 * 1e6 / mspq * 4 / 4.0  # mido.tempo2bpm, operation for operation
        if tick == 0:
            tempo_list[:] = [(bpm, 0)]
        elif bpm != tempo_list[-1][0]:
            tempo_list.append((bpm, tick))
    ts_values = scan.time_signatures if scan else None
    for tick, num, den in _rows(metas[1], META_FIELDS[1], ts_values, path):
        if num <= 0:
            raise bad_midi(path, f"{num} is not a valid `numerator` value")
        if not 0 < den <= 128:  # 2**d for d >= 8: no such note value, and no such meter downstream
            raise Unsupported("midi:time-signature-denominator", f"{path}: {num}/{den}")
        signatures.append((tick, num, den))
    key_values = scan.key_signatures if scan else None
    for tick, sharps, mode in _rows(metas[2], META_FIELDS[2], key_values, path):
        if (sharps, mode) not in KEY_NAMES:
            raise bad_midi(path, f"Could not decode key with {sharps} flats/sharps and mode {mode}")
        keys.append((tick, sharps, mode))


def _collect_instruments(
    tracks: list[Any],
    scan: TrackScan | None,
    parts: list[Part],
    columns: list[list[Any]],
    counts: Counter[str],
    path: Path,
) -> None:
    """Add this track's instruments as parts, in miditoolkit's order, and their notes."""
    groups = []
    for track in tracks:
        arrays = track.notes.numpy()
        if len(arrays["time"]):
            groups.append((0, track, arrays))
    if not groups:
        return
    if len(groups) > 1:  # ordered by their first note end (a lone group needs no order)
        groups = [
            (int((a["time"].astype(np.int64) + a["duration"]).min()), t, a) for _, t, a in groups
        ]
        groups.sort(key=itemgetter(0))
        if len({g[0] for g in groups}) != len(groups):
            raise Unsupported(
                "midi:instrument-order", f"{path}: two instruments first close together"
            )
    name = groups[0][1].name  # ASCII, and the only name, ahead of the notes (`suspect`)
    if scan is not None:
        if scan.program_change_after_note:
            raise Unsupported("midi:program-change-after-notes", str(path))
        if any(after for after, _ in scan.names):  # miditoolkit names a group on creating it
            raise Unsupported("midi:track-name-after-notes", str(path))
        name = scan.names[-1][1] if scan.names else ""
    for _, track, arrays in groups:
        index = len(parts)
        is_drum = bool(track.is_drum)
        parts.append(Part(index, name, int(track.program), is_drum))
        if is_drum:
            counts["unpitched_dropped"] += len(arrays["time"])
            continue
        for column, key in zip(columns, ("time", "duration", "pitch", "velocity"), strict=False):
            column.append(arrays[key])
        columns[4].append((index, len(arrays["time"])))


def _fraction(num: int, den: int, new: Any = object.__new__, cls: type = Fraction) -> Fraction:
    """`Fraction(num, den)` for coprime ints, without Fraction's checks."""
    fraction: Any = new(cls)
    fraction._numerator = num
    fraction._denominator = den
    return fraction


def _fractions(values: np.ndarray, scale: int) -> list[Fraction]:
    """`Fraction(v, scale)` for every value, from a cache shared by the files a process reads.

    Building a Fraction costs more than finding it: onsets, durations and bar lengths recur
    within a file and across files of one resolution. Bounded: cleared past `CACHE_LIMIT`.
    """
    if scale not in _FRACTIONS and len(_FRACTIONS) >= CACHE_SCALES:
        _FRACTIONS.clear()
    cache = _FRACTIONS.setdefault(scale, {})
    if len(cache) > CACHE_LIMIT:
        cache.clear()
    keys = values.tolist()
    made: list[Any] = list(map(cache.get, keys))
    if not all(map(is_not, made, repeat(None))):  # not `None in made`: that calls Fraction.__eq__
        missing = sorted({k for k, f in zip(keys, made, strict=True) if f is None})
        array = np.array(missing, dtype=np.int64)
        gcd = np.gcd(array, scale)
        cache.update(
            zip(
                missing,
                map(_fraction, (array // gcd).tolist(), (scale // gcd).tolist()),
                strict=True,
            )
        )
        made = list(map(cache.__getitem__, keys))
    return made


def _bars(
    signatures: list[tuple[int, int, int]],
    end: int,
    last_onset: int | None,
    tpb: int,
    counts: Counter[str],
) -> tuple[Bar, ...]:
    """`bars_from_time_signatures` then `make_bars(pickup_from_next_meter=True)`, in integers.

    Units of 1/(tpb * D) quarter, D the largest denominator, make every meter length and tick
    an integer; `end` and `last_onset` are in ticks. Bars come in runs of one length and meter
    (`_run`).
    """
    scale = max([d for _, _, d in signatures], default=1)
    unit = tpb * scale  # units per quarter
    ordered: dict[int, Meter] = {}
    for tick, num, den in sorted(signatures, key=itemgetter(0)):  # the last of one tick wins
        ordered[tick * scale] = Meter(num, den)
    if not ordered or min(ordered) > 0:
        counts["default_meter"] += 1
        ordered[0] = DEFAULT_METER
    times = sorted(ordered)
    runs: list[list[Any]] = []  # [length, meter, count]: that many bars of that length
    cursor, end_u = 0, end * scale
    for i, time in enumerate(times):
        meter = ordered[time]
        length = 4 * meter.numerator * unit // meter.denominator
        if i + 1 == len(times):
            limit = max(end_u, time + length)
            count = -(-(limit - cursor) // length) if cursor < limit else 0
            runs.append([length, meter, count])
            cursor += count * length
        else:
            limit = times[i + 1]
            full, rest = divmod(limit - cursor, length)
            runs.append([length, meter, full])
            if rest:
                runs.append([rest, meter, 1])
            cursor = limit
    runs = [r for r in runs if r[2]]
    first_length, first_meter = runs[0][0], runs[0][1]
    pickup: Meter | None = None  # decided before bars are appended, as make_bars does
    if first_length < 4 * first_meter.numerator * unit // first_meter.denominator:
        pickup = first_meter
    elif runs[0][2] > 1 or len(runs) > 1:
        second = first_meter if runs[0][2] > 1 else runs[1][1]
        if (
            second != first_meter
            and first_length < 4 * second.numerator * unit // second.denominator
        ):
            pickup = second
            counts["pickup_meter_from_next_bar"] += 1
    if last_onset is not None and last_onset * scale >= cursor:
        # bars of the last meter until every onset lies in one
        meter = runs[-1][1]
        length = 4 * meter.numerator * unit // meter.denominator
        extra = (last_onset * scale - cursor) // length + 1
        counts["bars_appended"] += extra
        if runs[-1][0] == length:
            runs[-1][2] += extra
        else:
            runs.append([length, meter, extra])
    bars: list[Bar] = []
    start = 0
    for length, meter, count in runs:
        bars.extend(_run(unit, start, length, meter, count))
        start += length * count
    if pickup is not None:
        bars[0] = new_bar(bars[0].start, bars[0].length, pickup, True)
    return tuple(bars)


def _run(unit: int, start: int, length: int, meter: Meter, count: int) -> list[Bar]:
    """`count` bars of `length` units and `meter` from unit `start`, from a cache shared by the
    files a process reads.

    Bars are immutable, and the files of a corpus repeat a few runs (POP909: one meter from 0
    at one resolution): a run costs a slice rather than hundreds of `Bar` and `Fraction`
    objects. Bounded: at most `RUN_KEYS` runs of at most `RUN_LIMIT` bars (then cleared).
    """
    key = (unit, start, length, meter)
    run = _RUNS.get(key)
    if run is not None and len(run) >= count:
        return run[:count]
    starts = np.arange(count, dtype=np.int64) * length + start
    size = _fractions(np.array([length], dtype=np.int64), unit)[0]
    run = list(map(new_bar, _fractions(starts, unit), repeat(size), repeat(meter)))
    if count <= RUN_LIMIT:
        if len(_RUNS) >= RUN_KEYS:
            _RUNS.clear()
        _RUNS[key] = run
    return run


def _note_order(
    onset: np.ndarray,
    pitch: np.ndarray,
    duration: np.ndarray,
    velocity: np.ndarray,
    part: np.ndarray,
) -> np.ndarray:
    """The permutation sorting notes as `Note` tuples sort: onset, pitch, duration, velocity, part,
    ties in their given order (as `np.lexsort`).

    Packed into one key when the fields fit in 63 bits (pitch and velocity take 7), sorted by a
    stable argsort: fast on the tracks' runs of notes already in onset order. Else into two
    keys (ticks below 2**31, as symusic's int32 times are): lexsort costs about a sort per key.
    """
    onset_bits = int(onset.max()).bit_length()
    duration_bits = int(duration.max()).bit_length()
    part_bits = int(part.max()).bit_length()
    if onset_bits + duration_bits + part_bits + 14 <= 63:
        key = (((onset << 7) | pitch) << duration_bits) | duration
        key = (((key << 7) | velocity) << part_bits) | part
        return np.argsort(key, kind="stable")
    if part_bits <= 16 and duration_bits <= 40:
        return np.lexsort(((duration << 23) | (velocity << 16) | part, (onset << 7) | pitch))
    return np.lexsort((part, velocity, duration, pitch, onset))


def _notes(
    columns: list[list[Any]], tpb: int, counts: Counter[str], path: Path
) -> tuple[NoteTable, int, int | None]:
    """The sorted notes (ticks of `tpb` per quarter), the end of the last one and the last
    onset (ticks), from the columns."""
    if not columns[0]:
        return NoteTable.empty(), 0, None
    onset, duration, pitch, velocity = (np.concatenate(c, dtype=np.int64) for c in columns[:4])
    indexes, sizes = zip(*columns[4], strict=True)
    part = np.repeat(np.array(indexes, dtype=np.int64), sizes)
    shortest = int(duration.min())
    if int(onset.min()) < 0 or shortest < 0:  # int32 ticks wrapped around
        raise Unsupported("midi:tick-overflow", str(path))
    if shortest == 0:
        keep = duration > 0
        counts["zero_duration_dropped"] += int((~keep).sum())
        onset, duration, pitch, velocity, part = (
            a[keep] for a in (onset, duration, pitch, velocity, part)
        )
        if not len(onset):
            return NoteTable.empty(), 0, None
    if int(pitch.min()) < 0 or int(pitch.max()) > 127:  # symusic refuses these already
        raise ScoreValidationError(f"{path.name}: pitch outside 0-127")
    velocity = np.minimum(np.maximum(velocity, 1), 127)
    order = _note_order(onset, pitch, duration, velocity, part)
    onset, duration, pitch, velocity, part = (
        a[order] for a in (onset, duration, pitch, velocity, part)
    )
    notes = NoteTable(onset, pitch, duration, velocity, part, tpb)
    notes._sorted = True  # in canonical order by construction (`_note_order`)
    return notes, int((onset + duration).max()), int(onset[-1])


def _build(
    path: Path,
    tpb: int,
    parts: list[Part],
    columns: list[list[Any]],
    counts: Counter[str],
    tempo_list: list[tuple[float, int]],
    signatures: list[tuple[int, int, int]],
    keys: list[tuple[int, int, int]],
) -> Score:
    """The canonical score from the collected columns and events.

    Its invariants hold by construction (what `Score.validate` checks, note by note, costs more
    than the whole reading): notes sorted by lexsort on ticks, durations positive, bars
    contiguous from 0 past the last onset, tempos sorted and positive.
    """
    notes, end, last_onset = _notes(columns, tpb, counts, path)
    if not parts:
        parts.append(Part(0))
    bars = _bars(signatures, end, last_onset, tpb, counts)
    tempos: dict[int, float] = {}
    for bpm, tick in tempo_list:  # every bpm is positive: a zero tempo was refused
        tempos[tick] = bpm
    keys.sort(key=itemgetter(0))
    return Score(
        meta=ScoreMeta(path.name, path.stem, "", str(path), None),
        notes=notes,
        bars=bars,
        parts=tuple(parts),
        tempos=tuple(TempoChange(Fraction(t, tpb), bpm) for t, bpm in sorted(tempos.items())),
        key=KEY_NAMES[keys[0][1], keys[0][2]] if keys else None,
        report=report_dict(counts),
    )
